//! The Kiln server and command-line tool.
//!
//! Layers point one way (STYLE.md section 3): `values` and `database` know nothing of wasm
//! or HTTP; `runtime` and `capabilities` run components and know nothing of HTTP; `deploy`
//! turns uploaded modules into a live deployment; `fetch` is the outbound HTTP client and
//! its policy (it knows nothing of wasm or function kinds); `api` is the only place that
//! serves HTTP; `cli` is the `kiln` command.

pub mod api;
pub mod auth;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod database;
pub mod deploy;
pub mod failpoints;
pub mod fetch;
pub mod function_path;
pub mod runtime;
pub mod scheduler;
pub mod storage;
pub mod sync;
mod wake_recorder;

/// Convex's value model, shared with the guest SDK.
pub use kiln_values as values;

/// The server's version, as `GET /version` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
