//! The committer: the only writer of the document store.
//!
//! Finished mutations queue up; one thread takes every mutation waiting, validates each
//! against what committed after its snapshot (optimistic concurrency control), and writes
//! all the valid ones in **one** write transaction of the store — one fsync for many mutations
//! (group commit). Each gets its own commit timestamp, strictly increasing and persisted.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::oneshot;

use super::commit_log;
use super::kv::KvWrite;
use super::persistence::{
    Persistence, TableRecord, alter_indexes, apply_writes, backfill_chunk, drop_index_chunk,
    load_tables, save_commit_ts, save_table_records, stored_commit_ts,
};
use super::reads::MissingTable;
use super::subscriptions::{CommitFeed, CommitNotice};
use super::transaction::PendingCommit;
use super::write_log::{Conflict, WriteLog};

/// How the committer batches.
#[derive(Clone, Debug)]
pub struct CommitterOptions {
    /// Most mutations written in one write transaction; 1 turns group commit off.
    pub max_batch: usize,
    /// Bytes of recent commits remembered for validation (`max_write_log_bytes`); a
    /// mutation whose snapshot is older than what fits re-runs.
    pub write_log_bytes: usize,
}

impl Default for CommitterOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            write_log_bytes: 64 << 20,
        }
    }
}

/// Why a mutation did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Something it read changed; re-run it from scratch.
    #[error("{}", conflict_message(.0))]
    Conflict(Conflict),
    /// Another transaction created a table of the same name first; re-run it.
    #[error("table {0:?} was created by a concurrent transaction")]
    TableCreatedConcurrently(String),
    /// The transaction exceeded one of its limits: it may never commit.
    #[error("{0}")]
    LimitExceeded(String),
    /// A schema commit that declares a pending validator which a write made while it was
    /// pending did not match.
    #[error("{0}")]
    ValidatorViolated(String),
    #[error("commit failed: {0}")]
    Internal(String),
}

impl CommitError {
    /// Whether re-running the mutation can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            CommitError::Internal(_)
                | CommitError::LimitExceeded(_)
                | CommitError::ValidatorViolated(_)
        )
    }
}

/// A conflict as callers read it (after the last retry): what happened, no internals.
fn conflict_message(conflict: &Conflict) -> &'static str {
    match conflict {
        Conflict::WriteInReadRange { .. } => {
            "a concurrent mutation wrote what this one read (conflict)"
        }
        Conflict::SnapshotTooOld => {
            "too many commits happened while this mutation ran to check it (conflict)"
        }
        Conflict::TableCreated => "a concurrent mutation created a table this one read (conflict)",
        Conflict::SchemaChanged { .. } => "a deploy changed a table this mutation used (conflict)",
    }
}

struct Request {
    pending: PendingCommit,
    reply: oneshot::Sender<Result<u64, CommitError>>,
}

/// What the committer thread is asked to do: commit mutations, or one step of index
/// maintenance in a write transaction of its own, so that long work (an index over 10⁶
/// documents) is cut into short steps that commits interleave with.
enum Message {
    Commit(Request),
    Maintain(Maintenance, oneshot::Sender<anyhow::Result<Step>>),
}

/// One step of index maintenance.
enum Maintenance {
    /// Adds the entries of a building index for the next `limit` documents after `after`.
    Backfill {
        table_number: u32,
        index_id: u32,
        after: Option<Vec<u8>>,
        limit: usize,
    },
    /// Removes up to `limit` entries of an index no table has any more.
    Drop { index_id: u32, limit: usize },
}

/// Where a maintenance step left off.
enum Step {
    /// Done, or nothing to do (the index is gone or already ready).
    Finished,
    /// More to do; a backfill continues after this document key.
    More(Option<Vec<u8>>),
}

/// The first write found not matching each pending validator (by its id), as a message:
/// the committer records them, the deploy waiting on the validator reads them.
#[derive(Debug, Default)]
pub struct Violations(Mutex<HashMap<u32, String>>);

