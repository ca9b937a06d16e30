//! The `scheduler` section (issue 13): how fast mutations schedule jobs (jobs/s, one and
//! 100 jobs per mutation, 1 and 16 clients), and, for 10 000 jobs all due at once, the
//! delay from each one's due time to its start (median and p99) and how long the executor
//! took to run them all.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use super::{ADMIN_KEY, KilnServer, post, requests_per_second};

const DUE_JOBS: usize = 10_000;
/// Jobs one mutation schedules when it schedules many.
const PER_MUTATION: usize = 500;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0)
}

fn admin_get(kiln: &KilnServer, path: &str) -> anyhow::Result<Json> {
    let mut response = ureq::get(format!("http://{}{path}", kiln.address))
        .header("Authorization", format!("Convex {ADMIN_KEY}"))
        .call()?;
    Ok(serde_json::from_str(
        &response.body_mut().read_to_string()?,
    )?)
}

pub async fn scheduler_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    println!("== scheduler ==");
    // Far in the future: scheduling is what is measured, not running.
    let one = || {
        post(
            "/api/mutation",
            r#"{"path":"jobs:tally_after","args":{"name":"bench","delay_ms":86400000.0}}"#,
        )
    };
    let hundred = || {
        post(
            "/api/mutation",
            r#"{"path":"jobs:tally_many","args":{"name":"bench","count":{"$integer":"ZAAAAAAAAAA="},"delay_ms":86400000.0}}"#,
        )
    };
    for clients in [1, 16] {
        let single = requests_per_second(kiln.address, clients, one).await?;
        let batched = requests_per_second(kiln.address, clients, hundred).await?;
        println!(
            "{clients:>2} clients: 1 job per mutation {single:>8.0} jobs/s   100 jobs per mutation {:>8.0} jobs/s",
            batched * 100.0
        );
    }
    due_delay_figures(kiln).await
}

async fn due_delay_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    // Due once every job is scheduled; the scheduling itself is not timed here.
    let due = now_ms() + 3_000.0;
    for _ in 0..DUE_JOBS / PER_MUTATION {
        let args =
            json!({"count": {"$integer": super::int64_base64(PER_MUTATION as i64)}, "at_ms": due});
        kiln.call(
            "/api/mutation",
            &json!({"path": "jobs:noop_at", "args": args}).to_string(),
        )?;
    }
    anyhow::ensure!(
        now_ms() < due,
        "scheduling the jobs took past their due time"
    );
    let waited = Instant::now();
    loop {
        // Pending jobs come soonest due first: once the first is not one of these (the
        // throughput figures left jobs due tomorrow), they have all run (a mutation's job
        // goes from pending to done in one commit).
        let pending = admin_get(kiln, "/api/jobs?state=pending&limit=1")?;
        let first_due = pending["jobs"][0]["scheduledTime"].as_f64();
        let started_all = now_ms() > due && first_due.is_none_or(|first| first > due);
        if started_all {
            break;
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(600),
            "the due jobs did not run within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every job's document: its start beside its due time.
    let mut delays = Vec::with_capacity(DUE_JOBS);
    let mut last_done: f64 = 0.0;
    let mut cursor = String::new();
    loop {
        let page = admin_get(
            kiln,
            &format!("/api/data/_scheduled_functions?limit=10000&cursor={cursor}"),
        )?;
        for job in page["documents"].as_array().into_iter().flatten() {
            if job["name"] != "jobs:noop" {
                continue;
            }
            let (Some(started), Some(completed)) =
                (job["startedTime"].as_f64(), job["completedTime"].as_f64())
            else {
                continue;
            };
            delays.push(started - due);
            last_done = last_done.max(completed);
        }
        if page["isDone"] != Json::Bool(false) {
            break;
        }
        cursor = page["continueCursor"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    anyhow::ensure!(
        delays.len() == DUE_JOBS,
        "{} of {DUE_JOBS} jobs ran",
        delays.len()
    );
    delays.sort_by(f64::total_cmp);
    println!(
        "{DUE_JOBS} jobs due at once: start delay median {:.1} ms   p99 {:.1} ms   all done {:.2} s after due ({:.0} jobs/s)",
        delays[delays.len() / 2],
        delays[delays.len() * 99 / 100],
        (last_done - due) / 1000.0,
        DUE_JOBS as f64 * 1000.0 / (last_done - due)
    );
    Ok(())
}
