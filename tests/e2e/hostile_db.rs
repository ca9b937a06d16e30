//! The database under hostile functions (issue 8): host work bounded by the caller's
//! limits and deadline, read sets bounded, the committer's memory bounded in bytes.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::{Server, component, int64};

/// Generous: the attacks below finish in well under a second once the host bounds its
/// work; unbounded, each holds a worker thread for tens of seconds. Not a benchmark
/// (`cargo xtask bench` measures the latency); a liveness bound.
const LIVENESS: Duration = Duration::from_secs(10);

fn deploy_dbtest_and_hello(server: &Server) {
    let (dbtest, hello) = (component("dbtest"), component("hello"));
    let (status, body) = server.deploy_with_tables(
        &[("dbtest", &dbtest), ("hello", &hello)],
        json!({ "filler": { "indexes": { "by_n": ["n"] } } }),
    );
    assert_eq!(status, 200, "{body}");
}

/// Inserts `count` documents `{tag: "a", n: 0.0}` into `filler`, in mutations small
/// enough for the write limits.
fn fill(server: &Server, count: u32) {
    let mut left = count;
    while left > 0 {
        let batch = left.min(4_000);
        server.value(
            "mutation",
            "dbtest:insert_many",
            json!({"table": "filler", "count": int64(batch.into()), "document": {"tag": "a", "n": 0.0}}),
        );
        left -= batch;
    }
}

/// A filter that never matches, carrying an 8 MiB literal, over 20 000 documents: the
/// scan counts every document it reads, so it stops at `max_documents_read`; the filter
/// compares by reference; and the worker threads stay free for other callers meanwhile.
#[test]
fn a_filter_that_never_matches_stops_at_a_limit_and_others_keep_being_served() {
    let server = Server::start();
    deploy_dbtest_and_hello(&server);
    fill(&server, 20_000);

    let attack = json!({"table": "filler", "field": "tag", "literal_bytes": int64((8 << 20) - 64)});
    std::thread::scope(|scope| {
        // More attackers than worker threads: if host work held its thread, nothing else
        // would run.
        let attackers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let message =
                        server.error("query", "dbtest:filter_never_matches", attack.clone());
                    (started.elapsed(), message)
                })
            })
            .collect();
        let mut served = 0;
        while attackers.iter().any(|attacker| !attacker.is_finished()) {
            let started = Instant::now();
            server.assert_hello_still_works();
            let latency = started.elapsed();
            assert!(
                latency < LIVENESS,
                "a trivial query waited {latency:?} during the attack"
            );
            served += 1;
        }
        for attacker in attackers {
            let (elapsed, message) = attacker.join().unwrap();
            // Which limit comes first depends on the machine: the reads, or the second
            // of a query's time limit (checked inside the host call as it scans).
            assert!(
                message.contains("(max_documents_read)")
                    || message == "query timed out: exceeded the time limit of 1000 ms",
                "the attack should stop at a limit: {message}"
            );
            assert!(elapsed < LIVENESS, "an attack ran for {elapsed:?}");
        }
        assert!(served > 0);
    });
    server.assert_hello_still_works();
}

/// A scan that outlives its call's time limit is stopped inside the host call, with the
/// time limit's error, even though no wasm runs while it scans.
#[test]
fn a_long_scan_stops_at_the_time_limit_inside_the_host() {
    let server = Server::start_with_config(Some(
        "[limits]\nmax_documents_read = 1000000\nmax_bytes_read = 1073741824\n[limits.query]\ntimeout_ms = 200\n",
    ));
    deploy_dbtest_and_hello(&server);
    fill(&server, 20_000);
    // 1 300 comparisons per document (within the filter's 4 096 nodes) over 20 000
    // documents: one host call of many seconds if nothing stopped it at its 200 ms.
    let started = Instant::now();
    let message = server.error(
        "query",
        "dbtest:wide_filter",
        json!({"table": "filler", "field": "tag", "operands": int64(1_300)}),
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "the scan ran {elapsed:?} past its 200 ms"
    );
    assert_eq!(
        message, "query timed out: exceeded the time limit of 200 ms",
        "{message}"
    );
    server.assert_hello_still_works();
}

