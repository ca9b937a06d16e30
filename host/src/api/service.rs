//! What every request goes through around its endpoint: a request id (a tracing span, the
//! `x-request-id` header, and the id internal errors quote), the cap on requests in flight
//! (503 `Overloaded` past it), and CORS.

use std::fmt;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use tracing::Instrument as _;

use super::cors::Audience;
use super::{ApiError, AppState, router};

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Seconds an overloaded server asks a client to wait before retrying.
const OVERLOADED_RETRY_AFTER_S: u32 = 1;

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
        .scope(id.clone(), respond(state, request).instrument(span))
        .await;
    let value = HeaderValue::from_str(&id.0).expect("hex is a valid header value");
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}

async fn respond(state: &AppState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let audience = Audience::of(request.uri().path());
    // Preflights are cheap and carry no body: answered even when the server is busy, so
    // that the browser then sees the real answer (a 503 it can read, say).
    if request.method() == Method::OPTIONS
        && let Some(audience) = audience
    {
        return state.cors.options(audience, request.headers());
    }
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = match state.requests.clone().try_acquire_owned() {
        Ok(_permit) => router::route(state, request).await,
        Err(_) => overloaded(state.runtime.limits().max_requests_in_flight),
    };
    if let Some(audience) = audience {
        state
            .cors
            .decorate(audience, origin.as_ref(), &mut response);
    }
    response
}

/// The answer when every request slot is taken. The body is left unread: hyper discards
/// what has already arrived and closes the connection if more is on its way.
fn overloaded(limit: usize) -> Response<Full<Bytes>> {
    // Per request, so debug: under overload a warning each time would flood the log.
    tracing::debug!(
        limit,
        "refused a request: all request slots are taken (max_requests_in_flight)"
    );
    let mut response = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Overloaded",
        format!(
            "the server is handling its limit of {limit} requests at once (max_requests_in_flight); retry later"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(OVERLOADED_RETRY_AFTER_S));
    response
}
