//! User identity through the real server: `[auth]` deployed with the modules, tokens from
//! an HS256 provider and from an OIDC provider served on 127.0.0.1 by the test, every bad
//! token answered 401 with its reason, no token meaning no identity, the admin acting as a
//! user, `kiln deploy` carrying `[auth]` from kiln.toml, and Convex's own client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};

use crate::support::{ADMIN_KEY, Server, component, kiln_binary};

pub(crate) const SECRET: &str = "e2e-test-secret-of-at-least-32-bytes";
pub(crate) const HS_ISSUER: &str = "https://kiln.test";

pub(crate) fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/jwt")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims valid for an hour, with `extra` on top.
pub(crate) fn claims(issuer: &str, audience: &str, extra: Json) -> Json {
    let mut claims = json!({
        "iss": issuer, "sub": "user-1", "aud": audience, "iat": now(), "exp": now() + 3600,
    });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

pub(crate) fn sign(
    algorithm: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &Json,
) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(crate) fn hs256(claims: &Json) -> String {
    sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

pub(crate) fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(fixture(name).as_bytes()).unwrap()
}

/// An OIDC provider on 127.0.0.1 (discovery and a JWKS with `rsa-a`), counting requests
/// per path. Runs on a thread of its own until dropped.
struct OidcProvider {
    issuer: String,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OidcProvider {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let jwks = format!(r#"{{"keys": [{}]}}"#, fixture("rsa-a.jwk.json"));
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (served_hits, served_issuer) = (hits.clone(), issuer.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (hits, issuer, jwks) =
                            (served_hits.clone(), served_issuer.clone(), jwks.clone());
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request: Request<_>| {
                                let path = request.uri().path().to_string();
                                *hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                                let (status, body) = match path.as_str() {
                                    "/.well-known/openid-configuration" => (
                                        StatusCode::OK,
                                        json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})
                                            .to_string(),
                                    ),
                                    "/jwks" => (StatusCode::OK, jwks.clone()),
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
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            issuer,
            hits,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Deploys `hello` with `auth` (the `[auth]` of kiln.toml, as JSON).
fn deploy(server: &Server, auth: Json) -> (u16, Json) {
    let body = json!({
        "modules": { "hello": BASE64.encode(component("hello")) },
        "auth": auth,
    });
    server.post("/api/deploy", &body.to_string(), true)
}

fn providers(oidc: &OidcProvider) -> Json {
    json!({"providers": [
        {"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"},
        {"domain": oidc.issuer, "applicationID": "oidc-app"},
    ]})
}

/// `hello:whoami` with `authorization` (if any): the status and the body.
fn whoami(server: &Server, authorization: Option<&str>) -> (u16, Json) {
    let body = json!({"path": "hello:whoami", "args": {}, "format": "json"}).to_string();
    match authorization {
        Some(authorization) => server.post_with_auth("/api/query", &body, authorization),
        None => server.post("/api/query", &body, false),
    }
}

/// `hello:whoami` with a bearer token that must be refused: its code and message.
fn refused(server: &Server, token: &str) -> (String, String) {
    let (status, body) = whoami(server, Some(&format!("Bearer {token}")));
    assert_eq!(status, 401, "{body}");
    (
        body["code"].as_str().unwrap().to_string(),
        body["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn whoami_sees_the_verified_identity_and_bad_tokens_are_refused_with_their_reason() {
    let oidc = OidcProvider::start();
    let server = Server::start();
    let (status, report) = deploy(&server, providers(&oidc));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["authProviders"],
        json!([
            "hs256 https://kiln.test (applicationID kiln-app)",
            format!("oidc {} (applicationID oidc-app)", oidc.issuer),
        ])
    );

    // No token: no identity.
    let (status, body) = whoami(&server, None);
    assert_eq!((status, &body["value"]), (200, &Json::Null), "{body}");

    // An HS256 token.
    let token = hs256(&claims(
        HS_ISSUER,
        "kiln-app",
        json!({"email": "ada@example.com", "email_verified": true, "team": "blue"}),
    ));
    let (status, body) = whoami(&server, Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["value"],
        json!({
            "tokenIdentifier": "https://kiln.test|user-1", "issuer": HS_ISSUER,
            "subject": "user-1", "email": "ada@example.com", "emailVerified": true,
            "team": "blue",
        })
    );
    // The same through /api/run.
    let (_, body) = server.post_with_auth(
        "/api/run/hello/whoami",
        r#"{"args": {}}"#,
        &format!("Bearer {token}"),
    );
    assert_eq!(body["value"]["subject"], "user-1", "{body}");

    // An RS256 token from the OIDC provider: discovery and keys fetched once, then cached.
    let rsa_a = rsa("rsa-a.pem");
    let oidc_claims = claims(
        &oidc.issuer,
        "oidc-app",
        json!({"given_name": "Ada", "picture": "https://pic.example/ada"}),
    );
    let token = sign(Algorithm::RS256, Some("rsa-a"), &rsa_a, &oidc_claims);
    for _ in 0..3 {
        let (status, body) = whoami(&server, Some(&format!("Bearer {token}")));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"]["givenName"], "Ada", "{body}");
        assert_eq!(body["value"]["pictureUrl"], "https://pic.example/ada");
        assert_eq!(
            body["value"]["tokenIdentifier"],
            format!("{}|user-1", oidc.issuer)
        );
    }
    assert_eq!(
        (
            oidc.hits("/.well-known/openid-configuration"),
            oidc.hits("/jwks")
        ),
        (1, 1)
    );

    // Every bad token: 401, Convex's code, and the reason first in the message.
    let hs = |extra: Json| hs256(&claims(HS_ISSUER, "kiln-app", extra));
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "expired",
            hs(json!({"exp": now() - 600})),
            "InvalidAuthHeader",
            "token expired: it expired 60",
        ),
        (
            "not yet valid",
            hs(json!({"nbf": now() + 600})),
            "InvalidAuthHeader",
            "token not yet valid:",
        ),
        (
            "wrong issuer",
            hs256(&claims("https://evil.test", "kiln-app", json!({}))),
            "NoAuthProvider",
            "wrong issuer: no auth provider is configured for issuer \"https://evil.test\"",
        ),
        (
            "wrong audience",
            hs256(&claims(HS_ISSUER, "another-app", json!({}))),
            "InvalidAuthHeader",
            "wrong audience: the token is for [\"another-app\"]",
        ),
        (
            "bad signature (HS256)",
            sign(
                Algorithm::HS256,
                None,
                &EncodingKey::from_secret(b"not-the-secret-but-just-as-long-!!!!"),
                &claims(HS_ISSUER, "kiln-app", json!({})),
            ),
            "InvalidAuthHeader",
            "bad signature:",
        ),
        (
            "bad signature (RS256, right kid, wrong key)",
            sign(
                Algorithm::RS256,
                Some("rsa-a"),
                &rsa("rsa-b.pem"),
                &oidc_claims,
            ),
            "InvalidAuthHeader",
            "bad signature:",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
                URL_SAFE_NO_PAD.encode(claims(HS_ISSUER, "kiln-app", json!({})).to_string())
            ),
            "InvalidAuthHeader",
            "unsigned token: `alg: none` is never accepted",
        ),
        (
            "algorithm confusion",
            sign(
                Algorithm::HS256,
                Some("rsa-a"),
                &EncodingKey::from_secret(fixture("rsa-a.jwk.json").as_bytes()),
                &oidc_claims,
            ),
            "InvalidAuthHeader",
            "unsupported algorithm \"HS256\"",
        ),
        (
            "unknown kid",
            sign(
                Algorithm::RS256,
                Some("rsa-z"),
                &rsa("rsa-b.pem"),
                &oidc_claims,
            ),
            "InvalidAuthHeader",
            "unknown key id \"rsa-z\"",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_string(),
            "InvalidAuthHeader",
            "malformed token:",
        ),
    ];
    for (case, token, code, reason) in cases {
        let (got_code, message) = refused(&server, &token);
        assert_eq!(got_code, code, "{case}: {message}");
        assert!(message.starts_with(reason), "{case}: {message:?}");
    }
    // The unknown kid fetched the keys once more; nothing else did.
    assert_eq!(oidc.hits("/jwks"), 2);

    // The admin key acting as a user, as `setAdminAuth(key, identity)` sends it.
    let identity = json!({"subject": "dash-user", "issuer": "https://dashboard", "name": "Bo"});
    let acting = format!("Convex {ADMIN_KEY}:{}", BASE64.encode(identity.to_string()));
    let (status, body) = whoami(&server, Some(&acting));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["value"],
        json!({"tokenIdentifier": "https://dashboard|dash-user", "issuer": "https://dashboard",
               "subject": "dash-user", "name": "Bo"})
    );
    // With a wrong key it is refused, whatever the identity.
    let wrong = format!("Convex wrong-key:{}", BASE64.encode(identity.to_string()));
    assert_eq!(whoami(&server, Some(&wrong)).0, 401);
}

#[test]
fn auth_providers_live_with_their_deployment() {
    let server = Server::start();
    let token = hs256(&claims(HS_ISSUER, "kiln-app", json!({})));
    let bearer = format!("Bearer {token}");

    // A provider that cannot work is refused at deploy, naming it and the field; the
    // deployment before stays live.
    server.deploy_ok(&[("hello", &component("hello"))]);
    let (status, body) = deploy(
        &server,
        json!({"providers": [
            {"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET},
            {"type": "customJwt", "issuer": "https://x", "jwks": "https://x/jwks", "algorithm": "HS256"},
        ]}),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidAuthConfig")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "auth.providers[1] (customJwt): `algorithm` \"HS256\" is not supported: use \"RS256\" or \"ES256\""
    );
    let (status, body) = deploy(
        &server,
        json!({"providers": [{"domain": "https://a.example"}]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with(
            "auth.providers[0] (oidc): `application_id` (Convex: applicationID) is missing"
        ),
        "{body}"
    );
    // No provider yet: a token is refused, not ignored.
    assert_eq!(refused(&server, &token).0, "NoAuthProvider");

    // Deployed, the provider survives a restart with its deployment.
    let (status, body) = deploy(
        &server,
        json!({"providers": [{"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        whoami(&server, Some(&bearer)).1["value"]["subject"],
        "user-1"
    );
    let mut server = server;
    server.restart();
    let (status, body) = whoami(&server, Some(&bearer));
    assert_eq!(
        (status, &body["value"]["subject"]),
        (200, &json!("user-1")),
        "{body}"
    );

    // A deploy without `[auth]` takes the providers away with it.
    server.deploy_ok(&[("hello", &component("hello"))]);
    let (code, message) = refused(&server, &token);
    assert_eq!(code, "NoAuthProvider");
    assert!(
        message.contains("this deployment has no auth providers"),
        "{message}"
    );
}

#[test]
fn kiln_deploy_sends_auth_from_kiln_toml() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/components/hello.wasm");
    std::fs::write(
        dir.path().join("jwks.json"),
        format!(r#"{{"keys": [{}]}}"#, fixture("ec-a.jwk.json")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kiln.toml"),
        format!(
            r#"[modules]
hello = {hello:?}

# Convex's customJwt, its JWKS in a file next to this one.
[[auth.providers]]
type = "customJwt"
issuer = "https://ec.test"
jwks = "jwks.json"
algorithm = "ES256"
applicationID = "ec-app"

[[auth.providers]]
type = "hs256"
issuer = "{HS_ISSUER}"
secret_env = "KILN_E2E_JWT_SECRET"
"#
        ),
    )
    .unwrap();
    let output = Command::new(kiln_binary())
        .arg("deploy")
        .arg(dir.path())
        .env("KILN_URL", &server.url)
        .env("KILN_ADMIN_KEY", ADMIN_KEY)
        .env("KILN_E2E_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("auth: customJwt https://ec.test (applicationID ec-app)"),
        "{stdout}"
    );

    let ec = EncodingKey::from_ec_pem(fixture("ec-a.pem").as_bytes()).unwrap();
    let token = sign(
        Algorithm::ES256,
        Some("ec-a"),
        &ec,
        &claims("https://ec.test", "ec-app", json!({"org": {"id": "o1"}})),
    );
    let (status, body) = whoami(&server, Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    // customJwt claims stay custom and flatten, as in Convex.
    assert_eq!(
        body["value"],
        json!({"tokenIdentifier": "https://ec.test|user-1", "issuer": "https://ec.test",
               "subject": "user-1", "org.id": "o1"})
    );
    let token = hs256(&claims(HS_ISSUER, "anything", json!({})));
    assert_eq!(whoami(&server, Some(&format!("Bearer {token}"))).0, 200);
}

#[test]
fn convex_http_client_set_auth_and_set_admin_auth_reach_get_user_identity() {
    let server = Server::start();
    let (status, body) = deploy(
        &server,
        json!({"providers": [{"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"}]}),
    );
    assert_eq!(status, 200, "{body}");
    let token = hs256(&claims(HS_ISSUER, "kiln-app", json!({"name": "Ada"})));
    let expired = hs256(&claims(HS_ISSUER, "kiln-app", json!({"exp": now() - 600})));
    let (_, result) = crate::support::run_client_script(
        "auth.mjs",
        &[
            server.url.as_str(),
            token.as_str(),
            expired.as_str(),
            ADMIN_KEY,
        ],
    );
    assert_eq!(
        result["bearer"],
        json!({"tokenIdentifier": "https://kiln.test|user-1", "issuer": HS_ISSUER,
               "subject": "user-1", "name": "Ada"})
    );
    assert_eq!(
        result["admin"],
        json!({"tokenIdentifier": "https://dashboard|dash-user", "issuer": "https://dashboard",
               "subject": "dash-user", "name": "Bo"})
    );
    assert_eq!(result["anonymous"], Json::Null);
    let refused = result["expired"].as_str().unwrap();
    assert!(refused.contains("token expired"), "{refused}");
}

/// The caller's identity reaches every function it calls, through actions, queries and
/// mutations alike, and an HTTP action's `Authorization: Bearer` becomes its identity.
#[test]
fn the_identity_is_handed_on_to_every_nested_call() {
    let server = Server::start();
    let body = json!({
        "modules": {
            "hello": BASE64.encode(component("hello")),
            "calls": BASE64.encode(component("calls")),
        },
        "auth": {"providers": [{"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"}]},
    });
    let (status, answer) = server.post("/api/deploy", &body.to_string(), true);
    assert_eq!(status, 200, "{answer}");
    let token = hs256(&claims(HS_ISSUER, "kiln-app", json!({"sub": "user-7"})));
    let call = json!({"path": "calls:subjects", "args": {}, "format": "json"}).to_string();
    let (status, answer) = server.post_with_auth("/api/action", &call, &format!("Bearer {token}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["value"],
        json!({"action": "user-7", "via_query": "user-7", "via_mutation": "user-7"}),
        "{answer}"
    );
    // Without a token, nobody at any level.
    assert_eq!(
        server.value("action", "calls:subjects", json!({})),
        json!({"action": null, "via_query": null, "via_mutation": null})
    );
}