/// Lookups that find nothing still record read ranges: `max_read_ranges` bounds them,
/// just under it a mutation commits, just over it fails naming the limit. The pages of
/// one query count once.
#[test]
fn read_ranges_are_bounded_per_transaction() {
    let server = Server::start_with_config(Some("[limits]\nmax_read_ranges = 50\n"));
    deploy_dbtest_and_hello(&server);
    // More than 50 slices of 64 documents: the pages of one query must merge.
    fill(&server, 4_000);
    let probe = |count: u32| json!({"table": "filler", "index": "by_n", "field": "n", "count": int64(count.into())});
    // Value 0 exists; 1..49 do not: 50 ranges (the fill left every `n` at 0).
    assert_eq!(
        server.value("mutation", "dbtest:probe_many", probe(50)),
        int64(1)
    );
    let message = server.error("mutation", "dbtest:probe_many", probe(51));
    assert_eq!(
        message,
        "transaction read more than 50 index ranges (max_read_ranges)"
    );
    // 4 000 documents read in 32 batches and 63 slices: one range.
    assert_eq!(
        server.value("query", "dbtest:count", json!({"table": "filler"})),
        int64(4_000)
    );
}

/// With a write log too small for even one commit, every mutation whose snapshot falls
/// off it re-runs instead of committing unchecked: concurrent increments all count.
#[test]
fn mutations_whose_snapshot_fell_off_the_write_log_re_run() {
    let server = Server::start_with_config(Some("[limits]\nmax_write_log_bytes = 1\n"));
    let counter = component("counter");
    let (status, body) = server.deploy_with_tables(
        &[("counter", &counter)],
        json!({"counters": {"indexes": {"by_name": ["name"]}}}),
    );
    assert_eq!(status, 200, "{body}");
    let increments = 8;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..increments {
                    server.value("mutation", "counter:increment", json!({"name": "hits"}));
                }
            });
        }
    });
    let value: Json = server.value("query", "counter:get", json!({"name": "hits"}));
    assert_eq!(value, int64(4 * increments), "{value}");
}

/// A call body is checked for depth and element count before anything is built from it:
/// a body of a quarter million nulls would otherwise become a tree of tens of megabytes.
/// Just under the element limit the call goes through.
#[test]
fn call_bodies_are_bounded_before_they_are_parsed() {
    let server = Server::start_with_config(Some("[limits]\nmax_value_elements = 1000\n"));
    deploy_dbtest_and_hello(&server);
    // The body object, `path`, `args`, the array and its nulls: 4 + n values.
    let body = |n: usize| {
        let nulls = vec![Json::Null; n];
        json!({"path": "hello:echo", "args": {"value": nulls}}).to_string()
    };
    let (status, answer) = server.post("/api/mutation", &body(996), false);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = server.post("/api/mutation", &body(997), false);
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "InvalidArgs", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("more than the limit of 1000 elements"),
        "{answer}"
    );
    // Nesting far past the depth limit is refused as such, not by overflowing a stack.
    let deep = format!(
        r#"{{"path": "hello:echo", "args": {{"value": {}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, answer) = server.post("/api/mutation", &deep, false);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("nested deeper"),
        "{answer}"
    );
    server.assert_hello_still_works();
}

/// JSON text a function hands the host (a document here; ranges and filters alike) over
/// `max_value_bytes` is refused before it is parsed, naming the limit; under it, it is
/// held to the document limits as usual.
#[test]
fn guest_text_over_the_value_limit_is_refused_unread() {
    let server = Server::start_with_config(Some(
        "[limits]\nmax_value_bytes = 100000\nmax_document_bytes = 200000\n",
    ));
    deploy_dbtest_and_hello(&server);
    let insert = |bytes: i64| json!({"table": "filler", "bytes": int64(bytes)});
    server.value("mutation", "dbtest:raw_insert_text", insert(99_000));
    let message = server.error("mutation", "dbtest:raw_insert_text", insert(100_000));
    assert!(
        message.contains("over the limit of 100000 bytes (max_value_bytes)"),
        "{message}"
    );
    assert_eq!(
        server.value("query", "dbtest:count", json!({"table": "filler"})),
        int64(1)
    );
}