impl Violations {
    /// The violation recorded against the pending validator `id`, if any.
    pub fn get(&self, id: u32) -> Option<String> {
        self.0
            .lock()
            .expect("violations poisoned")
            .get(&id)
            .cloned()
    }

    fn record(&self, found: Vec<(u32, String)>) {
        let mut violations = self.0.lock().expect("violations poisoned");
        for (id, message) in found {
            violations.entry(id).or_insert(message);
        }
    }

    fn forget(&self, ids: &[u32]) {
        let mut violations = self.0.lock().expect("violations poisoned");
        for id in ids {
            violations.remove(id);
        }
    }
}

/// The handle mutations commit through. Dropping it stops the committer thread after the
/// commits already queued, and waits for it, so the database file is closed afterwards.
pub struct Committer {
    sender: Option<mpsc::Sender<Message>>,
    thread: Option<thread::JoinHandle<()>>,
    violations: Arc<Violations>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    /// Starts the committer thread. Every durable commit is handed to `feed` (the
    /// subscriptions' invalidator), in commit order.
    pub fn start(
        persistence: Arc<Persistence>,
        options: CommitterOptions,
        feed: CommitFeed,
    ) -> anyhow::Result<Self> {
        let snapshot = persistence.snapshot()?;
        let tables: BTreeMap<u32, TableRecord> = snapshot
            .tables()
            .map(|table| (table.number, table.clone()))
            .collect();
        let violations = Arc::new(Violations::default());
        let shared = persistence
            .kv()
            .commit_signal()
            .filter(|_| persistence.kv().shared());
        let state = CommitterState {
            shared,
            last_trim: std::time::Instant::now(),
            write_log_bytes: options.write_log_bytes,
            write_log: WriteLog::new(snapshot.ts, options.write_log_bytes),
            last_ts: snapshot.ts,
            tables,
            persistence,
            max_batch: options.max_batch.max(1),
            violations: violations.clone(),
            attempt: AttemptEffects::default(),
            feed,
        };
        drop(snapshot);
        let (sender, receiver) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("kiln-committer".into())
            .spawn(move || state.run(receiver))
            .context("cannot start the committer thread")?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
            violations,
        })
    }

    /// The first committed write that did not match the pending validator `id`, if any.
    pub fn violation(&self, pending_validator_id: u32) -> Option<String> {
        self.violations.get(pending_validator_id)
    }

    /// Commits `pending`; returns its commit timestamp. A read-only transaction commits
    /// nothing and returns its snapshot's timestamp.
    pub async fn commit(&self, pending: PendingCommit) -> Result<u64, CommitError> {
        if pending.writes.is_empty()
            && pending.new_tables.is_empty()
            && pending.altered_tables.is_empty()
            && pending.also_write.is_none()
        {
            return Ok(pending.snapshot_ts);
        }
        let (reply, response) = oneshot::channel();
        self.sender
            .as_ref()
            .expect("the sender lives until drop")
            .send(Message::Commit(Request { pending, reply }))
            .map_err(|_| CommitError::Internal("the committer has stopped".into()))?;
        response
            .await
            .map_err(|_| CommitError::Internal("the committer dropped the commit".into()))?
    }

    /// Builds the building index `index_id` of table `table_number` from the table's
    /// documents, `chunk` documents per write transaction: commits go on between chunks.
    /// Returns once every document has its entry (writes since the index was added
    /// maintain their own). An index that is gone or ready meanwhile ends the build.
    pub async fn backfill_index(
        &self,
        table_number: u32,
        index_id: u32,
        chunk: usize,
    ) -> anyhow::Result<()> {
        let mut after = None;
        loop {
            let step = Maintenance::Backfill {
                table_number,
                index_id,
                after: after.take(),
                limit: chunk.max(1),
            };
            match self.maintain(step).await? {
                Step::Finished => return Ok(()),
                Step::More(next) => after = next,
            }
        }
    }

    /// Removes every entry of the index `index_id` (which no table may have any more),
    /// `chunk` entries per write transaction.
    pub async fn drop_index(&self, index_id: u32, chunk: usize) -> anyhow::Result<()> {
        while let Step::More(_) = self
            .maintain(Maintenance::Drop {
                index_id,
                limit: chunk.max(1),
            })
            .await?
        {}
        Ok(())
    }

    async fn maintain(&self, maintenance: Maintenance) -> anyhow::Result<Step> {
        let (reply, response) = oneshot::channel();
        self.sender
            .as_ref()
            .expect("the sender lives until drop")
            .send(Message::Maintain(maintenance, reply))
            .map_err(|_| anyhow::anyhow!("the committer has stopped"))?;
        response
            .await
            .map_err(|_| anyhow::anyhow!("the committer dropped an index step"))?
    }
}

