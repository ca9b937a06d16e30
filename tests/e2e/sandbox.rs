//! Hostile guests: each limit stops its function with an error naming the limit, the
//! function just under the same limit succeeds, and the server serves the next call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Server, component};

fn misbehave_server(config: Option<&str>) -> Server {
    let server = Server::start_with_config(config);
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
    ]);
    server
}

/// `{"$integer": ...}` for an int64 argument.
fn int64(n: i64) -> serde_json::Value {
    use base64::Engine as _;
    json!({ "$integer": base64::engine::general_purpose::STANDARD.encode(n.to_le_bytes()) })
}

#[test]
fn each_misbehaving_function_gets_an_error_naming_what_stopped_it() {
    let server = misbehave_server(None);
    let expectations = [
        (
            "misbehave:spin",
            "query ran out of fuel: exceeded the limit of 10000000000 instructions",
        ),
        ("misbehave:hog", "query memory limit of 64 MiB exceeded"),
        (
            "misbehave:recurse",
            "stack overflow: exceeded the wasm stack limit of 512 KiB",
        ),
        ("misbehave:panic", "the function panicked or aborted"),
        (
            "misbehave:huge",
            "invalid return value: value is 20971522 bytes, over the limit of 8388608 bytes",
        ),
    ];
    for (path, expected) in expectations {
        let body = server.call("query", path, json!({}));
        assert_eq!(body["status"], "error", "{path}: {body}");
        let message = body["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with(expected),
            "{path}: expected {expected:?}, got {message:?}"
        );
        server.assert_hello_still_works();
    }
    // The panic's message reaches the caller through the log lines.
    let body = server.call("query", "misbehave:panic", json!({}));
    let lines = body["logLines"].to_string();
    assert!(
        lines.contains("misbehave:panic was asked to panic"),
        "{lines}"
    );
}

#[test]
fn just_under_each_limit_succeeds() {
    let server = misbehave_server(None);
    // 32 MiB of a 64 MiB memory limit.
    assert_eq!(
        server.value("query", "misbehave:allocate", json!({"mib": int64(32)})),
        int64(32)
    );
    // A string result counts its length + 2 against the 8 MiB limit: exactly at the limit...
    let at_limit = server.value(
        "query",
        "misbehave:sized",
        json!({"bytes": int64((8 << 20) - 2)}),
    );
    assert_eq!(at_limit.as_str().unwrap().len(), (8 << 20) - 2);
    // ...and one byte over.
    let message = server.error(
        "query",
        "misbehave:sized",
        json!({"bytes": int64((8 << 20) - 1)}),
    );
    assert!(
        message.contains("over the limit of 8388608 bytes"),
        "{message}"
    );
}

/// With fuel out of the way, the wall clock stops a spinning query.
const SHORT_TIMEOUT: &str = "[limits.query]\ntimeout_ms = 300\nfuel = 1000000000000000\n";

#[test]
fn the_wall_clock_limit_stops_a_spinning_query() {
    let server = misbehave_server(Some(SHORT_TIMEOUT));
    let message = server.error("query", "misbehave:spin", json!({}));
    assert_eq!(
        message,
        "query timed out: exceeded the time limit of 300 ms"
    );
    server.assert_hello_still_works();
}

#[test]
fn the_memory_limit_is_per_kind_and_configurable() {
    let server = misbehave_server(Some("[limits.query]\nmemory_bytes = 16777216\n"));
    let message = server.error("query", "misbehave:allocate", json!({"mib": int64(32)}));
    assert!(
        message.starts_with("query memory limit of 16 MiB exceeded"),
        "{message}"
    );
    assert_eq!(
        server.value("query", "misbehave:allocate", json!({"mib": int64(4)})),
        int64(4)
    );
}

#[test]
fn spinning_guests_do_not_block_other_calls() {
    let server = Arc::new(misbehave_server(Some(
        "[limits.query]\ntimeout_ms = 3000\nfuel = 1000000000000000\n",
    )));
    let spins_finished = Arc::new(AtomicUsize::new(0));
    // More spinning guests than the server has worker threads (one per core).
    let spinners: Vec<_> = (0..3)
        .map(|_| {
            let (server, spins_finished) = (server.clone(), spins_finished.clone());
            std::thread::spawn(move || {
                let message = server.error("query", "misbehave:spin", json!({}));
                spins_finished.fetch_add(1, Ordering::SeqCst);
                message
            })
        })
        .collect();
    // The server logs each call as it starts it: wait until all three spin.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.log().matches("calling misbehave:spin").count() < 3 {
        assert!(
            Instant::now() < deadline,
            "the spinning calls never started:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.assert_hello_still_works();
    assert_eq!(
        spins_finished.load(Ordering::SeqCst),
        0,
        "hello should have been answered while the spinning queries were still running"
    );
    for spinner in spinners {
        let message = spinner.join().unwrap();
        assert_eq!(
            message,
            "query timed out: exceeded the time limit of 3000 ms"
        );
    }
}
