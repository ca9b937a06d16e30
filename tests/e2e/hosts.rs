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
use crate::scheduler::{decode_int64, deploy_with_crons, jobs_server, tally, wait_for};
use crate::storage::{files_in_database, get, post, upload_url};
use crate::support::{
    Client, Server, component, int64, kiln_binary, run_client_script, test_database,
};

/// The tables the counter module needs.
fn counters_schema() -> Json {
    json!({ "counters": { "indexes": { "by_name": ["name"] } } })
}

fn counter_hosts(count: usize, config: Option<&str>) -> Vec<Arc<Server>> {
    let first = Server::start_with_config(config);
    let (status, body) =
        first.deploy_with_tables(&[("counter", &component("counter"))], counters_schema());
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
    // 300 calls at once through three hosts and one PostgreSQL on a small test machine:
    // some wait well past the default second of a mutation for a turn on a core. That is
    // not what this test is about (serializability is), so they get time.
    let hosts = counter_hosts(3, Some("[limits.mutation]\ntimeout_ms = 20000\n"));
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
    let hosts = counter_hosts(2, None);
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

    let (status, body) = first.deploy_with_tables(
        &[
            ("hello", &component("hello")),
            ("counter", &component("counter")),
        ],
        counters_schema(),
    );
    assert_eq!(status, 200, "{body}");
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
    let (status, body) =
        second.deploy_with_tables(&[("counter", &component("counter"))], counters_schema());
    assert_eq!(status, 200, "{body}");
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

    // Each host keeps the artifacts it compiled on its own disk, by module hash; the
    // database holds the sources only.
    for host in [&first, &second] {
        let kept = std::fs::read_dir(host.data.join("compiled")).map_or(0, |dir| dir.count());
        assert!(kept >= 1, "no compiled artifact kept on a host");
    }
    let output = std::process::Command::new("psql")
        .arg(first.database.as_ref().unwrap())
        .args(["-tAc", "SELECT count(*) FROM kiln_kv WHERE space = 6"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "0");
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

#[test]
fn scheduled_actions_of_a_killed_host_fail_once_their_lease_runs_out_and_never_rerun() {
    let config = "[limits]\nscheduler_concurrency = 4\nscheduled_action_lease_s = 2\n";
    let mut first = jobs_server(Some(config));
    first.value(
        "mutation",
        "jobs:slow_many",
        json!({ "name": "slow", "count": int64(8), "delay_ms": 0.0, "sleep_ms": int64(3_000) }),
    );
    // The first host runs four of them; the other four wait.
    let running_on_first = wait_for(Duration::from_secs(30), "actions to start", || {
        let running = first.value(
            "query",
            "jobs:jobs_in_state",
            json!({ "kind": "inProgress" }),
        );
        let running = running.as_array().unwrap().clone();
        (!running.is_empty()).then_some(running)
    });
    for job in &running_on_first {
        assert!(
            job["leaseUntil"].is_number(),
            "a running action has a lease: {job}"
        );
    }
    // Killed at once, while the actions seen running sleep their 3 s; the second host
    // starts after (starting it first took over 3 s once, under CI load, and the first
    // host's actions had ended well by the kill).
    first.kill();
    let second = first.another_host();
    wait_for(Duration::from_secs(60), "every action to end", || {
        let pending = second.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
        let running = second.value(
            "query",
            "jobs:jobs_in_state",
            json!({ "kind": "inProgress" }),
        );
        (pending.as_array().unwrap().is_empty() && running.as_array().unwrap().is_empty())
            .then_some(())
    });
    let failed = second.value("query", "jobs:jobs_in_state", json!({ "kind": "failed" }));
    let succeeded = second.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    let failed = failed.as_array().unwrap();
    let failed_ids: BTreeSet<String> = failed.iter().map(|job| job["_id"].to_string()).collect();
    // Every action the killed host was running failed for it, and only those.
    for job in &running_on_first {
        assert!(
            failed_ids.contains(&job["_id"].to_string()),
            "{job} was cut off: {failed:?}"
        );
    }
    for job in failed {
        assert_eq!(
            job["state"]["error"], "the server running the action stopped while it ran",
            "{job}"
        );
    }
    assert_eq!(failed.len() + succeeded.as_array().unwrap().len(), 8);
    // No action started twice: each recorded one run when it started.
    let runs = decode_int64(&second.value("query", "jobs:runs", json!({ "name": "slow" })));
    assert!(runs <= 8, "{runs} runs");
}

#[test]
fn a_file_uploaded_through_one_host_is_served_and_deleted_through_another() {
    let first = Server::start();
    first.deploy_ok(&[("photos", &component("photos"))]);
    let second = first.another_host();
    let database = first.database.clone().unwrap();

    // An upload URL one host made works on the other (their keys are the database's).
    let url = upload_url(&first).replace(&first.url, &second.url);
    let (status, body) = post(
        &url,
        b"bytes every host serves",
        &[("content-type", "text/plain")],
    );
    assert_eq!(status, 200, "{body}");
    let id = body["storageId"].as_str().unwrap().to_string();
    assert_eq!(files_in_database(&database), 1);
    // Nothing of it stays on either host's disk.
    for host in [&first, &second] {
        let kept = std::fs::read_dir(host.data.join("storage/blobs")).map_or(0, |dir| dir.count());
        assert_eq!(kept, 0, "a kept file is in the database, not on a host");
    }

    for host in [&first, &second] {
        let (status, headers, bytes) = get(&format!("{}/api/storage/{id}", host.url), &[]);
        assert_eq!(status, 200);
        assert_eq!(bytes, b"bytes every host serves");
        assert_eq!(headers["content-type"], "text/plain");
        let (status, _, bytes) = get(
            &format!("{}/api/storage/{id}", host.url),
            &[("range", "bytes=6-10")],
        );
        assert_eq!((status, bytes.as_slice()), (206, b"every".as_slice()));
    }
    // An action on the first reads what was uploaded through the second, and the other
    // way round.
    let stored = first.value(
        "action",
        "photos:storeText",
        json!({ "text": "from an action" }),
    );
    let read = second.value("action", "photos:read", json!({ "storageId": stored }));
    assert_eq!(read["text"], "from an action", "{read}");

    // Deleted through the second host: gone from the first too, bytes included.
    second.value("action", "photos:deleteFile", json!({ "storageId": id }));
    let (status, _, _) = get(&format!("{}/api/storage/{id}", first.url), &[]);
    assert_eq!(status, 404);
    assert_eq!(
        files_in_database(&database),
        1,
        "only the action's file is left"
    );
}

#[test]
fn a_redb_directory_migrated_to_postgres_answers_the_same() {
    let mut source = Server::start_on_redb();
    let (status, body) = source.deploy_with_tables(
        &[
            ("counter", &component("counter")),
            ("photos", &component("photos")),
            ("jobs", &component("jobs")),
        ],
        counters_schema(),
    );
    assert_eq!(status, 200, "{body}");
    for _ in 0..3 {
        source.value("mutation", "counter:increment", json!({ "name": "a" }));
    }
    let (status, body) = post(
        &upload_url(&source),
        b"bytes that move with the data",
        &[("content-type", "text/plain")],
    );
    assert_eq!(status, 200, "{body}");
    let file = body["storageId"].clone();
    source.value(
        "mutation",
        "photos:send",
        json!({ "storageId": file, "author": "ada" }),
    );
    // A job due after the move: the new server runs it.
    source.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "moved", "delay_ms": 8000.0 }),
    );
    let photos_before = source.value("query", "photos:list", json!({}));
    source.kill();

    let database = test_database().expect("migrate tests run over PostgreSQL");
    let migrate = |data: &std::path::Path| {
        std::process::Command::new(kiln_binary())
            .args(["migrate", "--data"])
            .arg(data)
            .args(["--database", &database])
            .output()
            .unwrap()
    };
    // A path that is no data directory copies nothing.
    let wrong = migrate(&source.data.join("nothing-here"));
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("is not a Kiln data directory"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let output = migrate(&source.data);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("copied documents:"), "{stdout}");
    assert!(stdout.contains("copied files: 1"), "{stdout}");
    assert!(stdout.contains("the copy matches"), "{stdout}");
    // A second copy into the same database is refused: it holds data now.
    let again = migrate(&source.data);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds Kiln data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let target = Server::start_over_database(&database);
    assert_eq!(
        target.value("query", "counter:get", json!({ "name": "a" })),
        int64(3)
    );
    assert_eq!(
        target.value("mutation", "counter:increment", json!({ "name": "a" })),
        int64(4)
    );
    let photos_after = target.value("query", "photos:list", json!({}));
    assert_eq!(photos_after[0]["author"], photos_before[0]["author"]);
    assert_eq!(photos_after[0]["id"], photos_before[0]["id"]);
    let (status, _, bytes) = get(photos_after[0]["url"].as_str().unwrap(), &[]);
    assert_eq!(
        (status, bytes.as_slice()),
        (200, b"bytes that move with the data".as_slice())
    );
    wait_for(Duration::from_secs(30), "the moved job to run", || {
        (tally(&target, "moved") == 1).then_some(())
    });
}

