//! Running one function: a fresh store with the kind's limits, a fresh instance, the call,
//! and the translation of every way it can fail into an error that names the cause.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kiln_values::Value;
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, Trap};

use super::bindings::kiln::platform::types as wit;
use super::bindings::{FunctionModule, FunctionModulePre};
use super::call::CallContext;
use super::determinism::FrozenInputs;
use super::engine::FUEL_YIELD_INTERVAL;
use super::guest_call::GuestCall;
use super::invocation::{DbAccess, InvocationState, MemoryLimitExceeded};
use super::returned::Returned;
use super::{FunctionKind, LoadedModule, LogLine, Runtime};
use crate::database::committer::CommitError;
use crate::database::transaction::Transaction;

/// The outcome of one call, with the lines it logged (also when it failed).
#[derive(Debug)]
pub struct Invocation {
    pub outcome: Result<Returned, FunctionFailure>,
    pub log_lines: Vec<LogLine>,
    /// A mutation that succeeded: the commit it made (its snapshot's if it wrote nothing).
    pub commit_ts: Option<u64>,
    /// The store the call ran in, still to be dropped (see [`SpentInstance`]).
    pub spent: Option<SpentInstance>,
}

/// A finished call's store. Dropping it returns the instance to the pool, and the pool
/// resets the instance's memory then (wasmtime's pagemap scan and the copy back of the
/// pages the call wrote): about 40% of a trivial call's instantiate-and-call time (`cargo
/// xtask profile instantiate`). Dropped with its [`Invocation`] by default; a caller with
/// an answer to send drops it after that with [`SpentInstance::drop_after_this_task_waits`].
/// The reset happens before the pool hands the slot out again either way: no call ever
/// sees another's memory.
pub struct SpentInstance {
    _store: Store<InvocationState>,
}

impl SpentInstance {
    /// Drops the store once the current task next waits: an HTTP call's after its answer
    /// has been written (`cargo xtask profile trivial-1`: 7328 -> 8214-9432 requests/s).
    /// Spawned from a worker thread, the drop waits in that worker's next-task slot, runs
    /// as soon as the task waits and wakes no other thread; so the instances waiting for
    /// their reset are about one per connection that just answered, and each still holds
    /// its pool slot (`max_concurrent_instances`) until then.
    pub fn drop_after_this_task_waits(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { drop(self) });
            }
            Err(_) => drop(self),
        }
    }
}

impl std::fmt::Debug for SpentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpentInstance")
    }
}

impl Invocation {
    /// A call refused before it ran (its arguments did not pass): no log lines.
    fn refused(failure: FunctionFailure) -> Self {
        Self {
            outcome: Err(failure),
            log_lines: Vec::new(),
            commit_ts: None,
            spent: None,
        }
    }
}

/// Why a call produced no value. Every variant's message is meant for the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FunctionFailure {
    /// The function returned an error (Convex's `ConvexError`, or a thrown `Error`).
    #[error("{message}")]
    Raised {
        message: String,
        data: Option<Value>,
    },
    /// The sandbox stopped the function: a limit was reached or the guest trapped.
    #[error("{0}")]
    Stopped(String),
    /// The function returned something that is not a valid Convex value within limits, or
    /// that does not match its `returns` validator.
    #[error("{0}")]
    InvalidResult(String),
    /// The arguments do not match the function's `args` validator; it did not run.
    #[error("{0}")]
    InvalidArgs(String),
    /// The host failed. The caller is told only that: the cause (which may hold a wasm
    /// backtrace or a storage error) is for the server's log, never for the caller.
    #[error("internal error: the server log has the details")]
    Internal(String),
}

/// A transaction past one of its limits fails its function with that limit's error, even
/// if the function caught it and returned (a value or an error of its own): the limit
/// bounds the whole transaction. A trap or a sandbox limit that stopped it afterwards is
/// reported as it is.
fn poison_by_limit(invocation: &mut Invocation, transaction: Option<&Transaction>) {
    if let Some(exceeded) = transaction.and_then(Transaction::limit_exceeded)
        && !matches!(invocation.outcome, Err(FunctionFailure::Stopped(_)))
    {
        invocation.outcome = Err(FunctionFailure::Stopped(exceeded.to_string()));
    }
}

