//! Who a request comes from, from its `Authorization` header:
//! * `Convex <admin key>`: the admin (Convex's scheme for admin credentials), who may
//!   deploy, list functions and call internal functions;
//! * `Convex <admin key>:<base64 of an identity's JSON>`: the admin acting as that user, as
//!   Convex's dashboard does (what `ConvexHttpClient.setAdminAuth(key, identity)` sends,
//!   convex 1.48 `browser/http_client.js`);
//! * `Bearer <JWT>`: a user, verified against the live deployment's auth providers
//!   (`crate::auth`). A token that fails is a 401 whose message gives the reason, with
//!   Convex's codes (`NoAuthProvider`, `InvalidAuthHeader`): never a silent downgrade to
//!   an anonymous caller;
//! * nothing: an anonymous caller.

use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hyper::StatusCode;
use hyper::header::AUTHORIZATION;
use hyper::http::HeaderMap;

use super::ApiError;
use crate::auth::{AuthVerifier, UserIdentity};

/// The base64 of an acted-as identity: `btoa`'s, padded; unpadded is accepted too.
const IDENTITY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The server's admin key.
#[derive(Clone)]
pub struct AdminKey(String);

/// Who a request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// Any client: public functions only.
    Public,
    /// Holds the admin key: every function and the admin endpoints.
    Admin,
}

/// A request's principal and the user it acts for, if any.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub identity: Option<Arc<UserIdentity>>,
}

/// What an `Authorization` header holds, the admin key already checked.
enum Credentials<'a> {
    None,
    Bearer(&'a str),
    /// The admin key, acting as the identity whose JSON is base64-encoded here, if any.
    Admin {
        acting_as: Option<&'a str>,
    },
}

const SCHEME: &str = "Convex ";

impl AdminKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// `Public` without credentials (a bearer token is not checked here: the admin
    /// endpoints need the admin key whatever a token says), `Admin` with the right key, an
    /// error with a wrong one (a wrong key is a mistake worth reporting, not a reason to
    /// silently downgrade).
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        Ok(match self.credentials(headers)? {
            Credentials::None | Credentials::Bearer(_) => Principal::Public,
            Credentials::Admin { .. } => Principal::Admin,
        })
    }

    /// The caller of a function: its principal and the identity it acts for, a bearer
    /// token verified with `verifier` (the live deployment's providers).
    pub async fn caller(
        &self,
        headers: &HeaderMap,
        verifier: &AuthVerifier,
    ) -> Result<Caller, ApiError> {
        let (principal, identity) = match self.credentials(headers)? {
            Credentials::None => (Principal::Public, None),
            Credentials::Admin { acting_as: None } => (Principal::Admin, None),
            Credentials::Admin {
                acting_as: Some(encoded),
            } => (Principal::Admin, Some(acted_identity(encoded)?)),
            Credentials::Bearer(token) => {
                let identity = verifier.verify(token).await.map_err(|err| {
                    tracing::debug!("token refused: {err}");
                    ApiError::new(StatusCode::UNAUTHORIZED, err.code(), err.to_string())
                })?;
                (Principal::Public, Some(identity))
            }
        };
        Ok(Caller {
            principal,
            identity: identity.map(Arc::new),
        })
    }

    fn credentials<'a>(&self, headers: &'a HeaderMap) -> Result<Credentials<'a>, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(Credentials::None);
        };
        let value = value.to_str().ok();
        // Convex reads the scheme of a bearer token in any case.
        if let Some(value) = value
            && value.len() > 7
            && value[..7].eq_ignore_ascii_case("bearer ")
        {
            return Ok(Credentials::Bearer(&value[7..]));
        }
        let presented = value
            .and_then(|value| value.strip_prefix(SCHEME))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the Authorization header must be `Convex <admin key>` or `Bearer <token>`",
                )
            })?;
        if constant_time_eq(presented.as_bytes(), self.0.as_bytes()) {
            return Ok(Credentials::Admin { acting_as: None });
        }
        // base64 has no `:`, so the identity starts after the last one.
        if let Some((key, identity)) = presented.rsplit_once(':')
            && constant_time_eq(key.as_bytes(), self.0.as_bytes())
        {
            return Ok(Credentials::Admin {
                acting_as: Some(identity),
            });
        }
        Err(ApiError::unauthorized("the admin key is wrong"))
    }

    /// Whether `key` (given other than in the `Authorization` header) is the admin key.
    pub fn matches(&self, key: &str) -> bool {
        constant_time_eq(key.as_bytes(), self.0.as_bytes())
    }

    /// For admin-only endpoints.
    pub fn require_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.principal(headers)? {
            Principal::Admin => Ok(()),
            Principal::Public => Err(ApiError::unauthorized(
                "this endpoint needs the admin key: send `Authorization: Convex <admin key>`",
            )),
        }
    }
}

