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

/// Bad input over a raw WebSocket gets a `FatalError` naming what was wrong (or an
/// `AuthError`) and the socket closes; the server goes on serving the next client.
#[test]
fn bad_input_on_the_socket_gets_a_clear_error_and_the_server_keeps_serving() {
    let server = sync_server();
    let (stdout, result) = run_client_script("raw-sync.mjs", &[server.url.as_str()]);
    let fatal = |case: &str| -> String {
        let messages = result[case]["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{stdout}"));
        let last = messages
            .last()
            .unwrap_or_else(|| panic!("{case}: no message: {result}"));
        assert_eq!(last["type"], "FatalError", "{case}: {result}");
        assert!(
            result[case]["close"]["code"].is_number(),
            "{case} did not close: {result}"
        );
        last["error"].as_str().unwrap().to_string()
    };
    assert!(fatal("notJson").starts_with("Received Invalid JSON on websocket"));
    assert!(
        fatal("unknownType").contains("unknown variant `Nope`"),
        "{result}"
    );
    assert_eq!(
        fatal("badBaseVersion"),
        "Base version 5 passed up doesn't match the current version 0"
    );
    assert_eq!(
        fatal("duplicateQuery"),
        "ModifyQuerySet: query 1 is already in the query set"
    );
    assert!(fatal("huge").starts_with("MessageTooLarge"), "{result}");
    assert_eq!(result["huge"]["close"]["code"], 1009);
    assert!(fatal("tooManyQueries").contains("max_queries_per_connection"));
    assert_eq!(
        result["badAdminKey"]["messages"][0],
        json!({"type": "AuthError", "error": "The provided admin key was invalid for this instance", "baseVersion": 0, "authUpdateAttempted": true})
    );
    let healthy = &result["healthy"]["messages"][0];
    assert_eq!(healthy["type"], "Transition", "{result}");
    assert_eq!(
        healthy["modifications"][0],
        json!({"type": "QueryUpdated", "queryId": 0, "value": "Hello, Ada!", "logLines": [], "journal": null})
    );
    assert_eq!(
        healthy["startVersion"],
        json!({"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="})
    );
    assert_eq!(healthy["endVersion"]["querySet"], 1);
}

/// `setAuth` with a JWT over the socket reaches `getUserIdentity`; a switch of identity
/// re-runs the query; a refused token gets `AuthError`, and the client ends as no user.
#[test]
fn identity_on_the_socket_reaches_queries_and_a_switch_reruns_them() {
    use crate::auth::{HS_ISSUER, SECRET, claims, hs256};
    let server = Server::start();
    let hello = component("hello");
    let modules = json!({ "hello": base64(&hello) });
    let (status, body) = server.post(
        "/api/deploy",
        &json!({
            "modules": modules,
            "auth": {"providers": [{"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"}]},
        })
        .to_string(),
        true,
    );
    assert_eq!(status, 200, "{body}");
    let first = hs256(&claims(HS_ISSUER, "kiln-app", json!({})));
    let second = hs256(&claims(HS_ISSUER, "kiln-app", json!({"sub": "user-2"})));
    let expired = hs256(&claims(HS_ISSUER, "kiln-app", json!({"exp": 1_000_000})));
    let (stdout, result) = run_client_script(
        "sync.mjs",
        &[server.url.as_str(), "auth", &first, &second, &expired],
    );
    assert_eq!(result["first"], "user-1", "{stdout}");
    assert_eq!(result["second"], "user-2");
    assert_eq!(result["bad"], json!(null));
    // Confirmed twice, then refused (the client retries with fresh tokens, then gives up).
    assert_eq!(result["changes"], json!([true, true, false]), "{stdout}");
}