/// A call ran past its kind's wall-clock limit.
#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct TimedOut;

/// What [`Runtime::invoke_mutation_then`] runs in a mutation's transaction before it commits.
pub type BeforeCommit =
    dyn Fn(&mut Transaction) -> Result<(), crate::database::transaction::DbError> + Send + Sync;

type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl Runtime {
    /// Runs `function` of `module` with `args` (already checked against the value limits)
    /// with the database access its kind has: a query reads one snapshot; a mutation runs
    /// in a transaction that commits when it returns, and is re-run from scratch if it
    /// conflicts with a concurrent one; an action has no transaction.
    pub async fn invoke(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
    ) -> Invocation {
        self.invoke_with(context, module, function, kind, args, None)
            .await
    }

    /// [`Runtime::invoke`], with `before_commit` run in a mutation's transaction before it
    /// commits (see [`Runtime::invoke_mutation_then`]).
    async fn invoke_with(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
        before_commit: Option<&BeforeCommit>,
    ) -> Invocation {
        if let Err(failure) = self.check_args(module.function(function), args, None) {
            return Invocation::refused(failure);
        }
        if kind.is_action() {
            return self
                .invoke_once(
                    context,
                    module,
                    function,
                    kind,
                    args,
                    DbAccess::Denied,
                    None,
                )
                .await
                .0;
        }
        // The clock and seed are fixed here, once per call and before the retry loop, so
        // that a re-run after a conflict sees the same inputs as the first run.
        self.invoke_deterministic_with(
            context,
            module,
            function,
            kind,
            args,
            FrozenInputs::now(),
            before_commit,
        )
        .await
    }

    /// Runs a query or mutation with `frozen` as its clock and seed: every run of it (a
    /// mutation re-run after a conflict) gets the same. (The determinism tests give it
    /// their own inputs; calls get theirs in [`Runtime::invoke`].)
    #[cfg(test)]
    pub(crate) async fn invoke_deterministic(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
        frozen: FrozenInputs,
    ) -> Invocation {
        self.invoke_deterministic_with(context, module, function, kind, args, frozen, None)
            .await
    }

    /// Runs the mutation `function` as [`Runtime::invoke`] does, and, when it succeeds,
    /// `before_commit` in its transaction just before the commit: what it writes commits
    /// with the mutation's writes, in each run (a conflict re-runs both). If it fails,
    /// nothing commits and the call fails with its error. The scheduler records a
    /// scheduled mutation's job as done this way, so the job runs exactly once.
    pub async fn invoke_mutation_then(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        args: &Value,
        before_commit: &BeforeCommit,
    ) -> Invocation {
        let kind = FunctionKind::Mutation;
        self.invoke_with(context, module, function, kind, args, Some(before_commit))
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke_deterministic_with(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
        frozen: FrozenInputs,
        before_commit: Option<&BeforeCommit>,
    ) -> Invocation {
        let mut attempts = 0;
        // Held through a re-run's commit (see `DocumentStore::retry_turn`).
        let mut _retry_turn = None;
        loop {
            attempts += 1;
            // Each run begins its transaction afresh, at the latest commit, on its first
            // database call.
            let db = DbAccess::NotBegun {
                store: self.store.clone(),
                writable: kind == FunctionKind::Mutation,
            };
            // The time limit starts once the run has its slot; the slot goes back before
            // the commit (see `run_slots`).
            let slot = self.run_slots.take(kind).await;
            let (mut invocation, db) = self
                .invoke_once(context, module, function, kind, args, db, Some(frozen))
                .await;
            drop(slot);
            let transaction = match db.into_transaction() {
                Ok(transaction) => transaction,
                Err(lost) => {
                    // Whatever the function returned, none of it may commit.
                    invocation.outcome =
                        Err(FunctionFailure::Internal(format!("{kind} failed: {lost}")));
                    return invocation;
                }
            };
            poison_by_limit(&mut invocation, transaction.as_ref());
            // A mutation that wrote nothing has no transaction yet; `before_commit`
            // needs one.
            let transaction = match (transaction, before_commit, &invocation.outcome) {
                (None, Some(_), Ok(_)) => match self.store.begin_mutation() {
                    Ok(transaction) => Some(transaction),
                    Err(err) => {
                        invocation.outcome = Err(FunctionFailure::Internal(format!(
                            "cannot begin a transaction: {err:#}"
                        )));
                        return invocation;
                    }
                },
                (transaction, _, _) => transaction,
            };
            // A query commits nothing; a mutation that failed leaves nothing behind.
            let (FunctionKind::Mutation, Ok(_), Some(mut transaction)) =
                (kind, &invocation.outcome, transaction)
            else {
                return invocation;
            };
            if let Some(before_commit) = before_commit
                && let Err(err) = before_commit(&mut transaction)
            {
                invocation.outcome = Err(FunctionFailure::Stopped(err.to_string()));
                return invocation;
            }
            let files_deleted = transaction.files_deleted();
            // The instance's reset runs while the commit is waited for.
            if let Some(spent) = invocation.spent.take() {
                spent.drop_after_this_task_waits();
            }
            match self.store.commit(transaction).await {
                Ok(commit_ts) => {
                    invocation.commit_ts = Some(commit_ts);
                    self.forget_files(&files_deleted).await;
                    return invocation;
                }
                Err(err) if err.is_retryable() && attempts <= self.limits.max_mutation_retries => {
                    tracing::debug!(attempts, "mutation conflicted; re-running it: {err}");
                    // The turn held so far (if any) goes before waiting for the next.
                    drop(_retry_turn.take());
                    _retry_turn = self.store.retry_turn(attempts).await;
                }
                Err(err) => {
                    let outcome = match err {
                        CommitError::Internal(cause) => {
                            FunctionFailure::Internal(format!("mutation could not commit: {cause}"))
                        }
                        err => FunctionFailure::Stopped(format!(
                            "mutation could not commit after {attempts} attempts: {err}"
                        )),
                    };
                    return Invocation {
                        outcome: Err(outcome),
                        log_lines: invocation.log_lines,
                        commit_ts: None,
                        spent: invocation.spent,
                    };
                }
            }
        }
    }

    /// After a commit that deleted file records: their files go (unless another record
    /// has the same content).
    async fn forget_files(&self, files: &[[u8; 32]]) {
        let Some(storage) = self.storage() else {
            return;
        };
        for sha256 in files {
            if let Err(err) = storage.forget(&self.store, sha256).await {
                tracing::error!(error = ?err, "cannot remove a deleted file's bytes");
            }
        }
    }

    /// Runs the query `function` in `transaction` (read-only, on a snapshot the caller
    /// chose) and hands back what it read: a subscription's run. Its clock is frozen at
    /// the call, as for any query.
    pub async fn invoke_query_at(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        args: &Value,
        transaction: Transaction,
    ) -> (Invocation, Option<Transaction>) {
        if let Err(failure) = self.check_args(module.function(function), args, Some(&transaction)) {
            return (Invocation::refused(failure), Some(transaction));
        }
        let db = DbAccess::Begun(Box::new(transaction));
        let kind = FunctionKind::Query;
        let slot = self.run_slots.take(kind).await;
        let (mut invocation, db) = self
            .invoke_once(
                context,
                module,
                function,
                kind,
                args,
                db,
                Some(FrozenInputs::now()),
            )
            .await;
        drop(slot);
        let transaction = match db.into_transaction() {
            Ok(transaction) => transaction,
            Err(lost) => {
                invocation.outcome =
                    Err(FunctionFailure::Internal(format!("query failed: {lost}")));
                None
            }
        };
        poison_by_limit(&mut invocation, transaction.as_ref());
        (invocation, transaction)
    }

    /// Runs a query or mutation inside `transaction`, the transaction of the query or
    /// mutation that called it, and hands the transaction back (with the callee's writes;
    /// the caller undoes them if the callee failed). Commits nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn invoke_in_transaction(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
        transaction: Transaction,
        frozen: FrozenInputs,
    ) -> (Invocation, DbAccess) {
        if let Err(failure) = self.check_args(module.function(function), args, Some(&transaction)) {
            return (
                Invocation::refused(failure),
                DbAccess::Begun(Box::new(transaction)),
            );
        }
        let db = DbAccess::Begun(Box::new(transaction));
        let (mut invocation, db) = self
            .invoke_once(context, module, function, kind, args, db, Some(frozen))
            .await;
        if let DbAccess::Begun(transaction) = &db {
            poison_by_limit(&mut invocation, Some(transaction));
        }
        (invocation, db)
    }

    /// One run of a function on a fresh instance; hands the database access back.
    #[allow(clippy::too_many_arguments)]
    async fn invoke_once(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        kind: FunctionKind,
        args: &Value,
        db: DbAccess,
        frozen: Option<FrozenInputs>,
    ) -> (Invocation, DbAccess) {
        let returns = module
            .function(function)
            .and_then(|spec| spec.returns.as_ref());
        let args_text = args.to_convex_json_string();
        let function = module.guest_name(function);
        let (outcome, log_lines, db, spent) = self
            .with_instance_keeping_store(
                &module.pre,
                context.clone(),
                kind,
                db,
                frozen,
                move |store, instance| {
                    Box::pin(async move {
                        instance
                            .kiln_platform_module()
                            .call_call(store, &function, &args_text)
                            .await
                    })
                },
            )
            .await;
        let transaction = match &db {
            DbAccess::Begun(transaction) => Some(&**transaction),
            _ => None,
        };
        let outcome = outcome.and_then(|returned| match returned {
            Ok(text) => self.check_returns(returns, text, transaction),
            Err(error) => Err(self.decode_error(error)),
        });
        (
            Invocation {
                outcome,
                log_lines,
                commit_ts: None,
                spent: Some(spent),
            },
            db,
        )
    }

    /// The error a function returned, held to the same size limit as a return value so
    /// the error path is no way around it.
    pub(super) fn decode_error(&self, error: wit::FunctionError) -> FunctionFailure {
        let limits = self.limits.value_limits();
        if error.message.len() > limits.max_size_bytes {
            return FunctionFailure::InvalidResult(format!(
                "the function's error message is {} bytes, over the limit of {} bytes",
                error.message.len(),
                limits.max_size_bytes
            ));
        }
        let data = match error.data {
            None => None,
            Some(text) => match Value::from_convex_json_str_with_limits(&text, &limits) {
                Ok(data) => Some(data),
                Err(err) => {
                    return FunctionFailure::InvalidResult(format!(
                        "invalid error data: {err} (the error was: {})",
                        error.message
                    ));
                }
            },
        };
        FunctionFailure::Raised {
            message: error.message,
            data,
        }
    }

    /// Instantiates `pre` in a fresh store with the limits of `kind` and runs `call` on the
    /// instance, all within the kind's wall-clock limit. Returns the outcome and the log.
    pub(crate) async fn with_instance<R>(
        self: &Arc<Self>,
        pre: &FunctionModulePre<InvocationState>,
        context: CallContext,
        kind: FunctionKind,
        db: DbAccess,
        frozen: Option<FrozenInputs>,
        call: impl for<'a> FnOnce(
            &'a mut Store<InvocationState>,
            &'a FunctionModule,
        ) -> CallFuture<'a, R>,
    ) -> (Result<R, FunctionFailure>, Vec<LogLine>, DbAccess) {
        let (result, log_lines, db, _spent) = self
            .with_instance_keeping_store(pre, context, kind, db, frozen, call)
            .await;
        (result, log_lines, db)
    }

    /// [`with_instance`](Self::with_instance), handing back the spent store for the caller
    /// to drop.
    async fn with_instance_keeping_store<R>(
        self: &Arc<Self>,
        pre: &FunctionModulePre<InvocationState>,
        context: CallContext,
        kind: FunctionKind,
        db: DbAccess,
        frozen: Option<FrozenInputs>,
        call: impl for<'a> FnOnce(
            &'a mut Store<InvocationState>,
            &'a FunctionModule,
        ) -> CallFuture<'a, R>,
    ) -> (
        Result<R, FunctionFailure>,
        Vec<LogLine>,
        DbAccess,
        SpentInstance,
    ) {
        let limits = self.limits.for_kind(kind).clone();
        let state = InvocationState::new(self, context, kind, db, frozen);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every `FUEL_YIELD_INTERVAL` of fuel the guest yields to the executor, so one busy
        // guest cannot hold a worker thread; `GuestCall` makes that tokio's yield and ends
        // the call at a yield once its deadline has passed.
        let metered = store
            .set_fuel(limits.fuel)
            .and_then(|()| store.fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL)));
        if let Err(err) = metered {
            let db = std::mem::replace(&mut store.data_mut().db, DbAccess::Denied);
            return (
                Err(FunctionFailure::Internal(format!(
                    "cannot set fuel: {err:#}"
                ))),
                Vec::new(),
                db,
                SpentInstance { _store: store },
            );
        }
        let deadline = store.data().deadline;

        // The yields stop a guest that computes; this timer stops one that waits in a host
        // call. Whichever comes first, the caller sees the same error.
        let finished = {
            let work = std::pin::pin!(async {
                let instance = pre.instantiate_async(&mut store).await?;
                call(&mut store, &instance).await
            });
            tokio::time::timeout_at(deadline.into(), GuestCall::new(work, deadline))
                .await
                .ok()
                .flatten()
        };
        let result = match finished {
            None => Err(self.classify(wasmtime::Error::new(TimedOut), kind)),
            // Host work that ran out of time failed its host call; whatever the guest did
            // with that error, the call timed out.
            Some(_) if store.data().timed_out => {
                Err(self.classify(wasmtime::Error::new(TimedOut), kind))
            }
            Some(result) => result.map_err(|err| self.classify(err, kind)),
        };
        let log_lines = store.data().log_lines();
        let db = std::mem::replace(&mut store.data_mut().db, DbAccess::Denied);
        (result, log_lines, db, SpentInstance { _store: store })
    }

    /// Names what stopped a call: which limit, which trap, or that the host failed.
    fn classify(&self, err: wasmtime::Error, kind: FunctionKind) -> FunctionFailure {
        let limits = self.limits.for_kind(kind);
        if err.downcast_ref::<TimedOut>().is_some() {
            return FunctionFailure::Stopped(format!(
                "{kind} timed out: exceeded the time limit of {} ms",
                limits.timeout_ms
            ));
        }
        if let Some(exceeded) = err.downcast_ref::<MemoryLimitExceeded>() {
            return FunctionFailure::Stopped(format!("{kind} {exceeded}"));
        }
        if err
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
        {
            return FunctionFailure::Stopped(format!(
                "server at capacity: all {} instance slots are in use (max_concurrent_instances); retry later",
                self.limits.max_concurrent_instances
            ));
        }
        if let Some(trap) = err.downcast_ref::<Trap>() {
            let message = match trap {
                Trap::OutOfFuel => format!(
                    "{kind} ran out of fuel: exceeded the limit of {} instructions",
                    limits.fuel
                ),
                Trap::StackOverflow => format!(
                    "stack overflow: exceeded the wasm stack limit of {} KiB (unbounded recursion?)",
                    self.limits.max_wasm_stack_bytes >> 10
                ),
                Trap::UnreachableCodeReached => {
                    "the function panicked or aborted (wasm trap: unreachable); its log lines say why"
                        .to_string()
                }
                Trap::MemoryOutOfBounds => format!(
                    "{trap} (an in-memory stack overflow in the guest looks like this too)"
                ),
                other => other.to_string(),
            };
            return FunctionFailure::Stopped(message);
        }
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return FunctionFailure::Stopped(format!(
                "the function exited (status {}) instead of returning",
                exit.0
            ));
        }
        // A guest that holds too many pollables, streams or cursors fills its resource
        // table: a limit it ran into, not a failure of the host.
        if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
            return FunctionFailure::Stopped(format!(
                "too many host resources: the limit is {} (max_resources)",
                self.limits.max_resources
            ));
        }
        // Anything else is a host-side failure: its whole chain and wasm backtrace are for
        // the log (the API layer logs it with the request id), never for the caller.
        FunctionFailure::Internal(format!("invocation failed in the host: {err:?}"))
    }
}
