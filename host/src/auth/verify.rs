//! Verifying a bearer token against a deployment's providers (Convex's
//! `authentication::validate_id_token`, convex-backend `crates/authentication`).
//!
//! In order: the token must be a JWT that is signed (`alg: none` is refused outright); its
//! `iss` picks the providers (a trailing `/` or a missing `https://` does not count, as in
//! Convex); among them, the first whose application ID is in `aud` (or that has none);
//! the token's algorithm must be one the provider accepts, so a token can never choose how
//! it is checked (HS256 "signed" with an RSA public key, say); then the signature, with the
//! key named by `kid`; then `exp` and `nbf`, with `jwt_clock_skew_s` of slack. Signatures
//! and time checks are `jsonwebtoken`'s (on ring); nothing here checks a signature by hand.
//!
//! Each refusal is a [`TokenError`] whose message starts with the reason.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value as Json};

use super::fetch::Fetcher;
use super::identity::UserIdentity;
use super::jwks::{CachePolicy, KeyCache, KeyError, KeySet, KeySource};
use super::providers::{Jwks, Provider, normalize_issuer};

/// JWT segments are base64url; padding is tolerated either way.
const SEGMENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What verification needs from the server's limits.
#[derive(Clone, Copy, Debug)]
pub struct AuthSettings {
    /// Slack for `exp` and `nbf` (`jwt_clock_skew_s`).
    pub clock_skew_s: u64,
    pub cache: CachePolicy,
}

/// Why a token was refused. Every message starts with the reason.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsigned token: `alg: none` is never accepted")]
    Unsigned,
    #[error("wrong issuer: no auth provider is configured for issuer {issuer:?} ({configured})")]
    WrongIssuer { issuer: String, configured: String },
    #[error(
        "wrong audience: the token is for {got:?}, but {provider} expects {expected:?} in `aud`"
    )]
    WrongAudience {
        got: Vec<String>,
        expected: Vec<String>,
        provider: String,
    },
    #[error("unsupported algorithm {alg:?}: {provider} accepts only {allowed}")]
    UnsupportedAlgorithm {
        alg: String,
        provider: String,
        allowed: String,
    },
    #[error(
        "unknown key id {kid:?}: {provider} has no such key, also after fetching its keys again"
    )]
    UnknownKeyId { kid: String, provider: String },
    #[error(
        "no key id: the token has no `kid` and {provider} has {candidates} keys for its algorithm"
    )]
    NoKeyId { provider: String, candidates: usize },
    #[error("provider keys unavailable: cannot fetch the keys of {provider}: {reason}")]
    KeysUnavailable { provider: String, reason: String },
    #[error("bad signature: the token was not signed with a key of {provider}")]
    BadSignature { provider: String },
    #[error("token expired: it expired {ago_s} s ago (exp {exp}; clock skew allowed: {skew_s} s)")]
    Expired { exp: u64, ago_s: u64, skew_s: u64 },
    #[error(
        "token not yet valid: it becomes valid in {in_s} s (nbf {nbf}; clock skew allowed: {skew_s} s)"
    )]
    NotYetValid { nbf: u64, in_s: u64, skew_s: u64 },
    #[error("missing claim: the token has no `{0}` claim of the right type")]
    MissingClaim(String),
}

impl TokenError {
    /// The error code, Convex's: `NoAuthProvider` when no provider matches the issuer,
    /// `InvalidAuthHeader` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::WrongIssuer { .. } => "NoAuthProvider",
            _ => "InvalidAuthHeader",
        }
    }
}

/// A deployment's providers, ready to verify tokens.
#[derive(Default)]
pub struct AuthVerifier {
    providers: Vec<ProviderKeys>,
    clock_skew_s: u64,
}

struct ProviderKeys {
    provider: Provider,
    keys: Keys,
}

enum Keys {
    Secret(DecodingKey),
    /// Keys given in the config (`data:` URI): never fetched.
    Given(Arc<KeySet>),
    Fetched(KeyCache),
}

