//! `kiln:platform/scheduler`: functions scheduling mutations and actions to run later
//! (`scheduler::jobs` holds the jobs' documents; `scheduler::executor` runs them).
//!
//! A mutation schedules and cancels inside its own transaction, so a mutation that fails
//! leaves no job behind; an action's call commits a transaction of its own at once;
//! a query may do neither. What is scheduled must be a mutation or an action of the
//! deployment the call runs in, checked when it is scheduled, as Convex does.

use kiln_values::Value;

use crate::database::id::DocumentId;
use crate::database::store::MutationError;
use crate::database::transaction::{DbError, Transaction};
use crate::function_path::FunctionPath;
use crate::runtime::bindings::kiln::platform::scheduler::Host;
use crate::runtime::{FunctionKind, InvocationState};
use crate::scheduler::jobs::{self, ScheduleLimits, now_ms};

impl Host for InvocationState {
    async fn run_after(
        &mut self,
        delay_ms: f64,
        path: String,
        args: String,
    ) -> Result<String, String> {
        if !(delay_ms >= 0.0 && delay_ms.is_finite()) {
            return Err(format!(
                "run-after: the delay must be a finite number of milliseconds, at least 0 (got {delay_ms})"
            ));
        }
        self.schedule(now_ms() + delay_ms, &path, &args).await
    }

    async fn run_at(
        &mut self,
        timestamp_ms: f64,
        path: String,
        args: String,
    ) -> Result<String, String> {
        if !timestamp_ms.is_finite() {
            return Err(format!(
                "run-at: the time must be a finite number of milliseconds since the Unix epoch (got {timestamp_ms})"
            ));
        }
        self.schedule(timestamp_ms, &path, &args).await
    }

    async fn cancel(&mut self, job_id: String) -> Result<(), String> {
        self.refuse_in_query("cancel")?;
        let id = DocumentId::decode(&job_id).map_err(|err| format!("cancel: {err}"))?;
        self.in_own_or_callers_transaction(move |transaction, _| jobs::cancel(transaction, &id))
            .await
    }
}

impl InvocationState {
    fn refuse_in_query(&self, what: &str) -> Result<(), String> {
        if self.kind == FunctionKind::Query {
            return Err(format!(
                "scheduler.{what} is not allowed in a query: queries only read; schedule from a mutation or an action"
            ));
        }
        Ok(())
    }

    async fn schedule(&mut self, at_ms: f64, path: &str, args: &str) -> Result<String, String> {
        self.refuse_in_query("schedule")?;
        let path = FunctionPath::parse(path).map_err(|err| err.to_string())?;
        match self.context.functions.find(&path) {
            None => {
                return Err(format!(
                    "cannot schedule '{path}': the deployment has no function at that path"
                ));
            }
            Some((_, spec))
                if !matches!(spec.kind, FunctionKind::Mutation | FunctionKind::Action) =>
            {
                return Err(format!(
                    "cannot schedule '{path}': it is {}; only mutations and actions can be scheduled",
                    spec.kind.with_article()
                ));
            }
            Some(_) => {}
        }
        let args = self.parse_value(args, "args")?;
        if !matches!(args, Value::Object(_)) {
            return Err(format!(
                "invalid args: args must be an object, got {}",
                args.type_name()
            ));
        }
        let limits = self.runtime.limits();
        let limits = ScheduleLimits {
            max_jobs_per_call: limits.max_jobs_scheduled_per_call,
            max_args_bytes: limits.max_scheduled_args_bytes,
            max_pending_jobs: limits.max_pending_jobs,
        };
        let id = self
            .in_own_or_callers_transaction(move |transaction, pending| {
                jobs::schedule(transaction, &limits, pending, &path, args.clone(), at_ms)
            })
            .await?;
        self.jobs_scheduled += 1;
        Ok(id.encode())
    }

    /// Runs `change` in the mutation's transaction, or, in an action, in a transaction of
    /// its own that commits before this returns. `change` gets the pending jobs count.
    async fn in_own_or_callers_transaction<T>(
        &mut self,
        mut change: impl FnMut(&mut Transaction, i64) -> Result<T, DbError>,
    ) -> Result<T, String> {
        let store = self.runtime.store.clone();
        if self.kind.is_action() {
            // An action's jobs count per call, as a mutation's do: its transactions are
            // one per scheduling, so the count is the call's.
            let limit = self.runtime.limits().max_jobs_scheduled_per_call;
            if self.jobs_scheduled >= limit {
                return Err(format!(
                    "too many jobs scheduled: one call may schedule at most {limit} (max_jobs_scheduled_per_call)"
                ));
            }
            return store
                .run_mutation(|transaction| change(transaction, store.pending_jobs()))
                .await
                .map(|(value, _)| value)
                .map_err(|err| match err {
                    MutationError::Db(err) => super::db::guest_error(err),
                    MutationError::Commit { .. } => {
                        tracing::error!(error = %err, "cannot commit a scheduler change");
                        "internal error: the server log has the details".to_string()
                    }
                });
        }
        let pending = store.pending_jobs();
        let transaction = self.transaction()?;
        change(transaction, pending).map_err(super::db::guest_error)
    }
}
