//! Outbound HTTP (`kiln:platform/http` and `wasi:http`): each test starts the real server
//! with a `[fetch]` config that allows 127.0.0.1 only where it needs to, and a small origin
//! server of its own on a loopback address, which counts the requests it got: a refused
//! request must never reach it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};

use crate::support::{Server, component};

/// The config that lets functions reach the origin server on 127.0.0.1.
pub(crate) const ALLOW_LOOPBACK: &str = "[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\n";

/// A local HTTP server to fetch from. Routes:
/// `/hello`; `/bytes?n=N` (N bytes with a content-length); `/stream?n=N` (N bytes in
/// 1000-byte chunks, no length); `/slow?ms=M`; `/redirect?to=URL` (302); `/echo` (the
/// request's method, body and content type back).
pub(crate) struct Origin {
    address: SocketAddr,
    hits: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Origin {
    pub(crate) fn start(ip: &str) -> Self {
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counter = hits.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let counter = counter.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                counter.fetch_add(1, Ordering::SeqCst);
                                route(request)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            address,
            hits,
            _stop: stop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn port(&self) -> u16 {
        self.address.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

type OriginBody = BoxBody<Bytes, Infallible>;

fn query_param(request: &Request<Incoming>, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    // `to=` takes the rest of the query, so a URL needs no escaping.
    let start = query.find(&format!("{name}="))? + name.len() + 1;
    let value = &query[start..];
    Some(if name == "to" {
        value.to_string()
    } else {
        value.split('&').next().unwrap_or("").to_string()
    })
}

fn number(request: &Request<Incoming>, name: &str) -> u64 {
    query_param(request, name)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

fn full(body: impl Into<Bytes>) -> OriginBody {
    http_body_util::Full::new(body.into()).boxed()
}

async fn route(request: Request<Incoming>) -> Result<Response<OriginBody>, Infallible> {
    let response = match request.uri().path() {
        "/hello" => Response::builder()
            .header("content-type", "text/plain")
            .header("x-origin", "yes")
            .body(full("hello from the origin")),
        "/bytes" => Response::builder().body(full(vec![b'x'; number(&request, "n") as usize])),
        "/stream" => Response::builder().body(
            Chunked {
                remaining: number(&request, "n") as usize,
            }
            .boxed(),
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(number(&request, "ms"))).await;
            Response::builder().body(full("slow"))
        }
        "/redirect" => Response::builder()
            .status(302)
            .header("location", query_param(&request, "to").unwrap_or_default())
            .body(full("")),
        "/echo" => {
            let method = request.method().to_string();
            let content_type = request
                .headers()
                .get("content-type")
                .map(|value| value.to_str().unwrap().to_string())
                .unwrap_or_default();
            let agent = request
                .headers()
                .get("user-agent")
                .map(|value| value.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            Response::builder()
                .header("x-method", method)
                .header("x-user-agent", agent)
                .header("content-type", content_type)
                .body(full(body))
        }
        _ => Response::builder().status(404).body(full("no such route")),
    };
    Ok(response.unwrap())
}

/// A body of `remaining` bytes sent in 1000-byte chunks, with no length announced.
struct Chunked {
    remaining: usize,
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let size = self.remaining.min(1000);
        self.remaining -= size;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'y'; size])))))
    }
}

/// A server with `config`, `hello` and `fetchtest` deployed.
fn start(config: Option<&str>) -> Server {
    let server = Server::start_with_config(config);
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("fetchtest", &component("fetchtest")),
    ]);
    server
}

fn fetch_error(server: &Server, url: &str) -> String {
    server.error("action", "hello:fetch", json!({ "url": url }))
}

fn status(value: &Json) -> f64 {
    value["status"].as_f64().unwrap()
}

