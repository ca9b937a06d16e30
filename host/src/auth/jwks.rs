//! A provider's public keys: parsing a JWKS, OIDC discovery, and the per-provider cache.
//!
//! Keys are fetched on first use, kept for `jwks_cache_ttl_s`, and fetched again early
//! when a token names a key id the cache does not hold (the provider rotated its keys). At
//! most one such early fetch happens per `jwks_refetch_interval_ms`, so a flood of tokens
//! with made-up key ids costs the provider one request, not one each; a failed fetch is
//! not retried sooner either. Tokens whose key is cached never wait for a fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde_json::Value as Json;

use super::fetch::Fetcher;
use super::providers::normalize_issuer;

/// The usable keys of one JWKS.
pub struct KeySet {
    keys: Vec<Key>,
    fetched_at: Instant,
}

struct Key {
    kid: Option<String>,
    /// The one algorithm this key verifies.
    algorithm: Algorithm,
    decoding: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|key| (&key.kid, key.algorithm))
            .collect();
        f.debug_struct("KeySet").field("keys", &kids).finish()
    }
}

/// Why no key was found for a token.
#[derive(Debug, PartialEq)]
pub enum KeyError {
    /// The provider's keys could not be fetched (and none are cached).
    Unavailable(String),
    /// No key has the token's `kid`, also after fetching the keys again.
    UnknownKeyId(String),
    /// The token names no `kid` and the provider has not exactly one key for its algorithm.
    NoKeyId { candidates: usize },
}

impl KeySet {
    /// Reads a JWKS (`{"keys": [...]}`). Keys Kiln cannot verify with (encryption keys,
    /// symmetric keys, other curves, unknown algorithms) are skipped, not an error: a
    /// provider may publish them beside its signing keys.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let json: Json =
            serde_json::from_slice(bytes).map_err(|err| format!("a JWKS must be JSON: {err}"))?;
        Self::from_json(json)
    }

    fn from_json(json: Json) -> Result<Self, String> {
        let Some(Json::Array(entries)) = json.get("keys") else {
            return Err("a JWKS must be an object with a `keys` array".to_string());
        };
        let keys = entries
            .iter()
            .filter_map(|entry| match usable_key(entry) {
                Ok(key) => Some(key),
                Err(reason) => {
                    tracing::debug!(key = %entry, "JWKS key skipped: {reason}");
                    None
                }
            })
            .collect();
        Ok(Self {
            keys,
            fetched_at: Instant::now(),
        })
    }

    pub fn has_key_for(&self, algorithm: Algorithm) -> bool {
        self.keys.iter().any(|key| key.algorithm == algorithm)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token with `kid` signed with `algorithm` (for keys that are never
    /// fetched again: a `data:` URI's).
    pub fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<DecodingKey, KeyError> {
        self.find(kid, algorithm)?
            .ok_or_else(|| KeyError::UnknownKeyId(kid.unwrap_or_default().to_string()))
    }

    /// The key for a token with `kid` signed with `algorithm`: `Ok(None)` when no key has
    /// that id (so the caller may fetch again).
    fn find(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Option<DecodingKey>, KeyError> {
        let mut candidates = self.keys.iter().filter(|key| key.algorithm == algorithm);
        match kid {
            Some(kid) => Ok(candidates
                .find(|key| key.kid.as_deref() == Some(kid))
                .map(|key| key.decoding.clone())),
            // Without a key id only an unambiguous key will do.
            None => {
                let candidates: Vec<_> = candidates.collect();
                match candidates.as_slice() {
                    [only] => Ok(Some(only.decoding.clone())),
                    other => Err(KeyError::NoKeyId {
                        candidates: other.len(),
                    }),
                }
            }
        }
    }
}

/// A JWK Kiln can verify with, or why not.
fn usable_key(entry: &Json) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|err| err.to_string())?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key".to_string());
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        // Symmetric keys never come from a JWKS here: HS256 has its own provider type.
        other => return Err(format!("unsupported key type {other:?}")),
    };
    // A key that says which algorithm it is for is used for that one only.
    let declared = jwk.common.key_algorithm.map(|declared| match declared {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    });
    if declared.is_some_and(|declared| declared != Some(algorithm)) {
        return Err(format!("its `alg` does not fit a {algorithm:?} key"));
    }
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|err| err.to_string())?;
    Ok(Key {
        kid: jwk.common.key_id,
        algorithm,
        decoding,
    })
}

