//! Realtime sync, apart from the socket: Convex's sync protocol messages, the query cache
//! that subscriptions share, and the memory of mutations already answered. The socket and
//! the per-connection state machine are in `api/sync/`; which results a commit makes stale
//! is decided in `database::subscriptions`.

pub mod protocol;
pub mod query_cache;
pub mod recent_mutations;