/// What the host holds for a call's open queries is bounded: three cursors with a 1 MiB
/// filter each fit in 4 MiB, a fourth does not, and the error names the limit. Dropped
/// cursors give their memory back (each call starts with the whole budget).
#[test]
fn open_queries_are_charged_to_a_per_call_host_memory_budget() {
    let server = Server::start_with_config(Some("[limits]\nmax_host_memory_bytes = 4194304\n"));
    deploy_dbtest_and_hello(&server);
    fill(&server, 1);
    let open = |count: i64| json!({"table": "filler", "count": int64(count), "filter_bytes": int64(1 << 20)});
    assert_eq!(server.value("query", "dbtest:open_many", open(3)), int64(3));
    let message = server.error("query", "dbtest:open_many", open(4));
    assert!(
        message.starts_with(
            "host memory limit of 4194304 bytes for this call exceeded (max_host_memory_bytes)"
        ),
        "{message}"
    );
    assert_eq!(server.value("query", "dbtest:open_many", open(3)), int64(3));
}

/// A deploy that adds an index over a table of 20 000 documents builds it in the
/// background: mutations on another table keep committing while the deploy is in flight
/// (a build inside one commit would hold every one of them until it ends), and the index
/// is ready, with every document in it, when the deploy answers.
#[test]
fn a_new_index_is_built_while_mutations_keep_committing() {
    let server = Server::start();
    deploy_dbtest_and_hello(&server);
    fill(&server, 20_000);
    for _ in 0..3 {
        server.value(
            "mutation",
            "dbtest:insert",
            json!({"table": "filler", "document": {"tag": "z", "n": 1.0}}),
        );
    }
    let (dbtest, hello) = (component("dbtest"), component("hello"));
    let ((status, body), during) =
        deploy_during_inserts(&server, "other", json!({"x": 1.0}), || {
            server.deploy_with_tables(
                &[("dbtest", &dbtest), ("hello", &hello)],
                json!({ "filler": { "indexes": { "by_n": ["n"], "by_tag": ["tag"] } } }),
            )
        });
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["addedIndexes"], json!(["filler.by_tag"]));
    eprintln!("{during} mutations committed while the index was being built");
    assert!(
        during >= 5,
        "only {during} mutations committed while the index was being built"
    );
    let tagged = server.value(
        "query",
        "dbtest:by_index",
        json!({"table": "filler", "index": "by_tag", "field": "tag", "value": "z"}),
    );
    assert_eq!(tagged.as_array().map(Vec::len), Some(3), "{tagged}");
}

/// Runs `deploy` while four threads keep inserting `document` into `table`; returns what
/// it answered and how many inserts committed while it was in flight. Every insert must
/// succeed.
fn deploy_during_inserts(
    server: &Server,
    table: &str,
    document: Json,
    deploy: impl FnOnce() -> (u16, Json),
) -> ((u16, Json), usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let deploying = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut during = 0;
                    while !done.load(Ordering::SeqCst) {
                        let was_deploying = deploying.load(Ordering::SeqCst);
                        server.value(
                            "mutation",
                            "dbtest:insert",
                            json!({"table": table, "document": document}),
                        );
                        // Counted only if the deploy was in flight from before it was
                        // sent until after it was answered.
                        if was_deploying && !done.load(Ordering::SeqCst) {
                            during += 1;
                        }
                    }
                    during
                })
            })
            .collect();
        // Stops the writers however `deploy` ends: if it panics (a timed-out request),
        // writers left running would keep the scope, and the test, from ever ending.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop = StopOnDrop(&done);
        deploying.store(true, Ordering::SeqCst);
        let answer = deploy();
        drop(stop);
        let during = writers.into_iter().map(|w| w.join().unwrap()).sum();
        (answer, during)
    })
}

