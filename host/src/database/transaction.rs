//! A transaction: reads at one snapshot, buffered writes it can read back (through index
//! ranges too), the read set it must be validated against, and its usage against the
//! per-transaction limits. Queries get read-only transactions; mutations writable ones.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kiln_values::{Value, ValueLimits};

use super::documents::{Document, DocumentError, check_user_fields};
use super::id::DocumentId;
use super::indexes::{BY_ID, IndexDefinition, IndexRange, RangeError, by_id_key};
use super::persistence::{
    Order, PendingValidator, Persistence, Snapshot, TableRecord, document_key,
};
use super::read_document::ReadDocument;
use super::reads::{KeyRange, MissingTable, ReadSet};
use super::system_tables::{self, is_system_table};
use super::validator::DocumentValidator;

/// Per-transaction limits (DESIGN.md section 1).
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionLimits {
    pub max_documents_read: usize,
    pub max_bytes_read: usize,
    pub max_documents_written: usize,
    pub max_bytes_written: usize,
    pub max_document_bytes: usize,
    /// Index ranges one transaction may record in its read set (each `get`, and each
    /// scan, records one; the pages of one scan count once).
    pub max_read_ranges: usize,
    /// Bytes of index keys those ranges hold (a range over an 8 MiB value holds two
    /// 8 MiB bounds until the commit is checked).
    pub max_read_set_bytes: usize,
    pub value_limits: ValueLimits,
}

impl Default for TransactionLimits {
    fn default() -> Self {
        Self {
            max_documents_read: 16_384,
            max_bytes_read: 8 << 20,
            max_documents_written: 8_192,
            max_bytes_written: 8 << 20,
            max_document_bytes: 1 << 20,
            max_read_ranges: 32_768,
            max_read_set_bytes: 16 << 20,
            value_limits: ValueLimits::default(),
        }
    }
}

/// Why a database call failed. Every message names the rule, the limit or the input.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    InvalidDocument(#[from] DocumentError),
    #[error("{0}")]
    UnknownIndex(String),
    #[error(transparent)]
    InvalidRange(#[from] RangeError),
    #[error("{0}")]
    InvalidCursor(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("internal database error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// Writes outside the document store that must commit in the same write transaction as a
/// mutation, or not at all (a deploy stores its deployment record with its schema change).
/// Called once per commit attempt, inside the committer's write transaction.
pub type AlsoWrite = Arc<dyn Fn(&mut dyn super::kv::KvWrite) -> anyhow::Result<()> + Send + Sync>;

/// What a finished transaction hands the committer.
pub struct PendingCommit {
    pub snapshot_ts: u64,
    pub reads: ReadSet,
    /// Document id → its new version, or `None` for a delete.
    pub writes: BTreeMap<DocumentId, Option<Document>>,
    /// Tables this transaction created by inserting into them.
    pub new_tables: BTreeMap<String, TableRecord>,
    /// Existing tables whose indexes this transaction changed (schema deploys).
    pub altered_tables: BTreeMap<String, TableRecord>,
    pub also_write: Option<AlsoWrite>,
    /// How many pending scheduled jobs this commit adds (negative: removes).
    pub pending_jobs_delta: i64,
}

impl std::fmt::Debug for PendingCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCommit")
            .field("snapshot_ts", &self.snapshot_ts)
            .field("reads", &self.reads)
            .field("writes", &self.writes)
            .field("new_tables", &self.new_tables)
            .field("altered_tables", &self.altered_tables)
            .field("also_write", &self.also_write.is_some())
            .finish()
    }
}

/// What step 1 of a deploy ([`Transaction::prepare_table`]) left for the background.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Prepared {
    /// (table number, index id) of each index to backfill.
    pub building: Vec<(u32, u32)>,
    /// (table number, pending validator id) of each validator to check the stored
    /// documents against.
    pub validating: Vec<(u32, u32)>,
}

impl Prepared {
    pub fn is_empty(&self) -> bool {
        self.building.is_empty() && self.validating.is_empty()
    }

    pub fn extend(&mut self, other: Prepared) {
        self.building.extend(other.building);
        self.validating.extend(other.validating);
    }
}

/// What [`Transaction::declare_table`] changed.
#[derive(Debug, Default, PartialEq)]
pub struct TableChange {
    pub created: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// The ids of the removed indexes (building ones included), whose entries are dropped
    /// later.
    pub removed_ids: Vec<u32>,
    pub validator_changed: bool,
}

/// The state a nested call's failure rolls a transaction back to
/// ([`Transaction::savepoint`]).
pub struct Savepoint {
    writes: BTreeMap<DocumentId, Option<Document>>,
    new_tables: BTreeMap<String, TableRecord>,
    altered_tables: BTreeMap<String, TableRecord>,
    documents_written: usize,
    bytes_written: usize,
    jobs: JobCounts,
    files_deleted: usize,
}

/// The scheduled jobs a transaction changed: what the scheduler's limits count.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct JobCounts {
    /// Jobs scheduled in this transaction.
    pub scheduled: usize,
    /// Change in the number of pending jobs (scheduled, minus started, done or canceled).
    pub pending_delta: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    documents_read: usize,
    bytes_read: usize,
    documents_written: usize,
    bytes_written: usize,
}