#[test]
fn an_action_fetches_from_an_allowed_origin() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(ALLOW_LOOPBACK));
    let value = server.value(
        "action",
        "hello:fetch",
        json!({ "url": origin.url("/hello") }),
    );
    assert_eq!(status(&value), 200.0, "{value}");
    assert_eq!(value["body"], "hello from the origin");

    let sent = server.value(
        "action",
        "fetchtest:send",
        json!({
            "method": "post",
            "url": origin.url("/echo"),
            "headers": [["content-type", "application/json"]],
            "body": "{\"a\":1}",
        }),
    );
    assert_eq!(status(&sent), 200.0, "{sent}");
    assert_eq!(sent["body"], "{\"a\":1}");
    assert_eq!(sent["redirected"], false);
    let header = |name: &str| {
        sent["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().unwrap().to_string())
    };
    assert_eq!(header("x-method").as_deref(), Some("POST"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert!(header("x-user-agent").unwrap().starts_with("kiln/"));
    assert_eq!(origin.hits(), 2);
}

#[test]
fn loopback_private_metadata_and_localhost_are_refused_by_default() {
    let origin = Origin::start("127.0.0.1");
    let server = start(None);
    let port = origin.port();
    for (url, expected) in [
        (
            origin.url("/hello"),
            "fetch refused: 127.0.0.1 is a loopback address (fetch.allowed_networks)".to_string(),
        ),
        (
            format!("http://0x7f.1:{port}/hello"),
            "fetch refused: 127.0.0.1 is a loopback address (fetch.allowed_networks)".to_string(),
        ),
        (
            format!("http://2130706433:{port}/hello"),
            "fetch refused: 127.0.0.1 is a loopback address (fetch.allowed_networks)".to_string(),
        ),
        (
            "http://10.0.0.1/".to_string(),
            "fetch refused: 10.0.0.1 is a private address (fetch.allowed_networks)".to_string(),
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "fetch refused: 169.254.169.254 is a cloud metadata address (fetch.allowed_networks must name it exactly to allow it)".to_string(),
        ),
        (
            format!("http://[::1]:{port}/hello"),
            "fetch refused: ::1 is a loopback address (fetch.allowed_networks)".to_string(),
        ),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hello"),
            "fetch refused: 127.0.0.1 is a loopback address (fetch.allowed_networks)".to_string(),
        ),
        (
            format!("http://localhost:{port}/hello"),
            "fetch refused: localhost resolves to ".to_string(),
        ),
    ] {
        let err = fetch_error(&server, &url);
        assert!(err.starts_with(&expected), "{url}: {err}");
    }
    let err = fetch_error(&server, &format!("http://localhost:{port}/hello"));
    assert!(
        err.ends_with("a loopback address (fetch.allowed_networks)"),
        "{err}"
    );
    assert_eq!(origin.hits(), 0, "a refused request reached the origin");
}

#[test]
fn a_host_off_the_allowlist_is_refused() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[fetch]\nallowed_hosts = [\"api.example.com\", \"*.example.org\"]\nallowed_networks = [\"127.0.0.1/32\"]\n",
    ));
    let err = fetch_error(&server, &origin.url("/hello"));
    assert_eq!(
        err,
        "fetch refused: 127.0.0.1 is not in fetch.allowed_hosts"
    );
    let err = fetch_error(&server, "https://example.org/");
    assert_eq!(
        err,
        "fetch refused: example.org is not in fetch.allowed_hosts"
    );
    assert_eq!(origin.hits(), 0);
}

#[test]
fn every_redirect_hop_is_checked_against_the_policy() {
    let origin = Origin::start("127.0.0.1");
    // 127.0.0.2 is loopback too, but not in the allowed network.
    let elsewhere = Origin::start("127.0.0.2");
    let server = start(Some(ALLOW_LOOPBACK));
    let to_denied = origin.url(&format!("/redirect?to={}", elsewhere.url("/hello")));
    let err = fetch_error(&server, &to_denied);
    assert_eq!(
        err,
        format!(
            "fetch refused: 127.0.0.2 is a loopback address (fetch.allowed_networks) (redirected to {})",
            elsewhere.url("/hello")
        )
    );
    assert_eq!(elsewhere.hits(), 0, "the denied hop was contacted");
    let to_metadata = origin.url("/redirect?to=http://169.254.169.254/latest/meta-data/");
    let err = fetch_error(&server, &to_metadata);
    assert!(
        err.starts_with("fetch refused: 169.254.169.254 is a cloud metadata address"),
        "{err}"
    );
    // An allowed hop is followed, and the response says so; `manual` hands back the 302.
    let to_hello = origin.url(&format!("/redirect?to={}", origin.url("/hello")));
    let followed = server.value(
        "action",
        "fetchtest:send",
        json!({ "method": "GET", "url": to_hello }),
    );
    assert_eq!(status(&followed), 200.0, "{followed}");
    assert_eq!(followed["redirected"], true);
    assert_eq!(followed["url"], origin.url("/hello"));
    let manual = server.value(
        "action",
        "fetchtest:send",
        json!({ "method": "GET", "url": to_hello, "redirect": "manual" }),
    );
    assert_eq!(status(&manual), 302.0, "{manual}");
    assert_eq!(manual["redirected"], false);
    let err = server.error(
        "action",
        "fetchtest:send",
        json!({ "method": "GET", "url": to_hello, "redirect": "error" }),
    );
    assert!(err.contains("redirect mode is \"error\""), "{err}");
}

