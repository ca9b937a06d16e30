//! Test functions for the scheduler (`kiln:platform/scheduler`): scheduling from a
//! mutation, an action and (refused) a query; canceling; a mutation that schedules and
//! then fails; jobs that fail; many jobs at once; slow actions that record each run.
//!
//! Tables: `tallies` (one document per name, `value` counts the runs of `jobs:tally`) and
//! `action_runs` (one document per run of `jobs:slow_action`, so a test can see an action
//! that ran twice).

use std::collections::BTreeMap;
use std::time::Duration;

use kiln::{ActionCtx, Document, Error, Id, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Name {
    name: String,
}

fn name_args(name: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([("name".to_string(), Value::from(name))])
}

fn field<'a>(document: &'a Value, name: &str) -> Option<&'a Value> {
    document.as_object()?.get(name)
}

/// Adds one to the tally `name`: what most tests schedule.
#[mutation(internal)]
fn tally(ctx: &MutationCtx, args: Name) -> Result<i64, Error> {
    let existing = ctx
        .db
        .query("tallies")
        .filter(|q| q.eq(q.field("name"), q.literal(&args.name)))
        .first()?;
    match existing {
        Some(document) => {
            let id: Id = kiln::from_value(field(&document, "_id").cloned().unwrap_or(Value::Null))?;
            let value = match field(&document, "value") {
                Some(Value::Int64(value)) => value + 1,
                _ => 1,
            };
            ctx.db
                .patch(&id, &BTreeMap::from([("value", Value::Int64(value))]))?;
            Ok(value)
        }
        None => {
            let mut fields = name_args(&args.name);
            fields.insert("value".into(), Value::Int64(1));
            ctx.db.insert("tallies", &fields)?;
            Ok(1)
        }
    }
}

/// The tally `name`; 0 if it never ran.
#[query]
fn count(ctx: &QueryCtx, args: Name) -> Result<i64, Error> {
    let document = ctx
        .db
        .query("tallies")
        .filter(|q| q.eq(q.field("name"), q.literal(&args.name)))
        .first()?;
    Ok(match document.as_ref().and_then(|d| field(d, "value")) {
        Some(Value::Int64(value)) => *value,
        _ => 0,
    })
}

#[derive(Deserialize, kiln::Validate)]
struct After {
    name: String,
    delay_ms: f64,
}

/// Schedules `jobs:tally` for `name` after `delay_ms`; returns the job id.
#[mutation]
fn tally_after(ctx: &MutationCtx, args: After) -> Result<Id, Error> {
    ctx.scheduler().run_after(
        Duration::from_secs_f64(args.delay_ms / 1000.0),
        "jobs:tally",
        name_args(&args.name),
    )
}

#[derive(Deserialize, kiln::Validate)]
struct At {
    name: String,
    at_ms: f64,
}

/// Schedules `jobs:tally` for `name` at `at_ms` (ms since the epoch); returns the job id.
#[mutation]
fn tally_at(ctx: &MutationCtx, args: At) -> Result<Id, Error> {
    ctx.scheduler()
        .run_at_ms(args.at_ms, "jobs:tally", name_args(&args.name))
}

#[derive(Deserialize, kiln::Validate)]
struct Many {
    name: String,
    count: i64,
    delay_ms: f64,
}

/// Schedules `count` runs of `jobs:tally` for `name`, each after `delay_ms`.
#[mutation]
fn tally_many(ctx: &MutationCtx, args: Many) -> Result<i64, Error> {
    for _ in 0..args.count {
        ctx.scheduler().run_after(
            Duration::from_secs_f64(args.delay_ms / 1000.0),
            "jobs:tally",
            name_args(&args.name),
        )?;
    }
    Ok(args.count)
}

/// Schedules `jobs:tally`, then fails: nothing may be left scheduled.
#[mutation]
fn schedule_then_fail(ctx: &MutationCtx, args: Name) -> Result<(), Error> {
    ctx.scheduler()
        .run_after(Duration::ZERO, "jobs:tally", name_args(&args.name))?;
    Err(Error::new("schedule_then_fail failed on purpose"))
}

/// Tries to schedule from a query: returns the error the host gave.
#[query]
fn schedule_from_query(_ctx: &QueryCtx) -> Result<String, Error> {
    match kiln::Scheduler::default().run_after(Duration::ZERO, "jobs:tally", name_args("q")) {
        Ok(id) => Err(Error::new(format!("a query scheduled job {id}"))),
        Err(err) => Ok(err.message().to_string()),
    }
}

#[derive(Deserialize, kiln::Validate)]
struct Schedule {
    path: String,
    args: Value,
    delay_ms: f64,
}