struct CommitterState {
    persistence: Arc<Persistence>,
    /// A shared store's commit signal: other hosts commit too, so each batch first catches
    /// up with their commits, logs its own for them (`commit_log`), and leaves publishing
    /// to the subscriptions to the follower, which this signal wakes.
    shared: Option<Arc<tokio::sync::Notify>>,
    /// When the shared commit log was last trimmed.
    last_trim: std::time::Instant,
    write_log_bytes: usize,
    write_log: WriteLog,
    last_ts: u64,
    /// Table number → record, as of the last commit.
    tables: BTreeMap<u32, TableRecord>,
    max_batch: usize,
    violations: Arc<Violations>,
    /// What the batch being written found about pending validators; published only once
    /// the batch is durable, so a write that never committed fails no deploy.
    attempt: AttemptEffects,
    /// Where durable commits go to invalidate the query results they change.
    feed: CommitFeed,
}

/// Effects of an attempt at a batch on [`Violations`], applied when it commits.
#[derive(Default)]
struct AttemptEffects {
    violations: Vec<(u32, String)>,
    /// Pending validators the batch resolved (declared or abandoned).
    resolved: Vec<u32>,
    /// What each commit of the batch changed, for the subscriptions.
    notices: Vec<CommitNotice>,
    /// The tables whose records the batch changed, written once before it commits
    /// (`messages:send` at 32 clients wrote the `messages` record once per mutation).
    changed_tables: std::collections::BTreeSet<u32>,
}