/// Deploys the Rust chat app (`messages`) beside the JavaScript files `js`, with `tables`.
fn deploy_with_messages(server: &Server, js: serde_json::Value, tables: serde_json::Value) {
    let messages = component("messages");
    let (status, body) = server.post(
        "/api/deploy",
        &json!({ "modules": { "messages": base64(&messages) }, "js": js, "tables": tables })
            .to_string(),
        true,
    );
    assert_eq!(status, 200, "{body}");
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const CHAT_JS: &str = r#"import { query, mutation } from "./_generated/server";
import { v } from "convex/values";
export const list = query({
  args: { channel: v.string() },
  handler: async (ctx, { channel }) =>
    (await ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect())
      .map((message) => message.body),
});
export const send = mutation({
  args: { channel: v.string(), author: v.string(), body: v.string() },
  handler: async (ctx, message) => await ctx.db.insert("messages", message),
});
"#;

/// Subscriptions work the same for Rust and JavaScript functions: a Rust query sees a JS
/// mutation's write and a JS query a Rust mutation's.
#[test]
fn rust_and_javascript_functions_are_reactive_to_each_other() {
    let server = Server::start();
    deploy_with_messages(
        &server,
        json!({ "chat.js": CHAT_JS }),
        json!({ "messages": { "indexes": { "by_channel": ["channel"] } } }),
    );
    let (stdout, result) = run_client_script("sync.mjs", &[server.url.as_str(), "crossLanguage"]);
    assert_eq!(result["rustQuerySees"], json!(["from js"]), "{stdout}");
    assert_eq!(result["jsQuerySees"], json!(["from js", "from rust"]));
}

/// The server killed and restarted while a client is connected: the client reconnects,
/// subscribes again and sees current data (committed timestamps never go back, so the
/// client's `maxObservedTimestamp` is accepted).
#[test]
fn clients_reconnect_and_resubscribe_after_a_server_restart() {
    use std::io::{BufRead as _, BufReader, Read as _};
    let mut server = sync_server();
    server.value("mutation", "counter:increment", json!({"name": "restart"}));
    let mut child =
        crate::support::spawn_client_script("sync.mjs", &[server.url.as_str(), "restart"]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the client printed nothing").unwrap();
    assert_eq!(first, r#"{"step":"subscribed"}"#);
    server.kill();
    server.start_again_on_same_address();
    server.value("mutation", "counter:increment", json!({"name": "restart"}));
    // The client logs its reconnection on stdout too; the result is the last line.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let last = rest.last().cloned().unwrap_or_default();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{rest:?}\n{stderr}");
    let result: serde_json::Value =
        serde_json::from_str(&last).unwrap_or_else(|err| panic!("{err}: {rest:?}"));
    assert_eq!(result, json!({"afterRestart": 2, "mutation": 3}));
}

/// The Convex CLI's system queries answer the admin over the socket, reactively; anyone
/// else is refused. The admin acting as a user is that user in queries.
#[test]
fn system_queries_answer_the_admin_and_a_table_size_is_reactive() {
    let server = sync_server();
    let (stdout, result) = run_client_script(
        "sync.mjs",
        &[server.url.as_str(), "system", crate::support::ADMIN_KEY],
    );
    assert_eq!(result["sizeBefore"], 0, "{stdout}");
    assert_eq!(result["sizeAfter"], 1);
    let api = result["apiSpec"].as_array().unwrap();
    assert!(api.contains(&json!("Query messages.js:list")), "{api:?}");
    assert!(api.contains(&json!("Mutation messages.js:send")), "{api:?}");
    assert!(
        result["publicRefused"]["message"]
            .as_str()
            .unwrap()
            .contains("only the admin key (not acting as a user) may call it"),
        "{result}"
    );
    assert_eq!(result["actingAs"], "as-user");
}

const ITEMS_JS: &str = r#"import { query, mutation } from "./_generated/server";
import { paginationOptsValidator } from "convex/server";
import { v } from "convex/values";
export const page = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: (ctx, { paginationOpts }) =>
    ctx.db.query("items").withIndex("by_rank").paginate(paginationOpts),
});
export const add = mutation({
  args: { rank: v.number() },
  handler: (ctx, { rank }) => ctx.db.insert("items", { rank }),
});
export const remove = mutation({
  args: { rank: v.number() },
  handler: async (ctx, { rank }) => {
    const item = await ctx.db.query("items").withIndex("by_rank", (q) => q.eq("rank", rank)).unique();
    await ctx.db.delete(item._id);
  },
});
"#;

/// Paginated subscriptions keep their bounds (Convex's query journal): an insert into the
/// middle of a loaded page shows up in that page, a delete leaves it, an append grows the
/// last page, and the pages never overlap or drop a document, in JavaScript and in Rust.
#[test]
fn paginated_queries_stay_live_and_pages_never_overlap_or_drop_documents() {
    let server = Server::start();
    deploy_with_messages(
        &server,
        json!({ "items.js": ITEMS_JS }),
        json!({
            "messages": { "indexes": { "by_channel": ["channel"] } },
            "items": { "indexes": { "by_rank": ["rank"] } },
        }),
    );
    let (stdout, result) = run_client_script("sync.mjs", &[server.url.as_str(), "pagination"]);
    assert_eq!(
        result["loaded"],
        json!([[10, 20], [30, 40], [50, 60]]),
        "{stdout}"
    );
    assert_eq!(result["lastDone"], true);
    assert_eq!(
        result["afterMiddleInsert"],
        json!([[10, 20], [30, 35, 40], [50, 60]])
    );
    assert_eq!(result["afterDelete"], json!([[10], [30, 35, 40], [50, 60]]));
    assert_eq!(
        result["afterAppend"],
        json!([[10], [30, 35, 40], [50, 60, 70]])
    );
    assert_eq!(result["rustLoaded"], json!([["a", "b"], ["c", "d"]]));
    assert_eq!(
        result["rustAfterAppend"],
        json!([["a", "b"], ["c", "d", "e"]])
    );
}

/// A sync socket driven frame by frame (tungstenite's blocking client).
pub(crate) struct RawSocket(tokio_tungstenite::tungstenite::WebSocket<std::net::TcpStream>);

impl RawSocket {
    pub(crate) fn connect(server: &Server) -> Self {
        let address = server.url.trim_start_matches("http://");
        let stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let url = format!("ws://{address}/api/1.48.0/sync");
        let (socket, _) = tokio_tungstenite::tungstenite::client(url, stream).unwrap();
        Self(socket)
    }

    pub(crate) fn send(&mut self, message: serde_json::Value) {
        self.0
            .send(tokio_tungstenite::tungstenite::Message::text(
                message.to_string(),
            ))
            .unwrap();
    }

    /// The next message of type `kind` (skipping the others).
    pub(crate) fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let message = self.next();
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The next message other than a Ping.
    pub(crate) fn next(&mut self) -> serde_json::Value {
        loop {
            let frame = self.0.read().unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                let message: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                if message["type"] != "Ping" {
                    return message;
                }
            }
        }
    }
}

