//! `kiln jobs [--state S] [--limit N]`: the scheduler's jobs (newest first, or soonest due
//! first for one state) with their state, due time, start, duration and error, then the
//! deployment's cron jobs with their next run.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{TimeZone as _, Utc};
use clap::Args;
use serde_json::Value as Json;

use super::ServerArgs;
use super::client::Client;

#[derive(Args)]
pub struct JobsArgs {
    /// Only jobs in this state: pending, inProgress, success, failed or canceled.
    #[arg(long)]
    pub state: Option<String>,
    /// Most jobs to print (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    client.require_admin_key()?;
    let mut path = format!("/api/jobs?limit={}", args.limit);
    if let Some(state) = &args.state {
        path.push_str(&format!("&state={state}"));
    }
    let response = client.get(&path)?;
    let jobs = response["jobs"]
        .as_array()
        .context("unexpected response from the server")?;
    println!(
        "{:<11} {:<24} {:<24} {:>10}  {:<28} FUNCTION / ERROR",
        "STATE", "DUE", "STARTED", "DURATION", "ID"
    );
    for job in jobs {
        let duration = job["durationMs"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0} ms"));
        let mut line = format!(
            "{:<11} {:<24} {:<24} {:>10}  {:<28} {}",
            job["state"].as_str().unwrap_or("?"),
            time(&job["scheduledTime"]),
            time(&job["startedTime"]),
            duration,
            job["id"].as_str().unwrap_or("?"),
            job["name"].as_str().unwrap_or("?"),
        );
        if let Some(error) = job["error"].as_str() {
            // The first line of the error: the whole of it is in the job's document.
            line.push_str(&format!(": {}", error.lines().next().unwrap_or_default()));
        }
        println!("{line}");
    }
    let crons = response["crons"].as_array().cloned().unwrap_or_default();
    if !crons.is_empty() {
        println!();
        for cron in crons {
            let spec = &cron["spec"];
            let schedule = match (spec["interval_seconds"].as_f64(), spec["cron"].as_str()) {
                (Some(seconds), _) => format!("every {seconds} s"),
                (None, Some(expression)) => match spec["timezone"].as_str() {
                    Some(zone) => format!("cron {expression:?} ({zone})"),
                    None => format!("cron {expression:?} (UTC)"),
                },
                _ => "?".to_string(),
            };
            println!(
                "cron {:?}: {} {schedule}, next run {}",
                cron["name"].as_str().unwrap_or("?"),
                spec["function"].as_str().unwrap_or("?"),
                time(&cron["nextRun"]),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A time in milliseconds since the epoch, as UTC with milliseconds; `-` if none.
fn time(ms: &Json) -> String {
    ms.as_f64()
        .and_then(|ms| Utc.timestamp_millis_opt(ms as i64).single())
        .map_or_else(
            || "-".to_string(),
            |time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )
}