impl CommitterState {
    fn run(mut self, receiver: mpsc::Receiver<Message>) {
        let mut next = None;
        loop {
            let message = match next.take() {
                Some(message) => message,
                None => match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => return,
                },
            };
            match message {
                Message::Maintain(maintenance, reply) => {
                    let _ = reply.send(self.maintain(maintenance));
                }
                Message::Commit(first) => {
                    let mut batch = vec![first];
                    while batch.len() < self.max_batch {
                        match receiver.try_recv() {
                            Ok(Message::Commit(request)) => batch.push(request),
                            // Maintenance waits for the batch gathered so far.
                            Ok(maintenance) => {
                                next = Some(maintenance);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_batch(batch);
                }
            }
        }
    }

    /// One maintenance step in a write transaction of its own.
    fn maintain(&mut self, maintenance: Maintenance) -> anyhow::Result<Step> {
        let persistence = self.persistence.clone();
        let mut txn = persistence.begin_write()?;
        self.catch_up(&*txn)?;
        let step = match maintenance {
            Maintenance::Backfill {
                table_number,
                index_id,
                after,
                limit,
            } => {
                let Some(table) = self.tables.get(&table_number) else {
                    return Ok(Step::Finished);
                };
                let Some(index) = table
                    .indexes
                    .iter()
                    .find(|index| index.id == index_id && index.building)
                else {
                    return Ok(Step::Finished);
                };
                match backfill_chunk(&mut *txn, table, index, after.as_deref(), limit)? {
                    Some(last) => Step::More(Some(last)),
                    None => Step::Finished,
                }
            }
            Maintenance::Drop { index_id, limit } => {
                let in_use = self
                    .tables
                    .values()
                    .any(|table| table.indexes.iter().any(|index| index.id == index_id));
                anyhow::ensure!(!in_use, "index {index_id} is still in use: not dropping it");
                if drop_index_chunk(&mut *txn, index_id, limit)? {
                    Step::More(None)
                } else {
                    Step::Finished
                }
            }
        };
        // No fsync per step: a build is only used once the durable schema commit makes
        // its index ready (which persists every step before it), and a drop that a crash
        // undoes is redone by the startup sweep. The steps stay short for the commits
        // waiting behind them.
        txn.commit(false)?;
        Ok(step)
    }

    /// Commits a batch in one write transaction. A member whose own writes the store
    /// refuses (a deploy's extra write that fails, say) fails alone: the transaction is
    /// abandoned and the rest of the batch is written again without it, so a mutation
    /// fails only for its own fault. A failure of the commit itself fails the batch.
    fn commit_batch(&mut self, mut batch: Vec<Request>) {
        loop {
            match self.try_batch(&batch) {
                BatchOutcome::Committed(results) => {
                    for (request, result) in batch.into_iter().zip(results) {
                        let _ = request.reply.send(result);
                    }
                    return;
                }
                BatchOutcome::MemberFailed { index, error } => {
                    let failed = batch.remove(index);
                    tracing::error!(
                        error = ?error,
                        batch_rest = batch.len(),
                        "a mutation's writes failed; committing the rest of its batch without it"
                    );
                    let _ = failed
                        .reply
                        .send(Err(CommitError::Internal(format!("{error:#}"))));
                    if batch.is_empty() {
                        return;
                    }
                }
                BatchOutcome::Failed(error) => return fail_all(batch, &error),
            }
        }
    }

    /// One attempt at writing `batch`; on failure, the committer's state is as before it.
    fn try_batch(&mut self, batch: &[Request]) -> BatchOutcome {
        let persistence = self.persistence.clone();
        let mut txn = match persistence.begin_write() {
            Ok(txn) => txn,
            Err(err) => return BatchOutcome::Failed(err),
        };
        let tables_before = self.tables.clone();
        let last_ts_before = self.last_ts;
        if let Err(error) = self.catch_up(&*txn) {
            drop(txn);
            self.roll_back(tables_before, last_ts_before);
            return BatchOutcome::Failed(error);
        }
        let mut results = Vec::with_capacity(batch.len());
        for (index, request) in batch.iter().enumerate() {
            match self.validate_and_apply(&mut *txn, &request.pending) {
                Ok(Some(ts)) => results.push(Ok(ts)),
                Ok(None) => unreachable!("empty write sets are answered without the committer"),
                Err(Validation::Rejected(err)) => results.push(Err(err)),
                Err(Validation::Failed(error)) => {
                    // The write transaction is in an unknown state: drop it (which aborts
                    // it) and forget what this attempt applied.
                    drop(txn);
                    self.roll_back(tables_before, last_ts_before);
                    return BatchOutcome::MemberFailed { index, error };
                }
            }
        }
        let trim =
            self.shared.is_some() && self.last_trim.elapsed() > std::time::Duration::from_secs(60);
        let result = save_table_records(&mut *txn, &self.tables, &self.attempt.changed_tables)
            .and_then(|()| save_commit_ts(&mut *txn, self.last_ts))
            .and_then(|()| self.persistence.save_counters(&mut *txn))
            .and_then(|()| match trim {
                true => commit_log::trim(&mut *txn, self.last_ts),
                false => Ok(()),
            })
            .and_then(|()| txn.commit(true));
        match result {
            Ok(()) => {
                if trim {
                    self.last_trim = std::time::Instant::now();
                }
                let effects = std::mem::take(&mut self.attempt);
                self.violations.record(effects.violations);
                self.violations.forget(&effects.resolved);
                match &self.shared {
                    // The follower publishes every host's commits, in order.
                    Some(signal) => signal.notify_one(),
                    None => {
                        self.feed.publish_all(effects.notices);
                    }
                }
                BatchOutcome::Committed(results)
            }
            Err(error) => {
                self.roll_back(tables_before, last_ts_before);
                BatchOutcome::Failed(error)
            }
        }
    }

    /// Learns the commits other hosts made since this committer's last (a shared store;
    /// `txn` holds the commit lock, so none can commit meanwhile): their writes go into the
    /// write log, so mutations are validated against them, and the tables are re-read.
    fn catch_up(&mut self, txn: &dyn super::kv::KvRead) -> anyhow::Result<()> {
        if self.shared.is_none() {
            return Ok(());
        }
        let stored = stored_commit_ts(txn)?;
        if stored <= self.last_ts {
            return Ok(());
        }
        match commit_log::read_after(txn, self.last_ts)? {
            Some(notices) => {
                for notice in notices {
                    self.write_log
                        .push(notice.ts, notice.touched, notice.altered_tables);
                }
            }
            // Some were trimmed: mutations older than now cannot be checked, and re-run.
            None => self.write_log = WriteLog::new(stored, self.write_log_bytes),
        }
        self.tables = load_tables(txn)?;
        self.last_ts = stored;
        Ok(())
    }

    /// Forgets an abandoned attempt: its tables, timestamps and write-log entries.
    fn roll_back(&mut self, tables: BTreeMap<u32, TableRecord>, last_ts: u64) {
        self.tables = tables;
        self.write_log.forget_after(last_ts);
        self.last_ts = last_ts;
        self.attempt = AttemptEffects::default();
    }

    /// Checks one mutation against everything committed after its snapshot (including
    /// earlier mutations of this batch) and, if valid, applies it to `txn`.
    fn validate_and_apply(
        &mut self,
        txn: &mut dyn KvWrite,
        pending: &PendingCommit,
    ) -> Result<Option<u64>, Validation> {
        self.write_log
            .check(pending.snapshot_ts, &pending.reads)
            .map_err(|conflict| Validation::Rejected(CommitError::Conflict(conflict)))?;
        // Tables are never dropped: one that exists now but was missing at the snapshot
        // was created since, so what the mutation read as empty may not be.
        let created_since = pending.reads.missing_tables().iter().any(|missing| {
            self.tables.values().any(|table| match missing {
                MissingTable::Name(name) => &table.name == name,
                MissingTable::Number(number) => table.number == *number,
            })
        });
        if created_since {
            return Err(Validation::Rejected(CommitError::Conflict(
                Conflict::TableCreated,
            )));
        }
        if let Some(name) = pending
            .new_tables
            .keys()
            .find(|name| self.tables.values().any(|table| &table.name == *name))
        {
            return Err(Validation::Rejected(CommitError::TableCreatedConcurrently(
                name.clone(),
            )));
        }
        let resolved = self.check_resolved_validators(pending)?;
        for record in pending.new_tables.values() {
            self.tables.insert(record.number, record.clone());
        }
        for altered in pending.altered_tables.values() {
            let old = self.tables.get(&altered.number).cloned().ok_or_else(|| {
                Validation::Rejected(CommitError::TableCreatedConcurrently(altered.name.clone()))
            })?;
            alter_indexes(&mut *txn, &old, altered).map_err(Validation::Failed)?;
            // The altered record was read at the deploy's snapshot: keep the creation-time
            // floor that commits since then have raised.
            let altered = TableRecord {
                last_creation_time: old.last_creation_time.max(altered.last_creation_time),
                ..altered.clone()
            };
            self.tables.insert(altered.number, altered);
        }
        let new_tables = pending
            .new_tables
            .values()
            .chain(pending.altered_tables.values())
            .map(|table| table.number);
        let violations = self.check_pending_validators(pending);
        let mut touched = apply_writes(
            &mut *txn,
            &mut self.tables,
            new_tables,
            &pending.writes,
            &mut self.attempt.changed_tables,
        )
        .map_err(Validation::Failed)?;
        if let Some(also_write) = &pending.also_write {
            also_write(&mut *txn).map_err(Validation::Failed)?;
        }
        let ts = next_ts(self.last_ts);
        self.last_ts = ts;
        // A table whose indexes or validator changed: transactions that used it at an
        // older snapshot read the old indexes or were checked against the old validator,
        // so they re-run. Transactions on other tables are unaffected.
        let altered: std::collections::BTreeSet<u32> = pending
            .altered_tables
            .values()
            .map(|table| table.number)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let notice = CommitNotice {
            ts,
            touched: touched.clone(),
            altered_tables: altered.clone(),
            created_tables: pending
                .new_tables
                .values()
                .map(|table| (table.name.clone(), table.number))
                .collect(),
        };
        if self.shared.is_some() {
            commit_log::append(&mut *txn, &notice).map_err(Validation::Failed)?;
        }
        self.attempt.notices.push(notice);
        self.write_log.push(ts, touched, altered);
        self.attempt.violations.extend(violations);
        self.attempt.resolved.extend(resolved);
        Ok(Some(ts))
    }

    /// The pending validators `pending` resolves (a schema commit that declares or
    /// abandons them). Declaring one that a committed write did not match is refused.
    fn check_resolved_validators(&self, pending: &PendingCommit) -> Result<Vec<u32>, Validation> {
        let mut resolved = Vec::new();
        for altered in pending.altered_tables.values() {
            let Some(current) = self
                .tables
                .get(&altered.number)
                .and_then(|table| table.pending_validator.as_ref())
            else {
                continue;
            };
            if altered.pending_validator.as_ref() == Some(current) {
                continue;
            }
            // Earlier members of this batch count too: they commit before this one.
            let violation = || {
                self.attempt
                    .violations
                    .iter()
                    .find(|(id, _)| *id == current.id)
                    .map(|(_, message)| message.clone())
                    .or_else(|| self.violations.get(current.id))
            };
            if altered.validator.as_ref() == Some(&current.validator)
                && let Some(violation) = violation()
            {
                return Err(Validation::Rejected(CommitError::ValidatorViolated(
                    violation,
                )));
            }
            resolved.push(current.id);
        }
        Ok(resolved)
    }

    /// Checks the documents `pending` writes into tables with a pending validator (with
    /// the tables as this commit leaves them); returns a violation per validator that one
    /// of them does not match. The write commits regardless: the deploy fails instead.
    fn check_pending_validators(&self, pending: &PendingCommit) -> Vec<(u32, String)> {
        let mut found: Vec<(u32, String)> = Vec::new();
        for (id, document) in &pending.writes {
            let Some(document) = document else { continue };
            let Some(table) = self.tables.get(&id.table_number) else {
                continue;
            };
            let Some(validator) = &table.pending_validator else {
                continue;
            };
            if found.iter().any(|(seen, _)| *seen == validator.id) {
                continue;
            }
            let table_of = |number: u32| self.tables.get(&number).map(|t| t.name.clone());
            if let Err(err) = validator.validator.check(&document.fields, &table_of) {
                found.push((
                    validator.id,
                    format!(
                        "document {id} written to table {:?} during the deploy does not match the new schema: {err}",
                        table.name
                    ),
                ));
            }
        }
        found
    }
}

/// How one attempt at writing a batch ended.
enum BatchOutcome {
    /// Written; each member's commit timestamp or why it was rejected, in batch order.
    Committed(Vec<Result<u64, CommitError>>),
    /// The member at `index` could not be written; nothing was.
    MemberFailed { index: usize, error: anyhow::Error },
    /// The store failed: nothing was written.
    Failed(anyhow::Error),
}

enum Validation {
    /// The mutation may not commit as it ran.
    Rejected(CommitError),
    /// The store failed.
    Failed(anyhow::Error),
}

fn fail_all(batch: Vec<Request>, err: &anyhow::Error) {
    tracing::error!(error = ?err, "group commit failed");
    for request in batch {
        let _ = request
            .reply
            .send(Err(CommitError::Internal(format!("{err:#}"))));
    }
}

/// Wall-clock nanoseconds, but always after `last`.
fn next_ts(last: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    now.max(last + 1)
}
