//! Hostile and browser clients over HTTP: CORS, slow and idle connections, floods of
//! connections and requests, internal errors, and percent-encoded paths.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{ADMIN_KEY, Client, Server, component, int64};

/// How long a liveness check may take before the test calls the server stuck: generous,
/// since the machine may be busy with other tests.
const LIVENESS: Duration = Duration::from_secs(10);

/// The headers a browser sends in a preflight for a JSON POST from `origin`.
fn preflight(origin: &str) -> [(&str, &str); 3] {
    [
        ("Origin", origin),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ]
}

#[test]
fn the_function_api_answers_browsers_from_any_origin() {
    let server = Server::start();
    server.deploy_ok(&[("hello", &component("hello"))]);
    let origin = "https://app.example";

    for path in ["/api/query", "/api/mutation", "/api/run/hello/greet"] {
        let response = server.request("OPTIONS", path, &preflight(origin), None);
        assert!(
            [200, 204].contains(&response.status),
            "{path}: {}",
            response.status
        );
        assert_eq!(response.header("access-control-allow-origin"), Some(origin));
        let methods = response.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let headers = response.header("access-control-allow-headers").unwrap();
        assert!(headers.to_lowercase().contains("content-type"), "{headers}");
        assert!(response.header("access-control-max-age").is_some());
        assert!(response.header("vary").unwrap().contains("Origin"));
    }

    // The request that follows the preflight.
    let response = server.request(
        "POST",
        "/api/query",
        &[("Origin", origin), ("Content-Type", "application/json")],
        Some(r#"{"path": "hello:greet", "args": {"name": "Ada"}, "format": "json"}"#),
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["value"], "Hello, Ada!");
    assert_eq!(response.header("access-control-allow-origin"), Some(origin));
    assert!(response.header("vary").unwrap().contains("Origin"));
    let exposed = response.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    // A client that is not a browser sends no Origin and gets no CORS grant.
    let response = server.request("GET", "/version", &[], None);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);
}

#[test]
fn admin_endpoints_refuse_browser_origins_unless_configured() {
    let server = Server::start();
    let origin = "https://app.example";
    for path in ["/api/deploy", "/api/functions", "/api/data/messages"] {
        let response = server.request("OPTIONS", path, &preflight(origin), None);
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{path}"
        );
        assert_eq!(response.status, 403, "{path}");
        assert_eq!(response.json()["code"], "OriginNotAllowed");
        let message = response.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("cors.admin_allowed_origins"), "{message}");
    }
    // A request sent anyway (a browser would not let the page read it) gets no grant.
    let response = server.request(
        "GET",
        "/api/functions",
        &[
            ("Origin", origin),
            ("Authorization", &format!("Convex {ADMIN_KEY}")),
        ],
        None,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);
}

