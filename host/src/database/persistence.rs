//! The document store's layout in the persistence interface (`kv`): documents, index
//! entries, table records and counters; read snapshots; and the one function that applies
//! a committed write set. Only the committer writes these spaces.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use std::ops::Bound;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::documents::Document;
use super::id::DocumentId;
use super::indexes::{BY_CREATION_TIME, IndexDefinition, by_id_key};
pub use super::kv::Order;
use super::kv::{KvRead, KvStore, KvWrite, Op, Space};
use super::read_document::{ReadDocument, decode_document};
use super::reads::KeyRange;
use super::validator::DocumentValidator;

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
    kv: Arc<dyn KvStore>,
    next_table_number: AtomicU32,
    next_index_id: AtomicU32,
    /// The last `_creationTime` handed out, in any table.
    last_creation_time: Mutex<f64>,
    /// The table records as of a commit timestamp, shared by the snapshots at it.
    catalog_cache: Mutex<Option<(u64, Catalog)>>,
}

impl Persistence {
    pub fn open(kv: Arc<dyn KvStore>) -> anyhow::Result<Self> {
        let (next_table_number, next_index_id) = {
            let view = kv.snapshot()?;
            let read = |name: &str, default: u32| -> anyhow::Result<u32> {
                Ok(view.counter(name)?.map_or(default, |value| value as u32))
            };
            (
                read(NEXT_TABLE_NUMBER_COUNTER, FIRST_TABLE_NUMBER)?,
                read(NEXT_INDEX_ID_COUNTER, FIRST_INDEX_ID)?,
            )
        };
        if kv.shared() {
            // A store copied from a redb directory (`kiln migrate`) brings its counters:
            // the sequences start after them.
            kv.set_sequence_at_least(NEXT_TABLE_NUMBER_COUNTER, u64::from(next_table_number))?;
            kv.set_sequence_at_least(NEXT_INDEX_ID_COUNTER, u64::from(next_index_id))?;
        }
        let persistence = Self {
            kv,
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

    /// The persistence interface this store keeps its data in.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// A consistent read view of the last commit.
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let view = self.kv.snapshot()?;
        let ts = view.counter(COMMIT_TS_COUNTER)?.unwrap_or(0);
        // The catalog changes only when a commit changes it: parse it once per commit.
        // The lock is never held while reading the store: over a network store, a thread
        // waiting for the lock would hold an async worker that the read itself needs.
        let cached = match &*self.catalog_cache.lock().expect("catalog cache poisoned") {
            Some((cached_ts, tables)) if *cached_ts == ts => Some(tables.clone()),
            _ => None,
        };
        let tables = match cached {
            Some(tables) => tables,
            None => {
                let mut tables = BTreeMap::new();
                for (_, record) in super::kv::all_entries(view.as_ref(), Space::Tables)? {
                    let record: TableRecord =
                        serde_json::from_slice(&record).context("corrupt table record")?;
                    tables.insert(record.name.clone(), record);
                }
                let tables = Arc::new(tables);
                let mut cache = self.catalog_cache.lock().expect("catalog cache poisoned");
                if cache.as_ref().is_none_or(|(cached_ts, _)| *cached_ts < ts) {
                    *cache = Some((ts, tables.clone()));
                }
                tables
            }
        };
        Ok(Snapshot { view, ts, tables })
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
        let mut orphaned = Vec::new();
        let mut from = 0u64;
        while from <= u64::from(u32::MAX) {
            let start = (from as u32).to_be_bytes();
            let mut first = None;
            snapshot.view.scan(
                Space::IndexEntries,
                (Bound::Included(&start[..]), Bound::Unbounded),
                Order::Asc,
                &mut |key, _| {
                    first = Some(key.to_vec());
                    Ok(false)
                },
            )?;
            let Some(key) = first else {
                break;
            };
            let id_bytes: [u8; 4] = key[..4].try_into()?;
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
        let view = self.kv.snapshot()?;
        let start = index_id.to_be_bytes();
        let end = (index_id + 1).to_be_bytes();
        let mut count = 0;
        view.scan(
            Space::IndexEntries,
            (Bound::Included(&start[..]), Bound::Excluded(&end[..])),
            Order::Asc,
            &mut |_, _| {
                count += 1;
                Ok(true)
            },
        )?;
        Ok(count)
    }

    /// A record for a table that does not exist yet: fresh table number and index ids.
    /// The committer refuses it if another transaction created the table first.
    pub fn new_table(
        &self,
        name: &str,
        declared: &[(String, Vec<String>)],
    ) -> anyhow::Result<TableRecord> {
        let by_id_index = self.new_index_id()?;
        let mut indexes = vec![IndexDefinition {
            id: self.new_index_id()?,
            name: BY_CREATION_TIME.to_string(),
            fields: Vec::new(),
            building: false,
        }];
        for (index_name, fields) in declared {
            indexes.push(IndexDefinition {
                id: self.new_index_id()?,
                name: index_name.clone(),
                fields: fields.clone(),
                building: false,
            });
        }
        let number = if self.kv.shared() {
            self.next_shared(NEXT_TABLE_NUMBER_COUNTER, FIRST_TABLE_NUMBER)?
        } else {
            self.next_table_number.fetch_add(1, Ordering::SeqCst)
        };
        Ok(TableRecord {
            name: name.to_string(),
            number,
            by_id_index,
            indexes,
            last_creation_time: 0.0,
            validator: None,
            pending_validator: None,
        })
    }

    /// A fresh index id (for an index added to an existing table).
    pub fn new_index_id(&self) -> anyhow::Result<u32> {
        if self.kv.shared() {
            return self.next_shared(NEXT_INDEX_ID_COUNTER, FIRST_INDEX_ID);
        }
        Ok(self.next_index_id.fetch_add(1, Ordering::SeqCst))
    }

    /// The next id of a shared store's sequence: hosts draw from it, so none hands out an
    /// id another has.
    fn next_shared(&self, counter: &str, first: u32) -> anyhow::Result<u32> {
        let next = self.kv.next_in_sequence(counter, u64::from(first))?;
        u32::try_from(next).with_context(|| format!("the sequence {counter} is exhausted"))
    }

    pub fn begin_write(&self) -> anyhow::Result<Box<dyn KvWrite + '_>> {
        self.kv.begin_write()
    }

    /// Persists the counters new tables and indexes draw from (inside a commit; a shared
    /// store's sequences keep themselves).
    pub fn save_counters(&self, txn: &mut dyn KvWrite) -> anyhow::Result<()> {
        if self.kv.shared() {
            return Ok(());
        }
        txn.set_counter(
            NEXT_TABLE_NUMBER_COUNTER,
            u64::from(self.next_table_number.load(Ordering::SeqCst)),
        )?;
        txn.set_counter(
            NEXT_INDEX_ID_COUNTER,
            u64::from(self.next_index_id.load(Ordering::SeqCst)),
        )
    }
}

/// One read snapshot of the store, with the commit timestamp it sees and the tables then.
/// Clones share the snapshot: the queries of one sync round all read one commit.
#[derive(Clone)]
pub struct Snapshot {
    view: Arc<dyn KvRead + Send + Sync>,
    pub ts: u64,
    tables: Catalog,
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

