//! Scheduled jobs as documents of `_scheduled_functions`, in Convex's shape:
//!
//! ```text
//! {name: "module:function", args: [argsObject], scheduledTime: ms,
//!  state: {kind: "pending" | "inProgress" | "success" | "canceled"} | {kind: "failed", error},
//!  startedTime?: ms, completedTime?: ms}
//! ```
//!
//! (`startedTime` is Kiln's addition, for `kiln jobs`.) Every change of a job is a change
//! of its document inside a transaction, so scheduling from a mutation that fails leaves
//! nothing, and a job's state changes commit with whatever else the transaction wrote.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_values::Value;

use crate::database::id::DocumentId;
use crate::database::indexes::IndexRange;
use crate::database::persistence::Order;
use crate::database::system_tables::{BY_STATE, SCHEDULED_FUNCTIONS};
use crate::database::transaction::{DbError, Transaction};
use crate::function_path::FunctionPath;

/// Where a job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Pending,
    /// An action that has started (mutations go from pending to done in one commit).
    InProgress,
    Success,
    Failed(String),
    Canceled,
}

impl JobState {
    pub fn kind(&self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::InProgress => "inProgress",
            JobState::Success => "success",
            JobState::Failed(_) => "failed",
            JobState::Canceled => "canceled",
        }
    }

    fn to_value(&self) -> Value {
        let mut state = BTreeMap::from([("kind".to_string(), Value::from(self.kind()))]);
        if let JobState::Failed(error) = self {
            state.insert("error".to_string(), Value::from(error.as_str()));
        }
        Value::Object(state)
    }

    fn from_value(value: Option<&Value>) -> Result<Self, String> {
        let Some(Value::Object(state)) = value else {
            return Err("no state object".into());
        };
        match state.get("kind") {
            Some(Value::String(kind)) => match kind.as_str() {
                "pending" => Ok(JobState::Pending),
                "inProgress" => Ok(JobState::InProgress),
                "success" => Ok(JobState::Success),
                "canceled" => Ok(JobState::Canceled),
                "failed" => match state.get("error") {
                    Some(Value::String(error)) => Ok(JobState::Failed(error.clone())),
                    _ => Ok(JobState::Failed(String::new())),
                },
                other => Err(format!("unknown state kind {other:?}")),
            },
            _ => Err("state without a kind".into()),
        }
    }
}

/// One job, as its document holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: DocumentId,
    pub creation_time: f64,
    /// The function's path (`module:function`).
    pub name: String,
    /// The arguments object.
    pub args: Value,
    /// When it is due, in milliseconds since the Unix epoch.
    pub scheduled_time: f64,
    pub state: JobState,
    pub started_time: Option<f64>,
    pub completed_time: Option<f64>,
    /// An action in progress over a shared database: until when the host running it holds
    /// it (it renews the lease while the action runs; any host fails a job whose lease
    /// ran out, since the host running it has stopped).
    pub lease_until: Option<f64>,
}

impl Job {
    fn fields(&self) -> BTreeMap<String, Value> {
        let mut fields = BTreeMap::from([
            ("name".to_string(), Value::from(self.name.as_str())),
            ("args".to_string(), Value::Array(vec![self.args.clone()])),
            (
                "scheduledTime".to_string(),
                Value::Float64(self.scheduled_time),
            ),
            ("state".to_string(), self.state.to_value()),
        ]);
        if let Some(started) = self.started_time {
            fields.insert("startedTime".to_string(), Value::Float64(started));
        }
        if let Some(completed) = self.completed_time {
            fields.insert("completedTime".to_string(), Value::Float64(completed));
        }
        if let Some(lease) = self.lease_until {
            fields.insert("leaseUntil".to_string(), Value::Float64(lease));
        }
        fields
    }

    /// The job a document of `_scheduled_functions` holds.
    pub fn from_document(document: &crate::database::documents::Document) -> Result<Job, DbError> {
        let malformed = |what: String| {
            DbError::Internal(anyhow::anyhow!(
                "malformed job {} in {SCHEDULED_FUNCTIONS}: {what}",
                document.id
            ))
        };
        let fields = &document.fields;
        let time = |name: &str| match fields.get(name) {
            Some(Value::Float64(ms)) => Some(*ms),
            _ => None,
        };
        let name = match fields.get("name") {
            Some(Value::String(name)) => name.clone(),
            _ => return Err(malformed("no name".into())),
        };
        let args = match fields.get("args") {
            Some(Value::Array(args)) if args.len() == 1 => args[0].clone(),
            _ => return Err(malformed("args is not [object]".into())),
        };
        Ok(Job {
            id: document.id,
            creation_time: document.creation_time,
            name,
            args,
            scheduled_time: time("scheduledTime")
                .ok_or_else(|| malformed("no scheduledTime".into()))?,
            state: JobState::from_value(fields.get("state")).map_err(malformed)?,
            started_time: time("startedTime"),
            lease_until: time("leaseUntil"),
            completed_time: time("completedTime"),
        })
    }
}

