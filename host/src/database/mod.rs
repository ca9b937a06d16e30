//! The database: documents, indexes, transactions and subscriptions, kept through the
//! persistence interface (`kv`), whose default is one redb file in the data directory.
//! Knows nothing of wasm or HTTP.

pub mod commit_log;
pub mod committer;
pub mod cursor_seal;
pub mod documents;
pub mod filter;
pub mod id;
pub mod index_key;
pub mod indexes;
pub mod kv;
pub mod persistence;
pub mod read_document;
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

/// Opens the database the server keeps its data in: PostgreSQL at `url` if one is given
/// (`postgres://` or `postgresql://`), else redb in `data_dir`.
pub async fn open_database(data_dir: &Path, url: Option<&str>) -> anyhow::Result<Arc<dyn KvStore>> {
    match url {
        None => open(data_dir),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(kv::postgres::PgStore::connect(url).await?))
        }
        Some(url) => anyhow::bail!(
            "unsupported database URL {:?}: expected postgres://user:password@host:port/database",
            url.split('@').next_back().unwrap_or_default()
        ),
    }
}

/// The setting `name` of the store ([`kv::Space::Settings`]); if it has none yet, the
/// value `generate` makes, stored. Hosts starting together over a shared store all get
/// the first one stored (the write transaction holds the store's commit lock).
pub fn setting_or_insert(
    kv: &dyn KvStore,
    name: &str,
    generate: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<(Vec<u8>, bool)> {
    if let Some(value) = kv.snapshot()?.get(kv::Space::Settings, name.as_bytes())? {
        return Ok((value, false));
    }
    let mut txn = kv.begin_write()?;
    if let Some(value) = txn.get(kv::Space::Settings, name.as_bytes())? {
        return Ok((value, false));
    }
    let value = generate()?;
    txn.put(kv::Space::Settings, name.as_bytes(), &value)?;
    txn.commit(true)?;
    Ok((value, true))
}
