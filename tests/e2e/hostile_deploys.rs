//! Deploy bodies built to hurt the server: a schema type nested far deeper than any stack,
//! and a module named twice. Each is refused with a 400 naming the rule, and the server
//! keeps serving the deployment it had.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};

use crate::support::{Server, component};

fn assert_still_on_the_first_deployment(server: &Server) {
    server.assert_hello_still_works();
    let (_, listing) = server.get("/api/functions", true);
    let listing: Json = serde_json::from_str(&listing).unwrap();
    assert_eq!(
        listing["deploymentId"], 1,
        "a refused deploy must not replace the deployment"
    );
}

#[test]
fn a_schema_type_nested_100_000_deep_is_refused_naming_the_limit() {
    let server = Server::start();
    let hello = component("hello");
    server.deploy_ok(&[("hello", &hello)]);

    let depth = 100_000;
    let deep = format!("{}string{}", "array<".repeat(depth), ">".repeat(depth));
    let (status, body) = server.deploy_with_tables(
        &[("hello", &hello)],
        json!({ "nested": { "document": { "deep": deep } } }),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSchema")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("table \"nested\"")
            && message.contains("field \"deep\"")
            && message.contains("nests 100000 levels deep, over the limit of 64"),
        "{message}"
    );
    assert_still_on_the_first_deployment(&server);

    // At the limit, the same kind of type is accepted.
    let depth = 64;
    let deep = format!("{}string{}", "array<".repeat(depth), ">".repeat(depth));
    let (status, body) = server.deploy_with_tables(
        &[("hello", &hello)],
        json!({ "nested": { "document": { "deep": deep } } }),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_deploy_naming_a_module_twice_is_refused_naming_it() {
    let server = Server::start();
    let hello = component("hello");
    server.deploy_ok(&[("hello", &hello)]);

    // serde_json would keep only the second of two equal keys: the body is written by
    // hand so that both reach the server.
    let encoded = Json::String(BASE64.encode(&hello));
    let body =
        format!(r#"{{"modules": {{"hello": {encoded}, "other": {encoded}, "hello": {encoded}}}}}"#);
    let (status, answer) = server.post("/api/deploy", &body, true);
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("BadJsonBody")),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("module `hello` is named twice"),
        "{message}"
    );
    assert_still_on_the_first_deployment(&server);

    // A table named twice is refused the same way.
    let body = format!(
        r#"{{"modules": {{"hello": {encoded}}}, "tables": {{"notes": {{}}, "notes": {{"indexes": {{"by_n": ["n"]}}}}}}}}"#
    );
    let (status, answer) = server.post("/api/deploy", &body, true);
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("table `notes` is named twice"),
        "{message}"
    );
    assert_still_on_the_first_deployment(&server);
}