pub struct Transaction {
    snapshot: Snapshot,
    persistence: Arc<Persistence>,
    writable: bool,
    limits: TransactionLimits,
    reads: ReadSet,
    writes: BTreeMap<DocumentId, Option<Document>>,
    new_tables: BTreeMap<String, TableRecord>,
    altered_tables: BTreeMap<String, TableRecord>,
    usage: Usage,
    /// The first per-transaction limit this transaction exceeded. Once set, the
    /// transaction can never commit, even if the function caught the error and returned.
    limit_exceeded: Option<String>,
    also_write: Option<AlsoWrite>,
    jobs: JobCounts,
    /// The contents (SHA-256) of stored files whose records this transaction deleted:
    /// their bytes go once it has committed.
    files_deleted: Vec<[u8; 32]>,
}

impl Transaction {
    pub fn new(
        persistence: Arc<Persistence>,
        writable: bool,
        limits: TransactionLimits,
    ) -> anyhow::Result<Self> {
        let snapshot = persistence.snapshot()?;
        let mut transaction = Self::at_snapshot(persistence, snapshot, limits);
        transaction.writable = writable;
        Ok(transaction)
    }

    /// A read-only transaction on `snapshot`, which other transactions may share: the
    /// queries of one subscription round all read the same commit.
    pub fn at_snapshot(
        persistence: Arc<Persistence>,
        snapshot: Snapshot,
        limits: TransactionLimits,
    ) -> Self {
        Self {
            snapshot,
            persistence,
            writable: false,
            limits,
            reads: ReadSet::default(),
            writes: BTreeMap::new(),
            new_tables: BTreeMap::new(),
            altered_tables: BTreeMap::new(),
            usage: Usage::default(),
            limit_exceeded: None,
            also_write: None,
            jobs: JobCounts::default(),
            files_deleted: Vec::new(),
        }
    }

    /// What a finished query read, sealed, and the commit it read at: what its
    /// subscription watches.
    pub fn into_reads(mut self) -> (u64, ReadSet) {
        self.reads.seal();
        (self.snapshot.ts, self.reads)
    }

    pub fn snapshot_ts(&self) -> u64 {
        self.snapshot.ts
    }

    /// The table as this transaction sees it (including one it created).
    fn table(&self, name: &str) -> Option<&TableRecord> {
        self.altered_tables
            .get(name)
            .or_else(|| self.new_tables.get(name))
            .or_else(|| self.snapshot.table(name))
    }

    fn table_by_number(&self, number: u32) -> Option<&TableRecord> {
        self.altered_tables
            .values()
            .chain(self.new_tables.values())
            .find(|table| table.number == number)
            .or_else(|| self.snapshot.table_by_number(number))
    }

    /// The record of a table as this transaction sees it (for tests).
    #[cfg(test)]
    pub(crate) fn table_record(&self, name: &str) -> Option<TableRecord> {
        self.table(name).cloned()
    }

