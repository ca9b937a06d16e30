//! The document store's redb tables (STYLE.md section 6), read snapshots, and the one
//! function that applies a committed write set. Only the committer writes these tables.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kiln_values::Value;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::documents::{CREATION_TIME_FIELD, Document, ID_FIELD};
use super::id::DocumentId;
use super::indexes::{BY_CREATION_TIME, IndexDefinition, by_id_key};
use super::reads::KeyRange;
use super::validator::DocumentValidator;

/// `document_key(id)` → the document as Convex JSON text, system fields included.
const DOCUMENTS: TableDefinition<&[u8], &str> = TableDefinition::new("documents");
/// Index key (see `indexes`) → `document_key` of the document it points at.
const INDEX_ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index_entries");
/// Table name → its [`TableRecord`] as JSON.
const TABLES: TableDefinition<&str, &str> = TableDefinition::new("tables");
/// Counter name → value; see the `*_COUNTER` constants.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// The timestamp of the last commit (nanoseconds; strictly increasing across restarts).
const COMMIT_TS_COUNTER: &str = "commit_ts";
const NEXT_TABLE_NUMBER_COUNTER: &str = "next_table_number";
const NEXT_INDEX_ID_COUNTER: &str = "next_index_id";
/// Convex numbers user tables from 10001.
const FIRST_TABLE_NUMBER: u32 = 10_001;
const FIRST_INDEX_ID: u32 = 1;

/// The key of a document in `DOCUMENTS`: its table number (big-endian) and internal id,
/// so a table's documents are contiguous.
pub fn document_key(id: &DocumentId) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..4].copy_from_slice(&id.table_number.to_be_bytes());
    key[4..].copy_from_slice(&id.internal);
    key
}

/// Every table's record, by name, as of one commit.
type Catalog = Arc<BTreeMap<String, TableRecord>>;

/// A table and its indexes, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    pub name: String,
    pub number: u32,
    /// The id of the table's `by_id` index (virtual: reads record it, writes touch it).
    pub by_id_index: u32,
    /// `by_creation_time` first, then the declared indexes.
    pub indexes: Vec<IndexDefinition>,
    /// The newest `_creationTime` committed in this table; new documents get later ones.
    pub last_creation_time: f64,
    /// The schema's document validator, if it declares one; every write is checked.
    #[serde(default)]
    pub validator: Option<DocumentValidator>,
    /// The validator a deploy in progress will declare: the deploy checks the stored
    /// documents in the background, and the committer checks every write meanwhile. A
    /// write that does not match fails the deploy, not the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_validator: Option<PendingValidator>,
}

/// A validator being checked against a table's documents before a deploy declares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingValidator {
    /// Unique among pending validators (drawn from the index id counter), so a violation
    /// recorded for one deploy's validator never fails another's.
    pub id: u32,
    pub validator: DocumentValidator,
}

impl TableRecord {
    /// What a table that does not exist yet would look like: only the system indexes,
    /// with no ids drawn (used to check queries of such a table; never stored).
    /// A system table that does not exist yet has its fixed indexes.
    pub fn system_only(name: &str) -> TableRecord {
        let mut indexes = vec![IndexDefinition {
            id: 0,
            name: BY_CREATION_TIME.to_string(),
            fields: Vec::new(),
            building: false,
        }];
        for (index, fields) in super::system_tables::declared_indexes(name).unwrap_or_default() {
            indexes.push(IndexDefinition {
                id: 0,
                name: index,
                fields,
                building: false,
            });
        }
        TableRecord {
            name: name.to_string(),
            number: 0,
            by_id_index: 0,
            indexes,
            last_creation_time: 0.0,
            validator: None,
            pending_validator: None,
        }
    }

    /// The ready index of this name: one still being built cannot be read yet.
    pub fn index(&self, name: &str) -> Option<&IndexDefinition> {
        self.indexes
            .iter()
            .find(|index| index.name == name && !index.building)
    }

    /// Every key `document` has in this table's indexes, `by_id` included.
    pub fn keys_for(&self, document: &Document) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .indexes
            .iter()
            .map(|index| index.key_for(document))
            .collect();
        keys.push(by_id_key(self.by_id_index, &document.id));
        keys
    }
}