fn sync_stats(server: &Server) -> serde_json::Value {
    let (status, body) = server.get("/api/sync_stats", true);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until the invalidator has checked `count` commits.
fn wait_for_commits_checked(server: &Server, count: u64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let stats = sync_stats(server);
        if stats["commitsChecked"].as_u64().unwrap() >= count {
            return stats;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        std::thread::yield_now();
    }
}

/// Only the subscriptions whose read set a commit writes into re-run: a commit elsewhere
/// re-runs nothing; one into the range re-runs the query once, however many subscribe to
/// it (the query cache), and the client gets one Transition with the new result.
#[test]
fn only_a_commit_into_what_a_query_read_reruns_it_and_identical_subscriptions_share_it() {
    let server = sync_server();
    let (stats, mut socket) = (sync_stats(&server), RawSocket::connect(&server));
    assert_eq!(
        server.get("/api/sync_stats", false).0,
        401,
        "the stats need the admin key"
    );
    socket.send(json!({"type": "Connect", "sessionId": "s", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0}));
    let adds: Vec<_> = (0..3)
        .map(|id| json!({"type": "Add", "queryId": id, "udfPath": "messages:list", "args": [{"channel": "watched"}]}))
        .collect();
    socket.send(
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds}),
    );
    let first = socket.next();
    assert_eq!(
        first["modifications"].as_array().unwrap().len(),
        3,
        "{first}"
    );
    let subscribed = sync_stats(&server);
    let executions = |stats: &serde_json::Value| stats["queryExecutions"].as_u64().unwrap();
    // Three identical subscriptions, one execution.
    assert_eq!(
        executions(&subscribed) - executions(&stats),
        1,
        "{subscribed}"
    );

    let checked = subscribed["commitsChecked"].as_u64().unwrap();
    server.value(
        "mutation",
        "messages:send",
        json!({"channel": "elsewhere", "author": "a", "body": "unseen"}),
    );
    let after_elsewhere = wait_for_commits_checked(&server, checked + 1);
    assert_eq!(executions(&after_elsewhere), executions(&subscribed));
    assert_eq!(
        after_elsewhere["subscriptionsInvalidated"],
        subscribed["subscriptionsInvalidated"]
    );

    server.value(
        "mutation",
        "messages:send",
        json!({"channel": "watched", "author": "a", "body": "seen"}),
    );
    let update = socket.next();
    assert_eq!(update["type"], "Transition", "{update}");
    assert_eq!(update["startVersion"], first["endVersion"]);
    let modifications = update["modifications"].as_array().unwrap();
    assert_eq!(modifications.len(), 3, "{update}");
    assert_eq!(modifications[0]["value"][0]["body"], "seen");
    let after_watched = sync_stats(&server);
    assert_eq!(executions(&after_watched), executions(&subscribed) + 1);
}