/// Schedules any function (for the refusals: an unknown path, a query, bad arguments).
#[mutation]
fn schedule(ctx: &MutationCtx, args: Schedule) -> Result<Id, Error> {
    ctx.scheduler().run_after(
        Duration::from_secs_f64(args.delay_ms.max(0.0) / 1000.0),
        &args.path,
        args.args,
    )
}

/// Schedules any function from an action: it commits at once.
#[action]
fn schedule_from_action(ctx: &ActionCtx, args: Schedule) -> Result<Id, Error> {
    ctx.scheduler().run_after(
        Duration::from_secs_f64(args.delay_ms.max(0.0) / 1000.0),
        &args.path,
        args.args,
    )
}

#[derive(Deserialize, kiln::Validate)]
struct JobId {
    id: Id,
}

/// Cancels a job.
#[mutation]
fn cancel(ctx: &MutationCtx, args: JobId) -> Result<(), Error> {
    ctx.scheduler().cancel(&args.id)
}

/// The job's document in `_scheduled_functions`, read through `db.system()`.
#[query]
fn job(ctx: &QueryCtx, args: JobId) -> Result<Option<Document>, Error> {
    ctx.db.system().get(&args.id)
}

#[derive(Deserialize, kiln::Validate)]
struct State {
    kind: String,
}

/// The jobs in state `kind`, soonest due first, through the system index `by_state`.
#[query]
fn jobs_in_state(ctx: &QueryCtx, args: State) -> Result<Vec<Document>, Error> {
    ctx.db
        .system()
        .query("_scheduled_functions")
        .with_index("by_state", |q| q.eq("state.kind", &args.kind))
        .collect()
}

#[derive(Deserialize, kiln::Validate)]
struct Message {
    message: String,
}

/// Fails with `message`: a scheduled job that fails.
#[mutation(internal)]
fn fail(_ctx: &MutationCtx, args: Message) -> Result<(), Error> {
    Err(Error::new(args.message))
}

#[derive(Deserialize, kiln::Validate)]
struct Slow {
    name: String,
    sleep_ms: i64,
}

/// Records that it started (in `action_runs`), sleeps, and adds one to the tally `name`.
#[action(internal)]
fn slow_action(ctx: &ActionCtx, args: Slow) -> Result<(), Error> {
    ctx.run_mutation::<Value>("jobs:record_run", name_args(&args.name))?;
    std::thread::sleep(Duration::from_millis(args.sleep_ms.max(0) as u64));
    ctx.run_mutation::<i64>("jobs:tally", name_args(&args.name))?;
    Ok(())
}

/// One document in `action_runs` per run.
#[mutation(internal)]
fn record_run(ctx: &MutationCtx, args: Name) -> Result<(), Error> {
    ctx.db.insert("action_runs", &args)?;
    Ok(())
}

/// How many runs `action_runs` recorded for `name`.
#[query]
fn runs(ctx: &QueryCtx, args: Name) -> Result<usize, Error> {
    Ok(ctx
        .db
        .query("action_runs")
        .filter(|q| q.eq(q.field("name"), q.literal(&args.name)))
        .collect()?
        .len())
}

#[derive(Deserialize, kiln::Validate)]
struct SlowMany {
    name: String,
    count: i64,
    delay_ms: f64,
    sleep_ms: i64,
}

/// Schedules `count` runs of `jobs:slow_action`.
#[mutation]
fn slow_many(ctx: &MutationCtx, args: SlowMany) -> Result<(), Error> {
    let mut job_args = name_args(&args.name);
    job_args.insert("sleep_ms".into(), Value::Int64(args.sleep_ms));
    for _ in 0..args.count {
        ctx.scheduler().run_after(
            Duration::from_secs_f64(args.delay_ms / 1000.0),
            "jobs:slow_action",
            job_args.clone(),
        )?;
    }
    Ok(())
}

/// Does nothing: the job the benchmark schedules, so that what it measures is the
/// scheduler's own work.
#[mutation(internal)]
fn noop(_ctx: &MutationCtx) -> Result<(), Error> {
    Ok(())
}

#[derive(Deserialize, kiln::Validate)]
struct NoopAt {
    count: i64,
    at_ms: f64,
}

/// Schedules `count` runs of `jobs:noop`, all due at `at_ms`.
#[mutation]
fn noop_at(ctx: &MutationCtx, args: NoopAt) -> Result<(), Error> {
    for _ in 0..args.count {
        ctx.scheduler()
            .run_at_ms(args.at_ms, "jobs:noop", BTreeMap::<String, Value>::new())?;
    }
    Ok(())
}
