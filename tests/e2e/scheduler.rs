//! The scheduler end to end: jobs scheduled from mutations and actions run after their
//! delay, once; canceling; a mutation that fails schedules nothing; queries may not
//! schedule; failures are recorded; limits; and crash safety (SIGKILL while jobs run):
//! scheduled mutations run exactly once, scheduled actions at most once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use crate::support::{Server, component, int64};

pub(crate) fn jobs_server(config: Option<&str>) -> Server {
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
pub(crate) fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
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

pub(crate) fn tally(server: &Server, name: &str) -> i64 {
    let value = server.value("query", "jobs:count", json!({ "name": name }));
    decode_int64(&value)
}

/// An integer result: an int64 (`{"$integer": ...}`) or a plain number.
pub(crate) fn decode_int64(value: &Json) -> i64 {
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
    // Two at a time, so the jobs take long enough to be cut off halfway.
    let mut server = jobs_server(Some("[limits]\nscheduler_concurrency = 2\n"));
    server.value(
        "mutation",
        "jobs:tally_many",
        json!({ "name": "crash", "count": int64(200), "delay_ms": 300.0 }),
    );
    // Kill the server while the jobs run: some done, some not.
    let done_before = wait_for(Duration::from_secs(30), "the jobs to start", || {
        let done = tally(&server, "crash");
        (done >= 5).then_some(done)
    });
    server.kill();
    assert!(
        done_before < 200,
        "every job ran before the kill: nothing was cut off"
    );
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
    // One host (redb) fails its cut-off actions when it starts again; over a shared
    // database their leases run out instead (another host may be running them).
    let expected = match server.database {
        None => "server restarted while the action was running",
        Some(_) => "the server running the action stopped while it ran",
    };
    for job in failed {
        assert_eq!(job["state"]["error"], expected, "{job}");
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

/// Deploys the jobs module with `crons` (the `[crons]` of kiln.toml, as JSON).
pub(crate) fn deploy_with_crons(server: &Server, crons: Json) -> (u16, Json) {
    use base64::Engine as _;
    let wasm = base64::engine::general_purpose::STANDARD.encode(component("jobs"));
    server.post(
        "/api/deploy",
        &json!({ "modules": { "jobs": wasm }, "crons": crons }).to_string(),
        true,
    )
}

#[test]
fn an_every_second_cron_fires_once_a_second_and_a_removed_cron_stops() {
    let server = Server::start();
    let (status, report) = deploy_with_crons(
        &server,
        json!({ "tick": { "function": "jobs:tally", "args": { "name": "tick" }, "interval_seconds": 1 } }),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["crons"], json!(["tick"]));
    wait_for(Duration::from_secs(30), "the first tick", || {
        (tally(&server, "tick") >= 1).then_some(())
    });
    // The window is what is measured here: a second per run.
    let first = tally(&server, "tick");
    std::thread::sleep(Duration::from_millis(4_000));
    let fired = tally(&server, "tick") - first;
    assert!((3..=5).contains(&fired), "{fired} runs in 4 s");
    // Each run is a job of its own, recorded like any.
    let done = server.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    assert!(
        done.as_array().unwrap().len() as i64 >= first + fired - 1,
        "{done}"
    );

    // Renamed: the old name stops, the new one runs; removed: nothing runs.
    let (status, report) = deploy_with_crons(
        &server,
        json!({ "tock": { "function": "jobs:tally", "args": { "name": "tock" }, "interval_seconds": 1 } }),
    );
    assert_eq!(status, 200, "{report}");
    wait_for(Duration::from_secs(30), "the renamed cron", || {
        (tally(&server, "tock") >= 2).then_some(())
    });
    let (status, report) = deploy_with_crons(&server, json!({}));
    assert_eq!(status, 200, "{report}");
    let stopped = (tally(&server, "tick"), tally(&server, "tock"));
    // A run started before the deploy may still finish: let it, then nothing more.
    std::thread::sleep(Duration::from_millis(2_500));
    let settled = (tally(&server, "tick"), tally(&server, "tock"));
    assert!(
        settled.0 == stopped.0 && settled.1 <= stopped.1 + 1,
        "{stopped:?} → {settled:?}"
    );
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!((tally(&server, "tick"), tally(&server, "tock")), settled);
}

#[test]
fn a_cron_whose_last_run_is_still_going_is_not_started_again() {
    let server = Server::start();
    let (status, report) = deploy_with_crons(
        &server,
        json!({ "slow": {
            "function": "jobs:slow_action",
            "args": { "name": "slow", "sleep_ms": int64(2_500) },
            "cron": "* * * * * *",
        } }),
    );
    assert_eq!(status, 200, "{report}");
    wait_for(Duration::from_secs(60), "two runs to finish", || {
        (tally(&server, "slow") >= 2).then_some(())
    });
    let runs = server.value("query", "jobs:jobs_in_state", json!({ "kind": "success" }));
    let mut spans: Vec<(f64, f64)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["startedTime"].as_f64().unwrap(),
                job["completedTime"].as_f64().unwrap(),
            )
        })
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two runs overlapped: {spans:?}");
    }
}

