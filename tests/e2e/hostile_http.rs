//! Hostile and browser clients over HTTP: CORS, slow and idle connections, floods of
//! connections and requests, internal errors, and percent-encoded paths.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, component};

/// How long a liveness check may take before the test calls the server stuck: generous,
/// since the machine may be busy with other tests.
const LIVENESS: Duration = Duration::from_secs(10);

/// `{"$integer": ...}` for an int64 argument.
fn int64(n: i64) -> serde_json::Value {
    use base64::Engine as _;
    json!({ "$integer": base64::engine::general_purpose::STANDARD.encode(n.to_le_bytes()) })
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
