//! `kiln:platform/functions`: a function calling another function of its deployment
//! (run-query, run-mutation, run-action), with Convex's rules (DESIGN.md section 1):
//!
//! * an action's call runs as a call of its own, exactly as if a client had made it;
//! * a query's or mutation's call runs inside the caller's transaction (the caller's
//!   snapshot for a query; for a mutation, a sub-transaction whose writes are undone if
//!   the callee fails);
//! * a query may not call a mutation, and only actions may call actions;
//! * calls nest at most `max_call_depth` deep.
//!
//! The callee runs on a task of its own, so its instance never runs on the caller's
//! fiber; the caller's guest waits in the host call, holding no thread. If the caller is
//! stopped (its time runs out), the callee is stopped with it.

use std::sync::Arc;

use kiln_values::Value;

use crate::function_path::FunctionPath;
use crate::runtime::bindings::kiln::platform::functions::Host;
use crate::runtime::bindings::kiln::platform::types::FunctionError;
use crate::runtime::invocation::DbAccess;
use crate::runtime::{FunctionFailure, FunctionKind, FunctionSpec, Invocation, LoadedModule};
use crate::runtime::{InvocationState, LogLine};

impl Host for InvocationState {
    async fn run_query(&mut self, path: String, args: String) -> Result<String, FunctionError> {
        self.run_function(FunctionKind::Query, &path, &args).await
    }

    async fn run_mutation(&mut self, path: String, args: String) -> Result<String, FunctionError> {
        self.run_function(FunctionKind::Mutation, &path, &args)
            .await
    }

    async fn run_action(&mut self, path: String, args: String) -> Result<String, FunctionError> {
        self.run_function(FunctionKind::Action, &path, &args).await
    }
}

/// The error the host raises for a call it refused or could not make: a message only.
fn refused(message: impl Into<String>) -> FunctionError {
    FunctionError {
        message: message.into(),
        data: None,
    }
}

/// Which calls a function of `caller` kind may make, as Convex allows them: `Err` names
/// the rule.
fn check_may_call(caller: FunctionKind, callee: FunctionKind) -> Result<(), String> {
    use FunctionKind::{Action, HttpAction, Mutation, Query};
    match (caller, callee) {
        (_, HttpAction) => Err(
            "HTTP actions answer HTTP requests at their route: they cannot be called with run-*"
                .to_string(),
        ),
        (Action | HttpAction, _) | (Query, Query) | (Mutation, Query | Mutation) => Ok(()),
        (Query, Mutation) => Err(
            "run-mutation is not allowed in a query: queries only read; call mutations from a mutation or an action"
                .to_string(),
        ),
        (Query | Mutation, Action) => Err(format!(
            "run-action is not allowed in {}: actions have side effects, so only actions may call them",
            caller.with_article()
        )),
    }
}

impl InvocationState {
    async fn run_function(
        &mut self,
        kind: FunctionKind,
        path: &str,
        args: &str,
    ) -> Result<String, FunctionError> {
        check_may_call(self.kind, kind).map_err(refused)?;
        let max_depth = self.runtime.limits().max_call_depth;
        if self.context.depth >= max_depth {
            return Err(refused(format!(
                "function calls nested too deep: '{path}' would be call number {} in a chain, over the limit of {max_depth} (max_call_depth)",
                self.context.depth + 2
            )));
        }
        let path = FunctionPath::parse(path).map_err(|err| refused(err.to_string()))?;
        let (module, spec) = self
            .context
            .functions
            .find(&path)
            .ok_or_else(|| refused(format!("Could not find function for '{path}'")))?;
        if spec.kind != kind {
            return Err(refused(format!(
                "'{path}' is {}, not {}: call it with run-{}",
                spec.kind.with_article(),
                kind.with_article(),
                spec.kind
            )));
        }
        let args = self.parse_value(args, "args").map_err(refused)?;
        if !matches!(args, Value::Object(_)) {
            return Err(refused(format!(
                "invalid args: args must be an object, got {}",
                args.type_name()
            )));
        }

        let invocation = match self.kind {
            FunctionKind::Action | FunctionKind::HttpAction => {
                self.run_own_call(module, spec, args).await
            }
            FunctionKind::Query | FunctionKind::Mutation => {
                self.run_in_transaction(module, spec, args).await
            }
        }?;
        self.record_log_lines(invocation.log_lines);
        match invocation.outcome {
            // Passed on as the callee returned it (checked then).
            Ok(returned) => Ok(returned.into_text()),
            Err(failure) => Err(callee_error(&path, failure)),
        }
    }