#[test]
fn configured_origin_lists_are_honoured() {
    let server = Server::start_with_config(Some(
        "[cors]\nallowed_origins = [\"https://app.example\"]\nadmin_allowed_origins = [\"https://admin.example\"]\n",
    ));
    let allowed = server.request(
        "OPTIONS",
        "/api/query",
        &preflight("https://app.example"),
        None,
    );
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let refused = server.request(
        "OPTIONS",
        "/api/query",
        &preflight("https://evil.example"),
        None,
    );
    assert_eq!(refused.header("access-control-allow-origin"), None);
    assert_eq!(refused.status, 403);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("cors.allowed_origins")
    );
    let response = server.request(
        "GET",
        "/version",
        &[("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), None);

    let admin = server.request(
        "OPTIONS",
        "/api/deploy",
        &preflight("https://admin.example"),
        None,
    );
    assert_eq!(
        admin.header("access-control-allow-origin"),
        Some("https://admin.example")
    );
    let admin = server.request(
        "OPTIONS",
        "/api/deploy",
        &preflight("https://app.example"),
        None,
    );
    assert_eq!(admin.header("access-control-allow-origin"), None);
}

/// A connection that sent a request's headers and now sends its body a byte at a time.
struct Trickle {
    stream: TcpStream,
    received: Vec<u8>,
    closed: bool,
}

impl Trickle {
    fn open(server: &Server) -> Self {
        let mut stream = TcpStream::connect(server.address()).unwrap();
        stream
            .write_all(
                b"POST /api/query HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .unwrap();
        stream.set_nonblocking(true).unwrap();
        Self {
            stream,
            received: Vec::new(),
            closed: false,
        }
    }

    /// Reads whatever the server sent, then sends one more byte of the body.
    fn step(&mut self) {
        let mut buf = [0u8; 1024];
        while !self.closed {
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(_) => self.closed = true,
            }
        }
        if !self.closed {
            match self.stream.write(b" ") {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.closed = true,
            }
        }
    }
}

#[test]
fn trickled_bodies_do_not_stop_other_clients_and_time_out_with_408() {
    let server = Server::start_with_config(Some("[limits]\nbody_read_timeout_ms = 3000\n"));
    server.deploy_ok(&[("hello", &component("hello"))]);
    let mut attackers: Vec<Trickle> = (0..200).map(|_| Trickle::open(&server)).collect();
    let attack = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(120);
        // A byte a second on every connection (the pace is the attack), until every one
        // is closed.
        while attackers.iter().any(|attacker| !attacker.closed) && Instant::now() < until {
            for attacker in &mut attackers {
                attacker.step();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        attackers
    });

    // While they trickle, a normal client is served.
    let started = Instant::now();
    server.assert_hello_still_works();
    assert!(
        started.elapsed() < LIVENESS,
        "a normal call took {:?} during the attack",
        started.elapsed()
    );

    let attackers = attack.join().unwrap();
    for attacker in &attackers {
        assert!(attacker.closed, "a trickling connection is still open");
        let answer = String::from_utf8_lossy(&attacker.received);
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("RequestTimeout"),
            "{answer}"
        );
        assert!(answer.contains("body_read_timeout_ms"), "{answer}");
    }
    server.assert_hello_still_works();
}

#[test]
fn requests_past_the_in_flight_cap_get_503_overloaded_until_a_slot_frees() {
    let server = Server::start_with_config(Some(
        "[limits]\nmax_requests_in_flight = 2\n[limits.query]\ntimeout_ms = 60000\n",
    ));
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
    ]);
    // Two calls that sleep in the host hold both slots for a while.
    let sleepers: Vec<_> = (0..2)
        .map(|_| {
            let client = Client::new(&server.url);
            std::thread::spawn(move || {
                client.try_value("query", "misbehave:sleep", json!({"ms": int64(6000)}))
            })
        })
        .collect();

    let until = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let response = server.request("GET", "/version", &[], None);
        if response.status == 503 {
            break response;
        }
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            Instant::now() < until,
            "no request was refused while two sleepers held both slots"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(refused.json()["code"], "Overloaded");
    let message = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("limit of 2") && message.contains("max_requests_in_flight"),
        "{message}"
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.header("x-request-id").is_some());

    for sleeper in sleepers {
        assert_eq!(sleeper.join().unwrap(), Some(int64(6000)));
    }
    // The slots are free again.
    server.assert_hello_still_works();
    assert_eq!(server.request("GET", "/version", &[], None).status, 200);
}

/// Sends `GET /version` on `stream` and reads the one response (keep-alive: the
/// connection stays open).
fn get_version(stream: &mut TcpStream) -> String {
    send_and_read_answer(stream, b"GET /version HTTP/1.1\r\nHost: kiln\r\n\r\n")
}

/// Sends `bytes` on `stream` and reads one response, head and body.
fn send_and_read_answer(stream: &mut TcpStream, bytes: &[u8]) -> String {
    stream.write_all(bytes).unwrap();
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).expect("no answer in time");
        assert!(n > 0, "the connection closed before the answer");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// A call refused for its token is answered once its body has arrived, so its connection
