//! Verification end to end within the crate: real tokens signed with the test keys in
//! `tests/fixtures/jwt/`, providers served by a local HTTP server that counts requests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};

use super::fetch::Fetcher;
use super::jwks::CachePolicy;
use super::{AuthConfig, AuthSettings, AuthVerifier, TokenError};

const RSA_A: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pem");
const RSA_B: &str = include_str!("../../../tests/fixtures/jwt/rsa-b.pem");
const EC_A: &str = include_str!("../../../tests/fixtures/jwt/ec-a.pem");
const ED_A: &str = include_str!("../../../tests/fixtures/jwt/ed-a.pem");
const RSA_A_JWK: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.jwk.json");
const RSA_B_JWK: &str = include_str!("../../../tests/fixtures/jwt/rsa-b.jwk.json");
const EC_A_JWK: &str = include_str!("../../../tests/fixtures/jwt/ec-a.jwk.json");
const ED_A_JWK: &str = include_str!("../../../tests/fixtures/jwt/ed-a.jwk.json");
const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn jwks(keys: &[&str]) -> String {
    let keys: Vec<Json> = keys
        .iter()
        .map(|key| serde_json::from_str(key).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

/// Claims valid for an hour, plus `extra`.
fn claims(issuer: &str, audience: &str, extra: Json) -> Json {
    let mut claims = json!({
        "iss": issuer, "sub": "user-1", "aud": audience,
        "iat": now(), "exp": now() + 3600,
    });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Json) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

/// An unsigned token: `alg: none` and an empty signature.
fn unsigned(claims: &Json) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn settings(refetch_interval: Duration) -> AuthSettings {
    AuthSettings {
        clock_skew_s: 5,
        cache: CachePolicy {
            ttl: Duration::from_secs(3600),
            refetch_interval,
        },
    }
}

fn verifier(config: Json, refetch_interval: Duration) -> AuthVerifier {
    let config: AuthConfig = serde_json::from_value(config).unwrap();
    let fetcher = Arc::new(Fetcher::new(Duration::from_secs(5), 1 << 20).unwrap());
    AuthVerifier::new(
        config.validate().unwrap(),
        &settings(refetch_interval),
        &fetcher,
    )
}

/// An identity provider on 127.0.0.1: OIDC discovery and a JWKS that a test may change,
/// counting the requests for each path.
struct ProviderServer {
    base: String,
    jwks: Arc<Mutex<String>>,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ProviderServer {
    async fn start(jwks: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let jwks = Arc::new(Mutex::new(jwks));
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let (served_jwks, served_hits, issuer) = (jwks.clone(), hits.clone(), base.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (jwks, hits, issuer) =
                    (served_jwks.clone(), served_hits.clone(), issuer.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<_>| {
                        let path = request.uri().path().to_string();
                        *hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                        let (status, body) = match path.as_str() {
                            "/.well-known/openid-configuration" => (
                                StatusCode::OK,
                                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")})
                                    .to_string(),
                            ),
                            "/jwks.json" => (StatusCode::OK, jwks.lock().unwrap().clone()),
                            _ => (StatusCode::NOT_FOUND, String::new()),
                        };
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            base,
            jwks,
            hits,
            task,
        }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for ProviderServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hs256_verifier() -> AuthVerifier {
    verifier(
        json!({"providers": [{"type": "hs256", "issuer": "https://kiln.test", "secret": SECRET, "applicationID": "app"}]}),
        Duration::from_secs(10),
    )
}

fn hs256(claims: &Json) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

#[tokio::test]
async fn hs256_tokens_give_the_identity() {
    let verifier = hs256_verifier();
    let token = hs256(&claims(
        "https://kiln.test/",
        "app",
        json!({"email": "ada@example.com", "team": "blue"}),
    ));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.token_identifier, "https://kiln.test/|user-1");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert_eq!(identity.custom_claims.keys().collect::<Vec<_>>(), ["team"]);
    // A token signed with another secret is refused.
    let forged = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!"),
        &claims("https://kiln.test", "app", json!({})),
    );
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(TokenError::BadSignature { .. })
    ));
}

#[tokio::test]
async fn every_rejection_names_its_reason() {
    let verifier = hs256_verifier();
    let good = |extra: Json| hs256(&claims("https://kiln.test", "app", extra));
    let reason = |result: Result<_, TokenError>| result.unwrap_err().to_string();

    let expired = reason(verifier.verify(&good(json!({"exp": now() - 3600}))).await);
    assert!(
        expired.starts_with("token expired: it expired 36"),
        "{expired}"
    );
    // Within the clock skew, a token just past its expiry still passes.
    assert!(
        verifier
            .verify(&good(json!({"exp": now() - 2})))
            .await
            .is_ok()
    );

    let early = reason(verifier.verify(&good(json!({"nbf": now() + 600}))).await);
    assert!(
        early.starts_with("token not yet valid: it becomes valid in 60"),
        "{early}"
    );

    let wrong_issuer = verifier
        .verify(&hs256(&claims("https://evil.test", "app", json!({}))))
        .await
        .unwrap_err();
    assert_eq!(wrong_issuer.code(), "NoAuthProvider");
    assert_eq!(
        wrong_issuer.to_string(),
        "wrong issuer: no auth provider is configured for issuer \"https://evil.test\" (configured issuers: https://kiln.test)"
    );

    let wrong_audience = verifier
        .verify(&hs256(&claims("https://kiln.test", "other-app", json!({}))))
        .await
        .unwrap_err();
    assert_eq!(wrong_audience.code(), "InvalidAuthHeader");
    assert!(
        wrong_audience
            .to_string()
            .starts_with("wrong audience: the token is for [\"other-app\"]"),
        "{wrong_audience}"
    );

    assert_eq!(
        reason(
            verifier
                .verify(&unsigned(&claims("https://kiln.test", "app", json!({}))))
                .await
        ),
        "unsigned token: `alg: none` is never accepted"
    );
    // Also with the signature of a real token pasted on.
    let real = good(json!({}));
    let signature = real.rsplit('.').next().unwrap();
    let none_with_signature = format!(
        "{}{signature}",
        unsigned(&claims("https://kiln.test", "app", json!({})))
    );
    assert!(matches!(
        verifier.verify(&none_with_signature).await,
        Err(TokenError::Unsigned)
    ));

    let mut no_subject = claims("https://kiln.test", "app", json!({}));
    no_subject.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        reason(verifier.verify(&hs256(&no_subject)).await),
        "missing claim: the token has no `sub` claim of the right type"
    );
    let mut no_expiry = claims("https://kiln.test", "app", json!({}));
    no_expiry.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        verifier.verify(&hs256(&no_expiry)).await,
        Err(TokenError::MissingClaim(claim)) if claim == "exp"
    ));

    for malformed in ["", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.bm90IGpzb24.x"] {
        assert!(
            matches!(
                verifier.verify(malformed).await,
                Err(TokenError::Malformed(_))
            ),
            "{malformed:?}"
        );
    }
}