/// Where a cached key set comes from.
#[derive(Debug)]
pub enum KeySource {
    /// A JWKS URL (`customJwt`).
    Url(Url),
    /// OIDC discovery for this (normalized) issuer, then its `jwks_uri`.
    Discovery { issuer: String },
}

/// How long keys are kept, and how often a fetch may be forced.
#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    /// Keys older than this are fetched again on next use (`jwks_cache_ttl_s`).
    pub ttl: Duration,
    /// Least time between two fetches forced by an unknown key id or after a failed fetch
    /// (`jwks_refetch_interval_ms`).
    pub refetch_interval: Duration,
}

/// One provider's keys, fetched when needed.
pub struct KeyCache {
    source: KeySource,
    fetcher: Arc<Fetcher>,
    policy: CachePolicy,
    /// The last keys fetched. Read without waiting by every verification.
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching, so that one fetch serves every request waiting for it.
    refresh: tokio::sync::Mutex<RefreshState>,
    /// Key sets loaded (or attempted), for tests and the log.
    loads: AtomicU64,
}

#[derive(Default)]
struct RefreshState {
    /// When a fetch was last forced by an unknown key id.
    last_forced: Option<Instant>,
    /// The last failed fetch: when, and why.
    last_failure: Option<(Instant, String)>,
}

impl KeyCache {
    pub fn new(source: KeySource, fetcher: Arc<Fetcher>, policy: CachePolicy) -> Self {
        Self {
            source,
            fetcher,
            policy,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            loads: AtomicU64::new(0),
        }
    }

    /// The key to verify a token with `kid` signed with `algorithm`.
    pub async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, KeyError> {
        let keys = self.fresh_keys().await?;
        if let Some(key) = keys.find(kid, algorithm)? {
            return Ok(key);
        }
        let kid = kid.unwrap_or_default();
        // A key id the cache does not know: the provider may have rotated its keys.
        let keys = self.refetch_for_unknown_key(&keys).await;
        keys.find(Some(kid), algorithm)?
            .ok_or_else(|| KeyError::UnknownKeyId(kid.to_string()))
    }

    /// How many times the key set was loaded (successfully or not).
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Arc<KeySet>> {
        self.current.read().expect("key cache poisoned").clone()
    }

    fn is_fresh(&self, keys: &KeySet) -> bool {
        keys.fetched_at.elapsed() < self.policy.ttl
    }

    /// The cached keys while fresh; otherwise fetched now (stale keys serve while a fetch
    /// fails).
    async fn fresh_keys(&self) -> Result<Arc<KeySet>, KeyError> {
        if let Some(keys) = self.cached().filter(|keys| self.is_fresh(keys)) {
            return Ok(keys);
        }
        let mut state = self.refresh.lock().await;
        // Another request may have fetched while this one waited.
        let stale = self.cached();
        if let Some(keys) = stale.clone().filter(|keys| self.is_fresh(keys)) {
            return Ok(keys);
        }
        if let Some((at, reason)) = &state.last_failure
            && at.elapsed() < self.policy.refetch_interval
        {
            return stale.ok_or_else(|| KeyError::Unavailable(reason.clone()));
        }
        match self.load().await {
            Ok(keys) => {
                state.last_failure = None;
                Ok(keys)
            }
            Err(reason) => {
                state.last_failure = Some((Instant::now(), reason.clone()));
                match stale {
                    Some(keys) => {
                        tracing::warn!(source = ?self.source, "cannot refresh a provider's keys, using the old ones: {reason}");
                        Ok(keys)
                    }
                    None => Err(KeyError::Unavailable(reason)),
                }
            }
        }
    }

    /// Fetches again for a key id not in `seen`, unless one was fetched since or a forced
    /// fetch happened within the refetch interval. Returns the keys to look in.
    async fn refetch_for_unknown_key(&self, seen: &Arc<KeySet>) -> Arc<KeySet> {
        let mut state = self.refresh.lock().await;
        if let Some(current) = self.cached()
            && !Arc::ptr_eq(&current, seen)
        {
            return current;
        }
        if state
            .last_forced
            .is_some_and(|at| at.elapsed() < self.policy.refetch_interval)
        {
            return seen.clone();
        }
        state.last_forced = Some(Instant::now());
        match self.load().await {
            Ok(keys) => keys,
            Err(reason) => {
                tracing::warn!(source = ?self.source, "cannot refetch a provider's keys: {reason}");
                seen.clone()
            }
        }
    }

