//! Calling functions: Convex's request and response shapes, path spellings, formats, and
//! every request that must be refused.

use serde_json::json;

use crate::support::{Server, component};

fn hello_server() -> Server {
    let server = Server::start();
    server.deploy_ok(&[("hello", &component("hello"))]);
    server
}

#[test]
fn hello_functions_answer_in_convex_response_shapes() {
    let server = hello_server();
    let body = server.call("query", "hello", json!({}));
    assert_eq!(
        body,
        json!({"status": "success", "value": "hello", "logLines": []})
    );
    assert_eq!(
        server.value("query", "hello:greet", json!({"name": "Ada"})),
        json!("Hello, Ada!")
    );

    let body = server.call("action", "hello:shout", json!({"text": "quiet please"}));
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["value"], "QUIET PLEASE");
    assert_eq!(body["logLines"], json!(["[INFO] shouting 12 characters"]));
}

#[test]
fn echo_round_trips_every_value_type_exactly() {
    let server = hello_server();
    let value = json!({
        "null": null,
        "int_min": {"$integer": "AAAAAAAAAIA="},
        "int_max": {"$integer": "/////////38="},
        "int_one": {"$integer": "AQAAAAAAAAA="},
        "float": 1.5,
        "float_int": 3.0,
        "nan": {"$float": "AAAAAAAA+H8="},
        "inf": {"$float": "AAAAAAAA8H8="},
        "neg_zero": {"$float": "AAAAAAAAAIA="},
        "bool": true,
        "string": "héllo \"quoted\" \u{1F600}",
        "bytes": {"$bytes": "AAEC/w=="},
        "empty_bytes": {"$bytes": ""},
        "array": [1.0, "two", [null, false], {"nested": {"$integer": "BwAAAAAAAAA="}}],
        "object": {"a": {"b": {"c": []}}, "_system_like": 1.0},
    });
    let returned = server.value("mutation", "hello:echo", json!({ "value": value }));
    assert_eq!(returned, value);
}

#[test]
fn the_json_format_takes_plain_json_and_answers_plain_json() {
    let server = hello_server();
    let request = json!({
        "path": "hello:echo",
        "args": {"value": {"n": 5, "s": "x"}},
        "format": "json",
    });
    let (status, body) = server.post("/api/mutation", &request.to_string(), false);
    assert_eq!(status, 200);
    // A JSON number is a float64, exported as a plain number.
    assert_eq!(body["value"], json!({"n": 5.0, "s": "x"}), "{body}");

    // The default format is lossless: int64 stays an int64 (the json format's int64
    // export is tested with a function that returns one, in database.rs).
    let request = json!({
        "path": "hello:echo",
        "args": {"value": [{"$integer": "AQAAAAAAAAA="}]},
        "format": "convex_encoded_json",
    });
    let (_, body) = server.post("/api/mutation", &request.to_string(), false);
    assert_eq!(body["value"], json!([{"$integer": "AQAAAAAAAAA="}]));
}

#[test]
fn paths_are_canonicalised_and_args_may_be_a_one_element_array() {
    let server = hello_server();
    for path in ["hello", "hello:default", "hello.js", "hello.js:default"] {
        assert_eq!(
            server.value("query", path, json!({})),
            json!("hello"),
            "{path}"
        );
    }
    assert_eq!(
        server.value("query", "hello:greet", json!([{"name": "Bo"}])),
        json!("Hello, Bo!")
    );

    let (status, body) = server.post(
        "/api/run/hello/greet",
        &json!({"args": {"name": "Cy"}}).to_string(),
        false,
    );
    assert_eq!(
        (status, body["value"].clone()),
        (200, json!("Hello, Cy!")),
        "{body}"
    );
    // /api/run runs any kind.
    let (_, body) = server.post(
        "/api/run/hello/shout",
        &json!({"args": {"text": "a"}}).to_string(),
        false,
    );
    assert_eq!(body["value"], "A", "{body}");
    let (_, body) = server.post("/api/run/hello", "{}", false);
    assert_eq!(body["value"], "hello", "{body}");
}

#[test]
fn unknown_and_internal_functions_look_the_same_to_public_callers() {
    let server = hello_server();
    let missing = server.call("query", "hello:nope", json!({}));
    assert_eq!(
        missing["errorMessage"],
        "Could not find public function for 'hello:nope'. Did you forget to run `kiln deploy`?"
    );
    let internal = server.call("query", "hello:secret", json!({}));
    let missing_named_alike = server.call("query", "hello:secreT", json!({}));
    assert_eq!(
        internal.to_string(),
        missing_named_alike.to_string().replace("secreT", "secret"),
        "an internal function must answer exactly like a missing one"
    );
    assert_eq!(
        server.call("query", "nomodule:x", json!({}))["status"],
        "error"
    );

    // With the admin key, the internal function runs.
    let (status, body) = server.post(
        "/api/query",
        &json!({"path": "hello:secret"}).to_string(),
        true,
    );
    assert_eq!(
        (status, body["value"].clone()),
        (200, json!("secret")),
        "{body}"
    );
    // A wrong admin key is refused, not downgraded to a public caller.
    let (status, body) = server.post_with_auth(
        "/api/query",
        &json!({"path": "hello"}).to_string(),
        "Convex wrong",
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("Unauthorized")),
        "{body}"
    );
}