    /// Runs `read` on the snapshot's view of the store (for layouts other than the
    /// document store's, such as the commit log).
    pub fn with_view<T>(&self, read: impl FnOnce(&dyn KvRead) -> T) -> T {
        read(self.view.as_ref())
    }

    pub fn get(&self, id: &DocumentId) -> anyhow::Result<Option<Document>> {
        load_document(self.view.as_ref(), &document_key(id))
    }

    /// [`get`](Self::get), the document left as its stored text.
    pub fn get_stored(&self, id: &DocumentId) -> anyhow::Result<Option<ReadDocument>> {
        load_stored(self.view.as_ref(), &document_key(id))
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
        let (mut found, mut bytes) = (Vec::new(), 0);
        self.view.scan(
            Space::Documents,
            table_documents_after(table_number, after).as_range(),
            Order::Asc,
            &mut |key, text| {
                bytes += text.len();
                found.push((key.to_vec(), decode_document(text)?));
                Ok(found.len() < limit && bytes < MAX_STEP_BYTES)
            },
        )?;
        Ok(found)
    }

    /// Walks the entries of `range` in `order`. For each, `visit` gets the index key, the
    /// key of the document it points at, and a way to load that document (its text, not
    /// decoded), and says whether to go on. Nothing is loaded unless `visit` asks, so a
    /// caller can skip entries, and stop, without paying for documents it does not use.
    pub fn walk<E: From<anyhow::Error>>(
        &self,
        range: &KeyRange,
        order: Order,
        mut visit: impl FnMut(
            &[u8],
            &[u8],
            &dyn Fn() -> anyhow::Result<ReadDocument>,
        ) -> Result<bool, E>,
    ) -> Result<(), E> {
        // The visitor's own error stops the scan and is handed back as it was.
        let mut visitor_error = None;
        let view = self.view.as_ref();
        view.scan_index(range.bounds(), order, &mut |key, document_key, fetched| {
            let load = || -> anyhow::Result<ReadDocument> {
                match fetched {
                    Some(text) => ReadDocument::stored(text),
                    None => load_stored(view, document_key)?
                        .context("an index entry points at a missing document"),
                }
            };
            match visit(key, document_key, &load) {
                Ok(go_on) => Ok(go_on),
                Err(error) => {
                    visitor_error = Some(error);
                    Ok(false)
                }
            }
        })?;
        match visitor_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Applies one transaction's writes inside the committer's write transaction: documents
/// and index entries. The tables it writes to, and `new_tables`, go into `changed_tables`:
/// their records (`tables`, updated here) are for [`save_table_records`] to write, once
/// per write transaction however many commits it holds. Returns every index key touched
/// (old and new), for the write log.
pub fn apply_writes(
    txn: &mut dyn KvWrite,
    tables: &mut BTreeMap<u32, TableRecord>,
    new_tables: impl IntoIterator<Item = u32>,
    writes: &BTreeMap<DocumentId, Option<Document>>,
    changed_tables: &mut BTreeSet<u32>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut touched = Vec::new();
    changed_tables.extend(new_tables);
    // What the writes change, gathered and then applied as one batch: the keys and texts
    // the batch's ops borrow.
    let mut removed_keys: Vec<Vec<u8>> = Vec::new();
    let mut added_entries: Vec<(Vec<u8>, [u8; 20])> = Vec::new();
    let mut documents: Vec<([u8; 20], Option<String>)> = Vec::new();
    for (id, new) in writes {
        changed_tables.insert(id.table_number);
        let table = tables
            .get_mut(&id.table_number)
            .with_context(|| format!("write to unknown table number {}", id.table_number))?;
        let key = document_key(id);
        if let Some(old) = load_document(&*txn, &key)? {
            for index_key in table.keys_for(&old) {
                if !table.by_id_key_is(&index_key) {
                    removed_keys.push(index_key.clone());
                }
                touched.push(index_key);
            }
        }
        match new {
            Some(document) => {
                for index_key in table.keys_for(document) {
                    if !table.by_id_key_is(&index_key) {
                        added_entries.push((index_key.clone(), key));
                    }
                    touched.push(index_key);
                }
                documents.push((key, Some(document.to_convex_json_string())));
                if document.creation_time > table.last_creation_time {
                    table.last_creation_time = document.creation_time;
                }
            }
            None => documents.push((key, None)),
        }
    }
    let mut ops = Vec::with_capacity(removed_keys.len() + added_entries.len() + documents.len());
    // Removals first: a write that keeps an index key removes and re-adds it.
    ops.extend(
        removed_keys
            .iter()
            .map(|key| Op::Delete(Space::IndexEntries, key)),
    );
    ops.extend(
        added_entries
            .iter()
            .map(|(key, document)| Op::Put(Space::IndexEntries, key, document)),
    );
    ops.extend(documents.iter().map(|(key, text)| match text {
        Some(text) => Op::Put(Space::Documents, key, text.as_bytes()),
        None => Op::Delete(Space::Documents, key),
    }));
    txn.apply(&ops)?;
    Ok(touched)
}

/// Writes the records of the tables `changed` names (new ones, ones whose indexes changed,
/// and ones written to: `last_creation_time` moves) inside a commit.
pub fn save_table_records(
    txn: &mut dyn KvWrite,
    tables: &BTreeMap<u32, TableRecord>,
    changed: &BTreeSet<u32>,
) -> anyhow::Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let records: Vec<(&str, String)> = changed
        .iter()
        .map(|number| {
            let table = tables
                .get(number)
                .with_context(|| format!("no record for changed table number {number}"))?;
            Ok((table.name.as_str(), serde_json::to_string(table)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let ops: Vec<Op<'_>> = records
        .iter()
        .map(|(name, json)| Op::Put(Space::Tables, name.as_bytes(), json.as_bytes()))
        .collect();
    txn.apply(&ops)
}

/// Changes a table's indexes inside a commit. The entries of indexes `new` no longer has
/// are left for [`drop_index_chunk`] (a deploy drops them after its functions are live),
/// and indexes `new` adds as building are left for [`backfill_chunk`]; an added index
/// that is not building (a deploy whose background build was lost to a concurrent one)
/// is backfilled here, in the commit.
pub fn alter_indexes(
    txn: &mut dyn KvWrite,
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
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    txn.scan(
        Space::Documents,
        table_documents_after(new.number, None).as_range(),
        Order::Asc,
        &mut |key, text| {
            let document = decode_document(text)?;
            for index in &added {
                entries.push((index.key_for(&document), key.to_vec()));
            }
            Ok(true)
        },
    )?;
    put_entries(txn, &entries)
}

fn put_entries(txn: &mut dyn KvWrite, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
    let ops: Vec<Op<'_>> = entries
        .iter()
        .map(|(key, document)| Op::Put(Space::IndexEntries, key, document))
        .collect();
    txn.apply(&ops)
}

/// The most document bytes one background step (an index backfill, a validator check)
/// decodes; it also stops at its count.
const MAX_STEP_BYTES: usize = 4 << 20;

/// Adds the entries of the building index `index` for up to `limit` documents of `table`
/// whose keys come after `after`, read as they are now (a document written since the
/// index was added already has its entry: inserting it again changes nothing). Returns
/// the last document key done, or `None` once the table is covered.
pub fn backfill_chunk(
    txn: &mut dyn KvWrite,
    table: &TableRecord,
    index: &IndexDefinition,
    after: Option<&[u8]>,
    limit: usize,
) -> anyhow::Result<Option<Vec<u8>>> {
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let (mut bytes, mut stopped_early) = (0, false);
    txn.scan(
        Space::Documents,
        table_documents_after(table.number, after).as_range(),
        Order::Asc,
        &mut |key, text| {
            let document = decode_document(text)?;
            entries.push((index.key_for(&document), key.to_vec()));
            bytes += text.len();
            // Large documents end a step early: its cost is what it decodes.
            stopped_early = entries.len() == limit || bytes >= MAX_STEP_BYTES;
            Ok(!stopped_early)
        },
    )?;
    put_entries(txn, &entries)?;
    Ok(match entries.pop() {
        Some((_, last)) if stopped_early => Some(last),
        _ => None,
    })
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
    txn: &mut dyn KvWrite,
    index_id: u32,
    limit: usize,
) -> anyhow::Result<bool> {
    let prefix = index_id.to_be_bytes();
    let end = (u64::from(index_id) + 1).to_be_bytes();
    let end: &[u8] = &end[4..];
    let mut keys: Vec<Vec<u8>> = Vec::new();
    txn.scan(
        Space::IndexEntries,
        (Bound::Included(&prefix[..]), Bound::Excluded(end)),
        Order::Asc,
        &mut |key, _| {
            keys.push(key.to_vec());
            Ok(keys.len() <= limit)
        },
    )?;
    let ops: Vec<Op<'_>> = keys
        .iter()
        .take(limit)
        .map(|key| Op::Delete(Space::IndexEntries, key))
        .collect();
    txn.apply(&ops)?;
    Ok(keys.len() > limit)
}

/// The keys of a table's documents after `after` (all of them without it): from the
/// table number, up to the next table number.
struct DocumentRange {
    start: Vec<u8>,
    end: [u8; 4],
}

impl DocumentRange {
    fn as_range(&self) -> super::kv::KeyRange<'_> {
        (
            Bound::Included(self.start.as_slice()),
            Bound::Excluded(&self.end[..]),
        )
    }
}

fn table_documents_after(number: u32, after: Option<&[u8]>) -> DocumentRange {
    // Table numbers are far below u32::MAX, so the next number bounds the range.
    DocumentRange {
        start: match after {
            Some(after) => key_after(after),
            None => number.to_be_bytes().to_vec(),
        },
        end: (number + 1).to_be_bytes(),
    }
}

/// The timestamp of the last commit, as `read` sees it.
pub fn stored_commit_ts(read: &dyn KvRead) -> anyhow::Result<u64> {
    Ok(read.counter(COMMIT_TS_COUNTER)?.unwrap_or(0))
}

/// Every table's record, by number, as `read` sees them.
pub fn load_tables(read: &dyn KvRead) -> anyhow::Result<BTreeMap<u32, TableRecord>> {
    let mut tables = BTreeMap::new();
    for (_, record) in super::kv::all_entries(read, Space::Tables)? {
        let record: TableRecord =
            serde_json::from_slice(&record).context("corrupt table record")?;
        tables.insert(record.number, record);
    }
    Ok(tables)
}

/// Sets the commit timestamp inside a commit.
pub fn save_commit_ts(txn: &mut dyn KvWrite, ts: u64) -> anyhow::Result<()> {
    txn.set_counter(COMMIT_TS_COUNTER, ts)
}

impl TableRecord {
    /// `by_id` is virtual: its keys are touched and read, never stored.
    fn by_id_key_is(&self, key: &[u8]) -> bool {
        key.starts_with(&self.by_id_index.to_be_bytes())
    }
}

/// The document stored under `key`, decoded.
fn load_stored(read: &dyn KvRead, key: &[u8]) -> anyhow::Result<Option<ReadDocument>> {
    let mut document = None;
    read.get_with(Space::Documents, key, &mut |text| {
        document = Some(ReadDocument::stored(text)?);
        Ok(())
    })?;
    Ok(document)
}

fn load_document(read: &dyn KvRead, key: &[u8]) -> anyhow::Result<Option<Document>> {
    let mut document = None;
    read.get_with(Space::Documents, key, &mut |text| {
        document = Some(decode_document(text)?);
        Ok(())
    })?;
    Ok(document)
}