    /// The names of every table this transaction sees, in order.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .snapshot
            .tables()
            .map(|table| table.name.clone())
            .chain(self.new_tables.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Makes `table_name` exist with exactly the declared indexes (name → fields): creates
    /// it, or adds, rebuilds and drops indexes. Indexes whose fields did not change keep
    /// their entries; new ones are backfilled at commit.
    pub fn declare_table(
        &mut self,
        table_name: &str,
        declared: &[(String, Vec<String>)],
        validator: Option<&DocumentValidator>,
    ) -> Result<TableChange, DbError> {
        self.require_writable("declare_table")?;
        let Some(existing) = self.table(table_name).cloned() else {
            self.create_table(table_name, declared)?;
            if let Some(record) = self.new_tables.get_mut(table_name) {
                record.validator = validator.cloned();
            }
            return Ok(TableChange {
                created: true,
                added: declared.iter().map(|(name, _)| name.clone()).collect(),
                removed: Vec::new(),
                removed_ids: Vec::new(),
                validator_changed: validator.is_some(),
            });
        };
        let mut change = TableChange {
            validator_changed: existing.validator.as_ref() != validator,
            ..TableChange::default()
        };
        // A validator that step 1 of the deploy made pending was checked against the stored
        // documents in the background, and the committer checked every write since: the
        // committer refuses this commit if either found a document that does not match.
        // Any other new validator (a table created since step 1) is checked here.
        if change.validator_changed
            && let Some(validator) = validator
            && existing
                .pending_validator
                .as_ref()
                .is_none_or(|pending| &pending.validator != validator)
        {
            self.check_existing_documents(&existing, validator)?;
        }
        let mut indexes = vec![existing.indexes[0].clone()];
        let mut made_ready = false;
        for (name, fields) in declared {
            // A ready index, or one a deploy built in the background (which becomes ready
            // in this commit), of the same name and fields keeps its entries.
            let same = existing.indexes[1..]
                .iter()
                .filter(|index| &index.name == name && &index.fields == fields)
                .min_by_key(|index| index.building);
            match same {
                Some(index) => {
                    if index.building {
                        made_ready = true;
                        change.added.push(name.clone());
                    }
                    indexes.push(IndexDefinition {
                        building: false,
                        ..index.clone()
                    });
                }
                None => {
                    change.added.push(name.clone());
                    indexes.push(IndexDefinition {
                        id: self.persistence.new_index_id()?,
                        name: name.clone(),
                        fields: fields.clone(),
                        building: false,
                    });
                }
            }
        }
        for index in &existing.indexes[1..] {
            if !indexes.iter().any(|kept| kept.id == index.id) {
                if !index.building {
                    change.removed.push(index.name.clone());
                }
                change.removed_ids.push(index.id);
            }
        }
        // (`removed_ids`, not `removed`: a building index nobody declares any more, which a
        // Convex push prepared and never deployed, goes too.)
        if made_ready
            || !change.added.is_empty()
            || !change.removed_ids.is_empty()
            || change.validator_changed
            || existing.pending_validator.is_some()
        {
            let altered = TableRecord {
                indexes,
                validator: validator.cloned(),
                pending_validator: None,
                ..existing
            };
            if self.new_tables.contains_key(table_name) {
                self.new_tables.insert(table_name.to_string(), altered);
            } else {
                self.altered_tables.insert(table_name.to_string(), altered);
            }
        }
        Ok(change)
    }

    /// The first step of a deploy that changes a table that exists, so that the slow part
    /// runs in the background while mutations keep committing:
    /// * each declared index the table lacks is added as *building*: writes maintain it
    ///   from this commit on, queries cannot use it yet;
    /// * a new validator becomes *pending*: the committer checks every write against it
    ///   from this commit on (a write that does not match fails the deploy, not the write).
    ///
    /// Existing indexes and the current validator stay as they are. Returns what to backfill
    /// and what to check; [`Transaction::declare_table`] makes it all current afterwards.
    pub fn prepare_table(
        &mut self,
        table_name: &str,
        declared: &[(String, Vec<String>)],
        validator: Option<&DocumentValidator>,
    ) -> Result<Prepared, DbError> {
        self.require_writable("prepare_table")?;
        let mut prepared = Prepared::default();
        let Some(existing) = self.table(table_name).cloned() else {
            return Ok(prepared);
        };
        let indexes = self.with_declared_indexes(&existing, declared, &mut prepared.building)?;
        let pending_validator = match validator {
            Some(validator) if existing.validator.as_ref() != Some(validator) => {
                let pending = PendingValidator {
                    id: self.persistence.new_index_id()?,
                    validator: validator.clone(),
                };
                prepared.validating.push((existing.number, pending.id));
                Some(pending)
            }
            _ => None,
        };
        if indexes != existing.indexes || pending_validator != existing.pending_validator {
            let altered = TableRecord {
                indexes,
                pending_validator,
                ..existing
            };
            self.altered_tables.insert(table_name.to_string(), altered);
        }
        Ok(prepared)
    }

    /// `existing`'s indexes with each declared one it lacks added as building; the
    /// building ones declared (new, or added by an earlier step 1) go to `building`.
    fn with_declared_indexes(
        &self,
        existing: &TableRecord,
        declared: &[(String, Vec<String>)],
        building: &mut Vec<(u32, u32)>,
    ) -> anyhow::Result<Vec<IndexDefinition>> {
        let mut indexes = existing.indexes.clone();
        for (name, fields) in declared {
            match indexes[1..]
                .iter()
                .find(|index| &index.name == name && &index.fields == fields)
            {
                Some(index) if index.building => building.push((existing.number, index.id)),
                Some(_) => {}
                None => {
                    let id = self.persistence.new_index_id()?;
                    indexes.push(IndexDefinition {
                        id,
                        name: name.clone(),
                        fields: fields.clone(),
                        building: true,
                    });
                    building.push((existing.number, id));
                }
            }
        }
        Ok(indexes)
    }

    /// Step 1 for indexes only: [`Transaction::prepare_table`] without touching the
    /// validator, for a Convex CLI push, which builds its indexes before it is finished
    /// (the deploy that finishes it finds them built). Returns what to backfill.
    pub fn prepare_indexes(
        &mut self,
        table_name: &str,
        declared: &[(String, Vec<String>)],
    ) -> Result<Vec<(u32, u32)>, DbError> {
        self.require_writable("prepare_indexes")?;
        let mut building = Vec::new();
        let Some(existing) = self.table(table_name).cloned() else {
            return Ok(building);
        };
        let indexes = self.with_declared_indexes(&existing, declared, &mut building)?;
        if indexes != existing.indexes {
            let altered = TableRecord {
                indexes,
                ..existing
            };
            self.altered_tables.insert(table_name.to_string(), altered);
        }
        Ok(building)
    }

    /// Undoes step 1 ([`Transaction::prepare_table`]) of a deploy that failed: removes the
    /// building indexes among `prepared.building` from their tables, so nothing is left for
    /// writes to maintain, and the pending validators among `prepared.validating`. Returns
    /// the ids of the indexes removed; their entries are left for a drop.
    pub fn abandon_prepared(&mut self, prepared: &Prepared) -> Result<Vec<u32>, DbError> {
        self.require_writable("abandon_prepared")?;
        let mut removed = Vec::new();
        for name in self.table_names() {
            let Some(table) = self.table(&name).cloned() else {
                continue;
            };
            let abandoned = |index: &IndexDefinition| {
                index.building && prepared.building.contains(&(table.number, index.id))
            };
            let pending_abandoned = table
                .pending_validator
                .as_ref()
                .is_some_and(|pending| prepared.validating.contains(&(table.number, pending.id)));
            if !table.indexes.iter().any(abandoned) && !pending_abandoned {
                continue;
            }
            removed.extend(table.indexes.iter().filter(|i| abandoned(i)).map(|i| i.id));
            let indexes = table
                .indexes
                .iter()
                .filter(|i| !abandoned(i))
                .cloned()
                .collect();
            let pending_validator = if pending_abandoned {
                None
            } else {
                table.pending_validator.clone()
            };
            let altered = TableRecord {
                indexes,
                pending_validator,
                ..table
            };
            self.altered_tables.insert(name, altered);
        }
        Ok(removed)
    }

    /// Removes every pending validator: at startup no deploy is in progress, so they are
    /// left over from one a stop interrupted. Returns how many there were.
    pub fn clear_pending_validators(&mut self) -> Result<usize, DbError> {
        self.require_writable("clear_pending_validators")?;
        let mut cleared = 0;
        for name in self.table_names() {
            let Some(table) = self.table(&name).cloned() else {
                continue;
            };
            if table.pending_validator.is_some() {
                cleared += 1;
                let altered = TableRecord {
                    pending_validator: None,
                    ..table
                };
                self.altered_tables.insert(name, altered);
            }
        }
        Ok(cleared)
    }

    /// Refuses a validator that a stored document of `table` does not match, naming it.
    fn check_existing_documents(
        &mut self,
        table: &TableRecord,
        validator: &DocumentValidator,
    ) -> Result<(), DbError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self.scan(
                &table.name,
                super::indexes::BY_CREATION_TIME,
                &IndexRange::default(),
                Order::Asc,
                1024,
                after.as_deref(),
            )?;
            for (_, document) in &batch {
                validator
                    .check(&document.fields, &|number| self.table_name(number))
                    .map_err(|err| {
                        DbError::InvalidDocument(DocumentError::Invalid(format!(
                            "existing document {} in table {:?} does not match the new schema: {err}",
                            document.id, table.name
                        )))
                    })?;
            }
            match batch.last() {
                Some((key, _)) if batch.len() == 1024 => after = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Checks fields about to be written against the table's validator, if it has one.
    fn check_against_schema(
        &self,
        table_number: u32,
        fields: &BTreeMap<String, Value>,
    ) -> Result<(), DbError> {
        let Some(table) = self.table_by_number(table_number) else {
            return Ok(());
        };
        let Some(validator) = &table.validator else {
            return Ok(());
        };
        validator
            .check(fields, &|number| self.table_name(number))
            .map_err(|err| {
                DbError::InvalidDocument(DocumentError::Invalid(format!(
                    "document does not match the schema of table {:?}: {err}",
                    table.name
                )))
            })
    }

    /// The name of the table with this number, if it exists.
    pub fn table_name(&self, number: u32) -> Option<String> {
        self.table_by_number(number).map(|table| table.name.clone())
    }

    /// Checks a query before it runs: the index exists, the range follows it, and a
    /// continuation key belongs to it. A table that does not exist yet is fine (empty).
    pub fn check_query(
        &self,
        table_name: &str,
        index_name: &str,
        range: &IndexRange,
        after: Option<&[u8]>,
    ) -> Result<(), DbError> {
        let Some(table) = self.table(table_name) else {
            // Every table has the system indexes: a query of a table that does not exist
            // yet is checked against those, so a misspelt index is an error all the same.
            let table = TableRecord::system_only(table_name);
            let index = self.index(&table, index_name)?;
            index.key_range(range)?;
            return match after {
                None => Ok(()),
                Some(_) => Err(foreign_cursor()),
            };
        };
        let index = self.index(table, index_name)?;
        let key_range = index.key_range(range)?;
        // A cursor is the key of the last document a page read, so it lies in the range of
        // the query that made it. One that does not was made by another query (or forged):
        // following it would read outside this query's range.
        if let Some(after) = after
            && !key_range.contains(after)
        {
            return Err(foreign_cursor());
        }
        Ok(())
    }

    fn index<'t>(
        &self,
        table: &'t TableRecord,
        index_name: &str,
    ) -> Result<&'t super::indexes::IndexDefinition, DbError> {
        table.index(index_name).ok_or_else(|| {
            let declared: Vec<&str> = table.indexes.iter().map(|i| i.name.as_str()).collect();
            let hint = if index_name == BY_ID {
                " (by_id supports get, not ranges, for now)"
            } else {
                ""
            };
            DbError::UnknownIndex(format!(
                "table {:?} has no index {index_name:?}{hint}; its indexes are {declared:?}",
                table.name
            ))
        })
    }