/// The store: the database and the id counters new tables and indexes draw from.
pub struct Persistence {
    db: Arc<Database>,
    next_table_number: AtomicU32,
    next_index_id: AtomicU32,
    /// The last `_creationTime` handed out, in any table.
    last_creation_time: Mutex<f64>,
    /// The table records as of a commit timestamp, shared by the snapshots at it.
    catalog_cache: Mutex<Option<(u64, Catalog)>>,
}

impl Persistence {
    pub fn open(db: Arc<Database>) -> anyhow::Result<Self> {
        let txn = db.begin_write()?;
        let (next_table_number, next_index_id) = {
            txn.open_table(DOCUMENTS)?;
            txn.open_table(INDEX_ENTRIES)?;
            txn.open_table(TABLES)?;
            let counters = txn.open_table(COUNTERS)?;
            let read = |name: &str, default: u32| -> anyhow::Result<u32> {
                Ok(counters.get(name)?.map_or(default, |v| v.value() as u32))
            };
            (
                read(NEXT_TABLE_NUMBER_COUNTER, FIRST_TABLE_NUMBER)?,
                read(NEXT_INDEX_ID_COUNTER, FIRST_INDEX_ID)?,
            )
        };
        txn.commit()?;
        let persistence = Self {
            db,
            next_table_number: AtomicU32::new(next_table_number),
            next_index_id: AtomicU32::new(next_index_id),
            last_creation_time: Mutex::new(0.0),
            catalog_cache: Mutex::new(None),
        };
        let newest = persistence
            .snapshot()?
            .tables()
            .map(|t| t.last_creation_time)
            .fold(0.0, f64::max);
        *persistence.last_creation_time.lock().expect("poisoned") = newest;
        Ok(persistence)
    }

    /// A `_creationTime` for a new document: the wall clock in milliseconds, but always
    /// after every one handed out before, across tables, transactions and restarts. So
    /// creation times are unique and increasing in the order inserts ran. They are handed
    /// out when the insert runs, not when it commits, so a slow mutation can make visible
    /// a document older than ones already visible (as in Convex): a reader paging by
    /// creation time may see it appear behind its cursor.
    pub fn next_creation_time(&self) -> f64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0);
        let mut last = self
            .last_creation_time
            .lock()
            .expect("creation time lock poisoned");
        *last = now_ms.max(last.next_up());
        *last
    }

    /// A consistent read view of the last commit.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let txn = self.db.begin_read()?;
        let ts = txn
            .open_table(COUNTERS)?
            .get(COMMIT_TS_COUNTER)?
            .map_or(0, |v| v.value());
        // The catalog changes only when a commit changes it: parse it once per commit.
        let mut cache = self.catalog_cache.lock().expect("catalog cache poisoned");
        let tables = match &*cache {
            Some((cached_ts, tables)) if *cached_ts == ts => tables.clone(),
            _ => {
                let mut tables = BTreeMap::new();
                for entry in txn.open_table(TABLES)?.iter()? {
                    let (name, record) = entry?;
                    let record: TableRecord =
                        serde_json::from_str(record.value()).context("corrupt table record")?;
                    tables.insert(name.value().to_string(), record);
                }
                let tables = Arc::new(tables);
                *cache = Some((ts, tables.clone()));
                tables
            }
        };
        drop(cache);
        Ok(Snapshot {
            txn: Arc::new(txn),
            ts,
            tables,
        })
    }

    /// Ids of indexes that have entries but belong to no table: left behind when the
    /// server stopped between a deploy's commit and the drop of its removed indexes.
    /// One seek per index id present, not a scan of the entries.
    pub fn orphaned_index_ids(&self) -> anyhow::Result<Vec<u32>> {
        let snapshot = self.snapshot()?;
        let in_use: std::collections::BTreeSet<u32> = snapshot
            .tables()
            .flat_map(|table| table.indexes.iter().map(|index| index.id))
            .collect();
        let entries = snapshot.txn.open_table(INDEX_ENTRIES)?;
        let mut orphaned = Vec::new();
        let mut from = 0u64;
        while from <= u64::from(u32::MAX) {
            let start = (from as u32).to_be_bytes();
            let Some(entry) = entries.range::<&[u8]>(&start[..]..)?.next() else {
                break;
            };
            let (key, _) = entry?;
            let id_bytes: [u8; 4] = key.value()[..4].try_into()?;
            let id = u32::from_be_bytes(id_bytes);
            if !in_use.contains(&id) {
                orphaned.push(id);
            }
            from = u64::from(id) + 1;
        }
        Ok(orphaned)
    }

    /// How many entries the index with this id has.
    #[cfg(test)]
    pub fn count_index_entries(&self, index_id: u32) -> anyhow::Result<usize> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(INDEX_ENTRIES)?;
        let start = index_id.to_be_bytes();
        let end = (index_id + 1).to_be_bytes();
        Ok(entries.range::<&[u8]>(&start[..]..&end[..])?.count())
    }

    /// A record for a table that does not exist yet: fresh table number and index ids.
    /// The committer refuses it if another transaction created the table first.
    pub fn new_table(&self, name: &str, declared: &[(String, Vec<String>)]) -> TableRecord {
        let next_index = || self.next_index_id.fetch_add(1, Ordering::SeqCst);
        let by_id_index = next_index();
        let mut indexes = vec![IndexDefinition {
            id: next_index(),
            name: BY_CREATION_TIME.to_string(),
            fields: Vec::new(),
            building: false,
        }];
        for (index_name, fields) in declared {
            indexes.push(IndexDefinition {
                id: next_index(),
                name: index_name.clone(),
                fields: fields.clone(),
                building: false,
            });
        }
        TableRecord {
            name: name.to_string(),
            number: self.next_table_number.fetch_add(1, Ordering::SeqCst),
            by_id_index,
            indexes,
            last_creation_time: 0.0,
            validator: None,
            pending_validator: None,
        }
    }

    /// A fresh index id (for an index added to an existing table).
    pub fn new_index_id(&self) -> u32 {
        self.next_index_id.fetch_add(1, Ordering::SeqCst)
    }

    pub fn begin_write(&self) -> anyhow::Result<WriteTransaction> {
        Ok(self.db.begin_write()?)
    }

    /// Persists the counters new tables and indexes draw from (inside a commit).
    pub fn save_counters(&self, txn: &WriteTransaction) -> anyhow::Result<()> {
        let mut counters = txn.open_table(COUNTERS)?;
        counters.insert(
            NEXT_TABLE_NUMBER_COUNTER,
            u64::from(self.next_table_number.load(Ordering::SeqCst)),
        )?;
        counters.insert(
            NEXT_INDEX_ID_COUNTER,
            u64::from(self.next_index_id.load(Ordering::SeqCst)),
        )?;
        Ok(())
    }
}

