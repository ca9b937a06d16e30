//! Argument and return validation through the real server: the `validators` component
//! declares the validators its Rust types derive, and the host checks every call.

use serde_json::{Value as Json, json};

use crate::support::{Server, component, int64};

fn validators_server() -> Server {
    let server = Server::start();
    server.deploy_ok(&[("validators", &component("validators"))]);
    server
}

#[test]
fn json_numbers_fill_integer_arguments_and_fractions_are_refused() {
    let server = validators_server();
    // A JSON client sends 8000 as a float64; the u32 argument takes it.
    assert_eq!(
        server.value(
            "query",
            "validators:repeat",
            json!({"text": "a", "count": 8000})
        ),
        json!({"text": "a", "count": int64(8000)})
    );
    // So does a Convex client sending a bigint.
    assert_eq!(
        server.value(
            "query",
            "validators:repeat",
            json!({"text": "a", "count": int64(7)})
        ),
        json!({"text": "a", "count": int64(7)})
    );
    let message = server.error(
        "query",
        "validators:repeat",
        json!({"text": "a", "count": 8000.5}),
    );
    assert!(
        message.contains("args.count: 8000.5 is not an integer"),
        "{message}"
    );
    let message = server.error(
        "query",
        "validators:repeat",
        json!({"text": "a", "count": 1e10}),
    );
    assert!(
        message.contains("args.count: 10000000000 is out of range for u32"),
        "{message}"
    );
}

#[test]
fn arguments_failing_their_validator_are_refused_with_the_path() {
    let server = validators_server();
    let ok = json!({"user": {"name": "Ada", "age": 36, "tags": ["x"]}});
    assert_eq!(
        server.value("query", "validators:profile", ok),
        json!("Ada (36) [x]")
    );
    let cases = [
        (
            json!({"user": {"name": "Ada", "age": "old"}}),
            "ArgumentValidationError: args.user.age: expected int64 | float64, got string",
        ),
        (
            json!({"user": {"age": 36}}),
            "ArgumentValidationError: args.user: missing required field \"name\"",
        ),
        (
            json!({"user": {"name": "Ada", "age": 36}, "admin": true}),
            "ArgumentValidationError: args: extra field \"admin\" is not in the validator",
        ),
        (
            json!({"user": {"name": "Ada", "age": 36, "tags": ["x", 5]}}),
            "ArgumentValidationError: args.user.tags[1]: expected string, got float64",
        ),
        (
            json!({"user": null}),
            "ArgumentValidationError: args.user: expected {…}, got null",
        ),
    ];
    for (args, expected) in cases {
        let message = server.error("query", "validators:profile", args.clone());
        assert_eq!(message, expected, "for {args}");
    }
}

#[test]
fn a_return_value_failing_its_validator_fails_the_call_and_commits_nothing() {
    let server = validators_server();
    let message = server.error("query", "validators:wrong_return", json!({}));
    assert_eq!(
        message,
        "ReturnsValidationError: returns.count: expected float64, got string"
    );
    let message = server.error(
        "mutation",
        "validators:write_then_return_wrong",
        json!({"table": "notes", "text": "lost"}),
    );
    assert!(message.starts_with("ReturnsValidationError: "), "{message}");
    // The mutation's write went with it.
    assert_eq!(
        server.value("query", "validators:count", json!({"table": "notes"})),
        int64(0)
    );
    server.value(
        "mutation",
        "validators:add",
        json!({"table": "notes", "text": "kept"}),
    );
    assert_eq!(
        server.value("query", "validators:count", json!({"table": "notes"})),
        int64(1)
    );
}

