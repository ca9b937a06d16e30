//! The database: documents, indexes, transactions and subscriptions, kept through the
//! persistence interface (`kv`), whose default is one redb file in the data directory.
//! Knows nothing of wasm or HTTP.

pub mod committer;
pub mod cursor_seal;
pub mod documents;
pub mod filter;
pub mod id;
pub mod index_key;
pub mod indexes;
pub mod kv;
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
use std::sync::Arc;

use kv::KvStore;

/// Opens (or creates) the server's embedded database (redb) in `data_dir`.
pub fn open(data_dir: &Path) -> anyhow::Result<Arc<dyn KvStore>> {
    Ok(Arc::new(kv::redb_kv::RedbStore::open(data_dir)?))
}
