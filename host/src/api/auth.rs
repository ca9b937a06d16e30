//! The admin key: who may deploy, list functions, and call internal functions.
//!
//! Sent as `Authorization: Convex <admin key>` (Convex's scheme for admin credentials).

use hyper::header::AUTHORIZATION;
use hyper::http::HeaderMap;

use super::ApiError;

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

const SCHEME: &str = "Convex ";

impl AdminKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// `Public` without credentials, `Admin` with the right key, an error with a wrong one
    /// (a wrong key is a mistake worth reporting, not a reason to silently downgrade).
    pub fn principal(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(Principal::Public);
        };
        // Convex clients send user tokens as `Bearer <jwt>`. Until user auth exists, such
        // a caller is a public caller, as in a Convex deployment without auth configured.
        if value.as_bytes().starts_with(b"Bearer ") {
            return Ok(Principal::Public);
        }
        let presented = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix(SCHEME))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "the Authorization header must be `Convex <admin key>` or `Bearer <token>`",
                )
            })?;
        if constant_time_eq(presented.trim().as_bytes(), self.0.as_bytes()) {
            Ok(Principal::Admin)
        } else {
            Err(ApiError::unauthorized("the admin key is wrong"))
        }
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
    }
}
