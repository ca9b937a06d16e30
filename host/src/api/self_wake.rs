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
//! `tokio::task::yield_now` (a host call's `checkpoint`, and a guest's epoch yield, see
//! `Runtime::with_instance`) wakes the task only once its poll has returned.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A poll shorter than this that woke its own task is repeated at once. (A call that
/// takes longer than this pays little for one more trip through tokio's queue.)
const SHORT_POLL: Duration = Duration::from_millis(1);

/// At most this many repeats in a row; then the wake goes to tokio.
const MAX_REPOLLS: u32 = 4;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN_WHILE_POLLING: u8 = 2;

/// Wraps a spawned future; see the module docs.
pub struct RepollSelfWakes<F> {
    future: Pin<Box<F>>,
    waker: Arc<Forwarder>,
    /// `waker` as a `Waker`, made once: the I/O and timers the future registers with see
    /// the same waker on every poll and keep their registration.
    as_waker: Waker,
}

impl<F: Future> RepollSelfWakes<F> {
    pub fn new(future: F) -> Self {
        let waker = Arc::new(Forwarder {
            state: AtomicU8::new(IDLE),
            task: Mutex::new(None),
        });
        Self {
            future: Box::pin(future),
            as_waker: Waker::from(waker.clone()),
            waker,
        }
    }
}

impl<F: Future> Future for RepollSelfWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.waker.register(cx.waker());
        let mut inner_cx = Context::from_waker(&this.as_waker);
        let mut repolls = 0;
        loop {
            this.waker.state.store(POLLING, Ordering::SeqCst);
            let started = Instant::now();
            if let Poll::Ready(output) = this.future.as_mut().poll(&mut inner_cx) {
                this.waker.state.store(IDLE, Ordering::SeqCst);
                return Poll::Ready(output);
            }
            if this.waker.state.swap(IDLE, Ordering::SeqCst) != WOKEN_WHILE_POLLING {
                return Poll::Pending;
            }
            if repolls == MAX_REPOLLS || started.elapsed() >= SHORT_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            repolls += 1;
        }
    }
}

/// The waker the wrapped future sees: a wake while it is being polled is noted for
/// [`RepollSelfWakes::poll`]; any other goes to the task.
struct Forwarder {
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Forwarder {
    fn register(&self, task: &Waker) {
        let mut current = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !current
            .as_ref()
            .is_some_and(|current| current.will_wake(task))
        {
            *current = Some(task.clone());
        }
    }
}

impl Wake for Forwarder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        match self.state.compare_exchange(
            POLLING,
            WOKEN_WHILE_POLLING,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            // Noted for the poll under way (now or by an earlier wake).
            Ok(_) | Err(WOKEN_WHILE_POLLING) => return,
            _ => {}
        }
        // Not being polled: the task must run again. A wake that races the start of a
        // poll wakes the task once more than needed, never less.
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts how often the task itself is woken.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

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
        task: &Arc<Counter>,
    ) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_short_self_wake_is_polled_again_without_waking_the_task() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let mut future = RepollSelfWakes::new(SelfWaking {
            self_wakes: 1,
            polls: 0,
        });
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(2));
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn two_self_wakes_in_one_poll_are_one_repeat() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
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
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn past_the_repeat_limit_the_wake_goes_to_the_task() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let mut future = RepollSelfWakes::new(SelfWaking {
            self_wakes: 100,
            polls: 0,
        });
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task must run again");
        assert_eq!(future.future.polls, 1 + MAX_REPOLLS as usize);
    }

    #[test]
    fn a_wake_after_the_poll_goes_to_the_task() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let (sender, receiver) = std::sync::mpsc::channel::<Waker>();
        let mut future = RepollSelfWakes::new(std::future::poll_fn(move |cx| {
            sender.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        }));
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        receiver.recv().unwrap().wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_self_wake_after_a_long_poll_goes_to_the_task() {
        let task = Arc::new(Counter(AtomicUsize::new(0)));
        let mut future = RepollSelfWakes::new(std::future::poll_fn(move |cx| {
            std::thread::sleep(SHORT_POLL * 2);
            cx.waker().wake_by_ref();
            Poll::<usize>::Pending
        }));
        assert_eq!(poll_once(&mut future, &task), Poll::Pending);
        assert_eq!(
            task.0.load(Ordering::SeqCst),
            1,
            "a long poll's yield is kept"
        );
    }
}
