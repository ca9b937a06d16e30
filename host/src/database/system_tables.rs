//! System tables: tables the server keeps for itself, named with a leading `_` (which no
//! user table may have), as Convex's `_scheduled_functions`. Functions read them like any
//! table (Convex's `db.system`); only the server writes them
//! ([`Transaction::system_insert`](super::transaction::Transaction::system_insert)).
//!
//! A system table's indexes are fixed here, not by a schema: a schema deploy leaves system
//! tables alone, and a system table that does not exist yet is created with them by its
//! first write (and reads as empty, through the same indexes, until then).

/// The jobs of the scheduler (`scheduler::jobs`), one document per scheduled call.
pub const SCHEDULED_FUNCTIONS: &str = "_scheduled_functions";
/// The cron jobs of the live deployment (`scheduler::crons`), one document per cron.
pub const CRON_JOBS: &str = "_cron_jobs";
/// Stored files (`storage::records`): `{sha256, size, contentType?}`, as Convex's.
pub const STORAGE: &str = "_storage";
/// Upload tokens already used (`storage::tokens`), so that each is used once.
pub const UPLOAD_TOKENS: &str = "_upload_tokens";

/// `_scheduled_functions` by state, then due time: the executor's queue (pending jobs,
/// soonest first) and the actions left in progress by a crash.
pub const BY_STATE: &str = "by_state";
/// `_cron_jobs` by name (a deploy updates crons by name).
pub const BY_NAME: &str = "by_name";
/// `_cron_jobs` by the time of the next run.
pub const BY_NEXT_RUN: &str = "by_next_run";
/// `_storage` by content hash: the records that share one file on disk.
pub const BY_SHA256: &str = "by_sha256";
/// `_upload_tokens` by the token's nonce.
pub const BY_NONCE: &str = "by_nonce";

/// Whether `name` is a system table's (or a system table's to be) name.
pub fn is_system_table(name: &str) -> bool {
    name.starts_with('_')
}

/// The declared indexes (name → fields) of the system table `name`; `None` if no such
/// system table exists.
pub fn declared_indexes(name: &str) -> Option<Vec<(String, Vec<String>)>> {
    let index = |name: &str, fields: &[&str]| {
        (
            name.to_string(),
            fields.iter().map(|field| field.to_string()).collect(),
        )
    };
    match name {
        SCHEDULED_FUNCTIONS => Some(vec![index(BY_STATE, &["state.kind", "scheduledTime"])]),
        CRON_JOBS => Some(vec![
            index(BY_NAME, &["name"]),
            index(BY_NEXT_RUN, &["nextRun"]),
        ]),
        STORAGE => Some(vec![index(BY_SHA256, &["sha256"])]),
        UPLOAD_TOKENS => Some(vec![index(BY_NONCE, &["nonce"])]),
        _ => None,
    }
}