#[test]
fn a_redirect_chain_longer_than_the_limit_is_refused() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\nmax_redirects = 1\n",
    ));
    let once = origin.url(&format!("/redirect?to={}", origin.url("/hello")));
    assert_eq!(
        status(&server.value("action", "hello:fetch", json!({ "url": once }))),
        200.0
    );
    let twice = origin.url(&format!("/redirect?to={once}"));
    let err = fetch_error(&server, &twice);
    assert!(
        err.starts_with("fetch refused: more than 1 redirects (fetch.max_redirects)"),
        "{err}"
    );
}

#[test]
fn a_response_over_the_size_cap_fails_naming_the_limit() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\nmax_response_bytes = 5000\n",
    ));
    // Announced with a content-length: refused before the body is read.
    let value = server.value(
        "action",
        "hello:fetch",
        json!({ "url": origin.url("/bytes?n=5000") }),
    );
    assert_eq!(value["body"].as_str().unwrap().len(), 5000);
    let err = fetch_error(&server, &origin.url("/bytes?n=5001"));
    assert_eq!(
        err,
        "fetch failed: the response body is 5001 bytes, over the limit of 5000 bytes (fetch.max_response_bytes)"
    );
    // Streamed without a length: counted as it arrives.
    let value = server.value(
        "action",
        "hello:fetch",
        json!({ "url": origin.url("/stream?n=5000") }),
    );
    assert_eq!(value["body"].as_str().unwrap().len(), 5000);
    let err = fetch_error(&server, &origin.url("/stream?n=5001"));
    assert_eq!(
        err,
        "fetch failed: the response body is over the limit of 5000 bytes (fetch.max_response_bytes)"
    );
}

#[test]
fn a_body_is_read_in_chunks_no_larger_than_asked() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(ALLOW_LOOPBACK));
    let report = server.value(
        "action",
        "fetchtest:chunks",
        json!({ "url": origin.url("/bytes?n=100000"), "max": 1000 }),
    );
    assert_eq!(report["total"].as_f64(), Some(100_000.0), "{report}");
    assert_eq!(report["largest"].as_f64(), Some(1000.0), "{report}");
    assert!(report["chunks"].as_f64().unwrap() >= 100.0, "{report}");
}

#[test]
fn a_fetch_slower_than_its_timeout_fails_naming_the_limit() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\ntimeout_ms = 300\n",
    ));
    let value = server.value(
        "action",
        "hello:fetch",
        json!({ "url": origin.url("/slow?ms=10") }),
    );
    assert_eq!(value["body"], "slow");
    let started = Instant::now();
    let err = fetch_error(&server, &origin.url("/slow?ms=5000"));
    assert_eq!(
        err,
        "fetch failed: no complete response within the limit of 300 ms (fetch.timeout_ms)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn queries_and_mutations_may_not_fetch() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(ALLOW_LOOPBACK));
    let args = json!({ "url": origin.url("/hello") });
    let err = server.error("query", "fetchtest:kiln_query", args.clone());
    assert!(
        err.starts_with("fetch is not allowed in a query: only actions and HTTP actions may make outbound requests"),
        "{err}"
    );
    let err = server.error("mutation", "fetchtest:kiln_mutation", args.clone());
    assert!(
        err.starts_with("fetch is not allowed in a mutation"),
        "{err}"
    );
    let err = server.error("query", "fetchtest:wasi_query", args);
    assert!(err.contains("fetch is not allowed in a query"), "{err}");
    assert_eq!(origin.hits(), 0);
}

#[test]
fn wasi_http_is_held_to_the_same_policy() {
    let origin = Origin::start("127.0.0.1");
    let elsewhere = Origin::start("127.0.0.2");
    let server = start(Some(ALLOW_LOOPBACK));
    let value = server.value(
        "action",
        "fetchtest:wasi_action",
        json!({ "url": origin.url("/hello") }),
    );
    assert_eq!(status(&value), 200.0, "{value}");
    assert_eq!(value["body"], "hello from the origin");
    for (url, expected) in [
        (
            elsewhere.url("/hello"),
            "fetch refused: 127.0.0.2 is a loopback address (fetch.allowed_networks)",
        ),
        (
            "http://10.0.0.1/".to_string(),
            "fetch refused: 10.0.0.1 is a private address (fetch.allowed_networks)",
        ),
        (
            "http://169.254.169.254/".to_string(),
            "fetch refused: 169.254.169.254 is a cloud metadata address",
        ),
    ] {
        let err = server.error("action", "fetchtest:wasi_action", json!({ "url": url }));
        assert!(err.contains(expected), "{url}: {err}");
    }
    // wasi:http follows no redirect: the guest gets the 302 itself.
    let to_denied = origin.url(&format!("/redirect?to={}", elsewhere.url("/hello")));
    let value = server.value(
        "action",
        "fetchtest:wasi_action",
        json!({ "url": to_denied }),
    );
    assert_eq!(status(&value), 302.0, "{value}");
    assert_eq!(elsewhere.hits(), 0);
}