/// The limits on scheduling, from the server's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleLimits {
    pub max_jobs_per_call: usize,
    pub max_args_bytes: usize,
    pub max_pending_jobs: usize,
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0)
}

/// Schedules `path` with `args` at `at_ms` in `transaction`. `pending_jobs` is how many
/// jobs are pending as of the last commit (`max_pending_jobs` counts this transaction's
/// on top). Each limit's error names it.
pub fn schedule(
    transaction: &mut Transaction,
    limits: &ScheduleLimits,
    pending_jobs: i64,
    path: &FunctionPath,
    args: Value,
    at_ms: f64,
) -> Result<DocumentId, DbError> {
    let counts = transaction.jobs();
    if counts.scheduled >= limits.max_jobs_per_call {
        return Err(DbError::LimitExceeded(format!(
            "too many jobs scheduled: one call may schedule at most {} (max_jobs_scheduled_per_call)",
            limits.max_jobs_per_call
        )));
    }
    let size = args.size_bytes();
    if size > limits.max_args_bytes {
        return Err(DbError::LimitExceeded(format!(
            "the arguments of a scheduled job are {size} bytes, over the limit of {} bytes (max_scheduled_args_bytes)",
            limits.max_args_bytes
        )));
    }
    if pending_jobs + counts.pending_delta >= limits.max_pending_jobs as i64 {
        return Err(DbError::LimitExceeded(format!(
            "too many pending jobs: at most {} may wait to run (max_pending_jobs)",
            limits.max_pending_jobs
        )));
    }
    if !at_ms.is_finite() {
        return Err(DbError::Forbidden(format!(
            "cannot schedule at {at_ms}: the time must be a finite number"
        )));
    }
    let job = Job {
        id: DocumentId::generate(0),
        creation_time: 0.0,
        name: path.to_string(),
        args,
        scheduled_time: at_ms.max(0.0),
        state: JobState::Pending,
        started_time: None,
        lease_until: None,
        completed_time: None,
    };
    let id = transaction.system_insert(SCHEDULED_FUNCTIONS, job.fields())?;
    transaction.count_jobs(1, 1);
    Ok(id)
}

/// The job with `id`: `Err` if `id` is not a job's id.
pub fn get(transaction: &mut Transaction, id: &DocumentId) -> Result<Option<Job>, DbError> {
    if transaction.table_name(id.table_number).as_deref() != Some(SCHEDULED_FUNCTIONS) {
        return Err(DbError::InvalidId(format!(
            "{id} is not the id of a scheduled job (a document of {SCHEDULED_FUNCTIONS})"
        )));
    }
    transaction
        .get(id)?
        .as_ref()
        .map(Job::from_document)
        .transpose()
}

/// Moves `job` to `state` (and counts it out of the pending jobs if it was pending).
fn set_state(
    transaction: &mut Transaction,
    mut job: Job,
    state: JobState,
    now: f64,
) -> Result<Job, DbError> {
    if job.state == JobState::Pending {
        transaction.count_jobs(0, -1);
    }
    match state {
        JobState::InProgress => job.started_time = Some(now),
        JobState::Pending => {}
        _ => {
            job.started_time.get_or_insert(now);
            job.completed_time = Some(now);
        }
    }
    if state != JobState::InProgress {
        job.lease_until = None;
    }
    job.state = state;
    transaction.system_replace(&job.id, job.fields())?;
    Ok(job)
}

/// Extends the leases of the actions in progress `ids` (those still in progress) to
/// `until`.
pub fn renew_leases(
    transaction: &mut Transaction,
    ids: &[DocumentId],
    until: f64,
) -> Result<(), DbError> {
    for id in ids {
        if let Some(mut job) = get(transaction, id)?
            && job.state == JobState::InProgress
        {
            job.lease_until = Some(until);
            transaction.system_replace(&job.id, job.fields())?;
        }
    }
    Ok(())
}

