//! Cross-origin requests (CORS), so that a page can call the API with Convex's browser
//! clients.
//!
//! Mirrors what Convex's backend does for its public API (`cors()` in
//! `crates/local_backend/src/router.rs`): the request's origin and requested headers are
//! echoed back and a preflight is cached for a day. Which origins are allowed is Kiln's
//! own setting (`[cors]`, see `config::CorsConfig`): any origin for the function API and
//! `/version`, none for the admin endpoints unless listed. A refused preflight answers
//! 403 `OriginNotAllowed` without `Access-Control-Allow-Origin`, so the browser stops
//! there. No endpoint takes cookies, so credentials are never allowed.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ALLOW, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use hyper::{Response, StatusCode};

use super::ApiError;
use crate::config::CorsConfig;

/// Which group of endpoints a path belongs to: each has its own allowed origins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The function API and `/version`: meant for any client, browsers included.
    Public,
    /// Deploy, function listing, data: meant for the admin's tools.
    Admin,
}

impl Audience {
    /// The group `path` belongs to; `None` for paths no endpoint serves.
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/version" | "/api/query" | "/api/mutation" | "/api/action" => Some(Self::Public),
            "/api/deploy" | "/api/functions" | "/api/jobs" => Some(Self::Admin),
            // Browsers upload to URLs a function made, and show the files.
            _ if path.starts_with("/api/storage/") => Some(Self::Public),
            _ if path.starts_with("/api/run/") => Some(Self::Public),
            _ if path.starts_with("/api/data/") => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Methods any endpoint answers (each endpoint still answers only its own, 405 otherwise).
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
/// Headers allowed when a preflight does not say which it wants: what Convex's clients
/// send.
const DEFAULT_ALLOWED_HEADERS: &str = "Content-Type, Authorization, Convex-Client";
/// Response headers a page may read besides the safelisted ones: the id to quote when
/// reporting an error, and when to retry an overloaded server.
const EXPOSED_HEADERS: &str = "x-request-id, retry-after";
/// A normal response depends on the origin; a preflight also on what it asks for.
const VARY_NORMAL: &str = "Origin";
const VARY_PREFLIGHT: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The allowed origins of each audience, from `[cors]`.
pub struct Cors {
    public: AllowedOrigins,
    admin: AllowedOrigins,
    max_age: HeaderValue,
}

struct AllowedOrigins {
    field: &'static str,
    any: bool,
    listed: Vec<String>,
}

impl AllowedOrigins {
    fn new(field: &'static str, origins: &[String]) -> Self {
        Self {
            field,
            any: origins.iter().any(|origin| origin == "*"),
            listed: origins
                .iter()
                .map(|origin| origin.to_ascii_lowercase())
                .collect(),
        }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.any
            || origin
                .to_str()
                .is_ok_and(|origin| self.listed.iter().any(|o| o.eq_ignore_ascii_case(origin)))
    }
}

impl Cors {
    pub fn new(config: &CorsConfig) -> Self {
        Self {
            public: AllowedOrigins::new("allowed_origins", &config.allowed_origins),
            admin: AllowedOrigins::new("admin_allowed_origins", &config.admin_allowed_origins),
            max_age: HeaderValue::from(config.max_age_s),
        }
    }

    /// Whether a page at `origin` may use the public API (the sync socket, which has no
    /// preflight: the browser sends its `Origin` with the upgrade). No origin: not a
    /// browser's request, allowed.
    pub fn allows_public(&self, origin: Option<&HeaderValue>) -> bool {
        origin.is_none_or(|origin| self.public.allows(origin))
    }

    fn origins(&self, audience: Audience) -> &AllowedOrigins {
        match audience {
            Audience::Public => &self.public,
            Audience::Admin => &self.admin,
        }
    }

