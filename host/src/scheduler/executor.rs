//! The executor: runs due jobs of `_scheduled_functions`, soonest first, at most
//! `scheduler_concurrency` at once.
//!
//! It never polls. Each pass reads the pending jobs (by due time) at one snapshot and
//! subscribes to what it read, as a subscribed query does: a commit that schedules,
//! cancels or finishes a job in that range wakes it, and so does the due time of the
//! next job that is not due yet.
//!
//! * A **mutation** job runs through [`Runtime::invoke_mutation_then`]: its job is marked
//!   done in the mutation's own transaction, after checking it is still pending, so its
//!   writes and its job's state commit together. A crash before that commit leaves the
//!   job pending (it runs again after the restart); after it, done (it never runs again).
//!   A mutation that fails is marked failed with its error in a transaction of its own.
//! * An **action** job is marked `inProgress` in a commit of its own before it starts,
//!   and done when it ends. A job still in progress when the server starts was cut off
//!   by a crash: it is marked failed and never re-run (at most once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::crons;
use super::jobs::{self, Job, JobState, ScheduleLimits, now_ms};
use crate::database::id::DocumentId;
use crate::database::store::DocumentStore;
use crate::database::subscriptions::Subscription;
use crate::deploy::Deployments;
use crate::function_path::FunctionPath;
use crate::runtime::{
    BeforeCommit, CallContext, FunctionFailure, FunctionKind, Invocation, Runtime,
};

/// The error a job left in progress by a crash is marked failed with.
pub const RESTARTED_WHILE_RUNNING: &str = "server restarted while the action was running";

/// What an action in progress whose lease ran out is failed with (several hosts: the host
/// running it stopped).
pub const LEASE_EXPIRED: &str = "the server running the action stopped while it ran";

/// Jobs read per pass beyond the free slots: enough to see past the jobs already running.
const SCAN_SLACK: usize = 64;

/// Jobs marked failed per transaction when the server starts.
const RECOVERY_CHUNK: usize = 256;

pub struct Executor {
    runtime: Arc<Runtime>,
    deployments: Arc<Deployments>,
    store: Arc<DocumentStore>,
    slots: Arc<Semaphore>,
    concurrency: usize,
    /// Jobs started and not yet recorded as done: a pass that still sees one pending (its
    /// commit is not in the pass's snapshot) does not start it again.
    running: Mutex<HashSet<DocumentId>>,
    wake: Arc<Notify>,
    /// The last pass's read of the pending jobs: a commit that changes them wakes `wake`.
    watching: Mutex<Option<Arc<Subscription>>>,
    /// Over a shared database: the actions this host runs, whose leases it renews (see
    /// [`Executor::keep_leases`]). `None` over redb, where one host runs everything.
    leases: Option<Mutex<HashSet<DocumentId>>>,
}

impl Executor {
    /// Recovers what a crash left (actions in progress), counts the pending jobs, and
    /// starts running due jobs in the background.
    pub async fn start(
        runtime: Arc<Runtime>,
        deployments: Arc<Deployments>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = runtime.store.clone();
        let store_is_shared = store.kv().shared();
        let concurrency = runtime.limits().scheduler_concurrency;
        let executor = Arc::new(Self {
            runtime,
            deployments,
            store,
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            running: Mutex::new(HashSet::new()),
            wake: Arc::new(Notify::new()),
            watching: Mutex::new(None),
            leases: store_is_shared.then(|| Mutex::new(HashSet::new())),
        });
        if store_is_shared {
            // Other hosts may be running the actions in progress: the leases tell which
            // ones no host runs any more.
            tokio::spawn(executor.clone().keep_leases());
        } else {
            let failed = executor.fail_interrupted_actions().await?;
            if failed > 0 {
                tracing::warn!(
                    jobs = failed,
                    "scheduled actions were running when the server stopped: marked failed, not re-run"
                );
            }
        }
        executor.count_pending()?;
        // A deploy installs its crons after it commits: a crash in between is made up here.
        let crons = executor.deployments.current().record.crons.clone();
        crons::install_all(&executor.store, &crons).await?;
        let running = executor.clone();
        tokio::spawn(async move { running.run().await });
        let retention = executor.clone();
        tokio::spawn(async move { retention.forget_old_jobs().await });
        Ok(executor)
    }

