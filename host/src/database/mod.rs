//! The persistence layer: one redb database file in the server's data directory.
//!
//! Each layer that stores something declares its own typed tables in it (the deployment's
//! tables live in `deploy::store`). Knows nothing of wasm or HTTP.

pub mod committer;
pub mod cursor_seal;
pub mod documents;
pub mod filter;
pub mod id;
pub mod index_key;
pub mod indexes;
pub mod persistence;
pub mod reads;
pub mod schema;
pub mod store;
pub mod subscriptions;
pub mod system_tables;
pub mod transaction;
pub mod validator;
pub mod write_log;

#[cfg(test)]
mod tests;

use std::path::Path;

use anyhow::Context;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "kiln.redb";

/// Opens (or creates) the server's database in `data_dir`.
pub fn open(data_dir: &Path) -> anyhow::Result<redb::Database> {
    let path = data_dir.join(DATABASE_FILE);
    redb::Database::create(&path)
        .with_context(|| format!("cannot open the database {}", path.display()))
}
