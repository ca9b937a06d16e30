//! Response bodies, read a bounded chunk at a time and counted against
//! `fetch.max_response_bytes`: the host never holds more of a body than one chunk as the
//! network delivered it. Also the body wrapper that counts a streamed body (wasi:http's)
//! against a cap.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use sync_wrapper::SyncWrapper;

use super::{FetchClient, FetchError};

/// The body of one response, as `kiln:platform/http`'s `response-body` reads it.
pub struct BodyReader {
    client: Arc<FetchClient>,
    response: reqwest::Response,
    /// What is left of the last chunk received.
    pending: Bytes,
    received: u64,
    finished: bool,
}

impl BodyReader {
    pub fn new(client: Arc<FetchClient>, response: reqwest::Response) -> Self {
        Self {
            client,
            response,
            pending: Bytes::new(),
            received: 0,
            finished: false,
        }
    }

    /// Up to `max` (at least 1) more bytes, or `None` at the end of the body.
    pub async fn read(&mut self, max: usize) -> Result<Option<Bytes>, FetchError> {
        while self.pending.is_empty() {
            if self.finished {
                return Ok(None);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.received += chunk.len() as u64;
                    if self.received > self.client.config().max_response_bytes {
                        self.finished = true;
                        return Err(self.client.response_too_large(None));
                    }
                    self.pending = chunk;
                }
                Ok(None) => self.finished = true,
                Err(err) => {
                    self.finished = true;
                    return Err(self.client.error(&err));
                }
            }
        }
        let take = max.max(1).min(self.pending.len());
        Ok(Some(self.pending.split_to(take)))
    }
}

/// A streamed body counted against a cap: past it, the stream ends with an error saying
/// which limit. Also makes any `Send` body `Sync` (reqwest wants `Sync` request bodies;
/// only `poll_frame`, through `&mut`, ever touches the inner body). `held` lives as long
/// as the body: a permit of `fetch.max_open_responses`, for a response.
pub struct CappedBody<B, H = ()> {
    inner: SyncWrapper<B>,
    /// The inner body's size hint and end-of-stream flag when it was wrapped (the wrapper
    /// gives no shared access to it later): hyper asks before polling, and frames an empty
    /// or sized body without chunked encoding.
    initial_hint: SizeHint,
    initially_ended: bool,
    polled: bool,
    received: u64,
    limit: u64,
    over_limit: fn(u64) -> BoxError,
    _held: H,
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B: Body, H> CappedBody<B, H> {
    /// `over_limit` builds the error the stream ends with, given the limit.
    pub fn new(inner: B, limit: u64, over_limit: fn(u64) -> BoxError, held: H) -> Self {
        Self {
            initial_hint: inner.size_hint(),
            initially_ended: inner.is_end_stream(),
            polled: false,
            inner: SyncWrapper::new(inner),
            received: 0,
            limit,
            over_limit,
            _held: held,
        }
    }
}

impl<B, H> Body for CappedBody<B, H>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    H: Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        this.polled = true;
        if this.received > this.limit {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(this.inner.get_mut()).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.received > this.limit {
                        return Poll::Ready(Some(Err((this.over_limit)(this.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(err.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.polled && self.initially_ended
    }

    fn size_hint(&self) -> SizeHint {
        if self.polled {
            SizeHint::default()
        } else {
            self.initial_hint
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    fn over(limit: u64) -> BoxError {
        format!("over {limit}").into()
    }

    #[tokio::test]
    async fn a_body_within_its_cap_streams_through() {
        let body = CappedBody::new(Full::new(Bytes::from_static(b"hello")), 5, over, ());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
    }

    #[tokio::test]
    async fn a_body_over_its_cap_ends_with_the_limits_error() {
        let body = CappedBody::new(Full::new(Bytes::from_static(b"hello!")), 5, over, ());
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.to_string(), "over 5");
    }
}
