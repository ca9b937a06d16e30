//! Calling other functions of the deployment from a function: `ctx.run_query`,
//! `ctx.run_mutation`, `ctx.run_action`, with the rules of `kiln:platform/functions`
//! (an action's calls each run on their own; a query's or mutation's run inside its
//! transaction).
//!
//! ```no_run
//! # use kiln::{action, ActionCtx, Error, Value};
//! #[action]
//! fn sum(ctx: &ActionCtx) -> Result<i64, Error> {
//!     let count: i64 = ctx.run_query("counter:get", serde_json::json!({"name": "visits"}))?;
//!     ctx.run_mutation::<Value>("counter:increment", serde_json::json!({"name": "visits"}))?;
//!     Ok(count + 1)
//! }
//! ```
//!
//! The path is `module:function` (`module` alone names its `default`). Arguments are any
//! serde value that encodes as an object (`()` for none); the result decodes into the type you ask for
//! (`Value` takes anything). A callee's error comes back as a [`crate::Error`] with its
//! message and data, so `?` hands it on to your caller unchanged.

use kiln_values::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::kiln::platform::functions as wit;
use crate::bindings::kiln::platform::types::FunctionError;

/// Which import a call goes through.
#[derive(Clone, Copy)]
pub(crate) enum Callee {
    Query,
    Mutation,
    Action,
}

pub(crate) fn run<R: DeserializeOwned>(
    callee: Callee,
    path: &str,
    args: impl Serialize,
) -> Result<R, Error> {
    let args = kiln_values::to_value(&args)
        .map_err(|err| Error::new(format!("cannot encode the arguments for {path}: {err}")))?;
    // `()` (no arguments) is sent as the empty object a function without arguments takes.
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        args => args,
    };
    let args = args.to_convex_json_string();
    let returned = match callee {
        Callee::Query => wit::run_query(path, &args),
        Callee::Mutation => wit::run_mutation(path, &args),
        Callee::Action => wit::run_action(path, &args),
    }
    .map_err(from_wit_error)?;
    let value = Value::from_convex_json_str(&returned)
        .map_err(|err| Error::new(format!("invalid result from {path}: {err}")))?;
    kiln_values::from_value_at(value, path)
        .map_err(|err| Error::new(format!("unexpected result from {path}: {err}")))
}

fn from_wit_error(error: FunctionError) -> Error {
    let data = error
        .data
        .and_then(|text| Value::from_convex_json_str(&text).ok());
    match data {
        Some(data) => Error::with_data(error.message, data),
        None => Error::new(error.message),
    }
}