    /// Fetches the key set and makes it current.
    async fn load(&self) -> Result<Arc<KeySet>, String> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let jwks_url = match &self.source {
            KeySource::Url(url) => url.clone(),
            KeySource::Discovery { issuer } => discover(&self.fetcher, issuer).await?,
        };
        let json = self.fetcher.get_json(&jwks_url).await?;
        let keys = Arc::new(KeySet::from_json(json).map_err(|err| format!("{jwks_url}: {err}"))?);
        tracing::info!(%jwks_url, keys = keys.len(), "fetched a provider's keys");
        *self.current.write().expect("key cache poisoned") = Some(keys.clone());
        Ok(keys)
    }
}

/// OIDC discovery: the `jwks_uri` of `issuer`'s configuration document, whose own
/// `issuer` must be `issuer` (OIDC Discovery 1.0, section 4.3).
async fn discover(fetcher: &Fetcher, issuer: &str) -> Result<Url, String> {
    let url = Url::parse(&format!("{issuer}/.well-known/openid-configuration"))
        .map_err(|err| format!("invalid discovery URL for {issuer}: {err}"))?;
    let document = fetcher.get_json(&url).await?;
    let stated = document
        .get("issuer")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if normalize_issuer(stated) != issuer {
        return Err(format!(
            "{url} names issuer {stated:?}, not {issuer:?}: discovery must come from the issuer itself"
        ));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("{url} has no `jwks_uri`"))?;
    let jwks_url =
        Url::parse(jwks_uri).map_err(|err| format!("{url}: invalid `jwks_uri`: {err}"))?;
    if !matches!(jwks_url.scheme(), "http" | "https") {
        return Err(format!("{url}: `jwks_uri` must be http or https"));
    }
    Ok(jwks_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RSA_A: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.jwk.json");
    pub(crate) const EC_A: &str = include_str!("../../../tests/fixtures/jwt/ec-a.jwk.json");
    pub(crate) const ED_A: &str = include_str!("../../../tests/fixtures/jwt/ed-a.jwk.json");

    fn set(keys: &[&str]) -> KeySet {
        let keys: Vec<Json> = keys
            .iter()
            .map(|key| serde_json::from_str(key).unwrap())
            .collect();
        KeySet::from_json(serde_json::json!({ "keys": keys })).unwrap()
    }

    #[test]
    fn keys_are_chosen_by_id_and_algorithm() {
        let keys = set(&[RSA_A, EC_A, ED_A]);
        assert_eq!(keys.len(), 3);
        assert!(
            keys.find(Some("rsa-a"), Algorithm::RS256)
                .unwrap()
                .is_some()
        );
        assert!(keys.find(Some("ec-a"), Algorithm::ES256).unwrap().is_some());
        assert!(keys.find(Some("ed-a"), Algorithm::EdDSA).unwrap().is_some());
        // A key is never used for another algorithm than its own.
        assert!(
            keys.find(Some("rsa-a"), Algorithm::ES256)
                .unwrap()
                .is_none()
        );
        assert!(keys.find(Some("nope"), Algorithm::RS256).unwrap().is_none());
        // Without a kid, the one key for the algorithm.
        assert!(keys.find(None, Algorithm::ES256).unwrap().is_some());
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let keys = KeySet::parse(
            serde_json::json!({"keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"},
                {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
                {"kty": "RSA", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB", "kid": "oaep"},
                {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
                {"kty": "weird"},
                serde_json::from_str::<Json>(RSA_A).unwrap(),
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert!(!keys.has_key_for(Algorithm::HS256));
        assert!(KeySet::parse(b"[]").is_err());
        assert!(KeySet::parse(b"not json").is_err());
    }

    #[test]
    fn without_a_kid_an_ambiguous_set_is_an_error() {
        let rsa_b = include_str!("../../../tests/fixtures/jwt/rsa-b.jwk.json");
        let keys = set(&[RSA_A, rsa_b]);
        assert_eq!(
            keys.find(None, Algorithm::RS256).err(),
            Some(KeyError::NoKeyId { candidates: 2 })
        );
    }
}
