//! [`WakeRecorder`]: the waker a wrapping future hands the future it polls, so that it can
//! tell a wake the inner future gave itself during that poll (a yield) from a wake that
//! came from elsewhere (I/O, a timer, a channel).
//!
//! A wake during the poll is only noted, and [`WakeRecorder::poll`] reports it; the
//! wrapper decides what the task does about it. Any other wake goes to the task at once.
//! Two wrappers use it: the connection's `RepollSelfWakes` (api/self_wake.rs) and a call's
//! `GuestCall` (runtime/guest_call.rs).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN_WHILE_POLLING: u8 = 2;

/// See the module docs.
pub(crate) struct WakeRecorder {
    forwarder: Arc<Forwarder>,
    /// `forwarder` as a `Waker`, made once: the I/O and timers the inner future registers
    /// with see the same waker on every poll and keep their registration.
    waker: Waker,
}

impl WakeRecorder {
    pub(crate) fn new() -> Self {
        let forwarder = Arc::new(Forwarder {
            state: AtomicU8::new(IDLE),
            task: Mutex::new(None),
        });
        Self {
            waker: Waker::from(forwarder.clone()),
            forwarder,
        }
    }

    /// Polls `future` once on behalf of the task `task`. Returns the poll and whether the
    /// future woke itself while being polled; a wake after this returns goes to `task`.
    pub(crate) fn poll<F: Future + ?Sized>(
        &self,
        future: Pin<&mut F>,
        task: &Waker,
    ) -> (Poll<F::Output>, bool) {
        self.forwarder.register(task);
        self.forwarder.state.store(POLLING, Ordering::SeqCst);
        let poll = future.poll(&mut Context::from_waker(&self.waker));
        let woke_itself = self.forwarder.state.swap(IDLE, Ordering::SeqCst) == WOKEN_WHILE_POLLING;
        (poll, woke_itself)
    }
}

/// The waker the inner future sees: a wake while it is being polled is noted for
/// [`WakeRecorder::poll`]; any other goes to the task.
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

/// A task's waker for tests: counts how often the task is woken.
#[cfg(test)]
pub(crate) struct WakeCounter(std::sync::atomic::AtomicUsize);

#[cfg(test)]
impl WakeCounter {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self(std::sync::atomic::AtomicUsize::new(0)))
    }

    pub(crate) fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_during_the_poll_is_reported_not_passed_on() {
        let task = WakeCounter::new();
        let recorder = WakeRecorder::new();
        let mut yielding = std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let (poll, woke_itself) =
            recorder.poll(Pin::new(&mut yielding), &Waker::from(task.clone()));
        assert!(poll.is_pending());
        assert!(woke_itself);
        assert_eq!(task.wakes(), 0);
    }

    #[test]
    fn a_wake_after_the_poll_goes_to_the_task() {
        let task = WakeCounter::new();
        let recorder = WakeRecorder::new();
        let (sender, receiver) = std::sync::mpsc::channel::<Waker>();
        let mut waiting = std::future::poll_fn(move |cx| {
            sender.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        });
        let (poll, woke_itself) = recorder.poll(Pin::new(&mut waiting), &Waker::from(task.clone()));
        assert!(poll.is_pending());
        assert!(!woke_itself);
        assert_eq!(task.wakes(), 0);
        receiver.recv().unwrap().wake();
        assert_eq!(task.wakes(), 1);
    }
}