/// One read transaction of redb, with the commit timestamp it sees and the tables then.
/// Clones share the read transaction: the queries of one sync round all read one snapshot.
#[derive(Clone)]
pub struct Snapshot {
    txn: Arc<ReadTransaction>,
    pub ts: u64,
    tables: Catalog,
}

/// Scan direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Snapshot {
    pub fn table(&self, name: &str) -> Option<&TableRecord> {
        self.tables.get(name)
    }

    pub fn table_by_number(&self, number: u32) -> Option<&TableRecord> {
        self.tables.values().find(|table| table.number == number)
    }

    pub fn tables(&self) -> impl Iterator<Item = &TableRecord> {
        self.tables.values()
    }

    pub fn get(&self, id: &DocumentId) -> anyhow::Result<Option<Document>> {
        let documents = self.txn.open_table(DOCUMENTS)?;
        let Some(text) = documents.get(document_key(id).as_slice())? else {
            return Ok(None);
        };
        Ok(Some(decode_document(text.value())?))
    }

    /// Up to `limit` documents of table `table_number` (or fewer, once they add up to
    /// [`MAX_STEP_BYTES`]) whose keys come after `after`, in key order, with
    /// their keys. Empty once the table is covered.
    pub fn documents_after(
        &self,
        table_number: u32,
        after: Option<&[u8]>,
        limit: usize,
    ) -> anyhow::Result<Vec<(Vec<u8>, Document)>> {
        let documents = self.txn.open_table(DOCUMENTS)?;
        let (start, end) = table_document_bounds(table_number);
        let start = match after {
            Some(after) => key_after(after),
            None => start.to_vec(),
        };
        let (mut found, mut bytes) = (Vec::new(), 0);
        for entry in documents.range::<&[u8]>(start.as_slice()..end.as_slice())? {
            let (key, text) = entry?;
            bytes += text.value().len();
            found.push((key.value().to_vec(), decode_document(text.value())?));
            if found.len() == limit || bytes >= MAX_STEP_BYTES {
                break;
            }
        }
        Ok(found)
    }

    /// Walks the entries of `range` in `order`. For each, `visit` gets the index key, the
    /// key of the document it points at, and a way to load (decode) that document, and
    /// says whether to go on. Nothing is decoded unless `visit` loads it, so a caller can
    /// skip entries, and stop, without paying for documents it does not use.
    pub fn walk<E: From<anyhow::Error>>(
        &self,
        range: &KeyRange,
        order: Order,
        mut visit: impl FnMut(&[u8], &[u8], &dyn Fn() -> anyhow::Result<Document>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let entries = self
            .txn
            .open_table(INDEX_ENTRIES)
            .map_err(anyhow::Error::from)?;
        let documents = self
            .txn
            .open_table(DOCUMENTS)
            .map_err(anyhow::Error::from)?;
        let iter = entries
            .range::<&[u8]>(range.bounds())
            .map_err(anyhow::Error::from)?;
        let entries: Box<dyn Iterator<Item = _>> = match order {
            Order::Asc => Box::new(iter),
            Order::Desc => Box::new(iter.rev()),
        };
        for entry in entries {
            let (key, document_key) = entry.map_err(anyhow::Error::from)?;
            let document_key = document_key.value();
            let load = || -> anyhow::Result<Document> {
                let text = documents
                    .get(document_key)?
                    .context("an index entry points at a missing document")?;
                decode_document(text.value())
            };
            if !visit(key.value(), document_key, &load)? {
                break;
            }
        }
        Ok(())
    }
}

