//! Hostile and browser clients over HTTP: CORS, slow and idle connections, floods of
//! connections and requests, internal errors, and percent-encoded paths.

use crate::support::{Server, component};

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
