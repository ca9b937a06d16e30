//! The scheduler end to end: jobs scheduled from mutations and actions run after their
//! delay, once; canceling; a mutation that fails schedules nothing; queries may not
//! schedule; failures are recorded; limits; and crash safety (SIGKILL while jobs run):
//! scheduled mutations run exactly once, scheduled actions at most once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use crate::support::{Server, component, int64};

fn jobs_server(config: Option<&str>) -> Server {
    let server = Server::start_with_config(config);
    server.deploy_ok(&[("jobs", &component("jobs")), ("hello", &component("hello"))]);
    server
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Polls `check` until it returns `Some`, for at most `deadline`: the jobs run in the
/// server's own time, and their documents are what a test can watch.
fn wait_for<T>(deadline: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn job(server: &Server, id: &Json) -> Json {
    server.value("query", "jobs:job", json!({ "id": id }))
}

/// Waits until the job is no longer pending or in progress; returns its document.
fn finished_job(server: &Server, id: &Json) -> Json {
    wait_for(Duration::from_secs(30), "the job to finish", || {
        let job = job(server, id);
        let kind = job["state"]["kind"].as_str().unwrap().to_string();
        (kind != "pending" && kind != "inProgress").then_some(job)
    })
}

fn tally(server: &Server, name: &str) -> i64 {
    let value = server.value("query", "jobs:count", json!({ "name": name }));
    decode_int64(&value)
}

/// An integer result: an int64 (`{"$integer": ...}`) or a plain number.
fn decode_int64(value: &Json) -> i64 {
    use base64::Engine as _;
    if let Some(number) = value.as_f64() {
        return number as i64;
    }
    let text = value["$integer"].as_str().expect("an int64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    i64::from_le_bytes(bytes.try_into().unwrap())
}

#[test]
fn a_job_runs_after_its_delay_and_not_before() {
    let server = jobs_server(None);
    let before = now_ms();
    let id = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "later", "delay_ms": 1500.0 }),
    );
    // Scheduled, not run: the document says so, and the tally has not moved.
    let pending = job(&server, &id);
    assert_eq!(pending["state"], json!({ "kind": "pending" }), "{pending}");
    assert_eq!(pending["name"], "jobs:tally");
    assert_eq!(pending["args"], json!([{ "name": "later" }]));
    let scheduled = pending["scheduledTime"].as_f64().unwrap();
    assert!(
        scheduled >= before + 1500.0 - 1.0,
        "{scheduled} vs {before}"
    );
    assert_eq!(tally(&server, "later"), 0);

    let done = finished_job(&server, &id);
    assert_eq!(done["state"], json!({ "kind": "success" }), "{done}");
    assert_eq!(tally(&server, "later"), 1);
    let started = done["startedTime"].as_f64().unwrap();
    let completed = done["completedTime"].as_f64().unwrap();
    assert!(
        started >= scheduled,
        "started {started} before due {scheduled}"
    );
    assert!(completed >= started);
}

#[test]
fn run_at_in_the_past_runs_at_once_and_jobs_are_readable_by_state() {
    let server = jobs_server(None);
    let id = server.value(
        "mutation",
        "jobs:tally_at",
        json!({ "name": "past", "at_ms": now_ms() - 60_000.0 }),
    );
    let done = finished_job(&server, &id);
    assert_eq!(done["state"]["kind"], "success");
    assert_eq!(tally(&server, "past"), 1);
    let succeeded = server.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    assert_eq!(succeeded.as_array().unwrap().len(), 1, "{succeeded}");
    assert_eq!(succeeded[0]["_id"], id);
    let pending = server.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
    assert_eq!(pending, json!([]));
}