    /// Deletes the jobs that finished more than `scheduled_job_retention_s` ago, as
    /// Convex keeps them a week: at start and then every hour, a chunk per transaction.
    async fn forget_old_jobs(self: Arc<Self>) {
        let retention_ms = self.runtime.limits().scheduled_job_retention_s as f64 * 1000.0;
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            let cutoff = now_ms() - retention_ms;
            let mut after: Option<Vec<u8>> = None;
            let mut total = 0;
            loop {
                let step = self
                    .store
                    .run_mutation(|transaction| {
                        jobs::delete_finished_before(
                            transaction,
                            cutoff,
                            RECOVERY_CHUNK,
                            after.as_deref(),
                        )
                    })
                    .await;
                match step {
                    Ok(((deleted, next), _)) => {
                        total += deleted;
                        match next {
                            Some(next) => after = Some(next),
                            None => break,
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot delete old finished jobs");
                        break;
                    }
                }
            }
            if total > 0 {
                tracing::info!(
                    deleted = total,
                    "finished jobs past their retention deleted"
                );
            }
        }
    }

    /// Marks every job left in progress failed: each was an action cut off by a crash.
    async fn fail_interrupted_actions(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let (failed, _) = self
                .store
                .run_mutation(|transaction| {
                    let interrupted =
                        jobs::in_state(transaction, &JobState::InProgress, RECOVERY_CHUNK, None)?;
                    for (_, job) in &interrupted {
                        let started = job.started_time.unwrap_or_else(now_ms);
                        jobs::finish(
                            transaction,
                            &job.id,
                            &JobState::InProgress,
                            started,
                            Err(RESTARTED_WHILE_RUNNING.to_string()),
                        )?;
                    }
                    Ok(interrupted.len())
                })
                .await?;
            total += failed;
            if failed < RECOVERY_CHUNK {
                return Ok(total);
            }
        }
    }

    /// Over a shared database, every third of `scheduled_action_lease_s`: renews the
    /// leases of the actions this host runs, and fails the actions in progress whose lease
    /// ran out (or that have none: left by a server over redb before a migration).
    async fn keep_leases(self: Arc<Self>) {
        let lease_ms = self.runtime.limits().scheduled_action_lease_s as f64 * 1000.0;
        let mut every = tokio::time::interval(Duration::from_secs_f64(lease_ms / 3000.0));
        loop {
            every.tick().await;
            let ours: Vec<DocumentId> = match &self.leases {
                Some(leases) => leases.lock().expect("leases").iter().copied().collect(),
                None => return,
            };
            let renewed = self
                .store
                .run_mutation(|transaction| {
                    jobs::renew_leases(transaction, &ours, now_ms() + lease_ms)
                })
                .await;
            if let Err(err) = renewed {
                tracing::warn!(error = %err, "cannot renew the leases of running actions");
                continue;
            }
            let expired = self
                .store
                .run_mutation(|transaction| {
                    let now = now_ms();
                    let running =
                        jobs::in_state(transaction, &JobState::InProgress, RECOVERY_CHUNK, None)?;
                    let mut failed = 0;
                    for (_, job) in running {
                        if job.lease_until.is_some_and(|until| until >= now) {
                            continue;
                        }
                        let started = job.started_time.unwrap_or(now);
                        jobs::finish(
                            transaction,
                            &job.id,
                            &JobState::InProgress,
                            started,
                            Err(LEASE_EXPIRED.to_string()),
                        )?;
                        failed += 1;
                    }
                    Ok(failed)
                })
                .await;
            match expired {
                Ok((0, _)) => {}
                Ok((failed, _)) => tracing::warn!(
                    jobs = failed,
                    "scheduled actions whose server stopped while they ran: marked failed, not re-run"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot check the leases of running actions")
                }
            }
        }
    }

    /// Counts the pending jobs, for `max_pending_jobs`.
    fn count_pending(&self) -> anyhow::Result<()> {
        let mut transaction = self.store.begin_admin_read()?;
        let mut count = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page =
                jobs::in_state(&mut transaction, &JobState::Pending, 1024, after.as_deref())?;
            count += page.len();
            match page.into_iter().last() {
                Some((key, _)) => after = Some(key),
                None => break,
            }
        }
        self.store.set_pending_jobs(count as i64);
        Ok(())
    }

    async fn run(self: Arc<Self>) {
        loop {
            match self.pass().await {
                Ok(next_due) => self.wait(next_due).await,
                Err(err) => {
                    tracing::error!(error = ?err, "the scheduler cannot read its jobs; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One pass: starts the due jobs (waiting for free slots as it goes), subscribes to
    /// the pending jobs it read, and returns when the next one not yet due is due.
    async fn pass(self: &Arc<Self>) -> anyhow::Result<Option<f64>> {
        let snapshot = self.store.snapshot()?;
        let mut transaction = self.store.begin_admin_read_at(snapshot);
        let limit = self.concurrency + SCAN_SLACK;
        let pending = jobs::in_state(&mut transaction, &JobState::Pending, limit, None)?;
        let (due_crons, next_cron) = crons::due(&mut transaction, now_ms(), SCAN_SLACK)?;
        let (ts, reads) = transaction.into_reads();
        // Subscribed before anything starts, so the commits of what starts wake the next pass.
        let subscription = self.store.subscriptions().subscribe(reads, ts);
        subscription.watch(&self.wake);

        // A cron's run is a job: started here, run below or by the next pass.
        for cron in due_crons {
            let limits = self.schedule_limits();
            self.store
                .run_mutation(|transaction| {
                    crons::fire(
                        transaction,
                        &cron,
                        now_ms(),
                        self.store.pending_jobs(),
                        &limits,
                    )
                })
                .await?;
        }
        let mut next_due = next_cron;
        for (_, job) in pending {
            let now = now_ms();
            if job.scheduled_time > now {
                next_due = Some(
                    next_due.map_or(job.scheduled_time, |due: f64| due.min(job.scheduled_time)),
                );
                break;
            }
            if self.running.lock().expect("running jobs").contains(&job.id) {
                continue;
            }
            let slot = self.slots.clone().acquire_owned().await?;
            if !self.running.lock().expect("running jobs").insert(job.id) {
                continue;
            }
            let executor = self.clone();
            tokio::spawn(async move { executor.run_job(job, slot).await });
        }
        // The pass's subscription lives until the next pass replaces it.
        *self.watching.lock().expect("watching") = Some(subscription);
        Ok(next_due)
    }

    fn schedule_limits(&self) -> ScheduleLimits {
        let limits = self.runtime.limits();
        ScheduleLimits {
            max_jobs_per_call: usize::MAX,
            max_args_bytes: limits.max_scheduled_args_bytes,
            max_pending_jobs: limits.max_pending_jobs,
        }
    }

    /// Waits for a commit that changes the pending jobs, or for `next_due`.
    async fn wait(&self, next_due: Option<f64>) {
        let sleep = async {
            match next_due {
                Some(due) => {
                    let ms = (due - now_ms()).max(0.0);
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.wake.notified() => {}
            () = sleep => {}
        }
    }

    async fn run_job(self: Arc<Self>, job: Job, slot: OwnedSemaphorePermit) {
        let id = job.id;
        if let Err(err) = self.run_job_inner(job).await {
            tracing::error!(job = %id, error = ?err, "a scheduled job could not be recorded");
        }
        self.running.lock().expect("running jobs").remove(&id);
        drop(slot);
        // A job that could not be recorded stays pending: the next pass tries again.
        self.wake.notify_one();
    }

    async fn run_job_inner(&self, job: Job) -> anyhow::Result<()> {
        let started = now_ms();
        let deployment = self.deployments.current();
        let found = FunctionPath::parse(&job.name).ok().and_then(|path| {
            deployment
                .function(&path)
                .map(|(m, s)| (m.clone(), s.clone()))
        });
        let Some((module, spec)) = found else {
            return self
                .record(
                    &job,
                    &JobState::Pending,
                    started,
                    Err(format!(
                        "Could not find function for '{}': the deployment no longer has it",
                        job.name
                    )),
                )
                .await;
        };
        // Scheduled functions run as no user, as in Convex.
        let context = CallContext::root(deployment.clone(), None);
        match spec.kind {
            FunctionKind::Mutation => {
                let id = job.id;
                let mark_done: Box<BeforeCommit> = Box::new(move |transaction| {
                    let started_job = jobs::start(transaction, &id, started, false, None)?;
                    if started_job.is_none() {
                        return Err(crate::database::transaction::DbError::Forbidden(
                            NO_LONGER_PENDING.to_string(),
                        ));
                    }
                    jobs::finish(transaction, &id, &JobState::Pending, started, Ok(()))
                });
                let invocation = self
                    .runtime
                    .invoke_mutation_then(&context, &module, &spec.name, &job.args, &*mark_done)
                    .await;
                self.log(&job, &invocation);
                match invocation.outcome {
                    Ok(_) => Ok(()),
                    Err(FunctionFailure::Stopped(message)) if message == NO_LONGER_PENDING => {
                        Ok(())
                    }
                    Err(failure) => {
                        self.record(
                            &job,
                            &JobState::Pending,
                            started,
                            Err(failure_message(failure)),
                        )
                        .await
                    }
                }
            }
            FunctionKind::Action => {
                let lease_ms = self.runtime.limits().scheduled_action_lease_s as f64 * 1000.0;
                let lease_until = self.leases.as_ref().map(|_| started + lease_ms);
                let (started_job, _) = self
                    .store
                    .run_mutation(|transaction| {
                        jobs::start(transaction, &job.id, started, true, lease_until)
                    })
                    .await?;
                if started_job.is_none() {
                    return Ok(());
                }
                let _lease = self
                    .leases
                    .as_ref()
                    .map(|leases| Lease::hold(leases, job.id));
                let invocation = self
                    .runtime
                    .invoke(
                        &context,
                        &module,
                        &spec.name,
                        FunctionKind::Action,
                        &job.args,
                    )
                    .await;
                self.log(&job, &invocation);
                let outcome = invocation.outcome.map(|_| ()).map_err(failure_message);
                self.record(&job, &JobState::InProgress, started, outcome)
                    .await
            }
            other => {
                self.record(
                    &job,
                    &JobState::Pending,
                    started,
                    Err(format!(
                        "'{}' is {}: only mutations and actions can be scheduled",
                        job.name,
                        other.with_article()
                    )),
                )
                .await
            }
        }
    }

    /// Records how `job` ended, if it is still `expected` (pending or in progress).
    async fn record(
        &self,
        job: &Job,
        expected: &JobState,
        started: f64,
        outcome: Result<(), String>,
    ) -> anyhow::Result<()> {
        self.store
            .run_mutation(|transaction| {
                jobs::finish(transaction, &job.id, expected, started, outcome.clone())
            })
            .await?;
        Ok(())
    }

    fn log(&self, job: &Job, invocation: &Invocation) {
        for line in &invocation.log_lines {
            tracing::info!(target: "kiln::function_log", job = %job.id, function = %job.name, "{line}");
        }
        if let Err(failure) = &invocation.outcome {
            tracing::info!(job = %job.id, function = %job.name, "scheduled job failed: {failure}");
        }
    }
}

/// This host's hold on a running action's lease: renewed while held, given up when
/// dropped.
struct Lease<'a> {
    leases: &'a Mutex<HashSet<DocumentId>>,
    id: DocumentId,
}

impl<'a> Lease<'a> {
    fn hold(leases: &'a Mutex<HashSet<DocumentId>>, id: DocumentId) -> Self {
        leases.lock().expect("leases").insert(id);
        Self { leases, id }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.leases.lock().expect("leases").remove(&self.id);
    }
}

/// The error a scheduled mutation's commit is refused with when its job was canceled (or
/// run) meanwhile: nothing of it commits.
const NO_LONGER_PENDING: &str = "the scheduled job is no longer pending";

/// What a failed job's state records: the message, as the caller of the function would
/// have seen it (an internal error's cause stays in the server log).
fn failure_message(failure: FunctionFailure) -> String {
    if let FunctionFailure::Internal(cause) = &failure {
        tracing::error!("internal error in a scheduled job: {cause}");
    }
    failure.to_string()
}