/// A token split into its parts, nothing verified yet.
struct Unverified {
    alg: String,
    kid: Option<String>,
    claims: Map<String, Json>,
}

impl AuthVerifier {
    pub fn new(providers: Vec<Provider>, settings: &AuthSettings, fetcher: &Arc<Fetcher>) -> Self {
        let providers = providers
            .into_iter()
            .map(|provider| {
                let cache =
                    |source| Keys::Fetched(KeyCache::new(source, fetcher.clone(), settings.cache));
                let keys = match &provider {
                    Provider::Hs256 { secret, .. } => {
                        Keys::Secret(DecodingKey::from_secret(secret.0.as_bytes()))
                    }
                    Provider::CustomJwt {
                        jwks: Jwks::Inline(keys),
                        ..
                    } => Keys::Given(keys.clone()),
                    Provider::CustomJwt {
                        jwks: Jwks::Url(url),
                        ..
                    } => cache(KeySource::Url(url.clone())),
                    Provider::Oidc { domain, .. } => cache(KeySource::Discovery {
                        issuer: domain.clone(),
                    }),
                };
                ProviderKeys { provider, keys }
            })
            .collect();
        Self {
            providers,
            clock_skew_s: settings.clock_skew_s,
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter().map(|entry| &entry.provider)
    }

    /// How many times the `index`th provider's keys were fetched (tests, the log).
    pub fn key_loads(&self, index: usize) -> u64 {
        match self.providers.get(index).map(|entry| &entry.keys) {
            Some(Keys::Fetched(cache)) => cache.loads(),
            _ => 0,
        }
    }

    /// The identity in `token`, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<UserIdentity, TokenError> {
        Ok(self.verify_with_expiry(token).await?.0)
    }

