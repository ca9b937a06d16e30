//! The persistence interface on redb: one database file in the data directory, a redb
//! table per key space (STYLE.md section 6). The tables keep the types they had before the
//! interface existed (text keys and values where the content is text), so data
//! directories written by earlier versions open unchanged.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};

use super::{KeyRange, KvRead, KvStore, KvWrite, Op, Order, Space, Visit};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "kiln.redb";

const DOCUMENTS: TableDefinition<&[u8], &str> = TableDefinition::new("documents");
const INDEX_ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index_entries");
const TABLES: TableDefinition<&str, &str> = TableDefinition::new("tables");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const MODULE_SOURCES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("module_sources");
const COMPILED_ARTIFACTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("compiled_artifacts");
const DEPLOYMENT: TableDefinition<&str, &str> = TableDefinition::new("deployment");
const ENVIRONMENT_VARIABLES: TableDefinition<&str, &str> =
    TableDefinition::new("environment_variables");
const COMMIT_LOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commit_log");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");

/// Runs `$body` with `$def` bound to the redb table definition of `$space` (each arm is
/// compiled for its table's key and value types).
macro_rules! with_definition {
    ($space:expr, $def:ident => $body:expr) => {
        match $space {
            Space::Documents => {
                let $def = DOCUMENTS;
                $body
            }
            Space::IndexEntries => {
                let $def = INDEX_ENTRIES;
                $body
            }
            Space::Tables => {
                let $def = TABLES;
                $body
            }
            Space::Counters => {
                let $def = COUNTERS;
                $body
            }
            Space::ModuleSources => {
                let $def = MODULE_SOURCES;
                $body
            }
            Space::CompiledArtifacts => {
                let $def = COMPILED_ARTIFACTS;
                $body
            }
            Space::Deployment => {
                let $def = DEPLOYMENT;
                $body
            }
            Space::EnvironmentVariables => {
                let $def = ENVIRONMENT_VARIABLES;
                $body
            }
            Space::CommitLog => {
                let $def = COMMIT_LOG;
                $body
            }
            Space::Settings => {
                let $def = SETTINGS;
                $body
            }
        }
    };
}

/// A redb key or value type seen as bytes: byte strings as they are, text as its UTF-8,
/// counters as big-endian `u64`.
trait AsBytes: redb::Value + 'static {
    fn with_bytes<R>(value: Self::SelfType<'_>, f: impl FnOnce(&[u8]) -> R) -> R;
    fn parse_bytes(bytes: &[u8]) -> anyhow::Result<Self::SelfType<'_>>;
}

impl AsBytes for &'static [u8] {
    fn with_bytes<R>(value: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
        f(value)
    }
    fn parse_bytes(bytes: &[u8]) -> anyhow::Result<&[u8]> {
        Ok(bytes)
    }
}

impl AsBytes for &'static str {
    fn with_bytes<R>(value: &str, f: impl FnOnce(&[u8]) -> R) -> R {
        f(value.as_bytes())
    }
    fn parse_bytes(bytes: &[u8]) -> anyhow::Result<&str> {
        std::str::from_utf8(bytes).context("a key or value of a text table is not UTF-8")
    }
}

impl AsBytes for u64 {
    fn with_bytes<R>(value: u64, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&value.to_be_bytes())
    }
    fn parse_bytes(bytes: &[u8]) -> anyhow::Result<u64> {
        super::decode_counter(bytes)
    }
}

fn get_in<K: AsBytes + redb::Key, V: AsBytes>(
    table: &impl ReadableTable<K, V>,
    key: &[u8],
    found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let Some(guard) = table.get(K::parse_bytes(key)?)? else {
        return Ok(false);
    };
    V::with_bytes(guard.value(), |bytes| found(bytes))?;
    Ok(true)
}

fn scan_in<K: AsBytes + redb::Key, V: AsBytes>(
    table: &impl ReadableTable<K, V>,
    range: KeyRange<'_>,
    order: Order,
    visit: &mut Visit<'_>,
) -> anyhow::Result<()> {
    let bounds = (convert_bound::<K>(range.0)?, convert_bound::<K>(range.1)?);
    let iter = table.range::<K::SelfType<'_>>(bounds)?;
    let entries: Box<dyn Iterator<Item = _>> = match order {
        Order::Asc => Box::new(iter),
        Order::Desc => Box::new(iter.rev()),
    };
    for entry in entries {
        let (key, value) = entry?;
        let go_on = K::with_bytes(key.value(), |key| {
            V::with_bytes(value.value(), |value| visit(key, value))
        })?;
        if !go_on {
            break;
        }
    }
    Ok(())
}

fn convert_bound<K: AsBytes>(
    bound: std::ops::Bound<&[u8]>,
) -> anyhow::Result<std::ops::Bound<K::SelfType<'_>>> {
    Ok(match bound {
        std::ops::Bound::Included(key) => std::ops::Bound::Included(K::parse_bytes(key)?),
        std::ops::Bound::Excluded(key) => std::ops::Bound::Excluded(K::parse_bytes(key)?),
        std::ops::Bound::Unbounded => std::ops::Bound::Unbounded,
    })
}

