//! End-to-end tests: each starts the real `kiln serve` on a free port and a temporary data
//! directory, deploys real components over HTTP, and calls them over HTTP.
//!
//! The components come from `cargo xtask build-components` (which `cargo xtask ci` runs
//! first); a missing one fails the test with that instruction.

mod support;

mod auth;
mod calls;
mod cli;
mod convex_cli;
mod convex_client;
mod cursors;
mod database;
mod deploy;
mod determinism;
mod fetch;
mod functions;
mod hostile_db;
mod hostile_deploys;
mod hostile_http;
mod hosts;
mod http_actions;
mod javascript;
mod postgres_server;
mod sandbox;
mod scheduler;
mod storage;
mod sync;
mod validators;