#[test]
fn a_cron_runs_once_per_tick_across_three_hosts() {
    let first = Server::start();
    let (status, report) = deploy_with_crons(
        &first,
        json!({ "tick": { "function": "jobs:tally", "args": { "name": "tick" }, "interval_seconds": 1 } }),
    );
    assert_eq!(status, 200, "{report}");
    let others = [first.another_host(), first.another_host()];
    wait_for(Duration::from_secs(30), "the first tick", || {
        (tally(&first, "tick") >= 1).then_some(())
    });
    let before = tally(&first, "tick");
    std::thread::sleep(Duration::from_millis(6_000));
    // Each host's scheduler sees the cron due; one run commits per tick (three would
    // make about 18).
    let fired = tally(&others[1], "tick") - before;
    assert!(
        (3..=8).contains(&fired),
        "{fired} runs in 6 s over three hosts"
    );
    // And each run is one job: no scheduled time twice.
    let done = others[0].value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    let times: Vec<String> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["scheduledTime"].to_string())
        .collect();
    let distinct: BTreeSet<&String> = times.iter().collect();
    assert_eq!(distinct.len(), times.len(), "a tick ran twice: {done}");
}

#[test]
fn hosts_started_together_on_an_empty_database_all_come_up() {
    // The first start creates Kiln's tables; three at once race to.
    let database = test_database().expect("several hosts need PostgreSQL");
    let starting: Vec<_> = (0..3)
        .map(|_| {
            let database = database.clone();
            std::thread::spawn(move || Server::start_over_database(&database))
        })
        .collect();
    let hosts: Vec<Server> = starting
        .into_iter()
        .map(|host| host.join().expect("every host started"))
        .collect();
    for host in &hosts {
        let (status, body) = readiness(host);
        assert_eq!((status, &body["ready"]), (200, &json!(true)), "{body}");
    }
}