/// React: a component using `useQuery`, `useMutation` and `useAction` (convex/react's
/// `ConvexReactClient`), rendered with react-test-renderer against the real server,
/// re-renders with its own mutation and with another client's.
#[test]
fn react_hooks_render_and_rerender_on_a_change() {
    let server = sync_server();
    let (stdout, result) = run_client_script("react.mjs", &[server.url.as_str()]);
    assert_eq!(result["first"], json!([]), "{stdout}");
    assert_eq!(result["afterOwnMutation"], json!(["from the hook"]));
    assert_eq!(
        result["afterOtherClient"],
        json!(["from the hook", "from elsewhere"])
    );
    assert_eq!(result["items"], json!(["from the hook", "from elsewhere"]));
    assert_eq!(result["action"], "HI");
}

/// In a real browser: headless Chromium loads a React page from another origin than
/// Kiln's; it lists messages with `useQuery`, and a mutation sent from node appears on the
/// page without a reload. The screenshot is kept in `target/test-artifacts/`.
#[test]
fn a_react_page_in_chromium_updates_without_a_reload() {
    let server = sync_server();
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("sync-browser.png");
    let _ = std::fs::remove_file(&screenshot);
    let (stdout, result) = run_client_script(
        "browser.mjs",
        &[server.url.as_str(), screenshot.to_str().unwrap()],
    );
    assert_eq!(result["before"], "0 messages", "{stdout}");
    assert_eq!(result["after"], "1 messages", "{stdout}");
    assert_eq!(result["items"], json!(["node: hello browser"]));
    assert_eq!(result["reloads"], 0, "the page was reloaded: {stdout}");
    let origin = result["origin"].as_str().unwrap();
    assert_ne!(origin, server.url, "the page must come from another origin");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        screenshot.display()
    );
}

/// A mutation resent after a reconnect with the same session id and request id is
/// answered from its first execution, not run twice; a new request id runs again.
#[test]
fn a_mutation_resent_after_a_reconnect_runs_once() {
    let server = sync_server();
    let connect = json!({"type": "Connect", "sessionId": "resending", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0});
    let increment = |request_id: u64| json!({"type": "Mutation", "requestId": request_id, "udfPath": "counter:increment", "args": [{"name": "once"}]});
    let mut socket = RawSocket::connect(&server);
    socket.send(connect.clone());
    socket.send(increment(7));
    let first = socket.next_of("MutationResponse");
    assert_eq!(first["type"], "MutationResponse", "{first}");
    assert_eq!(first["success"], true, "{first}");
    drop(socket);

    let mut socket = RawSocket::connect(&server);
    let mut reconnect = connect.clone();
    reconnect["connectionCount"] = json!(1);
    socket.send(reconnect);
    socket.send(increment(7));
    let resent = socket.next_of("MutationResponse");
    assert_eq!(
        resent, first,
        "the resend is answered from the first execution"
    );
    socket.send(increment(8));
    let next = socket.next_of("MutationResponse");
    assert_eq!(
        next["result"],
        json!({"$integer": "AgAAAAAAAAA="}),
        "{next}"
    );
    let value = server.value("query", "counter:get", json!({"name": "once"}));
    assert_eq!(value, json!({"$integer": "AgAAAAAAAAA="}));
}

/// Past `max_sync_connections` an upgrade is answered 503 `Overloaded`; a closed socket
/// gives its slot back.
#[test]
fn sync_connections_past_the_limit_are_refused() {
    let server = Server::start_with_config(Some("[limits]\nmax_sync_connections = 2\n"));
    let first = RawSocket::connect(&server);
    let _second = RawSocket::connect(&server);
    let address = server.url.trim_start_matches("http://");
    let stream = std::net::TcpStream::connect(address).unwrap();
    let refused =
        tokio_tungstenite::tungstenite::client(format!("ws://{address}/api/1.48.0/sync"), stream)
            .unwrap_err();
    let tokio_tungstenite::tungstenite::HandshakeError::Failure(
        tokio_tungstenite::tungstenite::Error::Http(response),
    ) = refused
    else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status(), 503);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string();
    assert!(body.contains("max_sync_connections"), "{body}");
    drop(first);
    // The slot comes back once the server has seen the close.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sync_stats(&server)["connections"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        std::thread::yield_now();
    }
    let _third = RawSocket::connect(&server);
}

