//! The document store as the rest of the server uses it: open it, begin query and mutation
//! transactions, commit through the committer, re-run a mutation that conflicts.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::committer::{CommitError, Committer, CommitterOptions};
use super::kv::KvStore;
use super::persistence::{Persistence, Snapshot};
use super::subscriptions::Subscriptions;
use super::transaction::{DbError, Transaction, TransactionLimits};
use super::validator::DocumentValidator;

pub struct DocumentStore {
    persistence: Arc<Persistence>,
    committer: Committer,
    limits: TransactionLimits,
    /// How many times a conflicting mutation is re-run before the caller gets an error.
    max_retries: usize,
    /// Building indexes whose backfill finished (ids are never reused): writes maintain
    /// them since, so a deploy that declares one later does not backfill it again.
    backfilled: std::sync::Mutex<std::collections::HashSet<u32>>,
    /// The query results watching for commits that change them.
    subscriptions: Arc<Subscriptions>,
    /// Scheduled jobs pending as of the last commit (`max_pending_jobs`): counted by the
    /// scheduler when it starts, then kept by each commit's [`JobCounts`].
    pending_jobs: AtomicI64,
    /// Over a shared store: the turn a mutation that conflicted takes to re-run (see
    /// [`DocumentStore::retry_turn`]).
    retry_turns: Option<Arc<tokio::sync::Semaphore>>,
}

/// Why a mutation run through [`DocumentStore::run_mutation`] failed; nothing committed.
#[derive(Debug, thiserror::Error)]
pub enum MutationError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{error} (gave up after {attempts} attempts)")]
    Commit { error: CommitError, attempts: usize },
}

/// Documents (or entries) one step of an index build (or drop) handles in its write
/// transaction: small enough that commits waiting behind it wait a few milliseconds.
const INDEX_CHUNK_DOCUMENTS: usize = 256;

/// Documents one step of a validator check reads, at one snapshot.
const VALIDATION_CHUNK_DOCUMENTS: usize = 1024;

/// Where one step of a validator check left off.
enum ValidationStep {
    Violation(String),
    More(Vec<u8>),
    Done,
}

/// Checks the next chunk of documents after `after` against the pending validator.
fn check_documents_chunk(
    persistence: &Persistence,
    table_number: u32,
    pending_id: u32,
    after: Option<Vec<u8>>,
) -> anyhow::Result<ValidationStep> {
    let snapshot = persistence.snapshot()?;
    let Some(table) = snapshot.table_by_number(table_number) else {
        return Ok(ValidationStep::Done);
    };
    let Some(pending) = table
        .pending_validator
        .as_ref()
        .filter(|pending| pending.id == pending_id)
    else {
        return Ok(ValidationStep::Done);
    };
    let documents =
        snapshot.documents_after(table_number, after.as_deref(), VALIDATION_CHUNK_DOCUMENTS)?;
    let table_of = |number: u32| snapshot.table_by_number(number).map(|t| t.name.clone());
    for (_, document) in &documents {
        if let Err(err) = pending.validator.check(&document.fields, &table_of) {
            return Ok(ValidationStep::Violation(format!(
                "existing document {} in table {:?} does not match the new schema: {err}",
                document.id, table.name
            )));
        }
    }
    Ok(match documents.into_iter().last() {
        Some((key, _)) => ValidationStep::More(key),
        None => ValidationStep::Done,
    })
}

/// Enough for a hot document under heavy contention: with backoff, each round lets some
/// contenders through.
pub const DEFAULT_MAX_RETRIES: usize = 100;

/// Waits a random fraction of a few milliseconds, growing with the attempt, so contenders
/// that conflicted do not all re-run in lockstep.
pub(crate) async fn conflict_backoff(attempt: usize) {
    let mut random = [0u8; 2];
    getrandom::fill(&mut random).unwrap_or_default();
    let ceiling_us = 1_000 * attempt.min(20) as u64;
    let wait_us = u64::from(u16::from_le_bytes(random)) * ceiling_us / u64::from(u16::MAX);
    tokio::time::sleep(std::time::Duration::from_micros(wait_us)).await;
}

impl DocumentStore {
    pub fn open(
        kv: Arc<dyn KvStore>,
        limits: TransactionLimits,
        options: CommitterOptions,
    ) -> anyhow::Result<Self> {
        let persistence = Arc::new(Persistence::open(kv)?);
        let current_ts = persistence.snapshot()?.ts;
        let (subscriptions, feed) = Subscriptions::start(current_ts)?;
        if persistence.kv().shared() {
            // Other hosts commit too: the subscriptions learn of every commit, theirs and
            // this host's, from the commit log.
            super::commit_log::start_follower(
                persistence.clone(),
                persistence.kv().clone(),
                feed.clone(),
                current_ts,
            )?;
        }
        let committer = Committer::start(persistence.clone(), options, feed)?;
        let retry_turns = persistence
            .kv()
            .shared()
            .then(|| Arc::new(tokio::sync::Semaphore::new(1)));
        Ok(Self {
            retry_turns,
            persistence,
            committer,
            limits,
            max_retries: DEFAULT_MAX_RETRIES,
            backfilled: Default::default(),
            subscriptions,
            pending_jobs: AtomicI64::new(0),
        })
    }

