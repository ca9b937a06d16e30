//! Mutations already answered, by (session id, request id): a client that reconnects
//! re-sends every mutation it has not seen completed, and each must run once. The resent
//! one is answered from the first execution (waiting for it if it is still running).
//!
//! Kept in memory for [`RETENTION`], at most [`CAPACITY`] entries and [`MAX_BYTES`] of
//! answers: a reconnect comes within seconds. A failed mutation is forgotten at once, so its resend runs it again
//! (it committed nothing), as in Convex.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::protocol::{CallOutcome, ServerMessage};

/// How long an answered mutation is remembered.
pub const RETENTION: Duration = Duration::from_secs(600);
/// Most answered mutations remembered; the oldest go first.
pub const CAPACITY: usize = 100_000;
/// Most bytes of answers remembered (a mutation may return 8 MiB).
pub const MAX_BYTES: usize = 64 << 20;

type Key = (String, u64);

#[derive(Default)]
pub struct RecentMutations {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Each answer with when it was first asked for (its place in `order`) and its size
    /// once answered.
    answers: HashMap<Key, (Instant, Arc<OnceCell<ServerMessage>>, usize)>,
    /// The sizes of the answers held.
    bytes: usize,
    order: VecDeque<(Key, Instant)>,
}

impl RecentMutations {
    /// The answer to mutation `request_id` of `session`: the first execution's if there
    /// was one, else `run`'s.
    pub async fn answer<F, Fut>(&self, session: &str, request_id: u64, run: F) -> ServerMessage
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServerMessage>,
    {
        let key = (session.to_string(), request_id);
        let cell = {
            let mut inner = self.inner.lock().expect("recent mutations poisoned");
            inner.expire();
            match inner.answers.get(&key) {
                Some((_, cell, _)) => cell.clone(),
                None => {
                    let cell = Arc::new(OnceCell::new());
                    let now = Instant::now();
                    inner.answers.insert(key.clone(), (now, cell.clone(), 0));
                    inner.order.push_back((key.clone(), now));
                    cell
                }
            }
        };
        let answer = cell.get_or_init(run).await.clone();
        let failed = matches!(
            &answer,
            ServerMessage::MutationResponse {
                outcome: CallOutcome::Failure { .. },
                ..
            }
        );
        let mut inner = self.inner.lock().expect("recent mutations poisoned");
        let inner = &mut *inner;
        if let Some(entry) = inner.answers.get_mut(&key)
            && Arc::ptr_eq(&entry.1, &cell)
        {
            if failed {
                let (_, _, size) = inner.answers.remove(&key).expect("found");
                inner.bytes -= size;
            } else if entry.2 == 0 {
                // Counted once, by whichever asker got here first.
                entry.2 = answer_size(&answer);
                inner.bytes += entry.2;
                inner.expire();
            }
        }
        answer
    }
}

impl Inner {
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some((key, at)) = self.order.front() {
            if self.order.len() <= CAPACITY
                && self.bytes <= MAX_BYTES
                && now.duration_since(*at) < RETENTION
            {
                break;
            }
            // An entry removed (a failure) and asked for again has a newer place.
            let (key, at) = (key.clone(), *at);
            self.order.pop_front();
            if self
                .answers
                .get(&key)
                .is_some_and(|(first, _, _)| *first == at)
                && let Some((_, _, size)) = self.answers.remove(&key)
            {
                self.bytes -= size;
            }
        }
    }
}

/// What an answer holds, roughly: its result's text and log lines.
fn answer_size(answer: &ServerMessage) -> usize {
    const OVERHEAD: usize = 128;
    match answer {
        ServerMessage::MutationResponse {
            outcome, log_lines, ..
        } => {
            let result = match outcome {
                CallOutcome::Success(value) => value.to_string().len(),
                CallOutcome::Failure { message, .. } => message.len(),
            };
            OVERHEAD + result + log_lines.iter().map(String::len).sum::<usize>()
        }
        _ => OVERHEAD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(request_id: u64, ok: bool) -> ServerMessage {
        ServerMessage::MutationResponse {
            request_id,
            outcome: if ok {
                CallOutcome::Success(serde_json::json!(request_id))
            } else {
                CallOutcome::Failure {
                    message: "no".into(),
                    data: None,
                }
            },
            ts: 1,
            log_lines: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_resent_mutation_is_answered_from_its_first_run_and_a_failed_one_runs_again() {
        let recent = RecentMutations::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let run = |ok| {
            let runs = &runs;
            move || async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                response(1, ok)
            }
        };
        recent.answer("s", 1, run(true)).await;
        recent.answer("s", 1, run(true)).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        recent.answer("other", 1, run(true)).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
        recent.answer("s", 2, run(false)).await;
        recent.answer("s", 2, run(false)).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);
    }
}
