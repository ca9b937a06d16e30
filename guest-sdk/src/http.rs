//! Outbound HTTP from actions: [`ActionCtx::fetch`](crate::ActionCtx::fetch), or
//! [`fetch`] directly.
//!
//! ```no_run
//! # use kiln::{action, ActionCtx, Error};
//! # use kiln::http::Request;
//! #[action]
//! fn weather(ctx: &ActionCtx) -> Result<String, Error> {
//!     let response = ctx.fetch("https://api.example.com/weather")?;      // a GET
//!     if !response.ok() {
//!         return Err(Error::new(format!("weather service: {}", response.status())));
//!     }
//!     let posted = ctx.fetch(
//!         Request::post("https://api.example.com/log")
//!             .header("authorization", "Bearer ...")
//!             .json(&serde_json::json!({ "seen": true }))?,
//!     )?;
//!     let _ = posted.bytes()?;
//!     response.text()
//! }
//! ```
//!
//! Only actions may fetch: the host refuses it in queries and mutations. Every request goes
//! through the server's outbound policy (`[fetch]` in its config), which may refuse it
//! (`fetch refused: ...`, naming the rule); the body is read in chunks as it arrives, up
//! to the server's size cap.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::kiln::platform::http as wit;

/// What a request does with a redirect response, as the web's `redirect` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Redirect {
    /// Follow it (the default), each hop checked by the server's policy.
    #[default]
    Follow,
    /// Fail the request.
    Error,
    /// Return the redirect response itself.
    Manual,
}

/// An outbound request. A `&str` or `String` converts into a GET of that URL.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    redirect: Redirect,
}

impl Request {
    /// A request with any method (`"PATCH"`, ...).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            redirect: Redirect::Follow,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Adds a header (a name may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// `value` as a JSON body, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    pub fn redirect(mut self, redirect: Redirect) -> Self {
        self.redirect = redirect;
        self
    }
}

impl From<&str> for Request {
    fn from(url: &str) -> Self {
        Request::get(url)
    }
}

impl From<String> for Request {
    fn from(url: String) -> Self {
        Request::get(url)
    }
}

/// A response whose headers have arrived; read its body with [`Response::chunk`], or whole
/// with [`Response::bytes`], [`Response::text`] or [`Response::json`].
#[derive(Debug)]
pub struct Response {
    status: u16,
    url: String,
    redirected: bool,
    headers: Vec<(String, String)>,
    body: wit::ResponseBody,
}

/// How much the whole-body readers ask the host for at a time.
const READ_CHUNK: u32 = 64 << 10;

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The URL of the response, after redirects.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a redirect was followed to get here.
    pub fn redirected(&self) -> bool {
        self.redirected
    }

    /// Every header, names in lower case, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Up to `max` more bytes of the body (at least one), or `None` at its end.
    pub fn chunk(&mut self, max: u32) -> Result<Option<Vec<u8>>, Error> {
        self.body.read(max).map_err(Error::new)
    }

    /// The whole body.
    pub fn bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk(READ_CHUNK)? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The whole body as text: UTF-8, with invalid sequences replaced (as the web's
    /// `Response.text()`).
    pub fn text(self) -> Result<String, Error> {
        let bytes = self.bytes()?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        })
    }

    /// The whole body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes()?;
        serde_json::from_slice(&bytes)
            .map_err(|err| Error::new(format!("invalid JSON body: {err}")))
    }
}

/// Sends `request` and returns the response once its headers arrive. Fails in queries
/// and mutations, and when the server's policy refuses the request (the error names the
/// rule).
pub fn fetch(request: impl Into<Request>) -> Result<Response, Error> {
    let request = request.into();
    let response = wit::fetch(&wit::Request {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
        redirect: match request.redirect {
            Redirect::Follow => wit::RedirectMode::Follow,
            Redirect::Error => wit::RedirectMode::Error,
            Redirect::Manual => wit::RedirectMode::Manual,
        },
    })
    .map_err(Error::new)?;
    Ok(Response {
        status: response.status,
        url: response.url,
        redirected: response.redirected,
        headers: response.headers,
        body: response.body,
    })
}

impl crate::ActionCtx {
    /// Sends an outbound request: see [`crate::http`]. `ctx.fetch("https://...")` is a GET.
    pub fn fetch(&self, request: impl Into<Request>) -> Result<Response, Error> {
        fetch(request)
    }
}