    /// Answers an `OPTIONS` request to an endpoint of `audience`: a preflight from an
    /// allowed origin gets what it asked for, one from another origin a 403 naming the
    /// setting; a plain `OPTIONS` gets the allowed methods.
    pub fn options(&self, audience: Audience, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let origins = self.origins(audience);
        let origin = headers
            .get(ORIGIN)
            .filter(|_| headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD));
        let mut response = match origin {
            None => {
                let mut response = empty(StatusCode::NO_CONTENT);
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                return response;
            }
            Some(origin) if !origins.allows(origin) => {
                let shown = String::from_utf8_lossy(origin.as_bytes());
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "OriginNotAllowed",
                    format!(
                        "origin {shown} may not call this endpoint from a browser: it is not in cors.{}",
                        origins.field
                    ),
                )
                .into_response()
            }
            Some(origin) => {
                let mut response = empty(StatusCode::NO_CONTENT);
                let out = response.headers_mut();
                out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                out.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOWED_METHODS),
                );
                let allowed_headers = headers
                    .get(ACCESS_CONTROL_REQUEST_HEADERS)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static(DEFAULT_ALLOWED_HEADERS));
                out.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers);
                out.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
                response
            }
        };
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static(VARY_PREFLIGHT));
        response
    }

    /// Adds the CORS headers to the response of a non-preflight request to an endpoint of
    /// `audience` that came with `origin`.
    pub fn decorate<B>(
        &self,
        audience: Audience,
        origin: Option<&HeaderValue>,
        response: &mut Response<B>,
    ) {
        let out = response.headers_mut();
        out.insert(VARY, HeaderValue::from_static(VARY_NORMAL));
        if let Some(origin) = origin.filter(|origin| self.origins(audience).allows(origin)) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(
                ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(public: &[&str], admin: &[&str]) -> Cors {
        Cors::new(&CorsConfig {
            allowed_origins: public.iter().map(ToString::to_string).collect(),
            admin_allowed_origins: admin.iter().map(ToString::to_string).collect(),
            ..CorsConfig::default()
        })
    }

    fn preflight(origin: &str, requested_headers: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        if let Some(requested) = requested_headers {
            headers.insert(
                ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_str(requested).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn audiences() {
        assert_eq!(Audience::of("/api/query"), Some(Audience::Public));
        assert_eq!(Audience::of("/api/run/a/b"), Some(Audience::Public));
        assert_eq!(Audience::of("/version"), Some(Audience::Public));
        assert_eq!(Audience::of("/api/deploy"), Some(Audience::Admin));
        assert_eq!(Audience::of("/api/data/t"), Some(Audience::Admin));
        assert_eq!(Audience::of("/nothing"), None);
    }

    #[test]
    fn an_allowed_preflight_echoes_the_origin_and_the_requested_headers() {
        let cors = cors(&["*"], &[]);
        let response = cors.options(
            Audience::Public,
            &preflight("https://app.example", Some("content-type, convex-client")),
        );
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(headers[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type, convex-client"
        );
        assert_eq!(headers[ACCESS_CONTROL_MAX_AGE], "86400");
        assert!(headers[VARY].to_str().unwrap().starts_with("Origin"));

        let response = cors.options(Audience::Public, &preflight("https://app.example", None));
        assert_eq!(
            response.headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            DEFAULT_ALLOWED_HEADERS
        );
    }

    #[test]
    fn an_unlisted_origin_is_refused_naming_the_setting() {
        let cors = cors(&["https://app.example"], &["https://admin.example"]);
        for (audience, origin, field) in [
            (
                Audience::Public,
                "https://evil.example",
                "cors.allowed_origins",
            ),
            (
                Audience::Admin,
                "https://app.example",
                "cors.admin_allowed_origins",
            ),
        ] {
            let response = cors.options(audience, &preflight(origin, None));
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert!(!response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
            let body = format!("{:?}", response.body());
            assert!(body.contains(field), "{body}");
        }
        // Origins compare without regard to case, as hosts do.
        let response = cors.options(Audience::Admin, &preflight("https://ADMIN.example", None));
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    #[test]
    fn normal_responses_carry_the_origin_only_when_allowed() {
        let cors = cors(&["*"], &[]);
        let origin = HeaderValue::from_static("https://app.example");
        let mut response = empty(StatusCode::OK);
        cors.decorate(Audience::Public, Some(&origin), &mut response);
        assert_eq!(
            response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example"
        );
        assert_eq!(response.headers()[VARY], "Origin");

        let mut response = empty(StatusCode::OK);
        cors.decorate(Audience::Admin, Some(&origin), &mut response);
        assert!(!response.headers().contains_key(ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(response.headers()[VARY], "Origin");
    }
}
