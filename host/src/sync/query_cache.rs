//! Shared query executions: every subscription to the same query (path, arguments,
//! identity, deployment) that needs its result at the same commit gets one execution, and
//! a result stays shared for as long as no commit has made it stale. So 1 000 clients
//! watching one query cost one re-run per change.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;
use tokio::sync::OnceCell;

use crate::database::subscriptions::Subscription;

/// What identifies one query's result, apart from the commit it is at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryKey {
    /// The canonical function path (`module:function`).
    pub path: String,
    /// The arguments as Convex JSON text.
    pub args: String,
    /// Who runs it: `admin`, or the identity's JSON (empty for no user).
    pub identity: String,
    /// The deployment (code and environment) it ran against.
    pub epoch: u64,
    /// The end of its page that an earlier run fixed (Convex's query journal), if any.
    pub journal: Option<String>,
}

/// A query's result at one commit, and the subscription that says until when it holds.
#[derive(Debug)]
pub struct QueryResult {
    pub outcome: QueryOutcome,
    pub log_lines: Vec<String>,
    /// `None` for a result that no commit can change (the function was not found).
    pub subscription: Option<Arc<Subscription>>,
    /// The commit it was computed at.
    pub ts: u64,
    /// The end of the page it returned, if it paginated: what its next run reads up to.
    pub journal: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutcome {
    Value(Json),
    Error { message: String, data: Option<Json> },
}

impl QueryResult {
    /// A failure no commit can change (the function or its arguments are wrong): it
    /// re-runs only when the query set, identity or deployment does.
    pub fn unchangeable(message: String, ts: u64) -> Self {
        Self {
            outcome: QueryOutcome::Error {
                message,
                data: None,
            },
            log_lines: Vec::new(),
            subscription: None,
            ts,
            journal: None,
        }
    }

    /// Whether this result is the query's answer at commit `ts` (every commit up to `ts`
    /// having been checked against the subscriptions).
    pub fn valid_at(&self, ts: u64) -> bool {
        self.ts <= ts
            && self
                .subscription
                .as_ref()
                .is_none_or(|subscription| subscription.valid_at(ts))
    }
}

struct Slot {
    /// The commit the execution in `cell` runs (or ran) at.
    ts: u64,
    cell: Arc<OnceCell<Arc<QueryResult>>>,
}

/// The shared executions.
#[derive(Default)]
pub struct QueryCache {
    slots: Mutex<HashMap<QueryKey, Slot>>,
    /// Past this many slots, the next insertion drops those nobody holds.
    prune_at: AtomicUsize,
    /// Executions run (for tests and the benchmark).
    runs: AtomicUsize,
}

/// Slots kept before the first pruning.
const MIN_PRUNE_AT: usize = 1_024;

impl QueryCache {
    /// The result of `key` at commit `ts`: one already computed that is still valid at
    /// `ts`, the one being computed at `ts` by another subscriber, or a new execution
    /// (`run`, which must compute at `ts`).
    pub async fn get<F, Fut>(&self, key: QueryKey, ts: u64, run: F) -> Arc<QueryResult>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = QueryResult>,
    {
        let cell = {
            let mut slots = self.slots.lock().expect("query cache poisoned");
            match slots.get(&key) {
                Some(slot) if slot.cell.get().is_some_and(|result| result.valid_at(ts)) => {
                    return slot.cell.get().expect("checked").clone();
                }
                Some(slot) if slot.ts == ts => slot.cell.clone(),
                // A newer execution is shared; this subscriber, behind it, runs its own.
                Some(slot) if slot.ts > ts => Arc::new(OnceCell::new()),
                _ => {
                    self.prune(&mut slots);
                    let cell = Arc::new(OnceCell::new());
                    slots.insert(
                        key,
                        Slot {
                            ts,
                            cell: cell.clone(),
                        },
                    );
                    cell
                }
            }
        };
        cell.get_or_init(|| async {
            self.runs.fetch_add(1, Ordering::Relaxed);
            Arc::new(run().await)
        })
        .await
        .clone()
    }

    /// Executions run since the server started.
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }

    /// Drops the results nobody holds and the executions nobody waits for, once the map has
    /// doubled since the last pruning.
    fn prune(&self, slots: &mut HashMap<QueryKey, Slot>) {
        let prune_at = self.prune_at.load(Ordering::Relaxed).max(MIN_PRUNE_AT);
        if slots.len() < prune_at {
            return;
        }
        slots.retain(|_, slot| {
            Arc::strong_count(&slot.cell) > 1
                || slot
                    .cell
                    .get()
                    .is_some_and(|result| Arc::strong_count(result) > 1)
        });
        self.prune_at.store(slots.len() * 2, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> QueryKey {
        QueryKey {
            path: path.into(),
            args: "{}".into(),
            identity: String::new(),
            epoch: 1,
            journal: None,
        }
    }

    fn result(ts: u64) -> QueryResult {
        QueryResult {
            outcome: QueryOutcome::Value(Json::from(ts)),
            log_lines: Vec::new(),
            subscription: None,
            ts,
            journal: None,
        }
    }

    #[tokio::test]
    async fn concurrent_subscribers_at_one_commit_share_one_execution() {
        let cache = QueryCache::default();
        let (gate, wait) = tokio::sync::oneshot::channel::<()>();
        let first = cache.get(key("a:b"), 5, || async {
            wait.await.unwrap();
            result(5)
        });
        let second = cache.get(key("a:b"), 5, || async { panic!("shared, never run") });
        let (first, second, ()) = tokio::join!(first, second, async {
            tokio::task::yield_now().await;
            gate.send(()).unwrap();
        });
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.runs(), 1);
        // A valid result is shared at a later commit; another key runs its own.
        let later = cache.get(key("a:b"), 9, || async { result(9) }).await;
        assert!(Arc::ptr_eq(&first, &later));
        cache.get(key("a:c"), 9, || async { result(9) }).await;
        assert_eq!(cache.runs(), 2);
    }
}