#[test]
fn a_canceled_job_does_not_run() {
    let server = jobs_server(None);
    let canceled = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "canceled", "delay_ms": 500.0 }),
    );
    // Due after the canceled one: once it has run, the canceled one would have too.
    let marker = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "marker", "delay_ms": 1000.0 }),
    );
    server.value("mutation", "jobs:cancel", json!({ "id": canceled }));
    let job = job(&server, &canceled);
    assert_eq!(job["state"], json!({ "kind": "canceled" }), "{job}");
    assert!(job["completedTime"].as_f64().is_some());

    assert_eq!(finished_job(&server, &marker)["state"]["kind"], "success");
    assert_eq!(tally(&server, "canceled"), 0);
    assert_eq!(self::job(&server, &canceled)["state"]["kind"], "canceled");
    // Canceling a finished job changes nothing; an id that is no job's is an error.
    server.value("mutation", "jobs:cancel", json!({ "id": marker }));
    assert_eq!(self::job(&server, &marker)["state"]["kind"], "success");
    let message = server.error("mutation", "jobs:cancel", json!({ "id": "nope" }));
    assert!(message.starts_with("cancel:"), "{message}");
}

#[test]
fn a_mutation_that_schedules_then_fails_leaves_no_job() {
    let server = jobs_server(None);
    let message = server.error(
        "mutation",
        "jobs:schedule_then_fail",
        json!({ "name": "ghost" }),
    );
    assert!(message.contains("failed on purpose"), "{message}");
    for kind in ["pending", "inProgress", "success"] {
        let jobs = server.value("query", "jobs:jobs_in_state", json!({ "kind": kind }));
        assert_eq!(jobs, json!([]), "{kind}");
    }
    let marker = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "marker", "delay_ms": 0.0 }),
    );
    finished_job(&server, &marker);
    assert_eq!(tally(&server, "ghost"), 0);
}

#[test]
fn scheduling_is_refused_in_queries_and_for_what_cannot_be_scheduled() {
    let server = jobs_server(Some(
        "[limits]\nmax_jobs_scheduled_per_call = 3\nmax_scheduled_args_bytes = 1000\n",
    ));
    let refused = server.value("query", "jobs:schedule_from_query", json!({}));
    assert!(
        refused
            .as_str()
            .unwrap()
            .starts_with("scheduler.schedule is not allowed in a query"),
        "{refused}"
    );
    let schedule = |path: &str, args: Json| {
        server.error(
            "mutation",
            "jobs:schedule",
            json!({ "path": path, "args": args, "delay_ms": 0.0 }),
        )
    };
    let message = schedule("jobs:nothing", json!({}));
    assert!(message.contains("no function at that path"), "{message}");
    let message = schedule("jobs:count", json!({ "name": "x" }));
    assert!(message.contains("it is a query"), "{message}");
    let message = schedule("not a path!", json!({}));
    assert!(message.contains("not a path!"), "{message}");
    let message = schedule("jobs:tally", json!({ "name": "x".repeat(2000) }));
    assert!(message.contains("max_scheduled_args_bytes"), "{message}");

    let message = server.error(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "many", "count": int64(4), "delay_ms": 0.0 }),
    );
    assert!(message.contains("max_jobs_scheduled_per_call"), "{message}");
    // Nothing of the refused call was scheduled; three in one call are fine.
    server.value(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "many", "count": int64(3), "delay_ms": 0.0 }),
    );
    wait_for(Duration::from_secs(30), "three tallies", || {
        (tally(&server, "many") == 3).then_some(())
    });
    // Arguments that do not match the scheduled function's validator fail the job.
    let id = server.value(
        "mutation",
        "jobs:schedule",
        json!({ "path": "jobs:tally", "args": { "nom": "x" }, "delay_ms": 0.0 }),
    );
    let failed = finished_job(&server, &id);
    assert_eq!(failed["state"]["kind"], "failed", "{failed}");
    server.assert_hello_still_works();
}

#[test]
fn a_pending_job_cap_refuses_more() {
    let server = jobs_server(Some("[limits]\nmax_pending_jobs = 5\n"));
    server.value(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "far", "count": int64(5), "delay_ms": 3_600_000.0 }),
    );
    let message = server.error(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "far", "delay_ms": 0.0 }),
    );
    assert!(message.contains("max_pending_jobs"), "{message}");
    // Canceling one makes room.
    let pending = server.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
    server.value(
        "mutation",
        "jobs:cancel",
        json!({ "id": pending[0]["_id"] }),
    );
    server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "far", "delay_ms": 3_600_000.0 }),
    );
}

