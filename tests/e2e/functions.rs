//! Functions calling functions (`kiln:platform/functions`): an action's calls each run on
//! their own; a query's and a mutation's run inside the caller's transaction; the rules of
//! who may call what; the nesting limit; errors with data passing through; actions that
//! run at the same time.

use std::thread;

use serde_json::json;

use crate::support::{Server, component};

fn calls_server() -> Server {
    let server = Server::start();
    server.deploy_ok(&[("calls", &component("calls"))]);
    server
}

fn tags(server: &Server) -> serde_json::Value {
    server.value("query", "calls:tags", json!({}))
}

#[test]
fn an_action_runs_queries_mutations_and_actions_each_as_its_own_call() {
    let server = calls_server();
    let result = server.value(
        "action",
        "calls:action_runs_everything",
        json!({"tag": "a1"}),
    );
    // The mutation committed before the query ran; the internal action was reachable.
    assert_eq!(
        result,
        json!({"count": {"$integer": "AQAAAAAAAAA="}, "tags": ["a1"], "echoed": "a1"})
    );
    assert_eq!(tags(&server), json!(["a1"]));
    // The internal functions it called are not reachable from a client.
    let message = server.error("mutation", "calls:insert", json!({"tag": "x"}));
    assert!(
        message.contains("Could not find public function for 'calls:insert'"),
        "{message}"
    );
}

#[test]
fn the_guides_action_reads_and_writes_through_internal_functions() {
    let server = Server::start();
    server.deploy_ok(&[("myAction", &component("my-action"))]);
    let first = server.value("action", "myAction", json!({"a": 1.0, "b": "hello"}));
    assert_eq!(
        first,
        json!({"before": [], "stored": "hello (note 1 under 1)"})
    );
    let second = server.value("action", "myAction", json!({"a": 1.0, "b": "again"}));
    assert_eq!(
        second,
        json!({"before": ["hello (note 1 under 1)"], "stored": "again (note 2 under 1)"})
    );
    let message = server.error("query", "myAction:readData", json!({"a": 1.0}));
    assert!(
        message.contains("Could not find public function"),
        "{message}"
    );
}

#[test]
fn a_failed_callee_leaves_no_writes_and_its_caller_goes_on() {
    let server = calls_server();
    let caught = server.value("mutation", "calls:catch_failed_callee", json!({}));
    assert_eq!(caught["message"], "write_then_fail failed on purpose");
    assert_eq!(caught["data"], json!({"tag": "callee"}));
    // Inside the transaction, after the failure, the callee's write is already gone.
    assert_eq!(
        caught["tags_after"],
        json!(["caller-before", "caller-after"])
    );
    // And only the caller's own writes committed.
    assert_eq!(tags(&server), json!(["caller-before", "caller-after"]));
}

#[test]
fn nested_calls_in_a_mutation_see_its_writes_and_commit_with_it() {
    let server = calls_server();
    let seen = server.value("mutation", "calls:nested_writes_are_visible", json!({}));
    assert_eq!(
        seen,
        json!({"count_from_callee": {"$integer": "AgAAAAAAAAA="}, "tags_from_query": ["outer", "inner"]})
    );
    assert_eq!(tags(&server), json!(["outer", "inner"]));
    // A query calling a query reads the same data.
    assert_eq!(
        server.value("query", "calls:query_runs_query", json!({})),
        json!(["outer", "inner"])
    );
}

#[test]
fn calls_a_kind_may_not_make_are_refused_naming_the_rule() {
    let server = calls_server();
    let message = server.error("query", "calls:query_runs_mutation", json!({}));
    assert!(
        message.starts_with("run-mutation is not allowed in a query"),
        "{message}"
    );
    let message = server.error("mutation", "calls:mutation_runs_action", json!({}));
    assert!(
        message.starts_with("run-action is not allowed in a mutation"),
        "{message}"
    );
    // Nothing was written by the refused calls.
    assert_eq!(tags(&server), json!([]));
}

#[test]
fn recursion_past_the_nesting_limit_is_stopped_naming_the_limit() {
    let server = Server::start_with_config(Some("[limits]\nmax_call_depth = 5\n"));
    server.deploy_ok(&[("calls", &component("calls"))]);
    let message = server.error("query", "calls:recurse", json!({}));
    assert!(
        message.contains("function calls nested too deep")
            && message.contains("over the limit of 5 (max_call_depth)"),
        "{message}"
    );
    server.assert_deployed_still_works();
}

#[test]
fn an_error_with_data_passes_through_an_action_unchanged() {
    let server = calls_server();
    let body = server.call(
        "action",
        "calls:action_passes_on_error",
        json!({"tag": "through-action"}),
    );
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["errorMessage"], "write_then_fail failed on purpose");
    assert_eq!(body["errorData"], json!({"tag": "through-action"}));
    // The mutation failed, so its write did not commit.
    assert_eq!(tags(&server), json!([]));
}

#[test]
fn actions_from_one_client_run_at_the_same_time() {
    let server = calls_server();
    // Each action waits until the other has written its tag: they can only both return if
    // they run concurrently.
    let url = server.url.clone();
    let other = thread::spawn(move || {
        crate::support::Client::new(&url).try_value(
            "action",
            "calls:meet",
            json!({"me": "left", "other": "right"}),
        )
    });
    let right = server.value(
        "action",
        "calls:meet",
        json!({"me": "right", "other": "left"}),
    );
    let left = other.join().unwrap();
    // Each returns how many times it polled before it saw the other (an int64).
    assert!(right.get("$integer").is_some(), "{right}");
    assert!(left.is_some_and(|polls| polls.get("$integer").is_some()));
}

impl Server {
    fn assert_deployed_still_works(&self) {
        assert_eq!(tags(self), json!([]));
    }
}
