//! Convex's official HTTP client (`ConvexHttpClient` from the `convex` npm package) calls
//! Kiln unchanged: the test runs `tests/convex-client/check.mjs` under node against a real
//! server. `cargo xtask ci` installs the package (`npm ci`) first.

use serde_json::json;

use crate::support::{Server, component, run_client_script};

#[test]
fn the_official_convex_http_client_works_unchanged() {
    let server = Server::start();
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
        ("calls", &component("calls")),
        ("myAction", &component("my-action")),
    ]);

    let (stdout, result) = run_client_script(
        "check.mjs",
        &[server.url.as_str(), server.site_url.as_str()],
    );

    assert_eq!(result["greet"], "Hello, Ada!");
    // bigint (int64) and ArrayBuffer (bytes) survive the round trip as their own types.
    assert_eq!(
        result["echo"],
        json!({"big": "5", "bytes": [1, 2, 255], "float": 1.5, "list": [null, true]})
    );
    assert_eq!(result["shout"], "HI");
    // The client prints log lines with the function's name and level.
    assert!(
        stdout.contains("[CONVEX A(hello:shout)] [INFO] shouting 2 characters"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"[CONVEX A(myAction)] [LOG] stored "from the client (note 1 under 1)""#),
        "{stdout}"
    );
    assert_eq!(
        result["myAction"],
        json!({"before": [], "stored": "from the client (note 1 under 1)"})
    );
    for (name, message, tag) in [
        ("mutationError", "write_then_fail failed on purpose", "m"),
        (
            "actionError",
            "action_fails_with_data failed on purpose",
            "a",
        ),
        (
            "errorThroughAction",
            "write_then_fail failed on purpose",
            "via",
        ),
    ] {
        assert_eq!(
            result[name],
            json!({"type": "ConvexError", "message": message, "data": {"tag": tag}}),
            "{name}"
        );
    }
    assert_eq!(
        result["httpAction"],
        json!({"status": 200, "body": {"hello": "Ada"}})
    );
    assert_eq!(
        result["applicationError"],
        json!({"type": "ConvexError", "message": "misbehave:fail failed on purpose", "data": {"code": "E_TEST"}})
    );
    assert_eq!(result["missing"]["type"], "Error");
    assert_eq!(
        result["missing"]["message"],
        "Could not find public function for 'hello:nope'. Did you forget to run `kiln deploy`?"
    );
    // `hello:greet` called without its `name`: refused by its args validator.
    assert_eq!(
        result["invalidArgs"],
        json!({"type": "Error", "message": "ArgumentValidationError: args: missing required field \"name\"", "data": null})
    );
}
