//! [`GuestCall`]: drives a call's future so that a guest that computes gives its worker
//! thread back the way tokio expects, and stops once its deadline has passed.
//!
//! Every [`FUEL_YIELD_INTERVAL`](super::engine::FUEL_YIELD_INTERVAL) of fuel the store
//! yields: wasmtime wakes the task from inside its own poll and returns `Pending`. tokio
//! puts such a task at the back of the worker's run queue, but runs it again before it
//! polls the I/O driver, which it does only every 61 tasks (`event_interval`) or when it
//! runs out of work. Guests computing on every worker thread then kept sockets waiting,
//! PostgreSQL's and the clients' (two end-to-end tests failed in full PostgreSQL runs:
//! a JS mutation past its 1 000 ms, and `hello` never answered while two queries spun).
//! `tokio::task::yield_now`, which wasmtime's docs advise for tokio and the epoch
//! callback used before fuel took its place, wakes the task only after the worker has run
//! its other tasks and polled the driver. So a wake the call gives itself while being
//! polled is only noted ([`WakeRecorder`]), and the task yields with tokio's `yield_now`.
//!
//! At each `Pending`, whether a yield or a wait in a host call, the call ends with `None`
//! if its deadline has passed; dropping the call's future then abandons the guest where it
//! stopped. (A host wait is also bounded by tokio's timer, see `with_instance`.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::wake_recorder::WakeRecorder;

/// See the module docs.
pub(crate) struct GuestCall<F> {
    work: F,
    deadline: Instant,
    recorder: WakeRecorder,
    /// The `yield_now` under way, polled once more before the call is.
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<F> GuestCall<F> {
    pub(crate) fn new(work: F, deadline: Instant) -> Self {
        Self {
            work,
            deadline,
            recorder: WakeRecorder::new(),
            yielding: None,
        }
    }
}

impl<F: Future + Unpin> Future for GuestCall<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(yielding) = &mut this.yielding {
            if yielding.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.yielding = None;
        }
        let woke_itself = match this.recorder.poll(Pin::new(&mut this.work), cx.waker()) {
            (Poll::Ready(output), _) => return Poll::Ready(Some(output)),
            (Poll::Pending, woke_itself) => woke_itself,
        };
        if Instant::now() >= this.deadline {
            return Poll::Ready(None);
        }
        if woke_itself {
            let mut yielding: Pin<Box<dyn Future<Output = ()> + Send>> =
                Box::pin(tokio::task::yield_now());
            if yielding.as_mut().poll(cx).is_pending() {
                this.yielding = Some(yielding);
            } else {
                // Not expected of `yield_now`; the call must still run again.
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::GuestCall;
    use crate::wake_recorder::WakeCounter;
    use std::pin::{Pin, pin};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    /// A guest that computes: each poll it yields by waking itself, as wasmtime's fuel
    /// yield does; it finishes on its `polls_to_finish`th poll.
    fn computing(polls_to_finish: usize) -> impl Future<Output = usize> {
        let mut polls = 0;
        std::future::poll_fn(move |cx| {
            polls += 1;
            if polls == polls_to_finish {
                return Poll::Ready(polls);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        })
    }

    #[tokio::test]
    async fn a_guest_yield_wakes_the_task_only_after_tokio_has_run_other_work() {
        let task = WakeCounter::new();
        let waker = Waker::from(task.clone());
        let mut call = pin!(GuestCall::new(
            Box::pin(computing(2)),
            Instant::now() + Duration::from_secs(60)
        ));
        assert!(
            Pin::as_mut(&mut call)
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        // A plain self-wake would have woken the task during the poll.
        assert_eq!(task.wakes(), 0, "the yield went to tokio");
        // tokio wakes deferred tasks when the worker has nothing else to run.
        tokio::task::yield_now().await;
        assert_eq!(task.wakes(), 1, "the yielded call runs again");
        assert_eq!(
            Pin::as_mut(&mut call).poll(&mut Context::from_waker(&waker)),
            Poll::Ready(Some(2))
        );
    }

    #[tokio::test]
    async fn a_call_still_computing_past_its_deadline_ends_at_its_next_yield() {
        // No timer is involved, so the check alone must end it.
        let deadline = Instant::now() + Duration::from_millis(20);
        let stopped = GuestCall::new(Box::pin(computing(usize::MAX)), deadline);
        // (The timeout only keeps a broken check from hanging the test.)
        let stopped = tokio::time::timeout(Duration::from_secs(10), stopped)
            .await
            .expect("the computing call was never stopped");
        assert!(stopped.is_none());
        assert!(Instant::now() >= deadline);

        // A call that finishes is answered, even when found finished past its deadline.
        let finished = GuestCall::new(
            Box::pin(async { 7 }),
            Instant::now() - Duration::from_millis(1),
        )
        .await;
        assert_eq!(finished, Some(7));
    }
}
