//! One HTTP connection's clocks: how long it may sit idle waiting for a request
//! (`idle_timeout_ms`) and how long a request's headers may take once they have begun
//! (`header_read_timeout_ms`). While a request is being handled neither runs: reading the
//! body has its own limit (`body_read_timeout_ms`, in `body.rs`) and the function its own.
//!
//! hyper's `header_read_timeout` starts when the connection begins waiting for a request,
//! so it cannot tell an idle keep-alive connection from a slow client; this stream, which
//! sees every byte arrive, can. A clock that runs out fails the read, and hyper closes the
//! connection.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is between requests; shared by its stream and its request handler.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request, nothing of it received yet.
    Idle { since: Instant },
    /// A request's first bytes have arrived; its headers are not complete.
    ReadingHeaders { since: Instant },
    /// A request is being handled.
    Busy,
}

/// A connection's phase. The handler marks requests with [`Activity::busy`].
#[derive(Debug)]
pub struct Activity(Mutex<Phase>);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Phase::Idle {
            since: Instant::now(),
        })))
    }

    /// Marks a request as being handled until the guard is dropped; then the connection
    /// is idle again.
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.set(Phase::Busy);
        BusyGuard(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn phase(&self) -> Phase {
        *self.lock()
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
    }

    /// Bytes of a response went out: a connection still sending its answer (to a slow
    /// reader, after the handler returned) is not idle, so its idle clock starts over.
    fn wrote(&self) {
        let mut phase = self.lock();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Idle {
                since: Instant::now(),
            };
        }
    }
}

/// Ends a request: the connection is idle from now. The reader hyper left waiting during
/// the request needs no wake-up: its timer is armed (see `poll_read`), and when it fires
/// it finds the idle deadline.
pub struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(Phase::Idle {
            since: Instant::now(),
        });
    }
}