    /// The document with `id`, or `None`. An id whose table does not exist is `None`.
    pub fn get(&mut self, id: &DocumentId) -> Result<Option<Document>, DbError> {
        self.get_read(id)?
            .map(|read| read.into_document().map_err(DbError::from))
            .transpose()
    }

    /// [`get`](Self::get), a stored document left as its text: see [`ReadDocument`].
    pub fn get_read(&mut self, id: &DocumentId) -> Result<Option<ReadDocument>, DbError> {
        let Some(table) = self.table_by_number(id.table_number) else {
            self.reads
                .record_missing_table(MissingTable::Number(id.table_number));
            self.check_read_ranges()?;
            return Ok(None);
        };
        let by_id = by_id_key(table.by_id_index, id);
        self.record_read(id.table_number, KeyRange::point(by_id))?;
        let document = match self.writes.get(id) {
            Some(written) => written.clone().map(ReadDocument::Written),
            None => self.snapshot.get_stored(id)?,
        };
        if let Some(document) = &document {
            self.count_read_bytes(document.size_bytes())?;
        }
        Ok(document)
    }

    /// Like `get`, but the document must exist.
    fn existing(&mut self, id: &DocumentId, operation: &str) -> Result<Document, DbError> {
        self.get(id)?
            .ok_or_else(|| DbError::NotFound(format!("{operation}: no document with id {id}")))
    }