#[test]
fn crons_that_cannot_run_are_refused_by_the_deploy() {
    let server = Server::start();
    for (cron, expected) in [
        (
            json!({ "function": "jobs:tally", "cron": "61 * * * *" }),
            "invalid cron expression",
        ),
        (
            json!({ "function": "jobs:tally", "cron": "0 9 * * *", "timezone": "Mars/Base" }),
            "unknown time zone",
        ),
        (
            json!({ "function": "jobs:nothing", "interval_seconds": 5 }),
            "no function 'jobs:nothing'",
        ),
        (
            json!({ "function": "jobs:count", "interval_seconds": 5 }),
            "is a query",
        ),
        (
            json!({ "function": "jobs:tally", "interval_seconds": 0.5 }),
            "at least 1",
        ),
        (
            json!({ "function": "jobs:tally", "args": [1], "interval_seconds": 5 }),
            "must be an object",
        ),
        (json!({ "function": "jobs:tally" }), "exactly one of"),
    ] {
        let (status, body) = deploy_with_crons(&server, json!({ "bad": cron }));
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "InvalidCron", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("cron \"bad\"") && message.contains(expected),
            "{message}"
        );
    }
}

/// A Convex app's crons.js and scheduler, unchanged: `ctx.scheduler.runAfter(0,
/// internal...)`, `crons.interval(...)`, and `db.system` reads of the jobs.
const JS_APP: &str = r#"
import { mutation, query, internalMutation } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const bump = internalMutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const row = await ctx.db.query("bumps").filter((q) => q.eq(q.field("name"), name)).first();
    if (row === null) await ctx.db.insert("bumps", { name, n: 1 });
    else await ctx.db.patch(row._id, { n: row.n + 1 });
  },
});

export const count = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const row = await ctx.db.query("bumps").filter((q) => q.eq(q.field("name"), name)).first();
    return row === null ? 0 : row.n;
  },
});

export const later = mutation({
  args: { name: v.string(), delayMs: v.number() },
  handler: async (ctx, { name, delayMs }) =>
    await ctx.scheduler.runAfter(delayMs, internal.app.bump, { name }),
});

export const cancel = mutation({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.scheduler.cancel(id),
});

export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});

export const jobs = query({
  args: {},
  handler: async (ctx) => await ctx.db.system.query("_scheduled_functions").collect(),
});
"#;

const JS_CRONS: &str = r#"
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.interval("bump every second", { seconds: 1 }, internal.app.bump, { name: "cron" });
export default crons;
"#;