    /// [`AuthVerifier::verify`], with when the identity expires: the token's `exp` plus the
    /// allowed clock skew, in seconds since the epoch (a sync connection re-checks it).
    pub async fn verify_with_expiry(&self, token: &str) -> Result<(UserIdentity, u64), TokenError> {
        let token = token.trim();
        let unverified = Unverified::parse(token)?;
        if unverified.alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::Unsigned);
        }
        let entry = self.provider_for(&unverified.claims)?;
        let provider = &entry.provider;
        let algorithm = unverified
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|algorithm| provider.algorithms().contains(algorithm))
            .ok_or_else(|| TokenError::UnsupportedAlgorithm {
                alg: unverified.alg.clone(),
                provider: provider.describe(),
                allowed: provider
                    .algorithms()
                    .iter()
                    .map(|algorithm| format!("{algorithm:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let key = self
            .key(entry, unverified.kid.as_deref(), algorithm)
            .await?;

        let mut validation = Validation::new(algorithm);
        validation.leeway = self.clock_skew_s;
        validation.validate_nbf = true;
        // The audience was checked when the provider was chosen.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Map<String, Json>>(token, &key, &validation)
            .map_err(|err| self.refusal(err.into_kind(), provider, &unverified.claims))?
            .claims;
        // `exp` is a required claim, checked above.
        let expires_at = claims
            .get("exp")
            .and_then(Json::as_f64)
            .map_or(0, |exp| exp as u64)
            .saturating_add(self.clock_skew_s);
        Ok((
            UserIdentity::from_claims(&claims, provider.claim_mapping()),
            expires_at,
        ))
    }

    /// The provider for a token: by issuer, then by audience.
    fn provider_for(&self, claims: &Map<String, Json>) -> Result<&ProviderKeys, TokenError> {
        let issuer = claims
            .get("iss")
            .and_then(Json::as_str)
            .ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
        let normalized = normalize_issuer(issuer);
        let candidates: Vec<&ProviderKeys> = self
            .providers
            .iter()
            .filter(|entry| entry.provider.issuer() == normalized)
            .collect();
        if candidates.is_empty() {
            let configured = if self.providers.is_empty() {
                "this deployment has no auth providers: see [auth] in kiln.toml".to_string()
            } else {
                let issuers: Vec<_> = self.providers().map(Provider::issuer).collect();
                format!("configured issuers: {}", issuers.join(", "))
            };
            return Err(TokenError::WrongIssuer {
                issuer: issuer.to_string(),
                configured,
            });
        }
        let audiences: Vec<String> = match claims.get("aud") {
            Some(Json::String(audience)) => vec![audience.clone()],
            Some(Json::Array(audiences)) => audiences
                .iter()
                .filter_map(|audience| audience.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        candidates
            .iter()
            .find(|entry| {
                entry
                    .provider
                    .application_id()
                    .is_none_or(|id| audiences.iter().any(|audience| audience == id))
            })
            .copied()
            .ok_or_else(|| TokenError::WrongAudience {
                got: audiences,
                expected: candidates
                    .iter()
                    .filter_map(|entry| entry.provider.application_id().map(str::to_string))
                    .collect(),
                provider: candidates[0].provider.describe(),
            })
    }

    async fn key(
        &self,
        entry: &ProviderKeys,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, TokenError> {
        let found = match &entry.keys {
            Keys::Secret(key) => return Ok(key.clone()),
            Keys::Given(keys) => keys.key(kid, algorithm),
            Keys::Fetched(cache) => cache.key(kid, algorithm).await,
        };
        let provider = entry.provider.describe();
        found.map_err(|err| match err {
            KeyError::Unavailable(reason) => {
                tracing::warn!(%provider, "cannot verify tokens: {reason}");
                TokenError::KeysUnavailable { provider, reason }
            }
            KeyError::UnknownKeyId(kid) => TokenError::UnknownKeyId { kid, provider },
            KeyError::NoKeyId { candidates } => TokenError::NoKeyId {
                provider,
                candidates,
            },
        })
    }

    /// What a failed `jsonwebtoken::decode` means for the caller.
    fn refusal(
        &self,
        kind: ErrorKind,
        provider: &Provider,
        claims: &Map<String, Json>,
    ) -> TokenError {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let number = |name: &str| claims.get(name).and_then(Json::as_u64).unwrap_or_default();
        match kind {
            ErrorKind::InvalidSignature => TokenError::BadSignature {
                provider: provider.describe(),
            },
            ErrorKind::ExpiredSignature => {
                let exp = number("exp");
                TokenError::Expired {
                    exp,
                    ago_s: now.saturating_sub(exp),
                    skew_s: self.clock_skew_s,
                }
            }
            ErrorKind::ImmatureSignature => {
                let nbf = number("nbf");
                TokenError::NotYetValid {
                    nbf,
                    in_s: nbf.saturating_sub(now),
                    skew_s: self.clock_skew_s,
                }
            }
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            // The algorithm and the key's type were matched before: a key that does not
            // fit its algorithm is the provider's, and the token cannot be checked with it.
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidKeyFormat => TokenError::BadSignature {
                provider: provider.describe(),
            },
            other => TokenError::Malformed(format!("{other:?}")),
        }
    }
}

impl Unverified {
    fn parse(token: &str) -> Result<Self, TokenError> {
        let malformed = |why: &str| TokenError::Malformed(why.to_string());
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "a JWT has three base64url parts separated by dots",
            ));
        };
        let object = |segment: &str, what: &str| -> Result<Map<String, Json>, TokenError> {
            let bytes = SEGMENT
                .decode(segment)
                .map_err(|_| malformed(&format!("its {what} is not base64url")))?;
            match serde_json::from_slice(&bytes) {
                Ok(Json::Object(object)) => Ok(object),
                _ => Err(malformed(&format!("its {what} is not a JSON object"))),
            }
        };
        let header = object(header, "header")?;
        let claims = object(payload, "payload")?;
        let alg = header
            .get("alg")
            .and_then(Json::as_str)
            .ok_or_else(|| malformed("its header has no `alg`"))?
            .to_string();
        let kid = header.get("kid").and_then(Json::as_str).map(str::to_string);
        Ok(Self { alg, kid, claims })
    }
}