    /// An action's call: a call of its own, through the same path as a client's call
    /// (a mutation commits, or is re-run after a conflict, before this returns).
    async fn run_own_call(
        &mut self,
        module: Arc<LoadedModule>,
        spec: FunctionSpec,
        args: Value,
    ) -> Result<Invocation, FunctionError> {
        let runtime = self.runtime.clone();
        let context = self.context.nested();
        let task = tokio::spawn(async move {
            runtime
                .invoke(&context, &module, &spec.name, spec.kind, &args)
                .await
        });
        AbortOnDrop(task).join().await.map_err(|cause| {
            tracing::error!("a called function's task failed: {cause}");
            refused(INTERNAL_ERROR)
        })
    }

    /// A query's or mutation's call: the callee runs in the caller's transaction, which is
    /// lent to it and comes back with its writes, or without them if it failed.
    async fn run_in_transaction(
        &mut self,
        module: Arc<LoadedModule>,
        spec: FunctionSpec,
        args: Value,
    ) -> Result<Invocation, FunctionError> {
        let internal = |cause: String| {
            tracing::error!("a nested call could not run: {cause}");
            refused(INTERNAL_ERROR)
        };
        let frozen = self
            .frozen
            .ok_or_else(|| internal("a query or mutation without frozen inputs".into()))?
            .nested(self.calls_made);
        self.calls_made += 1;
        let mut transaction = self
            .db
            .lend()
            .map_err(|err| internal(format!("{err:#}")))?
            .ok_or_else(|| internal("a query or mutation without a transaction".into()))?;
        // A query called from a mutation must not write; a mutation's writes can be undone.
        let callee_writes = spec.kind == FunctionKind::Mutation;
        let caller_writable = transaction.set_writable(callee_writes);
        let savepoint = callee_writes.then(|| transaction.savepoint());

        let runtime = self.runtime.clone();
        let context = self.context.nested();
        let task = tokio::spawn(async move {
            runtime
                .invoke_in_transaction(
                    &context,
                    &module,
                    &spec.name,
                    spec.kind,
                    &args,
                    transaction,
                    frozen,
                )
                .await
        });
        let (invocation, db) = match AbortOnDrop(task).join().await {
            Ok(done) => done,
            Err(cause) => {
                self.db = DbAccess::Lost;
                return Err(internal(format!(
                    "the called function's task failed: {cause}"
                )));
            }
        };
        let DbAccess::Begun(mut transaction) = db else {
            self.db = DbAccess::Lost;
            return Err(internal("the called function lost the transaction".into()));
        };
        transaction.set_writable(caller_writable);
        if invocation.outcome.is_err()
            && let Some(savepoint) = savepoint
        {
            transaction.roll_back_to(savepoint);
        }
        self.db = DbAccess::Begun(transaction);
        Ok(invocation)
    }

    /// The callee's log lines become the caller's, within the caller's limits.
    fn record_log_lines(&mut self, lines: Vec<LogLine>) {
        let mut log = self.log.lock().expect("log buffer poisoned");
        for line in lines {
            log.push(line.level, line.message);
        }
    }
}

const INTERNAL_ERROR: &str = "internal error: the server log has the details";

/// A callee's failure as its caller sees it: an error it raised passes through unchanged
/// (message and data, as Convex's `ConvexError`); a limit or trap that stopped it says
/// which function it stopped.
fn callee_error(path: &FunctionPath, failure: FunctionFailure) -> FunctionError {
    match failure {
        FunctionFailure::Raised { message, data } => FunctionError {
            message,
            data: data.as_ref().map(Value::to_convex_json_string),
        },
        FunctionFailure::Internal(cause) => {
            tracing::error!(function = %path, "internal error in a called function: {cause}");
            refused(INTERNAL_ERROR)
        }
        other => refused(format!("'{path}' failed: {other}")),
    }
}

/// A spawned call that is stopped when its caller stops waiting for it (the caller ran
/// out of time, or its client went away).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_calls_what_convex_allows() {
        use FunctionKind::{Action, Mutation, Query};
        for (caller, callee, allowed) in [
            (Action, Query, true),
            (Action, Mutation, true),
            (Action, Action, true),
            (Query, Query, true),
            (Query, Mutation, false),
            (Query, Action, false),
            (Mutation, Query, true),
            (Mutation, Mutation, true),
            (Mutation, Action, false),
        ] {
            assert_eq!(
                check_may_call(caller, callee).is_ok(),
                allowed,
                "{caller} calling {callee}"
            );
        }
        assert!(
            check_may_call(Mutation, Action)
                .unwrap_err()
                .starts_with("run-action is not allowed in a mutation")
        );
        assert!(
            check_may_call(Query, Mutation)
                .unwrap_err()
                .starts_with("run-mutation is not allowed in a query")
        );
    }
}
