//! User identity from JWTs (DESIGN.md section 7): the providers a deployment trusts
//! (`[auth]` in kiln.toml), their keys, token verification, and the identity a verified
//! token gives a function (`kiln:platform/auth`).
//!
//! Knows nothing of the HTTP API or of wasm: `api` hands it a bearer token, the runtime
//! hands the identity to the function. It makes outbound HTTP requests of its own, to the
//! providers the operator configured (OIDC discovery, JWKS).

pub mod fetch;
pub mod identity;
pub mod jwks;
pub mod providers;
pub mod verify;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use identity::UserIdentity;
pub use providers::{AuthConfig, AuthConfigError};
pub use verify::{AuthSettings, AuthVerifier, TokenError};

use crate::config::Limits;

impl AuthSettings {
    pub fn from_limits(limits: &Limits) -> Self {
        Self {
            clock_skew_s: limits.jwt_clock_skew_s,
            cache: jwks::CachePolicy {
                ttl: Duration::from_secs(limits.jwks_cache_ttl_s),
                refetch_interval: Duration::from_millis(limits.jwks_refetch_interval_ms),
            },
        }
    }
}

/// The HTTP client for provider documents, within the server's limits.
pub fn fetcher(limits: &Limits) -> anyhow::Result<fetch::Fetcher> {
    fetch::Fetcher::new(
        Duration::from_millis(limits.jwks_fetch_timeout_ms),
        limits.max_jwks_bytes,
    )
}