#[tokio::test]
async fn a_token_cannot_choose_another_algorithm() {
    // An RS256 provider whose public key an attacker knows: an HS256 token "signed" with
    // that public key as the secret, and an RS512 one, are both refused by algorithm.
    let verifier = verifier(
        json!({"providers": [{"type": "customJwt", "issuer": "https://rsa.test", "algorithm": "RS256",
            "jwks": format!("data:application/json;base64,{}", STANDARD.encode(jwks(&[RSA_A_JWK])))}]}),
        Duration::from_secs(10),
    );
    let claims = claims("https://rsa.test", "any", json!({}));
    let confused = sign(
        Algorithm::HS256,
        Some("rsa-a"),
        &EncodingKey::from_secret(RSA_A_JWK.as_bytes()),
        &claims,
    );
    assert_eq!(
        verifier.verify(&confused).await.unwrap_err().to_string(),
        "unsupported algorithm \"HS256\": customJwt https://rsa.test (any audience) accepts only RS256"
    );
    let rs512 = sign(Algorithm::RS512, Some("rsa-a"), &rsa(RSA_A), &claims);
    assert!(matches!(
        verifier.verify(&rs512).await,
        Err(TokenError::UnsupportedAlgorithm { alg, .. }) if alg == "RS512"
    ));
    assert!(
        verifier
            .verify(&sign(Algorithm::RS256, Some("rsa-a"), &rsa(RSA_A), &claims))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn rs256_keys_are_fetched_once_and_refetched_once_for_an_unknown_kid() {
    let server = ProviderServer::start(jwks(&[RSA_A_JWK])).await;
    let verifier = verifier(
        json!({"providers": [{"type": "customJwt", "issuer": "https://rsa.test", "algorithm": "RS256",
            "jwks": format!("{}/jwks.json", server.base), "applicationID": "app"}]}),
        Duration::from_secs(3600),
    );
    let claims = claims("https://rsa.test", "app", json!({"org": {"id": "o1"}}));
    let token = sign(Algorithm::RS256, Some("rsa-a"), &rsa(RSA_A), &claims);
    for _ in 0..3 {
        let identity = verifier.verify(&token).await.unwrap();
        // customJwt claims stay custom, flattened as Convex does.
        assert_eq!(
            identity.custom_claims["org.id"],
            crate::values::Value::from("o1")
        );
    }
    assert_eq!(server.hits("/jwks.json"), 1, "the keys are cached");

    // A signature by another key under the same kid.
    let forged = sign(Algorithm::RS256, Some("rsa-a"), &rsa(RSA_B), &claims);
    assert!(
        verifier
            .verify(&forged)
            .await
            .unwrap_err()
            .to_string()
            .starts_with("bad signature:")
    );
    assert_eq!(server.hits("/jwks.json"), 1);

    // An unknown kid: one refetch, then refused.
    let unknown = sign(Algorithm::RS256, Some("rsa-b"), &rsa(RSA_B), &claims);
    assert_eq!(
        verifier.verify(&unknown).await.unwrap_err().to_string(),
        "unknown key id \"rsa-b\": customJwt https://rsa.test (applicationID app) has no such key, also after fetching its keys again"
    );
    assert_eq!(server.hits("/jwks.json"), 2);
    // A flood of unknown kids within the refetch interval fetches nothing more.
    for kid in ["x1", "x2", "x3"] {
        let token = sign(Algorithm::RS256, Some(kid), &rsa(RSA_B), &claims);
        assert!(matches!(
            verifier.verify(&token).await,
            Err(TokenError::UnknownKeyId { .. })
        ));
    }
    assert_eq!(server.hits("/jwks.json"), 2);
    assert_eq!(verifier.key_loads(0), 2);
}

#[tokio::test]
async fn rotated_keys_are_picked_up_by_a_refetch() {
    let server = ProviderServer::start(jwks(&[RSA_A_JWK])).await;
    let verifier = verifier(
        json!({"providers": [{"type": "customJwt", "issuer": "https://rsa.test", "algorithm": "RS256",
            "jwks": format!("{}/jwks.json", server.base)}]}),
        Duration::ZERO,
    );
    let claims = claims("https://rsa.test", "app", json!({}));
    let old = sign(Algorithm::RS256, Some("rsa-a"), &rsa(RSA_A), &claims);
    verifier.verify(&old).await.unwrap();
    *server.jwks.lock().unwrap() = jwks(&[RSA_A_JWK, RSA_B_JWK]);
    let new = sign(Algorithm::RS256, Some("rsa-b"), &rsa(RSA_B), &claims);
    verifier.verify(&new).await.unwrap();
    assert_eq!(server.hits("/jwks.json"), 2);
}

#[tokio::test]
async fn oidc_discovery_finds_the_keys_for_rs256_es256_and_eddsa() {
    let server = ProviderServer::start(jwks(&[RSA_A_JWK, EC_A_JWK, ED_A_JWK])).await;
    let verifier = verifier(
        json!({"providers": [{"domain": server.base, "applicationID": "app"}]}),
        Duration::from_secs(10),
    );
    let claims = claims(
        &format!("{}/", server.base),
        "app",
        json!({"given_name": "Ada", "email_verified": true}),
    );
    let ec = EncodingKey::from_ec_pem(EC_A.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(ED_A.as_bytes()).unwrap();
    for token in [
        sign(Algorithm::RS256, Some("rsa-a"), &rsa(RSA_A), &claims),
        sign(Algorithm::ES256, Some("ec-a"), &ec, &claims),
        sign(Algorithm::EdDSA, Some("ed-a"), &ed, &claims),
    ] {
        let identity = verifier.verify(&token).await.unwrap();
        assert_eq!(identity.given_name.as_deref(), Some("Ada"));
        assert_eq!(identity.email_verified, Some(true));
        assert_eq!(identity.subject, "user-1");
    }
    assert_eq!(
        (
            server.hits("/.well-known/openid-configuration"),
            server.hits("/jwks.json")
        ),
        (1, 1)
    );
    // An OIDC provider's tokens must name its application ID.
    let other = sign(
        Algorithm::RS256,
        Some("rsa-a"),
        &rsa(RSA_A),
        &claims_for_audience(&server.base, "not-app"),
    );
    assert!(matches!(
        verifier.verify(&other).await,
        Err(TokenError::WrongAudience { .. })
    ));
}

fn claims_for_audience(issuer: &str, audience: &str) -> Json {
    claims(issuer, audience, json!({}))
}

#[tokio::test]
async fn discovery_from_another_issuer_is_refused() {
    let server = ProviderServer::start(jwks(&[RSA_A_JWK])).await;
    // The provider is configured under a name its discovery document does not use.
    let alias = server.base.replace("127.0.0.1", "localhost");
    let verifier = verifier(
        json!({"providers": [{"domain": alias, "applicationID": "app"}]}),
        Duration::from_secs(10),
    );
    let token = sign(
        Algorithm::RS256,
        Some("rsa-a"),
        &rsa(RSA_A),
        &claims(&alias, "app", json!({})),
    );
    let err = verifier.verify(&token).await.unwrap_err().to_string();
    assert!(
        err.starts_with("provider keys unavailable:")
            && err.contains("discovery must come from the issuer itself"),
        "{err}"
    );
    assert_eq!(server.hits("/jwks.json"), 0);
}

#[tokio::test]
async fn an_unreachable_provider_is_not_hammered() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let verifier = verifier(
        json!({"providers": [{"type": "customJwt", "issuer": "https://rsa.test", "algorithm": "RS256",
            "jwks": format!("http://127.0.0.1:{port}/jwks.json")}]}),
        Duration::from_secs(3600),
    );
    let token = sign(
        Algorithm::RS256,
        Some("rsa-a"),
        &rsa(RSA_A),
        &claims("https://rsa.test", "app", json!({})),
    );
    for _ in 0..3 {
        let err = verifier.verify(&token).await.unwrap_err().to_string();
        assert!(
            err.starts_with(
                "provider keys unavailable: cannot fetch the keys of customJwt https://rsa.test"
            ),
            "{err}"
        );
    }
    assert_eq!(
        verifier.key_loads(0),
        1,
        "a failed fetch is not retried at once"
    );
}

#[tokio::test]
async fn es256_keys_from_a_data_uri() {
    let verifier = verifier(
        json!({"providers": [{"type": "customJwt", "issuer": "ec.test", "algorithm": "ES256",
            "jwks": format!("data:application/json;base64,{}", STANDARD.encode(jwks(&[EC_A_JWK])))}]}),
        Duration::from_secs(10),
    );
    let ec = EncodingKey::from_ec_pem(EC_A.as_bytes()).unwrap();
    // The token's `iss` lacks the scheme the config's issuer was given: still the same.
    let token = sign(
        Algorithm::ES256,
        Some("ec-a"),
        &ec,
        &claims("ec.test", "x", json!({})),
    );
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.token_identifier, "ec.test|user-1");
    let unknown = sign(
        Algorithm::ES256,
        Some("ec-b"),
        &ec,
        &claims("ec.test", "x", json!({})),
    );
    assert!(matches!(
        verifier.verify(&unknown).await,
        Err(TokenError::UnknownKeyId { .. })
    ));
}

#[tokio::test]
async fn a_deployment_without_providers_refuses_every_token() {
    let verifier = AuthVerifier::default();
    let err = verifier
        .verify(&hs256(&claims("https://kiln.test", "app", json!({}))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NoAuthProvider");
    assert!(
        err.to_string()
            .contains("this deployment has no auth providers"),
        "{err}"
    );
}
