//! Kiln's Rust guest SDK: write Kiln functions as ordinary Rust functions.
//!
//! ```
//! use kiln::{query, QueryCtx, Error, Validate};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Validate)]
//! struct Greet { name: String }
//!
//! #[query]
//! fn greet(_ctx: &QueryCtx, args: Greet) -> Result<String, Error> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasip2` and deploy the `.wasm`. Arguments are
//! decoded with serde from Convex values (an argument that does not fit names the field:
//! `args.name: invalid type: ...`), results are encoded the same way, and `println!`,
//! `eprintln!` and [`log`] output become the call's log lines. The SDK implements the
//! `kiln:platform/module` export; authors never touch wit-bindgen.
//!
//! Each function declares validators derived from its types ([`Validate`]): `{name: string}
//! -> string` above. The host checks every call's arguments and return value against them
//! (`ArgumentValidationError: args.name: expected string, got float64`), before the
//! function runs. `#[query(unchecked)]` turns both off, `unchecked(args)` /
//! `unchecked(returns)` one of them.

pub mod auth;
mod context;
pub mod db;
mod document;
mod error;
mod export;
mod functions;
pub mod http;
mod http_action;
pub mod log;
pub mod scheduler;
pub mod storage;
mod validate;

#[doc(hidden)]
pub mod __private;

pub use auth::UserIdentity;
pub use context::{ActionCtx, MutationCtx, QueryCtx};
pub use db::{Id, Order, PaginationOpts, PaginationResult};
pub use document::Document;
pub use error::Error;
pub use http_action::{HttpRequest, HttpResponse};
pub use kiln_sdk_macros::{Validate, action, http_action, mutation, query};
pub use kiln_values::{FieldValidator, Validator, Value};
pub use scheduler::Scheduler;
pub use validate::{Validate, integer_validator};

/// Reads a value (a document, say) into your own type; a mismatch names the field.
pub fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    kiln_values::from_value_at(value, "value").map_err(|err| Error::new(err.to_string()))
}

/// What a function may do (DESIGN.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    Query,
    Mutation,
    Action,
    HttpAction,
}

/// Who may call a function: anyone, or only other functions and admin requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Internal,
}

/// The generated bindings of the `kiln:platform` WIT package.
pub(crate) mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "kiln:platform/function-module",
    });
}