/// Applies one transaction's writes inside the committer's write transaction: documents,
/// index entries, and new or updated table records. Returns every index key touched (old
/// and new), for the write log.
pub fn apply_writes(
    txn: &WriteTransaction,
    tables: &mut BTreeMap<u32, TableRecord>,
    new_tables: impl IntoIterator<Item = u32>,
    writes: &BTreeMap<DocumentId, Option<Document>>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut documents = txn.open_table(DOCUMENTS)?;
    let mut entries = txn.open_table(INDEX_ENTRIES)?;
    let mut touched = Vec::new();
    let mut changed_tables: std::collections::BTreeSet<u32> = new_tables.into_iter().collect();
    for (id, new) in writes {
        changed_tables.insert(id.table_number);
        let table = tables
            .get_mut(&id.table_number)
            .with_context(|| format!("write to unknown table number {}", id.table_number))?;
        let key = document_key(id);
        let old = match documents.get(key.as_slice())? {
            Some(text) => Some(decode_document(text.value())?),
            None => None,
        };
        if let Some(old) = &old {
            for index_key in table.keys_for(old) {
                entries.remove(index_key.as_slice())?;
                touched.push(index_key);
            }
        }
        match new {
            Some(document) => {
                for index_key in table.keys_for(document) {
                    if !table.by_id_key_is(&index_key) {
                        entries.insert(index_key.as_slice(), key.as_slice())?;
                    }
                    touched.push(index_key);
                }
                documents.insert(
                    key.as_slice(),
                    document.to_value().to_convex_json_string().as_str(),
                )?;
                if document.creation_time > table.last_creation_time {
                    table.last_creation_time = document.creation_time;
                }
            }
            None => {
                documents.remove(key.as_slice())?;
            }
        }
    }
    let mut table_records = txn.open_table(TABLES)?;
    for number in changed_tables {
        let table = &tables[&number];
        table_records.insert(table.name.as_str(), serde_json::to_string(table)?.as_str())?;
    }
    Ok(touched)
}

/// Changes a table's indexes inside a commit. The entries of indexes `new` no longer has
/// are left for [`drop_index_chunk`] (a deploy drops them after its functions are live),
/// and indexes `new` adds as building are left for [`backfill_chunk`]; an added index
/// that is not building (a deploy whose background build was lost to a concurrent one)
/// is backfilled here, in the commit.
pub fn alter_indexes(
    txn: &WriteTransaction,
    old: &TableRecord,
    new: &TableRecord,
) -> anyhow::Result<()> {
    let added: Vec<&IndexDefinition> = new
        .indexes
        .iter()
        .filter(|index| !index.building)
        .filter(|index| !old.indexes.iter().any(|existing| existing.id == index.id))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let mut entries = txn.open_table(INDEX_ENTRIES)?;
    let documents = txn.open_table(DOCUMENTS)?;
    let (start, end) = table_document_bounds(new.number);
    for entry in documents.range::<&[u8]>(&start[..]..&end[..])? {
        let (key, text) = entry?;
        let document = decode_document(text.value())?;
        for index in &added {
            entries.insert(index.key_for(&document).as_slice(), key.value())?;
        }
    }
    Ok(())
}