    /// Creates a table with declared indexes (name → fields). Schema deploys use this;
    /// inserting into a missing table creates it with the system indexes only.
    pub fn create_table(
        &mut self,
        table_name: &str,
        indexes: &[(String, Vec<String>)],
    ) -> Result<(), DbError> {
        self.require_writable("create_table")?;
        check_table_name(table_name)?;
        if self.table(table_name).is_some() {
            return Err(DbError::InvalidDocument(DocumentError::Invalid(format!(
                "table {table_name:?} already exists"
            ))));
        }
        let record = self.persistence.new_table(table_name, indexes)?;
        self.new_tables.insert(table_name.to_string(), record);
        Ok(())
    }

    pub fn insert(&mut self, table_name: &str, fields: Value) -> Result<DocumentId, DbError> {
        self.require_writable("insert")?;
        check_table_name(table_name)?;
        let fields = self.user_fields(fields)?;
        self.insert_fields(table_name, fields, &[])
    }

    /// Inserts checked `fields` into `table_name`, creating the table with `declared`
    /// indexes if it does not exist (then it has no schema to check against).
    fn insert_fields(
        &mut self,
        table_name: &str,
        fields: BTreeMap<String, Value>,
        declared: &[(String, Vec<String>)],
    ) -> Result<DocumentId, DbError> {
        // A table the insert creates exists only once the write is in.
        let (table_number, created) = match self.table(table_name) {
            Some(table) => (table.number, None),
            None => {
                let record = self.persistence.new_table(table_name, declared)?;
                (record.number, Some(record))
            }
        };
        if created.is_none() {
            self.check_against_schema(table_number, &fields)?;
        }
        let id = DocumentId::generate(table_number);
        let document = Document {
            id,
            creation_time: self.persistence.next_creation_time(),
            fields,
        };
        if let Some(record) = created {
            // `write` looks the table up by number, so register it first; a refused
            // write poisons the transaction, so the table can never commit alone.
            self.new_tables.insert(table_name.to_string(), record);
        }
        self.write(id, Some(document))?;
        Ok(id)
    }

    /// Merges `fields` into the document: a field set to a value replaces it; the others stay.
    pub fn patch(&mut self, id: &DocumentId, fields: Value) -> Result<(), DbError> {
        self.require_writable("patch")?;
        self.require_user_table(id, "patch")?;
        let mut document = self.existing(id, "patch")?;
        let Value::Object(changes) = fields else {
            return Err(DocumentError::NotAnObject(fields.type_name()).into());
        };
        document.fields.extend(changes);
        let fields = self.user_fields(Value::Object(document.fields))?;
        document.fields = fields;
        self.check_against_schema(id.table_number, &document.fields)?;
        self.write(*id, Some(document))
    }

    /// Replaces every field of the document; `_id` and `_creationTime` stay.
    pub fn replace(&mut self, id: &DocumentId, fields: Value) -> Result<(), DbError> {
        self.require_writable("replace")?;
        self.require_user_table(id, "replace")?;
        let mut document = self.existing(id, "replace")?;
        document.fields = self.user_fields(fields)?;
        self.check_against_schema(id.table_number, &document.fields)?;
        self.write(*id, Some(document))
    }

    pub fn delete(&mut self, id: &DocumentId) -> Result<(), DbError> {
        self.require_writable("delete")?;
        self.require_user_table(id, "delete")?;
        self.existing(id, "delete")?;
        self.write(*id, None)
    }

