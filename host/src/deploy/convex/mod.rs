//! Convex apps pushed by the official Convex CLI: what their schema and auth config mean
//! in Kiln, and the pushes between `start_push` and `finish_push`.

pub mod auth;
pub mod push;
pub mod schema;
