//! Fetching what identity providers publish (OIDC discovery documents, JWKS) over HTTP,
//! within a time limit and a size cap.
//!
//! Provider URLs come from the operator's `[auth]` config, not from functions, so they are
//! not subject to the outbound `fetch` policy of functions: a provider on the same host or
//! network as the server is an ordinary setup.

use std::time::Duration;

use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::Value as Json;

/// Redirects followed for one document (a provider moving its JWKS behind a redirect).
const MAX_REDIRECTS: usize = 5;

/// An HTTP client for provider documents. One per server; cheap to share.
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

impl Fetcher {
    /// A client whose requests take at most `timeout` (connecting included) and whose
    /// documents may be at most `max_bytes` long.
    pub fn new(timeout: Duration, max_bytes: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(Policy::limited(MAX_REDIRECTS))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, max_bytes })
    }

    /// GETs `url` and parses its body as JSON. The error says what failed, for the message
    /// of the request whose token needed the document.
    pub async fn get_json(&self, url: &Url) -> Result<Json, String> {
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| format!("GET {url} failed: {}", error_chain(&err)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(self.too_large(url));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| format!("GET {url} failed: {}", error_chain(&err)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large(url));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|err| format!("GET {url}: the body is not JSON: {err}"))
    }

    fn too_large(&self, url: &Url) -> String {
        format!(
            "GET {url}: the document is over the limit of {} bytes (max_jwks_bytes)",
            self.max_bytes
        )
    }
}

/// reqwest's message with its causes ("error sending request: ... connection refused").
fn error_chain(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