/// The identity an admin acts as: base64 of its JSON (Convex's `UserIdentityAttributes`).
fn acted_identity(encoded: &str) -> Result<UserIdentity, ApiError> {
    let invalid = |reason: String| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthHeader",
            format!("invalid identity to act as (after the admin key and `:`): {reason}"),
        )
    };
    let json = IDENTITY_BASE64
        .decode(encoded)
        .map_err(|err| invalid(format!("not base64: {err}")))?;
    let json = serde_json::from_slice(&json).map_err(|err| invalid(format!("not JSON: {err}")))?;
    UserIdentity::from_acting_as(json).map_err(invalid)
}

/// Compares without an early exit, so response time does not leak how much of a guessed
/// key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as PADDED;

    use super::*;

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn principals() {
        let key = AdminKey::new("k1".into());
        assert_eq!(key.principal(&headers(None)).unwrap(), Principal::Public);
        assert_eq!(
            key.principal(&headers(Some("Convex k1"))).unwrap(),
            Principal::Admin
        );
        assert!(key.principal(&headers(Some("Convex k2"))).is_err());
        assert_eq!(
            key.principal(&headers(Some("Bearer some.jwt"))).unwrap(),
            Principal::Public
        );
        assert!(key.principal(&headers(Some("Basic k1"))).is_err());
        assert!(key.require_admin(&headers(None)).is_err());
        // Acting as a user is still the admin.
        assert_eq!(
            key.principal(&headers(Some("Convex k1:e30="))).unwrap(),
            Principal::Admin
        );
        assert!(key.principal(&headers(Some("Convex k2:e30="))).is_err());
    }

    #[tokio::test]
    async fn callers() {
        let key = AdminKey::new("k1".into());
        let verifier = AuthVerifier::default();
        let caller = |value| {
            let (key, verifier) = (&key, &verifier);
            async move { key.caller(&headers(value), verifier).await }
        };
        let anonymous = caller(None).await.unwrap();
        assert_eq!(
            (anonymous.principal, anonymous.identity),
            (Principal::Public, None)
        );

        // What `setAdminAuth(key, {subject, issuer, name})` sends.
        let identity = r#"{"subject":"u1","issuer":"https://dash","name":"Ann"}"#;
        let header = format!("Convex k1:{}", PADDED.encode(identity));
        let acting = caller(Some(&header)).await.unwrap();
        assert_eq!(acting.principal, Principal::Admin);
        let acted = acting.identity.unwrap();
        assert_eq!(acted.token_identifier, "https://dash|u1");
        assert_eq!(acted.name.as_deref(), Some("Ann"));

        let err = caller(Some("Convex k1:!!!")).await.unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNAUTHORIZED, "InvalidAuthHeader")
        );
        assert!(err.message.contains("not base64"), "{}", err.message);
        let no_subject = format!("Convex k1:{}", PADDED.encode(r#"{"name":"x"}"#));
        let err = caller(Some(&no_subject)).await.unwrap_err();
        assert!(
            err.message.contains("needs `issuer` and `subject`"),
            "{}",
            err.message
        );

        // A token with no provider to verify it is refused, never taken as anonymous.
        let err = caller(Some("bearer a.b.c")).await.unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert!(
            err.message.starts_with("malformed token"),
            "{}",
            err.message
        );
    }
}
