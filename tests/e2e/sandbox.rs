//! Hostile guests: each limit stops its function with an error naming the limit, the
//! function just under the same limit succeeds, and the server serves the next call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Server, component, int64};

fn misbehave_server(config: Option<&str>) -> Server {
    let server = Server::start_with_config(config);
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
    ]);
    server
}

#[test]
fn each_misbehaving_function_gets_an_error_naming_what_stopped_it() {
    let server = misbehave_server(None);
    let expectations = [
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
    // Under the default limits fuel usually runs out first; on a loaded machine the 1 s
    // clock may win. Either way the error names the limit (both are tested on their own).
    let message = server.error("query", "misbehave:spin", json!({}));
    assert!(
        message
            .starts_with("query ran out of fuel: exceeded the limit of 10000000000 instructions")
            || message == "query timed out: exceeded the time limit of 1000 ms",
        "{message}"
    );
    server.assert_hello_still_works();

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
    // 56 MiB of a 64 MiB memory limit (the program's stack and data take the rest).
    assert_eq!(
        server.value("query", "misbehave:allocate", json!({"mib": int64(56)})),
        int64(56)
    );
    let message = server.error("query", "misbehave:allocate", json!({"mib": int64(66)}));
    assert!(
        message.starts_with("query memory limit of 64 MiB exceeded"),
        "{message}"
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
fn the_wall_clock_limit_stops_a_query_waiting_in_a_host_call() {
    let server = misbehave_server(Some(SHORT_TIMEOUT));
    assert_eq!(
        server.value("query", "misbehave:sleep", json!({"ms": int64(10)})),
        int64(10)
    );
    let message = server.error("query", "misbehave:sleep", json!({"ms": int64(60_000)}));
    assert_eq!(
        message,
        "query timed out: exceeded the time limit of 300 ms"
    );
    server.assert_hello_still_works();
}

#[test]
fn the_memory_limit_is_per_kind_and_configurable() {
    let server = misbehave_server(Some("[limits.query]\nmemory_bytes = 16777216\n"));
    let message = server.error("query", "misbehave:allocate", json!({"mib": int64(20)}));
    assert!(
        message.starts_with("query memory limit of 16 MiB exceeded"),
        "{message}"
    );
    assert_eq!(
        server.value("query", "misbehave:allocate", json!({"mib": int64(12)})),
        int64(12)
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

#[test]
fn stdout_stderr_and_log_become_log_lines_within_the_limit() {
    let server = misbehave_server(None);
    let body = server.call("query", "misbehave:chatty", json!({"lines": int64(2)}));
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(
        body["logLines"],
        json!([
            "[INFO] starting",
            "[LOG] line 0",
            "[LOG] line 1",
            "[ERROR] done"
        ])
    );

    // 256 lines are kept per call (max_log_lines); the rest are counted, and the call succeeds.
    let body = server.call("query", "misbehave:chatty", json!({"lines": int64(1000)}));
    assert_eq!(body["status"], "success", "{body}");
    let lines = body["logLines"].as_array().unwrap();
    assert_eq!(lines.len(), 257);
    assert_eq!(lines[255], "[LOG] line 254");
    assert_eq!(
        lines[256],
        "[WARN] 746 log lines dropped: over the limit of 256 lines or 1048576 bytes per call"
    );
}

#[test]
fn the_fuel_limit_stops_a_computing_query_and_lets_a_shorter_one_finish() {
    let server = misbehave_server(Some(
        "[limits.query]\nfuel = 200000000\ntimeout_ms = 60000\n",
    ));
    let message = server.error("query", "misbehave:spin", json!({}));
    assert_eq!(
        message,
        "query ran out of fuel: exceeded the limit of 200000000 instructions"
    );
    assert_eq!(
        server.value("query", "misbehave:count", json!({"to": int64(1000)})),
        int64(1000)
    );
    server.assert_hello_still_works();
}

#[test]
fn the_output_byte_limit_drops_and_counts_lines() {
    let server = misbehave_server(Some("[limits]\nmax_output_bytes = 40\n"));
    let body = server.call("query", "misbehave:chatty", json!({"lines": int64(10)}));
    assert_eq!(body["status"], "success", "{body}");
    // "starting" (8 bytes) + 5 × "line N" (6 bytes) = 38 bytes fit; the rest are counted.
    let lines: Vec<&str> = body["logLines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(lines[5], "[LOG] line 4");
    assert_eq!(
        lines[6],
        "[WARN] 6 log lines dropped: over the limit of 256 lines or 40 bytes per call"
    );
}

/// Past `max_concurrent_queries`, a query waits for a slot, and its time limit starts
/// when it runs: two spinning queries with one slot run one after the other, each for
/// its whole limit, and a query sent while they spin is answered once it has the slot.
#[test]
fn queries_past_the_concurrency_cap_wait_and_their_time_limit_starts_when_they_run() {
    let config = "[limits]\nmax_concurrent_queries = 1\n[limits.query]\ntimeout_ms = 500\nfuel = 1000000000000000\n";
    let server = Arc::new(misbehave_server(Some(config)));
    let started = Instant::now();
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                let message = server.error("query", "misbehave:spin", json!({}));
                (message, started.elapsed())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.log().matches("calling misbehave:spin").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the spinning calls never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.assert_hello_still_works();
    let mut last_finished = Duration::ZERO;
    for spinner in spinners {
        let (message, finished) = spinner.join().unwrap();
        assert_eq!(
            message,
            "query timed out: exceeded the time limit of 500 ms"
        );
        last_finished = last_finished.max(finished);
    }
    // With the slot shared, both would have stopped about 500 ms in.
    assert!(
        last_finished >= Duration::from_millis(1_000),
        "the two spinning queries ran side by side: the last ended {last_finished:?} in"
    );
}

#[test]
fn a_server_out_of_instance_slots_says_so_and_recovers() {
    let config = "[limits]\nmax_concurrent_instances = 2\nmax_concurrent_actions = 1\n[limits.query]\ntimeout_ms = 3000\nfuel = 1000000000000000\n";
    let server = Arc::new(misbehave_server(Some(config)));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || server.error("query", "misbehave:spin", json!({})))
        })
        .collect();
    // While both slots spin, another call is refused with an error naming the limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = server.call("query", "hello", json!({}));
        if body["status"] == "error" {
            assert_eq!(
                body["errorMessage"],
                "server at capacity: all 2 instance slots are in use (max_concurrent_instances); retry later"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the spinning calls never filled both slots"
        );
    }
    for spinner in spinners {
        assert!(spinner.join().unwrap().contains("timed out"));
    }
    server.assert_hello_still_works();
}

/// Every call starts from the module's pristine memory, however much of it the call
/// before wrote: `probe:scribble` counts the pages an earlier call left changed (it
/// writes over a hundred separate runs of them, more than one scan of wasmtime's memory
/// reset reports; see third_party/README.md), one call after another on the instance slot
/// the last one used, and from several clients at once.
#[test]
fn no_call_sees_the_memory_an_earlier_call_wrote() {
    let server = Server::start();
    server.deploy_ok(&[("probe", &component("probe"))]);
    for _ in 0..20 {
        let body = server.call("query", "probe:scribble", json!({}));
        assert_eq!(body["value"], int64(0), "{body}");
    }
    let server = Arc::new(server);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let body = server.call("query", "probe:scribble", json!({}));
                    assert_eq!(body["value"], int64(0), "{body}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client saw another call's writes");
    }
}
