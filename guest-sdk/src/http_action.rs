//! HTTP actions: functions that answer HTTP requests at a route, with the powers of an
//! action (Convex's `httpAction` with `http.route`).
//!
//! ```no_run
//! use kiln::{http_action, ActionCtx, Error, HttpRequest, HttpResponse};
//!
//! /// `GET /hello?name=Ada` answers `{"hello": "Ada"}`.
//! #[http_action(method = "GET", path = "/hello")]
//! fn hello(_ctx: &ActionCtx, request: HttpRequest) -> Result<HttpResponse, Error> {
//!     let name = request.query("name").unwrap_or_default();
//!     HttpResponse::json(200, &serde_json::json!({ "hello": name }))
//! }
//!
//! /// Every `POST` under `/files/`.
//! #[http_action(method = "POST", path_prefix = "/files/")]
//! fn files(_ctx: &ActionCtx, request: HttpRequest) -> Result<HttpResponse, Error> {
//!     Ok(HttpResponse::text(200, format!("{} bytes for {}", request.body.len(), request.path())))
//! }
//! ```
//!
//! The server serves them on its site address (`kiln serve --site-listen`, port 3211 by
//! default) at their path, and under `/http/<path>` on its main address. A request goes
//! to the route with its exact path, else to the longest matching prefix; an unmatched
//! one is a 404. An error the function returns becomes a 500. CORS is the function's own
//! business: answer `OPTIONS` with a route of its own.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::kiln::platform::types as wit;

/// An HTTP request as an HTTP action receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The whole URL: `http://host/path?query`.
    pub url: String,
    /// In the order received; names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The URL's path: `/hello` in `http://host/hello?name=Ada`.
    pub fn path(&self) -> &str {
        let after_scheme = self
            .url
            .split_once("://")
            .map_or(&*self.url, |(_, rest)| rest);
        let path_and_query = after_scheme
            .find('/')
            .map_or("/", |start| &after_scheme[start..]);
        path_and_query.split(['?', '#']).next().unwrap_or("/")
    }

    /// The first value of the query parameter `name`, decoded
    /// (`application/x-www-form-urlencoded`, as browsers send it).
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.url.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or_default();
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|err| Error::new(format!("the request body is not UTF-8: {err}")))
    }

    /// The body as JSON, decoded into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|err| Error::new(format!("the request body is not the JSON expected: {err}")))
    }
}

/// The response an HTTP action returns.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// An `application/json` response with `value` as its body.
    pub fn json(status: u16, value: &impl Serialize) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|err| Error::new(format!("cannot encode the response as JSON: {err}")))?;
        Ok(Self::new(status)
            .header("content-type", "application/json")
            .body(body))
    }
}

impl From<wit::HttpRequest> for HttpRequest {
    fn from(request: wit::HttpRequest) -> Self {
        Self {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        }
    }
}

impl From<HttpResponse> for wit::HttpResponse {
    fn from(response: HttpResponse) -> Self {
        Self {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"hi".to_vec(),
        }
    }

    #[test]
    fn path_query_and_headers_read_as_a_browser_sent_them() {
        let request = request("http://localhost:3211/hello/there?name=Ada%20L&x=1&name=B#top");
        assert_eq!(request.path(), "/hello/there");
        assert_eq!(request.query("name").as_deref(), Some("Ada L"));
        assert_eq!(request.query("x").as_deref(), Some("1"));
        assert_eq!(request.query("missing"), None);
        assert_eq!(request.header("Content-Type"), Some("text/plain"));
        assert_eq!(request.text().unwrap(), "hi");
        assert_eq!(self::request("http://h").path(), "/");
        assert_eq!(
            self::request("http://h/a+b?q=a+b").query("q").as_deref(),
            Some("a b")
        );
    }
}
