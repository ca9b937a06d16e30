//! Outbound HTTP for functions (DESIGN.md section 7): one client per server, under one
//! policy, used by both `kiln:platform/http` and `wasi:http/outgoing-handler`.
//!
//! * [`policy`]: which hosts a URL may name and which addresses may be reached (pure).
//! * [`client`]: the reqwest client whose DNS resolver drops refused addresses and whose
//!   redirect policy re-checks every hop, so no path connects where the policy did not
//!   approve; timeouts and redirect limits.
//! * [`request`]: a guest's request (method, URL, headers, body) checked and converted.
//! * [`body`]: response bodies read in bounded chunks, counted against the size cap.
//!
//! Who may fetch (actions, not queries or mutations) is the capabilities' business
//! (`capabilities/http.rs`); this module knows nothing of wasm or function kinds.

pub mod body;
pub mod client;
pub mod policy;
pub mod request;

pub use client::{FetchClient, FetchResponse, RedirectMode};
pub use policy::{FetchPolicy, Refused};
pub use request::FetchRequest;

/// Why a request produced no response (or its body could not be read). The message is for
/// the function's author: it names the rule or limit at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The policy refused the request (a host, an address, a redirect).
    Refused,
    /// The request itself is malformed (method, URL, header) or over a size limit.
    Invalid,
    /// No connection within `fetch.connect_timeout_ms`.
    ConnectTimeout,
    /// No complete response within `fetch.timeout_ms`.
    Timeout,
    /// The response body is larger than `fetch.max_response_bytes`.
    ResponseTooLarge,
    /// Anything else: the connection failed, TLS failed, the peer broke the protocol.
    Failed,
}

impl FetchError {
    pub(crate) fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl std::fmt::Display) -> Self {
        Self::new(FetchErrorKind::Invalid, format!("fetch: {message}"))
    }
}

impl From<Refused> for FetchError {
    fn from(refused: Refused) -> Self {
        Self::new(FetchErrorKind::Refused, refused.to_string())
    }
}
