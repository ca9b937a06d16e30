//! Queries and mutations are deterministic: their clock is frozen at the call's start and
//! their randomness seeded per call; actions get the real clock and randomness. Through the
//! `probe` component, which reads the clocks twice around busy work and draws random
//! numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use crate::support::{Server, component};

/// Enough busy work that a real clock moves across it (nanosecond resolution).
const BUSY: u64 = 2_000_000;

fn probe_server() -> Server {
    let server = Server::start();
    server.deploy_ok(&[("probe", &component("probe"))]);
    server
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn number(value: &Json) -> u128 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {value}"))
        .parse()
        .unwrap()
}

/// The call's readings, with the real time just before and just after it.
fn call(server: &Server, endpoint: &str, function: &str) -> (u128, Json, u128) {
    let before = now_ns();
    let readings = server.value(
        endpoint,
        &format!("probe:{function}"),
        json!({ "iterations": BUSY }),
    );
    let after = now_ns();
    (before, readings, after)
}

/// Three random numbers that differ from each other: a stream, not a constant.
fn assert_a_random_stream(readings: &Json) {
    let random: Vec<u128> = readings["random"]
        .as_array()
        .unwrap()
        .iter()
        .map(number)
        .collect();
    assert_eq!(random.len(), 3, "{readings}");
    assert!(
        random[0] != random[1] && random[1] != random[2] && random[0] != random[2],
        "{readings}"
    );
}

#[test]
fn a_query_sees_one_frozen_time_taken_when_the_call_began() {
    let server = probe_server();
    let (before, readings, after) = call(&server, "query", "in_query");
    let [first, second] = [
        number(&readings["wall_ns"][0]),
        number(&readings["wall_ns"][1]),
    ];
    assert_eq!(first, second, "the clock moved during a query: {readings}");
    assert!(
        before <= first && first <= after,
        "the frozen time {first} is not the call's ({before}..{after})"
    );
    assert_eq!(readings["monotonic_elapsed_ns"], "0", "{readings}");
}

#[test]
fn a_mutation_sees_one_frozen_time_and_stores_what_it_saw() {
    let server = probe_server();
    let (before, readings, after) = call(&server, "mutation", "in_mutation");
    let [first, second] = [
        number(&readings["wall_ns"][0]),
        number(&readings["wall_ns"][1]),
    ];
    assert_eq!(
        first, second,
        "the clock moved during a mutation: {readings}"
    );
    assert!(before <= first && first <= after, "{readings}");
    assert_eq!(readings["monotonic_elapsed_ns"], "0", "{readings}");
    assert_a_random_stream(&readings);
    // What it returned is what it committed.
    let (status, body) = server.get("/api/data/readings", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    let stored = &body["documents"][0];
    assert_eq!(
        (&stored["wall_ns"], &stored["random"], &stored["hash"]),
        (&readings["wall_ns"], &readings["random"], &readings["hash"]),
        "{body}"
    );
}

#[test]
fn an_action_sees_the_real_clock() {
    let server = probe_server();
    let (before, readings, after) = call(&server, "action", "in_action");
    let [first, second] = [
        number(&readings["wall_ns"][0]),
        number(&readings["wall_ns"][1]),
    ];
    assert!(
        before <= first && first < second && second <= after,
        "an action's clock must advance across its busy work: {readings}"
    );
    assert_ne!(readings["monotonic_elapsed_ns"], "0", "{readings}");
    assert_a_random_stream(&readings);
}

#[test]
fn each_query_call_gets_its_own_seed() {
    let server = probe_server();
    let (_, first, _) = call(&server, "query", "in_query");
    let (_, second, _) = call(&server, "query", "in_query");
    assert_a_random_stream(&first);
    assert_a_random_stream(&second);
    // Seeded per call, not once per server or per deployment.
    assert_ne!(first["random"], second["random"]);
    assert_ne!(first["hash"], second["hash"]);
}