    /// Up to `limit` documents of `table` in the `index` range, in `order`, starting after
    /// the index key `after` (a cursor from an earlier batch). Sees this transaction's own
    /// writes. Records what it covered in the read set.
    pub fn scan(
        &mut self,
        table_name: &str,
        index_name: &str,
        range: &IndexRange,
        order: Order,
        limit: usize,
        after: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Document)>, DbError> {
        self.scan_until(table_name, index_name, range, order, limit, after, None)?
            .into_iter()
            .map(|(key, read)| Ok((key, read.into_document()?)))
            .collect()
    }

    /// [`Transaction::scan`] that stops at the index key `until` (included, in `order`):
    /// a page whose end an earlier run fixed (Convex's query journal). Stored documents
    /// come back as their text, undecoded: see [`ReadDocument`].
    #[allow(clippy::too_many_arguments)]
    pub fn scan_until(
        &mut self,
        table_name: &str,
        index_name: &str,
        range: &IndexRange,
        order: Order,
        limit: usize,
        after: Option<&[u8]>,
        until: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, ReadDocument)>, DbError> {
        let Some(table) = self.table(table_name).cloned() else {
            // A table nobody has written to yet reads as empty, as in Convex; creating it
            // concurrently is a conflict, like an insert into a range that was read.
            self.reads
                .record_missing_table(MissingTable::Name(table_name.to_string()));
            self.check_read_ranges()?;
            return Ok(Vec::new());
        };
        let index = self.index(&table, index_name)?.clone();
        let mut range = index.key_range(range)?;
        // Continue after `after`, never outside the query's own range (`check_query`
        // refuses a cursor outside it; this keeps a scan inside it regardless).
        if let Some(after) = after {
            match order {
                Order::Asc => range.start = range.start.max(successor(after)),
                Order::Desc => {
                    range.end = Some(match range.end {
                        Some(end) => end.min(after.to_vec()),
                        None => after.to_vec(),
                    })
                }
            }
        }
        if let Some(until) = until {
            match order {
                Order::Asc => {
                    let end = successor(until);
                    range.end = Some(match range.end {
                        Some(current) => current.min(end),
                        None => end,
                    });
                }
                Order::Desc => range.start = range.start.max(until.to_vec()),
            }
        }
        // A page whose end lies before its start selects nothing.
        if range.end.as_ref().is_some_and(|end| *end <= range.start) {
            range.end = Some(range.start.clone());
        }

        // This transaction's own writes in the range, in scan order, merged with the
        // snapshot's entries as the walk goes: nothing is fetched beyond what is returned.
        let mut own: Vec<(Vec<u8>, ReadDocument)> = self
            .writes
            .iter()
            .filter(|(id, _)| id.table_number == table.number)
            .filter_map(|(_, document)| document.as_ref())
            .filter_map(|document| {
                let key = index.key_for(document);
                range
                    .contains(&key)
                    .then(|| (key, ReadDocument::Written(document.clone())))
            })
            .collect();
        own.sort_by(|a, b| a.0.cmp(&b.0));
        if order == Order::Desc {
            own.reverse();
        }
        // The snapshot's version of a document this transaction wrote is stale: skip it
        // without decoding it.
        let overwritten: HashSet<[u8; 20]> = self
            .writes
            .keys()
            .filter(|id| id.table_number == table.number)
            .map(document_key)
            .collect();
        let mut own = own.into_iter().peekable();
        let mut entries: Vec<(Vec<u8>, ReadDocument)> = Vec::new();
        let mut complete = true;
        let (usage, limits, limit_exceeded) =
            (&mut self.usage, &self.limits, &mut self.limit_exceeded);
        self.snapshot
            .walk(&range, order, |key, document_key, load| {
                while let Some((own_key, _)) = own.peek() {
                    let comes_first = match order {
                        Order::Asc => own_key.as_slice() < key,
                        Order::Desc => own_key.as_slice() > key,
                    };
                    if !comes_first {
                        break;
                    }
                    if entries.len() == limit {
                        complete = false;
                        return Ok(false);
                    }
                    let (own_key, document) = own.next().expect("peeked");
                    count_read(usage, limits, limit_exceeded, document.size_bytes())?;
                    entries.push((own_key, document));
                }
                if entries.len() == limit {
                    complete = false;
                    return Ok(false);
                }
                if <[u8; 20]>::try_from(document_key).is_ok_and(|key| overwritten.contains(&key)) {
                    return Ok(true);
                }
                // Every document decoded counts, whatever the caller does with it next
                // (a filter may drop it): reading it is the work the limits bound.
                let document = load()?;
                count_read(usage, limits, limit_exceeded, document.size_bytes())?;
                entries.push((key.to_vec(), document));
                Ok::<_, DbError>(true)
            })?;
        for (own_key, document) in own {
            if entries.len() == limit {
                complete = false;
                break;
            }
            count_read(usage, limits, limit_exceeded, document.size_bytes())?;
            entries.push((own_key, document));
        }

        // The read set covers the keys up to the last one returned, or the whole range if
        // the scan reached its end: a later insert beyond what was returned is no conflict.
        let covered = match (complete, entries.last(), order) {
            (true, _, _) | (false, None, _) => range.clone(),
            (false, Some((last, _)), Order::Asc) => KeyRange {
                start: range.start.clone(),
                end: Some(successor(last)),
            },
            (false, Some((last, _)), Order::Desc) => KeyRange {
                start: last.clone(),
                end: range.end.clone(),
            },
        };
        self.record_read(table.number, covered)?;
        Ok(entries)
    }