/// Cancels the job: a pending job will not run; a running action's job is recorded as
/// canceled (the action goes on); a finished job stays as it is. An unknown id is an error.
pub fn cancel(transaction: &mut Transaction, id: &DocumentId) -> Result<(), DbError> {
    let job = get(transaction, id)?
        .ok_or_else(|| DbError::NotFound(format!("cancel: no scheduled job with id {id}")))?;
    if matches!(job.state, JobState::Pending | JobState::InProgress) {
        set_state(transaction, job, JobState::Canceled, now_ms())?;
    }
    Ok(())
}

/// Starts a pending job: an action's (marked in progress, durably, before it runs) or a
/// mutation's (its state changes with the mutation's own writes). `None` if the job is no
/// longer pending (canceled, or run already): it must not run.
pub fn start(
    transaction: &mut Transaction,
    id: &DocumentId,
    started: f64,
    mark_in_progress: bool,
    lease_until: Option<f64>,
) -> Result<Option<Job>, DbError> {
    match get(transaction, id)? {
        Some(mut job) if job.state == JobState::Pending => {
            if mark_in_progress {
                job.lease_until = lease_until;
                set_state(transaction, job, JobState::InProgress, started).map(Some)
            } else {
                Ok(Some(job))
            }
        }
        _ => Ok(None),
    }
}

/// Records how a job that was `expected` (pending or in progress) ended; a job whose state
/// changed meanwhile (canceled while its action ran) is left as it is.
pub fn finish(
    transaction: &mut Transaction,
    id: &DocumentId,
    expected: &JobState,
    started: f64,
    outcome: Result<(), String>,
) -> Result<(), DbError> {
    let Some(mut job) = get(transaction, id)? else {
        return Ok(());
    };
    if job.state != *expected {
        return Ok(());
    }
    job.started_time.get_or_insert(started);
    let state = match outcome {
        Ok(()) => JobState::Success,
        Err(error) => JobState::Failed(error),
    };
    set_state(transaction, job, state, now_ms())?;
    Ok(())
}

/// Deletes the jobs that finished (succeeded, failed or were canceled) before `cutoff`
/// (ms since the epoch) among the `scan` oldest after the index key `after`; returns how
/// many it deleted and where the next step continues (`None`: no job left to look at).
pub fn delete_finished_before(
    transaction: &mut Transaction,
    cutoff: f64,
    scan: usize,
    after: Option<&[u8]>,
) -> Result<(usize, Option<Vec<u8>>), DbError> {
    let page = transaction.scan(
        SCHEDULED_FUNCTIONS,
        crate::database::indexes::BY_CREATION_TIME,
        &IndexRange::default(),
        Order::Asc,
        scan,
        after,
    )?;
    let mut next = (page.len() == scan)
        .then(|| page.last().map(|(key, _)| key.clone()))
        .flatten();
    let mut deleted = 0;
    for (_, document) in &page {
        // Jobs are created before they finish: none created after the cutoff finished
        // before it.
        if document.creation_time >= cutoff {
            next = None;
            break;
        }
        let job = Job::from_document(document)?;
        let finished = matches!(
            job.state,
            JobState::Success | JobState::Failed(_) | JobState::Canceled
        );
        if finished
            && job
                .completed_time
                .is_some_and(|completed| completed < cutoff)
        {
            transaction.system_delete(&job.id)?;
            deleted += 1;
        }
    }
    Ok((deleted, next))
}

/// The range of `by_state` holding the jobs in `state`, by due time.
pub fn state_range(state: &JobState) -> IndexRange {
    IndexRange {
        equal: vec![("state.kind".to_string(), Value::from(state.kind()))],
        ..IndexRange::default()
    }
}

/// Up to `limit` jobs in `state`, soonest due first, after the index key `after`.
pub fn in_state(
    transaction: &mut Transaction,
    state: &JobState,
    limit: usize,
    after: Option<&[u8]>,
) -> Result<Vec<(Vec<u8>, Job)>, DbError> {
    transaction
        .scan(
            SCHEDULED_FUNCTIONS,
            BY_STATE,
            &state_range(state),
            Order::Asc,
            limit,
            after,
        )?
        .into_iter()
        .map(|(key, document)| Ok((key, Job::from_document(&document)?)))
        .collect()
}
