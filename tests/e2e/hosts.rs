//! Several Kiln hosts over one PostgreSQL database serve one deployment (DESIGN.md
//! section 8): mutations from every host are serializable together, subscriptions on one
//! host see commits made on another, a deploy through one host serves on all, and
//! scheduled mutations run exactly once across them.
//!
//! These need PostgreSQL: `cargo xtask test-postgres` (and `cargo xtask ci`, which runs
//! the suite over PostgreSQL too) starts a throwaway server for them. Without one they
//! fail with a message that says so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::postgres_server::OwnPostgres;
use crate::scheduler::{jobs_server, tally, wait_for};
use crate::support::{Client, Server, component, int64, run_client_script};

fn counter_hosts(count: usize) -> Vec<Arc<Server>> {
    let first = Server::start();
    let (status, body) = first.deploy_with_tables(
        &[("counter", &component("counter"))],
        json!({ "counters": { "indexes": { "by_name": ["name"] } } }),
    );
    assert_eq!(status, 200, "{body}");
    let mut hosts = vec![Arc::new(first)];
    for _ in 1..count {
        let host = hosts[0].another_host();
        hosts.push(Arc::new(host));
    }
    hosts
}

#[test]
fn increments_spread_over_three_hosts_are_serializable() {
    let hosts = counter_hosts(3);
    // 100 concurrent increments through each host, all at once.
    let threads: Vec<_> = hosts
        .iter()
        .flat_map(|host| {
            (0..100).map(|_| {
                let host = host.clone();
                std::thread::spawn(move || {
                    host.value("mutation", "counter:increment", json!({ "name": "hits" }))
                })
            })
        })
        .collect();
    let mut returned: Vec<Json> = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    returned.sort_by_key(|value| value.to_string());
    returned.dedup();
    assert_eq!(
        returned.len(),
        300,
        "every increment returned a distinct value"
    );
    for host in &hosts {
        assert_eq!(
            host.value("query", "counter:get", json!({ "name": "hits" })),
            int64(300)
        );
    }
}

#[test]
fn a_subscriber_on_one_host_sees_a_mutation_made_on_another() {
    let hosts = counter_hosts(2);
    let (stdout, result) = run_client_script(
        "sync.mjs",
        &[hosts[0].url.as_str(), "crossHost", hosts[1].url.as_str()],
    );
    assert_eq!(result["before"], json!(0), "{stdout}");
    assert_eq!(result["incremented"], json!(1), "{stdout}");
    assert_eq!(result["afterHere"], json!(1), "{stdout}");
    assert_eq!(result["afterThere"], json!(1), "{stdout}");
}

#[test]
fn a_deploy_through_one_host_serves_on_the_others() {
    let first = Server::start();
    first.deploy_ok(&[("hello", &component("hello"))]);
    // A host that starts later serves the current deployment at once.
    let second = first.another_host();
    second.assert_hello_still_works();
    assert!(
        second
            .error("query", "counter:get", json!({ "name": "x" }))
            .contains("counter"),
        "the counter module is not deployed yet"
    );

    first.deploy_ok(&[
        ("hello", &component("hello")),
        ("counter", &component("counter")),
    ]);
    // The second host takes it up by itself.
    wait_for(
        Duration::from_secs(30),
        "the deploy to reach the second host",
        || {
            let body = second.call("query", "counter:get", json!({ "name": "x" }));
            (body["status"] == "success").then_some(())
        },
    );
    assert_eq!(
        second.value("mutation", "counter:increment", json!({ "name": "x" })),
        int64(1)
    );
    assert_eq!(
        first.value("query", "counter:get", json!({ "name": "x" })),
        int64(1)
    );

    // And a deploy through the second host reaches the first: neither host is special.
    second.deploy_ok(&[("counter", &component("counter"))]);
    wait_for(
        Duration::from_secs(30),
        "the deploy to reach the first host",
        || {
            let body = first.call("query", "hello", json!({}));
            (body["status"] == "error").then_some(())
        },
    );
    let (_, listed) = first.get("/api/functions", true);
    assert!(!listed.contains("hello"), "{listed}");
}

#[test]
fn scheduled_mutations_run_exactly_once_while_a_host_is_killed() {
    // Two at a time per host, so the jobs take long enough to be cut off halfway.
    let config = "[limits]\nscheduler_concurrency = 2\n";
    let mut first = jobs_server(Some(config));
    let second = first.another_host();
    first.value(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "crash", "count": int64(200), "delay_ms": 300.0 }),
    );
    let done_before = wait_for(Duration::from_secs(30), "the jobs to start", || {
        let done = tally(&second, "crash");
        (done >= 5).then_some(done)
    });
    first.kill();
    assert!(
        done_before < 200,
        "every job ran before the kill: nothing was cut off"
    );
    // The surviving host runs the rest, each once.
    wait_for(Duration::from_secs(120), "every job to run", || {
        let pending = second.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
        pending.as_array().unwrap().is_empty().then_some(())
    });
    assert_eq!(tally(&second, "crash"), 200);
    let succeeded = second.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    assert_eq!(succeeded.as_array().unwrap().len(), 200);
    // The killed host comes back and runs none of them again.
    first.start_again();
    assert_eq!(tally(&first, "crash"), 200);
}

/// `GET /ready`'s status and body.
fn readiness(host: &Server) -> (u16, Json) {
    let response = host.request("GET", "/ready", &[], None);
    (response.status, response.json())
}

#[test]
fn hosts_ride_out_a_database_restart_and_lose_no_acknowledged_write() {
    let postgres = OwnPostgres::start();
    let first = Server::start_over_database(&postgres.url());
    first.deploy_ok(&[("dbtest", &component("dbtest"))]);
    let second = first.another_host();
    for host in [&first, &second] {
        let (status, body) = readiness(host);
        assert_eq!((status, &body["ready"]), (200, &json!(true)), "{body}");
        assert_eq!(body["database"], "postgres", "{body}");
    }

    // Writers insert numbered documents through both hosts, recording each insert the
    // server acknowledged, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let client = Client::new(if writer % 2 == 0 {
                &first.url
            } else {
                &second.url
            });
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{writer}-{n}");
                    n += 1;
                    let done = client.try_value(
                        "mutation",
                        "dbtest:insert",
                        json!({ "table": "acks", "document": { "key": key } }),
                    );
                    if done.is_some() {
                        acknowledged.lock().unwrap().insert(key);
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    let count = || acknowledged.lock().unwrap().len();
    wait_for(Duration::from_secs(60), "writes before the restart", || {
        (count() >= 50).then_some(())
    });

    postgres.stop();
    for host in [&first, &second] {
        let body = wait_for(
            Duration::from_secs(30),
            "the host to report unavailable",
            || {
                let (status, body) = readiness(host);
                (status == 503).then_some(body)
            },
        );
        assert_eq!(body["ready"], json!(false), "{body}");
    }
    let before_restart = count();
    postgres.start_again();
    for host in [&first, &second] {
        wait_for(Duration::from_secs(60), "the host to recover", || {
            (readiness(host).0 == 200).then_some(())
        });
    }
    // Writes go through again, on both hosts.
    wait_for(Duration::from_secs(60), "writes after the restart", || {
        (count() >= before_restart + 50).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }

    let stored: BTreeSet<String> = crate::database::all_documents(&second, "acks", 10_000)
        .iter()
        .map(|document| document["key"].as_str().unwrap().to_string())
        .collect();
    let acknowledged = acknowledged.lock().unwrap();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}