#[test]
fn calling_a_function_as_the_wrong_kind_names_both_kinds() {
    let server = hello_server();
    let message = server.error("query", "hello:echo", json!({"value": 1}));
    assert_eq!(
        message,
        "'hello:echo' is a mutation, not a query: call it with /api/mutation"
    );
    let message = server.error("mutation", "hello:shout", json!({"text": "x"}));
    assert_eq!(
        message,
        "'hello:shout' is an action, not a mutation: call it with /api/action"
    );
}

#[test]
fn args_that_do_not_fit_the_function_name_the_field() {
    let server = hello_server();
    // The host checks them against the function's validator before it runs.
    let message = server.error("query", "hello:greet", json!({"name": 42}));
    assert_eq!(
        message,
        "ArgumentValidationError: args.name: expected string, got float64"
    );
    let message = server.error("query", "hello:greet", json!({}));
    assert_eq!(
        message,
        "ArgumentValidationError: args: missing required field \"name\""
    );
    let message = server.error("query", "hello", json!({"unexpected": 1}));
    assert_eq!(
        message,
        "ArgumentValidationError: args: extra field \"unexpected\" is not in the validator"
    );
}

#[test]
fn malformed_requests_get_4xx_with_a_code() {
    let server = hello_server();
    let cases = [
        ("{not json", 400, "BadJsonBody"),
        (r#"{"args": {}}"#, 400, "BadJsonBody"),
        (r#"{"path": "hello", "args": 5}"#, 400, "InvalidArgs"),
        (r#"{"path": "hello", "args": "text"}"#, 400, "InvalidArgs"),
        (r#"{"path": "hello", "args": [1, 2]}"#, 400, "InvalidArgs"),
        (
            r#"{"path": "hello", "args": {"$bad": 1}}"#,
            400,
            "InvalidArgs",
        ),
        (
            r#"{"path": "hello", "args": {}, "format": "xml"}"#,
            400,
            "BadFormat",
        ),
        (
            r#"{"path": "hello:no-such-name!", "args": {}}"#,
            400,
            "InvalidFunctionPath",
        ),
    ];
    for (body, status, code) in cases {
        let (got_status, got) = server.post("/api/query", body, false);
        assert_eq!(
            (got_status, got["code"].as_str()),
            (status, Some(code)),
            "{body} -> {got}"
        );
        assert!(!got["message"].as_str().unwrap().is_empty());
    }
    server.assert_hello_still_works();
}

#[test]
fn a_body_over_the_size_limit_is_refused_with_413() {
    let server = hello_server();
    // The default call body limit is 16 MiB.
    let body = format!(
        r#"{{"path": "hello:greet", "args": {{"name": "{}"}}}}"#,
        "x".repeat(17 << 20)
    );
    let (status, response) = server.post("/api/query", &body, false);
    assert_eq!(
        (status, response["code"].as_str()),
        (413, Some("RequestTooLarge")),
        "{response}"
    );
    server.assert_hello_still_works();
}

#[test]
fn args_over_the_value_limit_are_refused_and_just_under_pass() {
    let server = hello_server();
    // A string value counts its length + 2; the object adds 2 and the field name + 1.
    let overhead = 2 + ("value".len() + 1) + 2;
    let fits = "x".repeat((8 << 20) - overhead);
    let reply = server.value("mutation", "hello:echo", json!({ "value": fits }));
    assert_eq!(reply.as_str().unwrap().len(), fits.len());
    let over = "x".repeat((8 << 20) - overhead + 1);
    let (status, body) = server.post(
        "/api/mutation",
        &json!({"path": "hello:echo", "args": {"value": over}}).to_string(),
        false,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 8388608 bytes"),
        "{body}"
    );
}

#[test]
fn function_errors_carry_application_data() {
    let server = Server::start();
    server.deploy_ok(&[("misbehave", &component("misbehave"))]);
    let body = server.call("query", "misbehave:fail", json!({}));
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorMessage"], "misbehave:fail failed on purpose");
    assert_eq!(body["errorData"], json!({"code": "E_TEST"}));
}

#[test]
fn version_and_unknown_routes() {
    let server = Server::start();
    let (status, version) = server.get("/version", false);
    assert_eq!((status, version.as_str()), (200, env!("CARGO_PKG_VERSION")));
    let (status, body) = server.post("/api/nothing", "{}", false);
    assert_eq!((status, body["code"].as_str()), (404, Some("NotFound")));
    for path in ["/api/query", "/api/run/hello/greet"] {
        let (status, body) = server.get(path, false);
        assert_eq!(status, 405, "GET {path}: {body}");
        assert!(body.contains("MethodNotAllowed"), "{body}");
    }
}

#[test]
fn arguments_may_nest_64_deep_and_no_deeper() {
    let server = hello_server();
    // `k` arrays, the innermost empty, inside the args object: depth k + 1.
    let nested = |k: usize| (0..k).fold(json!([]), |inner, _| json!([inner]));
    let at_limit = nested(62);
    assert_eq!(
        server.value("mutation", "hello:echo", json!({ "value": at_limit })),
        at_limit
    );
    let request = json!({"path": "hello:echo", "args": {"value": nested(63)}});
    let (status, body) = server.post("/api/mutation", &request.to_string(), false);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidArgs")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("64"), "{message}");
    server.assert_hello_still_works();
}