/// A stream whose reads fail once the connection's idle or header clock runs out.
pub struct TimedStream<S> {
    inner: S,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    header_read_timeout: Duration,
    /// The deadline being waited for, and its timer (kept to be reset, not reallocated).
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl<S> TimedStream<S> {
    pub fn new(
        inner: S,
        activity: Arc<Activity>,
        idle_timeout: Duration,
        header_read_timeout: Duration,
    ) -> Self {
        Self {
            inner,
            activity,
            idle_timeout,
            header_read_timeout,
            timer: None,
        }
    }

    /// The deadline of the current phase and what running past it means.
    fn deadline(&self, phase: Phase) -> Option<(Instant, &'static str)> {
        match phase {
            Phase::Idle { since } => Some((
                since + self.idle_timeout,
                "no request arrived within idle_timeout_ms",
            )),
            Phase::ReadingHeaders { since } => Some((
                since + self.header_read_timeout,
                "the request's headers did not arrive within header_read_timeout_ms",
            )),
            Phase::Busy => None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before
                    && let Phase::Idle { .. } = self.activity.phase()
                {
                    self.activity.set(Phase::ReadingHeaders {
                        since: Instant::now(),
                    });
                }
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                let due = self.deadline(self.activity.phase());
                let idle_timeout = self.idle_timeout;
                let timer = match (due, &mut self.timer) {
                    // While a request is handled no clock runs, but a timer stays armed
                    // (the idle timeout from now): hyper polls this stream during a request
                    // and not again after answering it, so this timer is what wakes the
                    // reader to start the idle clock once the request has ended.
                    (None, Some((_, sleep))) => sleep,
                    (None, slot @ None) => {
                        let provisional = Instant::now() + idle_timeout;
                        &mut slot
                            .insert((provisional, Box::pin(tokio::time::sleep_until(provisional))))
                            .1
                    }
                    (Some((deadline, _)), Some((armed, sleep))) => {
                        if *armed != deadline {
                            sleep.as_mut().reset(deadline);
                            *armed = deadline;
                        }
                        sleep
                    }
                    (Some((deadline, _)), slot @ None) => {
                        &mut slot
                            .insert((deadline, Box::pin(tokio::time::sleep_until(deadline))))
                            .1
                    }
                };
                ready!(timer.as_mut().poll(cx));
                if let Some((_, reason)) = due {
                    // hyper closes an idle connection whose read fails without a word.
                    tracing::debug!("closing the connection: {reason}");
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason)));
                }
                // Fired while a request was handled: arm again from now, and look again.
                let provisional = Instant::now() + idle_timeout;
                if let Some((armed, sleep)) = &mut self.timer {
                    sleep.as_mut().reset(provisional);
                    *armed = provisional;
                }
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(1..)) = written {
            self.activity.wrote();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(1..)) = written {
            self.activity.wrote();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const IDLE: Duration = Duration::from_millis(300);
    const HEADERS: Duration = Duration::from_millis(200);

    fn stream() -> (
        TimedStream<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
        Arc<Activity>,
    ) {
        let (server, client) = tokio::io::duplex(64);
        let activity = Activity::new();
        (
            TimedStream::new(server, activity.clone(), IDLE, HEADERS),
            client,
            activity,
        )
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_by_the_idle_clock() {
        let (mut server, _client, _activity) = stream();
        let err = server.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("idle_timeout_ms"), "{err}");
    }

    #[tokio::test]
    async fn headers_once_begun_are_held_to_the_header_clock() {
        let (mut server, mut client, _activity) = stream();
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0; 16];
        assert_eq!(server.read(&mut buf).await.unwrap(), 8);
        let err = server.read(&mut buf).await.unwrap_err();
        assert!(err.to_string().contains("header_read_timeout_ms"), "{err}");
    }

    #[tokio::test]
    async fn no_clock_runs_while_a_request_is_handled_and_idle_starts_after_it() {
        let (mut server, mut client, activity) = stream();
        let busy = activity.busy();
        let read = tokio::spawn(async move {
            let mut buf = [0; 16];
            let n = server.read(&mut buf).await.unwrap();
            (server, n)
        });
        // Longer than both clocks: a handler may take its time reading.
        tokio::time::sleep(IDLE * 2).await;
        client.write_all(b"body").await.unwrap();
        let (mut server, n) = read.await.unwrap();
        assert_eq!(n, 4);
        drop(busy);
        let err = server.read(&mut [0; 16]).await.unwrap_err();
        assert!(err.to_string().contains("idle_timeout_ms"), "{err}");
    }

    /// The handler returns before hyper has written the whole answer: while bytes keep
    /// going out to a slow reader, the idle clock starts over, and it runs out only once
    /// the connection really is quiet.
    #[tokio::test]
    async fn a_response_still_being_written_is_not_idle() {
        let (server, mut client, _activity) = stream();
        let (mut reader, mut writer) = tokio::io::split(server);
        let waiting = tokio::spawn(async move { reader.read(&mut [0; 16]).await });
        // Twice the idle time in all, a write every third of it.
        for _ in 0..6 {
            tokio::time::sleep(IDLE / 3).await;
            writer.write_all(b"part of a long answer").await.unwrap();
            client.read_exact(&mut [0; 21]).await.unwrap();
        }
        assert!(
            !waiting.is_finished(),
            "closed while the answer was being written"
        );
        let err = waiting.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("idle_timeout_ms"), "{err}");
    }

    /// hyper polls the stream while a request is handled (to notice a client leaving) and
    /// does not poll it again after answering: the timer armed while the request ran must
    /// wake it, or an idle connection would never be closed.
    #[tokio::test]
    async fn a_read_parked_during_a_request_starts_the_idle_clock_when_it_ends() {
        let (mut server, _client, activity) = stream();
        let busy = activity.busy();
        let read = tokio::spawn(async move { server.read(&mut [0; 16]).await });
        tokio::task::yield_now().await;
        drop(busy);
        let err = tokio::time::timeout(IDLE * 20, read)
            .await
            .expect("the parked read was never woken")
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("idle_timeout_ms"), "{err}");
    }
}