/// The most document bytes one background step (an index backfill, a validator check)
/// decodes; it also stops at its count.
const MAX_STEP_BYTES: usize = 4 << 20;

/// Adds the entries of the building index `index` for up to `limit` documents of `table`
/// whose keys come after `after`, read as they are now (a document written since the
/// index was added already has its entry: inserting it again changes nothing). Returns
/// the last document key done, or `None` once the table is covered.
pub fn backfill_chunk(
    txn: &WriteTransaction,
    table: &TableRecord,
    index: &IndexDefinition,
    after: Option<&[u8]>,
    limit: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    let mut entries = txn.open_table(INDEX_ENTRIES)?;
    let documents = txn.open_table(DOCUMENTS)?;
    let (start, end) = table_document_bounds(table.number);
    let start = match after {
        Some(after) => key_after(after),
        None => start.to_vec(),
    };
    let (mut done, mut bytes) = (0, 0);
    for entry in documents.range::<&[u8]>(start.as_slice()..end.as_slice())? {
        let (key, text) = entry?;
        let document = decode_document(text.value())?;
        entries.insert(index.key_for(&document).as_slice(), key.value())?;
        done += 1;
        bytes += text.value().len();
        // Large documents end a step early: its cost is what it decodes.
        if done == limit || bytes >= MAX_STEP_BYTES {
            return Ok(Some(key.value().to_vec()));
        }
    }
    Ok(None)
}

/// The smallest key after `key`.
fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Removes up to `limit` entries of the index with id `index_id`; returns whether any
/// remain.
pub fn drop_index_chunk(
    txn: &WriteTransaction,
    index_id: u32,
    limit: usize,
) -> anyhow::Result<bool> {
    let mut entries = txn.open_table(INDEX_ENTRIES)?;
    let prefix = index_id.to_be_bytes();
    let end = (u64::from(index_id) + 1).to_be_bytes();
    let end: &[u8] = &end[4..];
    let keys: Vec<Vec<u8>> = entries
        .range::<&[u8]>(&prefix[..]..end)?
        .take(limit + 1)
        .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
        .collect::<Result<_, _>>()?;
    for key in keys.iter().take(limit) {
        entries.remove(key.as_slice())?;
    }
    Ok(keys.len() > limit)
}

/// The first key of a table's documents and the first key after them.
fn table_document_bounds(number: u32) -> ([u8; 4], [u8; 4]) {
    // Table numbers are far below u32::MAX, so the next number bounds the range.
    (number.to_be_bytes(), (number + 1).to_be_bytes())
}

/// Sets the commit timestamp inside a commit.
pub fn save_commit_ts(txn: &WriteTransaction, ts: u64) -> anyhow::Result<()> {
    txn.open_table(COUNTERS)?.insert(COMMIT_TS_COUNTER, ts)?;
    Ok(())
}

impl TableRecord {
    /// `by_id` is virtual: its keys are touched and read, never stored.
    fn by_id_key_is(&self, key: &[u8]) -> bool {
        key.starts_with(&self.by_id_index.to_be_bytes())
    }
}

fn decode_document(text: &str) -> anyhow::Result<Document> {
    let Value::Object(mut fields) =
        Value::from_convex_json_str(text).context("corrupt document")?
    else {
        anyhow::bail!("corrupt document: not an object");
    };
    let id = match fields.remove(ID_FIELD) {
        Some(Value::String(id)) => DocumentId::decode(&id).context("corrupt document id")?,
        _ => anyhow::bail!("corrupt document: no _id"),
    };
    let creation_time = match fields.remove(CREATION_TIME_FIELD) {
        Some(Value::Float64(time)) => time,
        _ => anyhow::bail!("corrupt document: no _creationTime"),
    };
    Ok(Document {
        id,
        creation_time,
        fields,
    })
}
