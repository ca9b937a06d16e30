//! What every request goes through around its endpoint: a request id (a tracing span, the
//! `x-request-id` header, and the id internal errors quote).

use std::fmt;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response};
use tracing::Instrument as _;

use super::{AppState, router};

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A random id for one request: in its log lines (the `request` span), in its response
/// (`x-request-id`), and in any internal error message it gets.
#[derive(Clone, Debug)]
pub struct RequestId(String);

impl RequestId {
    fn new() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap_or_default();
        Self(hex::encode(bytes))
    }

    /// The id of the request being handled, if any.
    pub fn current() -> Option<Self> {
        CURRENT_REQUEST.try_with(Clone::clone).ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

tokio::task_local! {
    /// Set for the whole handling of a request, so an error raised deep in a handler can
    /// quote the id without every function passing it along.
    static CURRENT_REQUEST: RequestId;
}

/// Handles one request: everything but the endpoint itself.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let id = RequestId::new();
    let span = tracing::info_span!("request", id = %id);
    let mut response = CURRENT_REQUEST
        .scope(id.clone(), router::route(state, request).instrument(span))
        .await;
    let value = HeaderValue::from_str(&id.0).expect("hex is a valid header value");
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}