    /// Adds a range to the read set, within `max_read_ranges`: every range recorded costs
    /// the committer a check against each key written since the snapshot.
    fn record_read(&mut self, table_number: u32, range: KeyRange) -> Result<(), DbError> {
        self.reads.record_table(table_number);
        self.reads.record(range);
        self.check_read_ranges()
    }

    fn check_read_ranges(&mut self) -> Result<(), DbError> {
        if self.reads.len() > self.limits.max_read_ranges {
            return Err(self.exceeded(format!(
                "transaction read more than {} index ranges (max_read_ranges)",
                self.limits.max_read_ranges
            )));
        }
        if self.reads.bytes() > self.limits.max_read_set_bytes {
            return Err(self.exceeded(format!(
                "transaction read index ranges holding more than {} bytes of keys (max_read_set_bytes)",
                self.limits.max_read_set_bytes
            )));
        }
        Ok(())
    }

    /// Ends the transaction, handing what the committer needs.
    pub fn into_pending_commit(mut self) -> PendingCommit {
        // Sorting the read set here, in the finishing call's task, keeps the one committer
        // thread's check at a binary search per key written since the snapshot.
        self.reads.seal();
        PendingCommit {
            snapshot_ts: self.snapshot.ts,
            reads: self.reads,
            writes: self.writes,
            new_tables: self.new_tables,
            altered_tables: self.altered_tables,
            also_write: self.also_write,
            pending_jobs_delta: self.jobs.pending_delta,
        }
    }