#[test]
fn a_failing_scheduled_mutation_is_recorded_failed_with_its_error() {
    let server = jobs_server(None);
    let id = server.value(
        "mutation",
        "jobs:schedule",
        json!({ "path": "jobs:fail", "args": { "message": "out of coffee" }, "delay_ms": 0.0 }),
    );
    let failed = finished_job(&server, &id);
    assert_eq!(
        failed["state"],
        json!({ "kind": "failed", "error": "out of coffee" }),
        "{failed}"
    );
    assert!(failed["completedTime"].as_f64().is_some());
}

#[test]
fn an_action_schedules_at_once_and_a_scheduled_action_runs() {
    let server = jobs_server(None);
    let id = server.value(
        "action",
        "jobs:schedule_from_action",
        json!({
            "path": "jobs:slow_action",
            "args": { "name": "act", "sleep_ms": int64(0) },
            "delay_ms": 0.0,
        }),
    );
    let done = finished_job(&server, &id);
    assert_eq!(done["state"]["kind"], "success", "{done}");
    assert_eq!(tally(&server, "act"), 1);
    let runs = server.value("query", "jobs:runs", json!({ "name": "act" }));
    assert_eq!(decode_int64(&runs), 1);
}

#[test]
fn scheduled_mutations_run_exactly_once_across_a_crash() {
    let mut server = jobs_server(None);
    server.value(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "crash", "count": int64(200), "delay_ms": 300.0 }),
    );
    // Kill the server while the jobs run: some done, some not.
    wait_for(Duration::from_secs(30), "the jobs to start", || {
        (tally(&server, "crash") > 0).then_some(())
    });
    server.kill();
    server.start_again();
    wait_for(Duration::from_secs(60), "every job to run", || {
        let pending = server.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
        pending.as_array().unwrap().is_empty().then_some(())
    });
    assert_eq!(tally(&server, "crash"), 200);
    let succeeded = server.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    assert_eq!(succeeded.as_array().unwrap().len(), 200);
}

#[test]
fn scheduled_actions_run_at_most_once_across_a_crash() {
    let mut server = jobs_server(Some("[limits]\nscheduler_concurrency = 4\n"));
    server.value(
        "mutation",
        "jobs:slow_many",
        json!({ "name": "slow", "count": int64(8), "delay_ms": 0.0, "sleep_ms": int64(2_000) }),
    );
    wait_for(Duration::from_secs(30), "actions to start", || {
        let running = server.value(
            "query",
            "jobs:jobs_in_state",
            json!({ "kind": "inProgress" }),
        );
        (!running.as_array().unwrap().is_empty()).then_some(())
    });
    server.kill();
    server.start_again();
    wait_for(Duration::from_secs(60), "every action to end", || {
        let pending = server.value("query", "jobs:jobs_in_state", json!({ "kind": "pending" }));
        let running = server.value(
            "query",
            "jobs:jobs_in_state",
            json!({ "kind": "inProgress" }),
        );
        (pending.as_array().unwrap().is_empty() && running.as_array().unwrap().is_empty())
            .then_some(())
    });
    let failed = server.value("query", "jobs:jobs_in_state", json!({ "kind": "failed" }));
    let succeeded = server.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    let failed = failed.as_array().unwrap();
    assert!(!failed.is_empty(), "some action was cut off by the crash");
    for job in failed {
        assert_eq!(
            job["state"]["error"], "server restarted while the action was running",
            "{job}"
        );
    }
    assert_eq!(failed.len() + succeeded.as_array().unwrap().len(), 8);
    // Each action recorded a run when it started: no job started twice.
    let runs = decode_int64(&server.value("query", "jobs:runs", json!({ "name": "slow" })));
    assert!(
        runs <= 8 && runs as usize >= succeeded.as_array().unwrap().len(),
        "{runs} runs"
    );
    let completed = tally(&server, "slow");
    assert_eq!(completed as usize, succeeded.as_array().unwrap().len());
}