/// A new document validator is checked against the stored documents in the background:
/// inserts into that very table keep committing while the deploy checks 20 000 of them
/// (a check inside the schema commit conflicted with each of them and gave up after 100
/// re-runs). A write made meanwhile that the new validator refuses is not refused itself
/// (the validator is not current yet); it fails the deploy, which names the document, and
/// the old validator stays.
#[test]
fn a_validator_change_is_checked_while_writes_to_its_table_keep_committing() {
    let server = Server::start();
    deploy_dbtest_and_hello(&server);
    fill(&server, 20_000);
    let (dbtest, hello) = (component("dbtest"), component("hello"));
    let deploy_validator = |tag: &str| {
        server.deploy_with_tables(
            &[("dbtest", &dbtest), ("hello", &hello)],
            json!({ "filler": {
                "indexes": { "by_n": ["n"] },
                "document": { "tag": tag, "n": "float64" },
            } }),
        )
    };

    let ((status, body), during) =
        deploy_during_inserts(&server, "filler", json!({"tag": "w", "n": 1.0}), || {
            deploy_validator("string | float64")
        });
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["validatedTables"], json!(["filler"]));
    eprintln!("{during} inserts into the table committed while its validator was checked");
    assert!(
        during >= 5,
        "only {during} inserts committed while the validator was checked"
    );
    let refused = server.error(
        "mutation",
        "dbtest:insert",
        json!({"table": "filler", "document": {"tag": true, "n": 1.0}}),
    );
    assert!(refused.contains("does not match the schema"), "{refused}");

    // Numeric tags fit the current validator but not the next one.
    let ((status, body), _) =
        deploy_during_inserts(&server, "filler", json!({"tag": 5.0, "n": 1.0}), || {
            deploy_validator("string")
        });
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSchema")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("table \"filler\"")
            && message.contains(
                "does not match the new schema: field \"tag\": expected string, got float64"
            ),
        "{message}"
    );
    let (_, listing) = server.get("/api/functions", true);
    let listing: Json = serde_json::from_str(&listing).unwrap();
    assert_eq!(listing["deploymentId"], 2, "the failed deploy went nowhere");
    server.value(
        "mutation",
        "dbtest:insert",
        json!({"table": "filler", "document": {"tag": 6.0, "n": 1.0}}),
    );
}

/// A member of a group commit whose own store write fails fails alone (issue 8, item 9):
/// the committer writes the rest of its batch without it. The failing member is a deploy
/// whose deployment write fails (a debug build's failpoint, as a full disk would) while
/// four clients keep inserting: every insert succeeds and is stored, the deploy gets a
/// 500, and the deployment stays the one before.
#[test]
fn a_store_failure_in_one_member_of_a_group_commit_fails_only_that_member() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = Server::start_with(None, &[("KILN_FAILPOINT_STORE_DEPLOYMENT", "doomed")]);
    deploy_dbtest_and_hello(&server);
    let (dbtest, hello) = (component("dbtest"), component("hello"));
    let done = AtomicBool::new(false);
    let (shared_batches, inserted) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut inserted = 0;
                    while !done.load(Ordering::SeqCst) {
                        // Fails the test if any insert fails.
                        server.value(
                            "mutation",
                            "dbtest:insert",
                            json!({"table": "other", "document": {"x": 1.0}}),
                        );
                        inserted += 1;
                    }
                    inserted
                })
            })
            .collect();
        // Until the failing deploy has shared a batch with inserts a few times (the log
        // says how many members were left to commit).
        let mut shared_batches = 0;
        for _ in 0..50 {
            let (status, body) = server.deploy_with_tables(
                // `doomed` is a second copy of a module without HTTP routes (two copies
                // of `hello` would clash on its routes and fail the deploy early).
                &[("dbtest", &dbtest), ("hello", &hello), ("doomed", &dbtest)],
                json!({ "filler": { "indexes": { "by_n": ["n"] } } }),
            );
            if status != 500 {
                // Stop the writers first, or the failed assertion below would wait for
                // them forever at the end of the scope.
                done.store(true, Ordering::SeqCst);
            }
            assert_eq!(
                (status, body["code"].as_str()),
                (500, Some("InternalServerError")),
                "{body}"
            );
            shared_batches = server
                .log()
                .lines()
                .filter(|line| line.contains("committing the rest of its batch without it"))
                .filter(|line| !line.contains("batch_rest=0"))
                .count();
            if shared_batches >= 3 {
                break;
            }
        }
        done.store(true, Ordering::SeqCst);
        let inserted: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        (shared_batches, inserted)
    });
    assert!(
        shared_batches >= 1,
        "the failing deploy never shared a batch with an insert: nothing was tested"
    );
    eprintln!("{inserted} inserts; the failing deploy shared {shared_batches} batches");
    assert_eq!(
        server.value("query", "dbtest:count", json!({"table": "other"})),
        int64(inserted as i64),
        "every acknowledged insert is stored"
    );
    let (_, listing) = server.get("/api/functions", true);
    let listing: Json = serde_json::from_str(&listing).unwrap();
    assert_eq!(
        listing["deploymentId"], 1,
        "the failed deploys went nowhere"
    );
    server.assert_hello_still_works();
}
