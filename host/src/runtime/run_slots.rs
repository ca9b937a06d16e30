//! [`RunSlots`]: how many queries and how many mutations run at once
//! (`max_concurrent_queries`, `max_concurrent_mutations`), as Convex caps each kind.
//!
//! A call past the cap waits for a slot before its instance exists, and its time limit
//! starts when it has one. Without the cap, a burst of calls on a small machine all ran
//! at once and shared the cores, and the wall-clock limit counted each call's wait for a
//! core: 17 of 100 concurrent JavaScript increments timed out at 1 000 ms on 2 cores
//! shared with PostgreSQL (a full CI run). With it, a call's time is its own run, shared
//! with at most the cap's worth of others.
//!
//! Only a call that stands alone takes a slot: one a client, the scheduler or an action
//! starts. A query or mutation called from a running query or mutation runs in its
//! caller's transaction and slot; waiting for a slot of its own while its caller holds
//! one could deadlock. Actions are capped where clients start them
//! (`max_concurrent_actions`, in the API). A mutation gives its slot back once its
//! function has returned, before its commit: the committer's work is not the function's,
//! and a batch can gather more mutations than there are slots.

use tokio::sync::{Semaphore, SemaphorePermit};

use super::FunctionKind;

/// See the module docs.
pub(crate) struct RunSlots {
    queries: Semaphore,
    mutations: Semaphore,
}

/// A slot held while a function runs; dropping it lets the next call in.
pub(crate) struct RunSlot<'a>(#[allow(dead_code)] Option<SemaphorePermit<'a>>);

impl RunSlots {
    pub(crate) fn new(max_queries: usize, max_mutations: usize) -> Self {
        Self {
            queries: Semaphore::new(max_queries),
            mutations: Semaphore::new(max_mutations),
        }
    }

    /// Waits for a slot of `kind` (actions need none here).
    pub(crate) async fn take(&self, kind: FunctionKind) -> RunSlot<'_> {
        let semaphore = match kind {
            FunctionKind::Query => &self.queries,
            FunctionKind::Mutation => &self.mutations,
            FunctionKind::Action | FunctionKind::HttpAction => return RunSlot(None),
        };
        let permit = semaphore
            .acquire()
            .await
            .expect("the run-slot semaphores are never closed");
        RunSlot(Some(permit))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kiln_values::Value;

    use crate::config::{FunctionLimits, Limits};
    use crate::runtime::test_support::probe_runtime;
    use crate::runtime::{CallContext, FunctionKind};

    /// With one slot per kind held by the test, a call waits, past its whole time limit,
    /// and then runs and succeeds once the slot is free: the limit starts with the run.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_call_waits_for_a_slot_and_its_time_limit_starts_when_it_runs() {
        const TIMEOUT_MS: u64 = 200;
        let defaults = Limits::default();
        let limits = Limits {
            max_concurrent_queries: 1,
            max_concurrent_mutations: 1,
            query: FunctionLimits {
                timeout_ms: TIMEOUT_MS,
                ..defaults.query
            },
            mutation: FunctionLimits {
                timeout_ms: TIMEOUT_MS,
                ..defaults.mutation
            },
            ..defaults
        };
        let (_data, runtime, module) = probe_runtime(limits).await;
        let module = std::sync::Arc::new(module);
        for (kind, function) in [
            (FunctionKind::Query, "in_query"),
            (FunctionKind::Mutation, "in_mutation"),
        ] {
            let held = runtime.run_slots.take(kind).await;
            let mut call = tokio::spawn({
                let (runtime, module) = (runtime.clone(), module.clone());
                async move {
                    let args = Value::from_convex_json_str(r#"{"iterations": 10}"#).unwrap();
                    runtime
                        .invoke(&CallContext::isolated(), &module, function, kind, &args)
                        .await
                        .outcome
                        .map(drop)
                }
            });
            // Twice the time limit: a limit counted from the call's start would have
            // ended it by now.
            let waited =
                tokio::time::timeout(Duration::from_millis(2 * TIMEOUT_MS), &mut call).await;
            assert!(waited.is_err(), "{function} ran without a slot");
            drop(held);
            let outcome = call.await.unwrap();
            assert!(outcome.is_ok(), "{function}: {:?}", outcome.err());
        }
    }
}