    /// Waits before re-running a mutation that conflicted (its `attempt`th run did), and,
    /// over a shared store, for this host's turn to re-run one; the turn is held until the
    /// returned permit drops (after the re-run's commit). Over a shared store a mutation's
    /// run waits on the network, so many run at once, and those that touch one hot
    /// document all conflict but one per commit: re-running them one at a time per host
    /// lets each win within a few runs instead of starving past the retry limit.
    pub async fn retry_turn(&self, attempt: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        conflict_backoff(attempt).await;
        match &self.retry_turns {
            Some(turns) => turns.clone().acquire_owned().await.ok(),
            None => None,
        }
    }

    /// The persistence interface the store keeps its data in (deployments keep theirs
    /// there too).
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        self.persistence.kv()
    }

    pub fn limits(&self) -> &TransactionLimits {
        &self.limits
    }

    /// The query results watching for the commits that change them.
    pub fn subscriptions(&self) -> &Arc<Subscriptions> {
        &self.subscriptions
    }

    /// The latest commit, to read at (shareable between transactions).
    pub fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.persistence.snapshot()
    }

    /// [`DocumentStore::begin_admin_read`] on `snapshot`: the system queries of the sync
    /// socket (a table's size), which bound what they read themselves.
    pub fn begin_admin_read_at(&self, snapshot: Snapshot) -> Transaction {
        let limits = TransactionLimits {
            max_documents_read: usize::MAX,
            max_bytes_read: usize::MAX,
            ..self.limits.clone()
        };
        Transaction::at_snapshot(self.persistence.clone(), snapshot, limits)
    }

    /// A read-only transaction on `snapshot` (see [`Transaction::at_snapshot`]).
    pub fn begin_query_at(&self, snapshot: Snapshot) -> Transaction {
        Transaction::at_snapshot(self.persistence.clone(), snapshot, self.limits.clone())
    }

    /// The first stored document of `table` that `validator` refuses, described; `None` if
    /// every one matches (or the table does not exist). Reads a chunk per snapshot, so a
    /// large table holds no transaction open; writes meanwhile are not seen (a deploy that
    /// declares the validator checks those). Blocking: call from a blocking thread.
    pub fn first_violation(
        &self,
        table: &str,
        validator: &DocumentValidator,
    ) -> anyhow::Result<Option<String>> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let snapshot = self.persistence.snapshot()?;
            let Some(record) = snapshot.table(table) else {
                return Ok(None);
            };
            let documents = snapshot.documents_after(
                record.number,
                after.as_deref(),
                VALIDATION_CHUNK_DOCUMENTS,
            )?;
            let table_of = |number: u32| snapshot.table_by_number(number).map(|t| t.name.clone());
            for (_, document) in &documents {
                if let Err(err) = validator.check(&document.fields, &table_of) {
                    return Ok(Some(format!(
                        "existing document {} in table {table:?} does not match the new schema: {err}",
                        document.id
                    )));
                }
            }
            match documents.into_iter().last() {
                Some((key, _)) => after = Some(key),
                None => return Ok(None),
            }
        }
    }

    /// A read-only transaction at the latest commit.
    pub fn begin_query(&self) -> anyhow::Result<Transaction> {
        Transaction::new(self.persistence.clone(), false, self.limits.clone())
    }

    /// A read-only transaction for the admin API: not a function's, so not held to the
    /// per-transaction read limits (the caller bounds what it reads).
    pub fn begin_admin_read(&self) -> anyhow::Result<Transaction> {
        let limits = TransactionLimits {
            max_documents_read: usize::MAX,
            max_bytes_read: usize::MAX,
            ..self.limits.clone()
        };
        Transaction::new(self.persistence.clone(), false, limits)
    }

    /// A read-write transaction at the latest commit.
    pub fn begin_mutation(&self) -> anyhow::Result<Transaction> {
        Transaction::new(self.persistence.clone(), true, self.limits.clone())
    }

    /// Builds a building index in the background (see [`Committer::backfill_index`]),
    /// unless it was built already.
    pub async fn backfill_index(&self, table_number: u32, index_id: u32) -> anyhow::Result<()> {
        if self
            .backfilled
            .lock()
            .expect("backfilled lock")
            .contains(&index_id)
        {
            return Ok(());
        }
        self.committer
            .backfill_index(table_number, index_id, INDEX_CHUNK_DOCUMENTS)
            .await?;
        self.backfilled
            .lock()
            .expect("backfilled lock")
            .insert(index_id);
        Ok(())
    }

    /// Checks the documents stored in table `table_number` against its pending validator
    /// `pending_id`, a chunk per read snapshot, off the async workers, while mutations
    /// keep committing (the committer checks what they write). Returns the first document
    /// that does not match, stored or written meanwhile, as a message; `None` if all do.
    /// A validator no longer pending ends the check.
    pub async fn check_pending_validator(
        &self,
        table_number: u32,
        pending_id: u32,
    ) -> anyhow::Result<Option<String>> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            if let Some(violation) = self.committer.violation(pending_id) {
                return Ok(Some(violation));
            }
            let persistence = self.persistence.clone();
            let from = after.take();
            let step = tokio::task::spawn_blocking(move || {
                check_documents_chunk(&persistence, table_number, pending_id, from)
            })
            .await
            .map_err(|err| anyhow::anyhow!("a validator check panicked: {err}"))??;
            match step {
                ValidationStep::Violation(message) => return Ok(Some(message)),
                ValidationStep::More(last) => after = Some(last),
                ValidationStep::Done => return Ok(self.committer.violation(pending_id)),
            }
        }
    }

    /// Ids of indexes with entries that no table has (see [`Persistence::orphaned_index_ids`]).
    pub fn orphaned_index_ids(&self) -> anyhow::Result<Vec<u32>> {
        self.persistence.orphaned_index_ids()
    }

    /// Removes the entries of an index no table has any more, in chunks.
    pub async fn drop_index(&self, index_id: u32) -> anyhow::Result<()> {
        self.committer
            .drop_index(index_id, INDEX_CHUNK_DOCUMENTS)
            .await
    }

    /// How many entries the index with this id has (for tests of index maintenance).
    #[cfg(test)]
    pub fn count_index_entries(&self, index_id: u32) -> usize {
        self.persistence.count_index_entries(index_id).unwrap()
    }

    /// Commits a mutation; returns its commit timestamp.
    pub async fn commit(&self, transaction: Transaction) -> Result<u64, CommitError> {
        if let Some(exceeded) = transaction.limit_exceeded() {
            return Err(CommitError::LimitExceeded(exceeded.to_string()));
        }
        let pending = transaction.into_pending_commit();
        let pending_jobs_delta = pending.pending_jobs_delta;
        let ts = self.committer.commit(pending).await?;
        self.pending_jobs
            .fetch_add(pending_jobs_delta, Ordering::Relaxed);
        Ok(ts)
    }

    /// Scheduled jobs pending now, as far as the commits so far tell.
    pub fn pending_jobs(&self) -> i64 {
        self.pending_jobs.load(Ordering::Relaxed)
    }

    /// Sets the number of pending jobs (the scheduler counts them when it starts).
    pub fn set_pending_jobs(&self, count: i64) {
        self.pending_jobs.store(count, Ordering::Relaxed);
    }

    /// Runs `body` in a mutation and commits it, re-running it from scratch on a conflict
    /// (at most `max_retries` times). An error from `body` commits nothing.
    pub async fn run_mutation<T>(
        &self,
        body: impl FnMut(&mut Transaction) -> Result<T, DbError>,
    ) -> Result<(T, u64), MutationError> {
        self.run_mutation_with(self.limits.clone(), body).await
    }

    /// [`run_mutation`](Self::run_mutation) with other limits (schema changes read whole
    /// tables).
    pub async fn run_mutation_with<T>(
        &self,
        limits: TransactionLimits,
        mut body: impl FnMut(&mut Transaction) -> Result<T, DbError>,
    ) -> Result<(T, u64), MutationError> {
        let mut attempts = 0;
        // Held through a re-run's commit (see `retry_turn`).
        let mut _retry_turn = None;
        loop {
            attempts += 1;
            let mut transaction = Transaction::new(self.persistence.clone(), true, limits.clone())
                .map_err(DbError::Internal)?;
            let result = body(&mut transaction)?;
            if let Some(exceeded) = transaction.limit_exceeded() {
                return Err(DbError::LimitExceeded(exceeded.to_string()).into());
            }
            match self.commit(transaction).await {
                Ok(ts) => return Ok((result, ts)),
                Err(error) if error.is_retryable() && attempts <= self.max_retries => {
                    drop(_retry_turn.take());
                    _retry_turn = self.retry_turn(attempts).await;
                }
                Err(error) => return Err(MutationError::Commit { error, attempts }),
            }
        }
    }
}