#[test]
fn id_arguments_must_name_their_table() {
    let server = validators_server();
    let note = server.value(
        "mutation",
        "validators:add",
        json!({"table": "notes", "text": "hi"}),
    );
    let other = server.value(
        "mutation",
        "validators:add",
        json!({"table": "other", "text": "hi"}),
    );
    let found = server.value("query", "validators:note", json!({ "id": note }));
    assert_eq!(found["text"], "hi", "{found}");
    assert_eq!(
        server.error("query", "validators:note", json!({ "id": other })),
        "ArgumentValidationError: args.id: expected id<notes>, got an id of table \"other\""
    );
    assert_eq!(
        server.error("query", "validators:note", json!({"id": "nonsense"})),
        "ArgumentValidationError: args.id: expected id<notes>, got a string that is not an id of an existing table"
    );
}

#[test]
fn unchecked_functions_accept_what_they_like() {
    let server = validators_server();
    let anything = json!({"whatever": [1.0, "x", {"deep": null}], "n": int64(3)});
    assert_eq!(
        server.value("query", "validators:anything", anything.clone()),
        anything
    );
    // Arguments unchecked, return value still checked (and fine).
    assert_eq!(
        server.value("query", "validators:loose_args", json!({"x": 1})),
        json!("object")
    );
}

#[test]
fn the_listing_shows_signatures_and_validator_json() {
    let server = validators_server();
    let (status, body) = server.get("/api/functions", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    let function = |path: &str| {
        body["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} not listed: {body}"))
            .clone()
    };
    let repeat = function("validators:repeat");
    let count = json!({
        "fieldType": {"type": "union", "value": [{"type": "bigint"}, {"type": "number"}]},
        "optional": false,
    });
    let args = json!({"type": "object", "value": {
        "count": count,
        "text": {"fieldType": {"type": "string"}, "optional": false},
    }});
    assert_eq!(repeat["args"], args, "{repeat}");
    assert_eq!(repeat["returns"], args, "{repeat}");
    assert_eq!(
        repeat["signature"],
        "{count: int64 | float64, text: string} -> {count: int64 | float64, text: string}"
    );
    assert_eq!(
        function("validators:wrong_return")["signature"],
        "{} -> {count: float64}"
    );
    let anything = function("validators:anything");
    assert_eq!(
        (&anything["args"], &anything["returns"]),
        (&Json::Null, &Json::Null)
    );
    assert_eq!(anything["signature"], "any -> any");
    assert_eq!(
        function("validators:note")["signature"],
        // `Option<Document>`: `any | null` is `any`.
        "{id: id<notes>} -> any"
    );

    let output = server.cli(&["functions"]);
    assert!(output.status.success());
    let listing = String::from_utf8(output.stdout).unwrap();
    let line = listing
        .lines()
        .find(|line| line.starts_with("validators:profile "))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        line.ends_with(
            "{user: {age: int64 | float64, name: string, tags?: array<string> | null}} -> string"
        ),
        "{line}"
    );
}

#[test]
fn a_malformed_validator_fails_the_deploy_naming_the_function() {
    let server = Server::start();
    let (status, body) = server.deploy(&[("bad", &component("bad-validator"))]);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidModule")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("function \"scores\" has an invalid returns validator")
            && message.contains("record keys must be string"),
        "{message}"
    );
}

#[test]
fn calls_between_functions_are_checked_too() {
    let server = validators_server();
    for (endpoint, caller) in [
        ("action", "validators:query_from_action"),
        ("mutation", "validators:query_from_mutation"),
    ] {
        let message = server.value(
            endpoint,
            caller,
            json!({"path": "validators:profile", "args": {"user": {"age": 1}}}),
        );
        // Refused like an HTTP call, before the callee runs; the caller sees why.
        assert_eq!(
            message,
            "'validators:profile' failed: ArgumentValidationError: args.user: missing required field \"name\"",
            "{caller}"
        );
        let message = server.value(
            endpoint,
            caller,
            json!({"path": "validators:wrong_return", "args": {}}),
        );
        assert_eq!(
            message,
            "'validators:wrong_return' failed: ReturnsValidationError: returns.count: expected float64, got string",
            "{caller}"
        );
        let message = server.value(
            endpoint,
            caller,
            json!({"path": "validators:profile", "args": {"user": {"name": "a", "age": 1}}}),
        );
        assert_eq!(message, "ok", "{caller}");
    }
}
