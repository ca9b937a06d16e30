//! Realtime sync: Convex's official `ConvexClient` (the `convex` npm package over `ws` in
//! node) against a real server, through `tests/convex-client/sync.mjs`. Subscriptions
//! update when a mutation changes what they read; a mutation's promise resolves only once
//! the client's subscriptions reflect it.

use serde_json::json;

use crate::support::{Server, component, run_client_script};

fn sync_server() -> Server {
    let server = Server::start();
    let modules = [
        ("messages", component("messages")),
        ("counter", component("counter")),
        ("calls", component("calls")),
        ("misbehave", component("misbehave")),
        ("hello", component("hello")),
    ];
    let modules: Vec<(&str, &[u8])> = modules
        .iter()
        .map(|(name, bytes)| (*name, bytes.as_slice()))
        .collect();
    let (status, body) = server.deploy_with_tables(
        &modules,
        json!({
            "messages": { "indexes": { "by_channel": ["channel"] } },
            "counters": { "indexes": { "by_name": ["name"] } },
        }),
    );
    assert_eq!(status, 200, "{body}");
    server
}

#[test]
fn subscriptions_update_when_a_mutation_changes_what_they_read() {
    let server = sync_server();
    let (stdout, result) = run_client_script("sync.mjs", &[server.url.as_str(), "basics"]);
    assert_eq!(result["initial"], json!([]), "{stdout}");
    assert_eq!(result["afterSend"], json!(["hello"]));
    assert_eq!(result["readYourWrites"], json!(["hello", "second"]));
    assert!(
        result["tagsAfterAction"]
            .as_array()
            .unwrap()
            .contains(&json!("from-action")),
        "{result}"
    );
    assert_eq!(
        result["queryError"],
        json!({"type": "ConvexError", "message": "[CONVEX Q(misbehave:fail)] misbehave:fail failed on purpose\n  Called by client", "data": {"code": "E_TEST"}}),
    );
    assert_eq!(result["mutationError"]["type"], "ConvexError", "{result}");
    assert_eq!(result["mutationError"]["data"], json!({"tag": "m"}));
    assert_eq!(result["actionError"]["data"], json!({"tag": "a"}));
    assert_eq!(result["missing"]["type"], "Error", "{result}");
    assert!(
        result["missing"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find public function for 'hello:nope'"),
        "{result}"
    );
}

#[test]
fn concurrent_increments_through_four_connections_count_exactly() {
    let server = sync_server();
    let (_, result) =
        run_client_script("sync.mjs", &[server.url.as_str(), "increments", "200", "4"]);
    assert_eq!(result["final"], 200);
    // Over HTTP too: int64 200 in Convex JSON.
    let value = server.call("query", "counter:get", json!({"name": "hits"}));
    assert_eq!(
        value["value"],
        json!({"$integer": "yAAAAAAAAAA="}),
        "{value}"
    );
}