/// stays usable. Answered while the body was still on its way, hyper closed the
/// connection after the answer, and a client that had put it back in its pool sent its
/// next request into a closed socket.
#[test]
fn a_refused_call_whose_body_comes_late_leaves_its_connection_usable() {
    let server = Server::start();
    let body = br#"{"path":"hello:hello","args":{},"format":"json"}"#;
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .write_all(
            format!(
                "POST /api/query HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\nAuthorization: Bearer not-a-jwt\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    // The client under test sends its body 200 ms after its headers (the scenario; the
    // server gives no sign of having read the headers to wait for).
    std::thread::sleep(Duration::from_millis(200));
    let answer = send_and_read_answer(&mut stream, body);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("InvalidAuthHeader"), "{answer}");
    let next = get_version(&mut stream);
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
}

/// Waits for the server to close `stream`; false if it is still open after [`LIVENESS`].
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn connections_past_the_cap_wait_until_one_closes() {
    let server = Server::start_with_config(Some("[limits]\nmax_connections = 2\n"));
    let mut first = TcpStream::connect(server.address()).unwrap();
    let mut second = TcpStream::connect(server.address()).unwrap();
    assert!(get_version(&mut first).starts_with("HTTP/1.1 200"));
    assert!(get_version(&mut second).starts_with("HTTP/1.1 200"));
    assert!(
        server.wait_for_log("all connection slots are taken", LIVENESS),
        "the accept loop did not stop at max_connections; log:\n{}",
        server.log()
    );

    let address = server.address();
    let (answered, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let mut third = TcpStream::connect(address).unwrap();
        let _ = answered.send(get_version(&mut third));
    });
    // Once a connection closes, the waiting one is accepted and served.
    drop(first);
    let answer = answer
        .recv_timeout(LIVENESS)
        .expect("the third connection was never served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(get_version(&mut second).starts_with("HTTP/1.1 200"));
}

#[test]
fn idle_connections_and_slow_headers_are_closed() {
    let server = Server::start_with_config(Some(
        "[limits]\nidle_timeout_ms = 1000\nheader_read_timeout_ms = 1000\n",
    ));
    // Keep-alive still serves request after request...
    let mut idle = TcpStream::connect(server.address()).unwrap();
    assert!(get_version(&mut idle).starts_with("HTTP/1.1 200"));
    assert!(get_version(&mut idle).starts_with("HTTP/1.1 200"));
    // ...but a connection that then sends nothing is closed.
    assert!(
        closed_by_server(&mut idle),
        "an idle keep-alive connection stayed open; log:\n{}",
        server.log()
    );
    assert!(server.wait_for_log("idle_timeout_ms", LIVENESS));

    // Headers begun and never finished: closed too.
    let mut slow = TcpStream::connect(server.address()).unwrap();
    slow.write_all(b"GET /version HTTP/1.1\r\nHo").unwrap();
    assert!(
        closed_by_server(&mut slow),
        "a connection with half-sent headers stayed open; log:\n{}",
        server.log()
    );
    assert!(server.wait_for_log("header_read_timeout_ms", LIVENESS));
    server.deploy_ok(&[("hello", &component("hello"))]);
    server.assert_hello_still_works();
}

#[test]
fn a_full_resource_table_is_a_short_named_error_and_the_request_id_leads_to_the_log() {
    let server = Server::start_with_config(Some("[limits]\nmax_resources = 100\n"));
    server.deploy_ok(&[("misbehave", &component("misbehave"))]);
    // Under the limit (the call's own streams take a few slots too): fine.
    assert_eq!(
        server.value("query", "misbehave:pollables", json!({"count": int64(50)})),
        int64(50)
    );

    let response = server.request(
        "POST",
        "/api/query",
        &[("Content-Type", "application/json")],
        Some(&json!({"path": "misbehave:pollables", "args": {"count": int64(1000)}}).to_string()),
    );
    assert_eq!(response.status, 200);
    let body = response.json();
    assert_eq!(body["status"], "error", "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert_eq!(
        message,
        "too many host resources: the limit is 100 (max_resources)"
    );
    for internal in ["backtrace", "wasm", "0x", "resource table", "\n"] {
        assert!(!message.contains(internal), "{message:?}");
    }

    let id = response
        .header("x-request-id")
        .expect("every response has an x-request-id")
        .to_string();
    assert!(!id.is_empty());
    assert!(
        server.wait_for_log(&id, LIVENESS),
        "request id {id} is not in the server log:\n{}",
        server.log()
    );
    // Each request has its own id.
    let other = server.request("GET", "/version", &[], None);
    assert_ne!(other.header("x-request-id"), Some(id.as_str()));
}

#[test]
fn run_paths_are_percent_decoded() {
    let server = Server::start();
    server.deploy_ok(&[("greetings/hello", &component("hello"))]);
    for path in [
        "/api/run/greetings%2Fhello/greet",
        "/api/run/greetings/hello/gr%65et",
        "/api/run/%67reetings%2fhello%2Fgreet",
    ] {
        let (status, body) = server.post(path, r#"{"args": {"name": "Ada"}}"#, false);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["value"], "Hello, Ada!", "{path}: {body}");
    }
    for (path, reason) in [
        (
            "/api/run/greetings/hello/gr%zzeet",
            "invalid percent-encoding",
        ),
        (
            "/api/run/greetings/hello/greet%",
            "invalid percent-encoding",
        ),
        ("/api/run/greetings/hello/gr%FFeet", "not valid UTF-8"),
    ] {
        let (status, body) = server.post(path, r#"{"args": {}}"#, false);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["code"], "InvalidFunctionPath", "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{path}: {message}");
    }
}
