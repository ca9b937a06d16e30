//! What every request goes through around its endpoint: a request id (a tracing span, the
//! `x-request-id` header, and the id internal errors quote), the cap on requests in flight
//! (503 `Overloaded` past it), and CORS.

use std::fmt;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use rand::Rng as _;
use tracing::Instrument as _;

use super::cors::Audience;
use super::{ApiError, AppState, router};
use super::{ResponseBody, boxed};

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Seconds an overloaded server asks a client to wait before retrying.
const OVERLOADED_RETRY_AFTER_S: u32 = 1;

/// A random id for one request: in its log lines (the `request` span), in its response
/// (`x-request-id`), and in any internal error message it gets.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(u64);

impl RequestId {
    fn new() -> Self {
        // The thread's CSPRNG: no system call per request.
        Self(rand::rng().next_u64())
    }

    /// The id as 16 lowercase hex digits, without formatting machinery (once per request).
    fn to_hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 16];
        for (position, digit) in hex.iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (60 - 4 * position)) & 0xf) as usize];
        }
        hex
    }

    /// The id of the request being handled, if any.
    pub fn current() -> Option<Self> {
        CURRENT_REQUEST.try_with(|id| *id).ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

tokio::task_local! {
    /// Set for the whole handling of a request, so an error raised deep in a handler can
    /// quote the id without every function passing it along.
    static CURRENT_REQUEST: RequestId;
}

/// Which of the server's listeners a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The main listener: the function API, admin endpoints, `/http/...`.
    Api,
    /// The site listener: every path is an HTTP action's (Convex's site URL).
    Site,
}

/// Handles one request: everything but the endpoint itself.
pub async fn handle(
    state: &AppState,
    request: Request<Incoming>,
    surface: Surface,
) -> Response<ResponseBody> {
    let id = RequestId::new();
    let span = tracing::info_span!("request", id = %id);
    let mut response = match surface {
        Surface::Api => {
            CURRENT_REQUEST
                .scope(id, respond(state, request).instrument(span))
                .await
        }
        Surface::Site => {
            CURRENT_REQUEST
                .scope(id, respond_site(state, request).instrument(span))
                .await
        }
    };
    let value = HeaderValue::from_bytes(&id.to_hex()).expect("hex is a valid header value");
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}

async fn respond(state: &AppState, request: Request<Incoming>) -> Response<ResponseBody> {
    let audience = Audience::of(request.uri().path());
    // Preflights are cheap and carry no body: answered even when the server is busy, so
    // that the browser then sees the real answer (a 503 it can read, say).
    if request.method() == Method::OPTIONS
        && let Some(audience) = audience
    {
        return boxed(state.cors.options(audience, request.headers()));
    }
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = match state.requests.try_acquire() {
        Ok(permit) => router::route(state, request, permit).await,
        Err(_) => boxed(overloaded(state.runtime.limits().max_requests_in_flight)),
    };
    if let Some(audience) = audience {
        state
            .cors
            .decorate(audience, origin.as_ref(), &mut response);
    }
    response
}

/// A request on the site listener: no CORS of the server's (HTTP actions answer their
/// own preflights), the same cap on requests in flight.
async fn respond_site(state: &AppState, request: Request<Incoming>) -> Response<ResponseBody> {
    match state.requests.try_acquire() {
        Ok(permit) => boxed(router::route_site(state, request, permit).await),
        Err(_) => boxed(overloaded(state.runtime.limits().max_requests_in_flight)),
    }
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

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn a_request_id_reads_the_same_in_its_header_and_in_messages() {
        let id = RequestId(0x0123_4567_89ab_cdef);
        assert_eq!(&id.to_hex(), b"0123456789abcdef");
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(
            RequestId(0xf).to_string().as_bytes(),
            RequestId(0xf).to_hex()
        );
    }
}
