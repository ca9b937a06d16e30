//! [`RepollSelfWakes`]: runs a connection's future again at once when it woke itself during
//! a short poll, instead of handing the wake to tokio.
//!
//! hyper wakes its own connection task on every request with a body: the handler's first
//! read of the body signals hyper's dispatcher (its `want` channel), and the dispatcher
//! runs in the same task. tokio then treats the task as one that yielded: it goes to the
//! back of the run queue and, if the other worker thread is asleep, tokio wakes it (a
//! futex wake and a thread switch) in case it wants to steal the task. With one client
//! that is a wake-up of a sleeping thread per request (`cargo xtask profile trivial-1`:
//! 1.9 voluntary context switches a request where bare hyper has 1; `perf record -e
//! sched:sched_wakeup` traced the futex wakes to `Schedule::yield_now` after the
//! connection task's poll, and a uprobe on tokio's `wake_by_val` to hyper's
//! `Receiver::poll_next`).
//!
//! A wake during a poll that took less than [`SHORT_POLL`] is taken here: the future is
//! polled again straight away, at most [`MAX_REPOLLS`] times in a row. A wake that comes
//! while the future is not being polled, or after a long poll, goes to tokio as before.
//! The yields that keep one call from holding a worker thread are not self-wakes:
//! `tokio::task::yield_now` (a host call's `checkpoint`, and a computing guest's fuel
//! yield, which `GuestCall` in runtime/guest_call.rs turns into one) wakes the task only
//! once its poll has returned.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::wake_recorder::WakeRecorder;

/// A poll shorter than this that woke its own task is repeated at once. (A call that
/// takes longer than this pays little for one more trip through tokio's queue.)
const SHORT_POLL: Duration = Duration::from_millis(1);

/// At most this many repeats in a row; then the wake goes to tokio.
const MAX_REPOLLS: u32 = 4;

/// Wraps a spawned future; see the module docs.
pub struct RepollSelfWakes<F> {
    future: Pin<Box<F>>,
    recorder: WakeRecorder,
}

impl<F: Future> RepollSelfWakes<F> {
    pub fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            recorder: WakeRecorder::new(),
        }
    }
}

impl<F: Future> Future for RepollSelfWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let mut repolls = 0;
        loop {
            let started = Instant::now();
            match this.recorder.poll(this.future.as_mut(), cx.waker()) {
                (Poll::Ready(output), _) => return Poll::Ready(output),
                (Poll::Pending, false) => return Poll::Pending,
                (Poll::Pending, true) => {}
            }
            if repolls == MAX_REPOLLS || started.elapsed() >= SHORT_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            repolls += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake_recorder::WakeCounter;
    use std::sync::Arc;
    use std::task::Waker;

    /// Wakes itself on its first `self_wakes` polls, then is ready.
    struct SelfWaking {
        self_wakes: usize,
        polls: usize,
    }

    impl Future for SelfWaking {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.polls += 1;
            if self.polls <= self.self_wakes {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(self.polls)
            }
        }
    }

    fn poll_once<F: Future>(
        future: &mut RepollSelfWakes<F>,
        task: &Arc<WakeCounter>,
    ) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_short_self_wake_is_polled_again_without_waking_the_task() {
        let task = WakeCounter::new();
        let mut future = RepollSelfWakes::new(SelfWaking {
            self_wakes: 1,
            polls: 0,
        });
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(2));
        assert_eq!(task.wakes(), 0);
    }

    #[test]
    fn two_self_wakes_in_one_poll_are_one_repeat() {
        let task = WakeCounter::new();
        let mut woke = false;
        let mut future = RepollSelfWakes::new(std::future::poll_fn(move |cx| {
            if std::mem::replace(&mut woke, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(()));
        assert_eq!(task.wakes(), 0);
    }

    #[test]
    fn past_the_repeat_limit_the_wake_goes_to_the_task() {
        let task = WakeCounter::new();
        let mut future = RepollSelfWakes::new(SelfWaking {
            self_wakes: 100,
            polls: 0,
        });
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(task.wakes(), 1, "the task must run again");
        assert_eq!(future.future.polls, 1 + MAX_REPOLLS as usize);
    }

    #[test]
    fn a_wake_after_the_poll_goes_to_the_task() {
        let task = WakeCounter::new();
        let (sender, receiver) = std::sync::mpsc::channel::<Waker>();
        let mut future = RepollSelfWakes::new(std::future::poll_fn(move |cx| {
            sender.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        }));
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(task.wakes(), 0);
        receiver.recv().unwrap().wake();
        assert_eq!(task.wakes(), 1);
    }

    #[test]
    fn a_self_wake_after_a_long_poll_goes_to_the_task() {
        let task = WakeCounter::new();
        let mut future = RepollSelfWakes::new(std::future::poll_fn(move |cx| {
            std::thread::sleep(SHORT_POLL * 2);
            cx.waker().wake_by_ref();
            Poll::<usize>::Pending
        }));
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(task.wakes(), 1, "a long poll's yield is kept");
    }
}