#[test]
fn a_convex_app_schedules_cancels_reads_its_jobs_and_runs_its_crons() {
    let server = Server::start();
    let (status, report) = server.deploy_js(&[("app.js", JS_APP), ("crons.js", JS_CRONS)]);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["crons"], json!(["bump every second"]));

    let id = server.value(
        "mutation",
        "app:later",
        json!({ "name": "soon", "delayMs": 0 }),
    );
    let canceled = server.value(
        "mutation",
        "app:later",
        json!({ "name": "never", "delayMs": 800 }),
    );
    server.value("mutation", "app:cancel", json!({ "id": canceled }));
    let done = wait_for(Duration::from_secs(30), "the job", || {
        let job = server.value("query", "app:job", json!({ "id": id }));
        (job["state"]["kind"] == "success").then_some(job)
    });
    assert_eq!(done["name"], "app:bump");
    assert_eq!(done["args"], json!([{ "name": "soon" }]));
    wait_for(Duration::from_secs(30), "two cron runs", || {
        (server
            .value("query", "app:count", json!({ "name": "cron" }))
            .as_f64()
            >= Some(2.0))
        .then_some(())
    });
    let jobs = server.value("query", "app:jobs", json!({}));
    let canceled_job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["_id"] == canceled)
        .expect("the canceled job is listed");
    assert_eq!(canceled_job["state"]["kind"], "canceled");
    assert_eq!(
        server.value("query", "app:count", json!({ "name": "soon" })),
        json!(1.0)
    );
    assert_eq!(
        server.value("query", "app:count", json!({ "name": "never" })),
        json!(0.0)
    );
}

#[test]
fn kiln_jobs_shows_state_times_and_errors_and_needs_the_admin_key() {
    let server = Server::start();
    let (status, report) = deploy_with_crons(
        &server,
        json!({ "nightly": { "function": "jobs:tally", "args": { "name": "n" }, "cron": "0 3 * * *", "timezone": "Europe/Berlin" } }),
    );
    assert_eq!(status, 200, "{report}");
    let failed = server.value(
        "mutation",
        "jobs:schedule",
        json!({ "path": "jobs:fail", "args": { "message": "disk on fire" }, "delay_ms": 0.0 }),
    );
    finished_job(&server, &failed);
    let pending = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "later", "delay_ms": 3_600_000.0 }),
    );

    let (status, _) = server.get("/api/jobs", false);
    assert_eq!(status, 401);
    let (status, body) = server.get("/api/jobs?state=nonsense", true);
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.get("/api/jobs", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{body}");
    // Newest first.
    assert_eq!(jobs[0]["id"], pending);
    assert_eq!(jobs[0]["state"], "pending");
    assert_eq!(jobs[1]["id"], failed);
    assert_eq!(jobs[1]["state"], "failed");
    assert_eq!(jobs[1]["error"], "disk on fire");
    assert!(jobs[1]["durationMs"].as_f64().is_some(), "{body}");
    assert_eq!(body["crons"][0]["name"], "nightly");
    assert_eq!(body["crons"][0]["spec"]["timezone"], "Europe/Berlin");
    assert!(body["crons"][0]["nextRun"].as_f64().unwrap() > now_ms());

    let output = server.cli(&["jobs"]);
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("failed"), "{printed}");
    assert!(printed.contains("jobs:fail: disk on fire"), "{printed}");
    assert!(printed.contains("pending"), "{printed}");
    assert!(
        printed.contains("cron \"nightly\": jobs:tally cron \"0 3 * * *\" (Europe/Berlin)"),
        "{printed}"
    );
    let output = server.cli(&["jobs", "--state", "failed"]);
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(!printed.contains("pending"), "{printed}");
}