fn put_in<K: AsBytes + redb::Key, V: AsBytes>(
    table: &mut redb::Table<'_, K, V>,
    key: &[u8],
    value: &[u8],
) -> anyhow::Result<()> {
    table.insert(K::parse_bytes(key)?, V::parse_bytes(value)?)?;
    Ok(())
}

fn delete_in<K: AsBytes + redb::Key, V: AsBytes>(
    table: &mut redb::Table<'_, K, V>,
    key: &[u8],
) -> anyhow::Result<()> {
    table.remove(K::parse_bytes(key)?)?;
    Ok(())
}

/// redb as a [`KvStore`].
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(DATABASE_FILE);
        let db = Database::create(&path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        Self::with_database(db)
    }

    /// A database in memory that is gone when dropped (`kiln build`, tests).
    pub fn in_memory() -> anyhow::Result<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .context("cannot create an in-memory database")?;
        Self::with_database(db)
    }

    /// Creates the tables, so reads never meet a missing one.
    fn with_database(db: Database) -> anyhow::Result<Self> {
        let txn = db.begin_write()?;
        for space in Space::ALL {
            with_definition!(space, definition => {
                txn.open_table(definition)?;
            });
        }
        txn.commit()?;
        Ok(Self { db })
    }
}

impl KvStore for RedbStore {
    fn snapshot(&self) -> anyhow::Result<Arc<dyn KvRead + Send + Sync>> {
        Ok(Arc::new(RedbSnapshot {
            txn: self.db.begin_read()?,
            documents: OnceLock::new(),
            index_entries: OnceLock::new(),
        }))
    }

    fn begin_write(&self) -> anyhow::Result<Box<dyn KvWrite + '_>> {
        Ok(Box::new(RedbWrite {
            txn: self.db.begin_write()?,
        }))
    }

    fn kind(&self) -> &'static str {
        "redb"
    }
}

/// A read transaction. The two tables every query reads are opened once per snapshot, on
/// first use, not once per document.
struct RedbSnapshot {
    txn: ReadTransaction,
    documents: OnceLock<ReadOnlyTable<&'static [u8], &'static str>>,
    index_entries: OnceLock<ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

/// The table in `cell`, opened on first use.
fn opened<'c, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    cell: &'c OnceLock<ReadOnlyTable<K, V>>,
    definition: TableDefinition<K, V>,
) -> anyhow::Result<&'c ReadOnlyTable<K, V>> {
    if cell.get().is_none() {
        let _ = cell.set(txn.open_table(definition)?);
    }
    Ok(cell.get().expect("set above"))
}

impl KvRead for RedbSnapshot {
    fn get_with(
        &self,
        space: Space,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        match space {
            Space::Documents => get_in(opened(&self.txn, &self.documents, DOCUMENTS)?, key, found),
            Space::IndexEntries => get_in(
                opened(&self.txn, &self.index_entries, INDEX_ENTRIES)?,
                key,
                found,
            ),
            other => with_definition!(other, definition => {
                get_in(&self.txn.open_table(definition)?, key, found)
            }),
        }
    }

    fn scan(
        &self,
        space: Space,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> anyhow::Result<()> {
        match space {
            Space::Documents => scan_in(
                opened(&self.txn, &self.documents, DOCUMENTS)?,
                range,
                order,
                visit,
            ),
            Space::IndexEntries => scan_in(
                opened(&self.txn, &self.index_entries, INDEX_ENTRIES)?,
                range,
                order,
                visit,
            ),
            other => with_definition!(other, definition => {
                scan_in(&self.txn.open_table(definition)?, range, order, visit)
            }),
        }
    }
}

/// A write transaction (redb has one at a time).
struct RedbWrite {
    txn: WriteTransaction,
}

impl KvRead for RedbWrite {
    fn get_with(
        &self,
        space: Space,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        with_definition!(space, definition => {
            get_in(&self.txn.open_table(definition)?, key, found)
        })
    }

    fn scan(
        &self,
        space: Space,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> anyhow::Result<()> {
        with_definition!(space, definition => {
            scan_in(&self.txn.open_table(definition)?, range, order, visit)
        })
    }
}

impl KvWrite for RedbWrite {
    fn apply(&mut self, ops: &[Op<'_>]) -> anyhow::Result<()> {
        let space_of = |op: &Op<'_>| match op {
            Op::Put(space, ..) | Op::Delete(space, _) => *space,
        };
        // Each space's table is opened once, and its ops applied in order (ops on
        // different spaces are independent, so grouping them keeps the outcome).
        let mut spaces: Vec<Space> = ops.iter().map(space_of).collect();
        spaces.sort_unstable();
        spaces.dedup();
        for space in spaces {
            with_definition!(space, definition => {
                let mut table = self.txn.open_table(definition)?;
                for op in ops.iter().filter(|op| space_of(op) == space) {
                    match *op {
                        Op::Put(_, key, value) => put_in(&mut table, key, value)?,
                        Op::Delete(_, key) => delete_in(&mut table, key)?,
                    }
                }
            });
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>, durable: bool) -> anyhow::Result<()> {
        if !durable {
            self.txn
                .set_durability(Durability::None)
                .map_err(|err| anyhow::anyhow!("cannot skip the fsync of a commit: {err}"))?;
        }
        self.txn.commit().context("redb commit failed")
    }
}
