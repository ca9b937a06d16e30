//! A guest's request, checked and converted before anything is sent: the method, the URL,
//! the headers (as the web's `fetch` treats them) and the body's size.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use super::{FetchError, RedirectMode};

/// A request ready for [`super::FetchClient::send`].
#[derive(Debug)]
pub struct FetchRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<reqwest::Body>,
    pub redirect: RedirectMode,
}

/// Headers the client owns: they frame the message or route it (`host` would send a
/// request for one site to the address of another), so a guest may not set them.
/// `content-length` is the body's own length; a guest's is checked against it.
const CLIENT_HEADERS: [&str; 9] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

impl FetchRequest {
    /// Checks and converts a request as a guest wrote it. `max_body_bytes` is
    /// `fetch.max_request_body_bytes`.
    pub fn from_guest(
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        redirect: RedirectMode,
        max_body_bytes: u64,
    ) -> Result<Self, FetchError> {
        let method = parse_method(method)?;
        let url = Url::parse(url)
            .map_err(|err| FetchError::invalid(format!("invalid URL {url:?}: {err}")))?;
        let body_len = body.as_ref().map_or(0, Vec::len) as u64;
        if body_len > max_body_bytes {
            return Err(FetchError::invalid(format!(
                "the request body is {body_len} bytes, over the limit of {max_body_bytes} bytes (fetch.max_request_body_bytes)"
            )));
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FetchError::invalid(format!("invalid header name {name:?}")))?;
            if CLIENT_HEADERS.contains(&header.as_str()) {
                return Err(FetchError::invalid(format!(
                    "the header {name:?} is set by the client, not by the request"
                )));
            }
            let value = latin1_header_value(&value).ok_or_else(|| {
                FetchError::invalid(format!(
                    "invalid value for header {name:?}: header values are Latin-1 text without control characters"
                ))
            })?;
            if header == http::header::CONTENT_LENGTH {
                // The client writes the body's own length; a different one is a mistake.
                if value
                    .to_str()
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok())
                    != Some(body_len)
                {
                    return Err(FetchError::invalid(format!(
                        "the content-length header says {value:?} but the body is {body_len} bytes"
                    )));
                }
                continue;
            }
            map.append(header, value);
        }
        Ok(Self {
            method,
            url,
            headers: map,
            body: body.map(reqwest::Body::from),
            redirect,
        })
    }
}

/// As the web's `fetch`: the standard methods in any case, other tokens as written;
/// CONNECT, TRACE and TRACK are refused.
fn parse_method(text: &str) -> Result<Method, FetchError> {
    let upper = text.to_ascii_uppercase();
    if matches!(upper.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(FetchError::invalid(format!(
            "the method {text:?} is not allowed"
        )));
    }
    let normalized = match upper.as_str() {
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT" => upper.as_str(),
        _ => text,
    };
    Method::from_bytes(normalized.as_bytes())
        .map_err(|_| FetchError::invalid(format!("invalid method {text:?}")))
}

/// A header value as text is a byte string (as in the web's `Headers`): each character is
/// one byte, so characters past U+00FF cannot be sent.
fn latin1_header_value(text: &str) -> Option<HeaderValue> {
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<_>>()?;
    HeaderValue::from_bytes(&bytes).ok()
}

/// The reverse: each byte of a received header value is one character.
pub fn latin1_text(value: &HeaderValue) -> String {
    value
        .as_bytes()
        .iter()
        .map(|&byte| char::from(byte))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        method: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<FetchRequest, String> {
        FetchRequest::from_guest(
            method,
            "https://example.com/x",
            headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body.map(<[u8]>::to_vec),
            RedirectMode::Follow,
            10,
        )
        .map_err(|err| err.message)
    }

    #[test]
    fn standard_methods_are_normalized_and_forbidden_ones_refused() {
        assert_eq!(request("get", &[], None).unwrap().method, Method::GET);
        assert_eq!(request("Post", &[], None).unwrap().method, Method::POST);
        assert_eq!(
            request("patch", &[], None).unwrap().method.as_str(),
            "patch"
        );
        assert!(
            request("connect", &[], None)
                .unwrap_err()
                .contains("not allowed")
        );
        assert!(
            request("TRACE", &[], None)
                .unwrap_err()
                .contains("not allowed")
        );
        assert!(
            request("BAD METHOD", &[], None)
                .unwrap_err()
                .contains("invalid method")
        );
    }

    #[test]
    fn headers_the_client_owns_are_refused() {
        let err = request("GET", &[("Host", "internal.example")], None).unwrap_err();
        assert!(err.contains("\"Host\" is set by the client"), "{err}");
        let err = request("GET", &[("Transfer-Encoding", "chunked")], None).unwrap_err();
        assert!(err.contains("set by the client"), "{err}");
        let ok = request("GET", &[("X-Name", "café"), ("accept", "*/*")], None).unwrap();
        assert_eq!(ok.headers["x-name"].as_bytes(), b"caf\xe9");
        assert_eq!(latin1_text(&ok.headers["x-name"]), "café");
        let err = request("GET", &[("x", "snow ☃")], None).unwrap_err();
        assert!(err.contains("Latin-1"), "{err}");
        let err = request("GET", &[("x", "a\r\nb: c")], None).unwrap_err();
        assert!(err.contains("invalid value"), "{err}");
    }

    #[test]
    fn the_body_is_held_to_its_limit_and_its_length() {
        assert!(request("POST", &[], Some(&[0; 10])).is_ok());
        let err = request("POST", &[], Some(&[0; 11])).unwrap_err();
        assert_eq!(
            err,
            "fetch: the request body is 11 bytes, over the limit of 10 bytes (fetch.max_request_body_bytes)"
        );
        assert!(request("POST", &[("content-length", "3")], Some(b"abc")).is_ok());
        let err = request("POST", &[("content-length", "4")], Some(b"abc")).unwrap_err();
        assert!(err.contains("the body is 3 bytes"), "{err}");
    }
}