/// A page can watch a job's progress: a subscribed query reading the job through
/// `db.system` gets a Transition when its state changes.
#[test]
fn a_subscribed_query_sees_a_job_go_from_pending_to_success() {
    use crate::sync::RawSocket;
    let server = jobs_server(None);
    let id = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "watched", "delay_ms": 500.0 }),
    );
    let mut socket = RawSocket::connect(&server);
    socket.send(json!({"type": "Connect", "sessionId": "jobs", "connectionCount": 0, "lastCloseReason": null, "clientTs": 0}));
    socket.send(
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "jobs:job", "args": [{ "id": id }]}
        ]}),
    );
    let first = socket.next_of("Transition");
    assert_eq!(
        first["modifications"][0]["value"]["state"]["kind"], "pending",
        "{first}"
    );
    let kind = loop {
        let update = socket.next_of("Transition");
        if let Some(modification) = update["modifications"].as_array().and_then(|m| m.first()) {
            break modification["value"]["state"]["kind"]
                .as_str()
                .unwrap()
                .to_string();
        }
    };
    assert_eq!(kind, "success");
}

/// The example project at `project` (Rust or JavaScript), deployed with `kiln deploy`:
/// a reminder scheduled from a mutation is delivered, and the compaction its cron runs
/// keeps the newest messages.
fn check_reminders_example(project: &str) {
    let server = Server::start();
    let stdout = server.deploy_project(project);
    assert!(stdout.contains("cron: compact-messages"), "{stdout}");

    let id = server.value(
        "mutation",
        "reminders:remind",
        json!({ "text": "stretch", "delayMs": 200 }),
    );
    let done = wait_for(Duration::from_secs(30), "the reminder", || {
        let job = server.value("query", "reminders:job", json!({ "id": id }));
        (job["state"]["kind"] == "success").then_some(job)
    });
    assert_eq!(done["name"], "reminders:deliver");
    let delivered = server.value("query", "reminders:notifications", json!({}));
    assert_eq!(delivered.as_array().unwrap().len(), 1, "{delivered}");
    assert_eq!(delivered[0]["text"], "stretch");
    let message = server.error(
        "mutation",
        "reminders:remind",
        json!({ "text": "never", "delayMs": -1 }),
    );
    assert!(message.contains("at least 0"), "{message}");

    for n in 0..7 {
        server.value(
            "mutation",
            "messages:send",
            json!({ "channel": "c", "author": "a", "body": n.to_string() }),
        );
    }
    let output = server.cli(&["run", "reminders:compactMessages", r#"{"keep": 2}"#]);
    assert!(output.status.success(), "{output:?}");
    let kept = server.value("query", "messages:list", json!({ "channel": "c" }));
    let bodies: Vec<&str> = kept
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["5", "6"]);

    let output = server.cli(&["jobs"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("cron \"compact-messages\": reminders:compactMessages"),
        "{printed}"
    );
}

#[test]
fn the_reminders_example_runs_in_rust() {
    check_reminders_example("../components");
}

#[test]
fn the_reminders_example_runs_in_javascript() {
    check_reminders_example("../components/js");
}

#[test]
fn finished_jobs_are_deleted_after_their_retention_and_pending_ones_kept() {
    let mut server = jobs_server(Some("[limits]\nscheduled_job_retention_s = 1\n"));
    let done = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "old", "delay_ms": 0.0 }),
    );
    finished_job(&server, &done);
    let waiting = server.value(
        "mutation",
        "jobs:tally_after",
        json!({ "name": "far", "delay_ms": 3_600_000.0 }),
    );
    // Past its retention; the server forgets such jobs when it starts (and every hour).
    wait_for(Duration::from_secs(10), "the retention to pass", || {
        let completed = job(&server, &done)["completedTime"].as_f64().unwrap();
        (now_ms() > completed + 1_500.0).then_some(())
    });
    server.kill();
    server.start_again();
    wait_for(Duration::from_secs(30), "the old job to be deleted", || {
        job(&server, &done).is_null().then_some(())
    });
    assert_eq!(job(&server, &waiting)["state"]["kind"], "pending");
    assert_eq!(tally(&server, "old"), 1);
}
