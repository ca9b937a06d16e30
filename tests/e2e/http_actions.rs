//! HTTP actions: routes declared by modules, served on the site listener at their path and
//! under `/http/` on the main listener; exact paths before prefixes; 404, 413 and 500.

use serde_json::{Value as Json, json};

use crate::support::{Server, component};

/// What the server answered to a request with a raw body.
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn send(method: &str, url: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let mut response = agent.run(request.body(body.to_vec()).unwrap()).unwrap();
    Answer {
        status: response.status().as_u16(),
        content_type: response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_string()),
        body: response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap(),
    }
}

fn hello_and_calls(server: &Server) {
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("calls", &component("calls")),
    ]);
}

#[test]
fn routes_answer_on_the_site_port_and_under_http_on_the_main_port() {
    let server = Server::start();
    hello_and_calls(&server);
    check_hello_routes(&server);
}

/// `GET /hello` and `POST /echo` of the hello example, in Rust or in JavaScript.
pub(crate) fn check_hello_routes(server: &Server) {
    for base in [server.site_url.clone(), format!("{}/http", server.url)] {
        let answer = send("GET", &format!("{base}/hello?name=Ada%20L"), None, b"");
        assert_eq!(answer.status, 200, "{base}: {}", answer.text());
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        assert_eq!(answer.json(), json!({"hello": "Ada L"}));

        // Bytes that are not UTF-8 come back exactly, with their content type.
        let bytes: Vec<u8> = (0..=255).collect();
        let answer = send(
            "POST",
            &format!("{base}/echo"),
            Some("application/x-test"),
            &bytes,
        );
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type.as_deref(), Some("application/x-test"));
        assert_eq!(answer.body, bytes);
    }
}

#[test]
fn an_exact_path_wins_over_a_prefix_and_a_route_has_an_actions_powers() {
    let server = Server::start();
    hello_and_calls(&server);
    server.value(
        "action",
        "calls:action_runs_everything",
        json!({"tag": "t1"}),
    );

    let answer = send(
        "GET",
        &format!("{}/calls/exact", server.site_url),
        None,
        b"",
    );
    assert_eq!((answer.status, answer.text()), (201, "exact".to_string()));

    let answer = send(
        "GET",
        &format!("{}/calls/any/thing", server.site_url),
        None,
        b"",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    // The HTTP action ran a query (`calls:tags`) and saw the data.
    assert_eq!(
        answer.json(),
        json!({"route": "prefix", "path": "/calls/any/thing", "tags": ["t1"]})
    );
}

#[test]
fn unmatched_routes_are_404_and_a_failing_action_is_a_short_500() {
    let server = Server::start();
    hello_and_calls(&server);
    let answer = send("GET", &format!("{}/nowhere", server.site_url), None, b"");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["code"], "NoMatchingRoute");
    // A routed path with another method: still no route, and the answer says which
    // methods are routed there.
    let answer = send("DELETE", &format!("{}/http/hello", server.url), None, b"");
    assert_eq!(answer.status, 404);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("routed there: GET"),
        "{}",
        answer.text()
    );

    let answer = send(
        "POST",
        &format!("{}/calls/fail", server.site_url),
        None,
        b"",
    );
    assert_eq!(answer.status, 500);
    assert_eq!(answer.text(), "calls_fail failed on purpose");

    // Not a function of the call API.
    let message = server.error("action", "hello:hello_route", json!({}));
    assert!(
        message.contains("is an HTTP action: it answers requests to GET /hello"),
        "{message}"
    );
}

#[test]
fn a_request_body_over_the_cap_is_413_and_the_server_goes_on() {
    let server = Server::start_with_config(Some("[limits]\nmax_http_body_bytes = 1024\n"));
    hello_and_calls(&server);
    let answer = send(
        "POST",
        &format!("{}/echo", server.site_url),
        Some("text/plain"),
        &[b'x'; 1025],
    );
    assert_eq!(answer.status, 413, "{}", answer.text());
    let answer = send(
        "POST",
        &format!("{}/echo", server.site_url),
        Some("text/plain"),
        &[b'x'; 1024],
    );
    assert_eq!((answer.status, answer.body.len()), (200, 1024));
}

#[test]
fn two_modules_routing_the_same_path_are_refused_at_deploy() {
    let server = Server::start();
    let hello = component("hello");
    let (status, body) = server.deploy(&[("hello", &hello), ("hello2", &hello)]);
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("hello:echo_route and hello2:echo_route are both routed at POST /echo"),
        "{message}"
    );
}