    /// Marks where a nested call (run-mutation inside a mutation) begins, so its writes
    /// can be undone if it fails.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            writes: self.writes.clone(),
            new_tables: self.new_tables.clone(),
            altered_tables: self.altered_tables.clone(),
            documents_written: self.usage.documents_written,
            bytes_written: self.usage.bytes_written,
            jobs: self.jobs,
            files_deleted: self.files_deleted.len(),
        }
    }

    /// Undoes every write and table change made since `savepoint`. What was read stays in
    /// the read set: the caller saw the failure, and the failure depended on those reads.
    /// A limit exceeded since stays exceeded: limits bound the whole transaction.
    pub fn roll_back_to(&mut self, savepoint: Savepoint) {
        self.writes = savepoint.writes;
        self.new_tables = savepoint.new_tables;
        self.altered_tables = savepoint.altered_tables;
        self.usage.documents_written = savepoint.documents_written;
        self.usage.bytes_written = savepoint.bytes_written;
        self.jobs = savepoint.jobs;
        self.files_deleted.truncate(savepoint.files_deleted);
    }

    /// Whether writes are allowed from now on; returns the previous setting. A mutation's
    /// transaction is made read-only while a query it called runs in it.
    pub fn set_writable(&mut self, writable: bool) -> bool {
        std::mem::replace(&mut self.writable, writable)
    }

    /// Makes `write` part of this transaction's commit (see [`AlsoWrite`]).
    pub fn also_write(&mut self, write: AlsoWrite) -> Result<(), DbError> {
        self.require_writable("also_write")?;
        self.also_write = Some(write);
        Ok(())
    }

    /// System tables are the server's to write: a function reads them only.
    fn require_user_table(&self, id: &DocumentId, operation: &str) -> Result<(), DbError> {
        match self.table_name(id.table_number) {
            Some(name) if is_system_table(&name) => Err(DbError::Forbidden(format!(
                "{operation}: {id} is a document of the system table {name:?}, which functions may read but not write"
            ))),
            _ => Ok(()),
        }
    }

    /// Inserts a document into the system table `table_name`, creating the table (with
    /// its fixed indexes) if need be. For the server's own records only.
    pub fn system_insert(
        &mut self,
        table_name: &str,
        fields: BTreeMap<String, Value>,
    ) -> Result<DocumentId, DbError> {
        self.require_writable("insert")?;
        let fields = self.user_fields(Value::Object(fields))?;
        let declared = system_tables::declared_indexes(table_name)
            .ok_or_else(|| DbError::Internal(anyhow::anyhow!("no system table {table_name:?}")))?;
        self.insert_fields(table_name, fields, &declared)
    }

    /// Replaces the fields of a system table's document (`_id` and `_creationTime` stay).
    pub fn system_replace(
        &mut self,
        id: &DocumentId,
        fields: BTreeMap<String, Value>,
    ) -> Result<(), DbError> {
        self.require_writable("replace")?;
        let mut document = self.existing(id, "replace")?;
        document.fields = self.user_fields(Value::Object(fields))?;
        self.write(*id, Some(document))
    }

    /// Deletes a system table's document.
    pub fn system_delete(&mut self, id: &DocumentId) -> Result<(), DbError> {
        self.require_writable("delete")?;
        self.existing(id, "delete")?;
        self.write(*id, None)
    }

    /// Notes that the record of the stored file with content `sha256` was deleted.
    pub fn note_file_deleted(&mut self, sha256: [u8; 32]) {
        self.files_deleted.push(sha256);
    }

    /// The contents of the stored files whose records this transaction deleted.
    pub fn files_deleted(&self) -> Vec<[u8; 32]> {
        self.files_deleted.clone()
    }

    /// The scheduled jobs this transaction changed so far.
    pub fn jobs(&self) -> JobCounts {
        self.jobs
    }

    /// Counts a job scheduled (`scheduled`) and the change in pending jobs.
    pub fn count_jobs(&mut self, scheduled: usize, pending_delta: i64) {
        self.jobs.scheduled += scheduled;
        self.jobs.pending_delta += pending_delta;
    }

    fn require_writable(&self, operation: &str) -> Result<(), DbError> {
        if self.writable {
            Ok(())
        } else {
            Err(DbError::Forbidden(format!(
                "{operation} is not allowed in a query: queries read the database, mutations write it"
            )))
        }
    }

    fn write(&mut self, id: DocumentId, document: Option<Document>) -> Result<(), DbError> {
        self.reads.record_table(id.table_number);
        let bytes = document.as_ref().map_or(0, Document::size_bytes);
        self.usage.documents_written += 1;
        self.usage.bytes_written += bytes;
        if self.usage.documents_written > self.limits.max_documents_written {
            return Err(self.exceeded(format!(
                "transaction wrote more than {} documents (max_documents_written)",
                self.limits.max_documents_written
            )));
        }
        if self.usage.bytes_written > self.limits.max_bytes_written {
            return Err(self.exceeded(format!(
                "transaction wrote more than {} bytes (max_bytes_written)",
                self.limits.max_bytes_written
            )));
        }
        self.writes.insert(id, document);
        Ok(())
    }

    fn count_read_bytes(&mut self, size_bytes: usize) -> Result<(), DbError> {
        count_read(
            &mut self.usage,
            &self.limits,
            &mut self.limit_exceeded,
            size_bytes,
        )
    }

    /// A document's user fields, checked against the field rules and the size limit; an
    /// oversized document is a limit error, so it poisons the transaction.
    fn user_fields(&mut self, value: Value) -> Result<BTreeMap<String, Value>, DbError> {
        match check_user_fields(
            value,
            &self.limits.value_limits,
            self.limits.max_document_bytes,
        ) {
            Err(err @ DocumentError::TooLarge { .. }) => Err(self.exceeded(err.to_string())),
            other => Ok(other?),
        }
    }

    /// Records that a limit was exceeded (the first one is kept) and returns its error.
    /// The transaction is poisoned: see [`Transaction::limit_exceeded`].
    pub fn exceeded(&mut self, message: String) -> DbError {
        exceeded(&mut self.limit_exceeded, message)
    }

    /// The first limit this transaction exceeded, if any. Such a transaction must not
    /// commit, and its function fails with this message even if it caught the error:
    /// a limit bounds the whole transaction, not one call.
    pub fn limit_exceeded(&self) -> Option<&str> {
        self.limit_exceeded.as_deref()
    }
}

/// Counts a document read against the read limits; past one, poisons the transaction.
/// (A free function so a scan can count while it borrows the snapshot.)
fn count_read(
    usage: &mut Usage,
    limits: &TransactionLimits,
    limit_exceeded: &mut Option<String>,
    size_bytes: usize,
) -> Result<(), DbError> {
    usage.documents_read += 1;
    usage.bytes_read += size_bytes;
    if usage.documents_read > limits.max_documents_read {
        return Err(exceeded(
            limit_exceeded,
            format!(
                "transaction read more than {} documents (max_documents_read)",
                limits.max_documents_read
            ),
        ));
    }
    if usage.bytes_read > limits.max_bytes_read {
        return Err(exceeded(
            limit_exceeded,
            format!(
                "transaction read more than {} bytes (max_bytes_read)",
                limits.max_bytes_read
            ),
        ));
    }
    Ok(())
}

/// Records that a limit was exceeded (the first one is kept) and returns its error.
fn exceeded(limit_exceeded: &mut Option<String>, message: String) -> DbError {
    limit_exceeded.get_or_insert_with(|| message.clone());
    DbError::LimitExceeded(message)
}

fn foreign_cursor() -> DbError {
    DbError::InvalidCursor(
        "invalid cursor: it was made by a different query (another table, index or range)"
            .to_string(),
    )
}

/// The smallest key greater than `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Table names: letters, digits and `_`, starting with a letter, like Convex.
fn check_table_name(name: &str) -> Result<(), DbError> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if valid {
        Ok(())
    } else {
        Err(DbError::InvalidDocument(DocumentError::Invalid(format!(
            "invalid table name {name:?}: use letters, digits and _, starting with a letter"
        ))))
    }
}