const BIG_JS: &str = r#"import { query, mutation } from "./_generated/server";
export const big = query({
  args: {},
  handler: async (ctx) => "x".repeat(1 << 20) + (await ctx.db.query("ticks").collect()).length,
});
export const tick = mutation({ args: {}, handler: (ctx) => ctx.db.insert("ticks", {}) });
"#;

/// A client that does not read its socket is disconnected once a send waits past
/// `sync_send_timeout_ms`, instead of the server buffering for it without bound; the
/// server serves everyone else meanwhile.
#[test]
fn a_client_that_does_not_read_its_socket_is_disconnected() {
    let server = Server::start_with_config(Some("[limits]\nsync_send_timeout_ms = 500\n"));
    let (status, body) = server.deploy_js(&[("big.js", BIG_JS)]);
    assert_eq!(status, 200, "{body}");
    let mut socket = RawSocket::connect(&server);
    socket.send(json!({"type": "Connect", "sessionId": "slow", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0}));
    socket.send(
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "big:big", "args": [{}]}
        ]}),
    );
    // Each tick makes a new 1 MiB result for the client, which never reads.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut ticks = 0;
    while sync_stats(&server)["connections"] != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "still connected after {ticks} ticks: {}",
            sync_stats(&server)
        );
        server.value("mutation", "big:tick", json!({}));
        ticks += 1;
    }
    assert!(
        server.log().contains("did not read its socket"),
        "{}",
        server.log()
    );
    // Everyone else is served.
    let value = server.value("query", "big:big", json!({}));
    assert!(value.as_str().unwrap().ends_with(&ticks.to_string()));
    drop(socket);
}

/// Mutations from one connection run in the order sent, one at a time: ten sent in one
/// burst are stored in that order.
#[test]
fn mutations_from_one_connection_run_in_the_order_sent() {
    let server = sync_server();
    let mut socket = RawSocket::connect(&server);
    socket.send(json!({"type": "Connect", "sessionId": "ordered", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0}));
    for n in 0..10 {
        socket.send(json!({"type": "Mutation", "requestId": n, "udfPath": "messages:send", "args": [{"channel": "ordered", "author": "a", "body": n.to_string()}]}));
    }
    let answered: Vec<u64> = (0..10)
        .map(|_| {
            socket.next_of("MutationResponse")["requestId"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(answered, (0..10).collect::<Vec<_>>());
    let stored = server.value("query", "messages:list", json!({"channel": "ordered"}));
    let bodies: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

/// A user's token that expires while the socket is open: the next operation gets an
/// `AuthError` (`authUpdateAttempted: false`, so the client fetches a fresh token) and
/// the socket closes, as in Convex.
#[test]
fn a_token_that_expires_on_an_open_socket_ends_it_with_an_auth_error() {
    use crate::auth::{HS_ISSUER, SECRET, claims, hs256};
    let server = Server::start_with_config(Some("[limits]\njwt_clock_skew_s = 0\n"));
    let hello = component("hello");
    let (status, body) = server.post(
        "/api/deploy",
        &json!({
            "modules": { "hello": base64(&hello) },
            "auth": {"providers": [{"type": "hs256", "issuer": HS_ISSUER, "secret": SECRET, "applicationID": "kiln-app"}]},
        })
        .to_string(),
        true,
    );
    assert_eq!(status, 200, "{body}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = hs256(&claims(HS_ISSUER, "kiln-app", json!({"exp": now + 2})));
    let mut socket = RawSocket::connect(&server);
    socket.send(json!({"type": "Connect", "sessionId": "expiring", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0}));
    socket.send(
        json!({"type": "Authenticate", "tokenType": "User", "value": token, "baseVersion": 0}),
    );
    socket.send(
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "hello:whoami", "args": [{}]}
        ]}),
    );
    let first = socket.next_of("Transition");
    assert_eq!(first["endVersion"]["identity"], 1, "{first}");
    assert_eq!(first["modifications"][0]["value"]["subject"], "user-1");
    // Let the token expire (the server allows no clock skew here), then act.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        < now + 3
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    socket.send(json!({"type": "Mutation", "requestId": 0, "udfPath": "hello:echo", "args": [{"value": 1}]}));
    let refused = loop {
        let message = socket.next();
        if message["type"] != "Transition" {
            break message;
        }
    };
    assert_eq!(refused["type"], "AuthError", "{refused}");
    assert_eq!(refused["authUpdateAttempted"], false);
    assert_eq!(refused["baseVersion"], 1);
    // Then the socket closes.
    loop {
        match socket.0.read() {
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}