#[test]
fn an_action_awaiting_a_slow_fetch_stops_at_its_time_limit() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[limits.action]\ntimeout_ms = 500\n[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\n",
    ));
    for path in ["hello:fetch", "fetchtest:wasi_action"] {
        let started = Instant::now();
        let err = server.error(
            "action",
            path,
            json!({ "url": origin.url("/slow?ms=10000") }),
        );
        assert_eq!(
            err, "action timed out: exceeded the time limit of 500 ms",
            "{path}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    server.assert_hello_still_works();
}

#[test]
fn a_call_holds_at_most_max_open_responses() {
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(
        "[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\nmax_open_responses = 2\n",
    ));
    let url = origin.url("/hello");
    let opened = server.value(
        "action",
        "fetchtest:hold",
        json!({ "url": url, "count": 2 }),
    );
    assert_eq!(opened.as_f64(), Some(2.0));
    let err = server.error(
        "action",
        "fetchtest:hold",
        json!({ "url": url, "count": 3 }),
    );
    assert!(
        err.starts_with(
            "fetch refused: this call already holds 2 open responses (fetch.max_open_responses)"
        ),
        "{err}"
    );
}

/// A thousand actions each awaiting a slow fetch: they run `max_concurrent_actions` at a
/// time (the rest wait for a turn without holding a request slot or an instance) and hold
/// no thread while they wait, so queries are answered all along, and every action
/// completes.
#[test]
fn a_thousand_actions_awaiting_a_slow_fetch_leave_the_server_answering_queries() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    const ACTIONS: usize = 1_000;
    let origin = Origin::start("127.0.0.1");
    let server = start(Some(ALLOW_LOOPBACK));
    let body =
        json!({"path": "hello:fetch", "args": {"url": origin.url("/slow?ms=2000")}}).to_string();
    let request = format!(
        "POST /api/action HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut streams: Vec<TcpStream> = (0..ACTIONS)
        .map(|_| {
            let mut stream = TcpStream::connect(server.address()).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            stream
        })
        .collect();

    for _ in 0..20 {
        server.assert_hello_still_works();
    }
    // The queries were answered while actions were still waiting: some have no answer yet.
    let unanswered = streams
        .iter()
        .filter(|stream| {
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            let waiting = matches!(stream.peek(&mut byte), Err(err) if err.kind() == std::io::ErrorKind::WouldBlock);
            stream.set_nonblocking(false).unwrap();
            waiting
        })
        .count();
    assert!(
        unanswered > 0,
        "every action had finished before the queries"
    );

    for stream in &mut streams {
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains(r#""status":"success""#),
            "{answer}"
        );
    }
    assert!(origin.hits.load(Ordering::SeqCst) >= ACTIONS);
}

/// The actions guide's `myAction` calls a third-party API with fetch between its internal
/// query and mutation.
#[test]
fn the_guides_action_calls_a_third_party_api() {
    let origin = Origin::start("127.0.0.1");
    let server = Server::start_with_config(Some(ALLOW_LOOPBACK));
    server.deploy_ok(&[("myAction", &component("my-action"))]);
    check_guides_action_calls_api(&server, &origin);
}

/// `myAction` with a `url`: what the guide's action must do, in Rust or in JavaScript.
pub(crate) fn check_guides_action_calls_api(server: &Server, origin: &Origin) {
    let outcome = server.value(
        "action",
        "myAction",
        json!({"a": 2.0, "b": "api said", "url": origin.url("/hello")}),
    );
    assert_eq!(outcome["status"], 200.0, "{outcome}");
    let stored = outcome["stored"].as_str().unwrap();
    assert!(
        stored.starts_with("api said: ") && stored.ends_with("(note 1 under 2)"),
        "{stored}"
    );
    assert_eq!(origin.hits.load(Ordering::SeqCst), 1);
}
