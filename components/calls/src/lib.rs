//! Test functions for calls between functions (`kiln:platform/functions`), in the table
//! `calls_log`: each kind calling each kind, a callee that fails after writing, calls
//! nested without end, and actions that meet each other through the database.

use std::collections::BTreeMap;

use kiln::{ActionCtx, Document, Error, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::{Deserialize, Serialize};

const TABLE: &str = "calls_log";

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Tag {
    tag: String,
}

fn tag(tag: &str) -> Tag {
    Tag {
        tag: tag.to_string(),
    }
}

/// Every tag in `calls_log`, in insertion order.
#[query]
fn tags(ctx: &QueryCtx) -> Result<Vec<String>, Error> {
    read_tags(ctx.db.query(TABLE).collect()?)
}

fn read_tags(documents: Vec<Document>) -> Result<Vec<String>, Error> {
    documents
        .into_iter()
        .map(|document| document.decode::<Tag>().map(|t| t.tag))
        .collect()
}

/// Inserts `tag` and returns how many documents the table then holds.
#[mutation(internal)]
fn insert(ctx: &MutationCtx, args: Tag) -> Result<usize, Error> {
    ctx.db.insert(TABLE, &args)?;
    Ok(ctx.db.query(TABLE).collect()?.len())
}

/// Inserts `tag`, then fails with application data.
#[mutation(internal)]
fn write_then_fail(ctx: &MutationCtx, args: Tag) -> Result<(), Error> {
    ctx.db.insert(TABLE, &args)?;
    Err(Error::with_data(
        "write_then_fail failed on purpose",
        BTreeMap::from([("tag".to_string(), Value::from(args.tag))]),
    ))
}

#[derive(Serialize, kiln::Validate)]
struct Caught {
    message: String,
    data: Option<Value>,
    /// The tags this mutation saw after the callee failed.
    tags_after: Vec<String>,
}

/// Writes, calls a mutation that writes and fails, catches its error, writes again: only
/// its own two writes commit.
#[mutation]
fn catch_failed_callee(ctx: &MutationCtx) -> Result<Caught, Error> {
    ctx.db.insert(TABLE, &tag("caller-before"))?;
    let error = ctx
        .run_mutation::<Value>("calls:write_then_fail", tag("callee"))
        .expect_err("write_then_fail always fails");
    ctx.db.insert(TABLE, &tag("caller-after"))?;
    Ok(Caught {
        message: error.message().to_string(),
        data: error.data().cloned(),
        tags_after: ctx.run_query("calls:tags", ())?,
    })
}

#[derive(Serialize, kiln::Validate)]
struct Seen {
    count_from_callee: usize,
    tags_from_query: Vec<String>,
}

/// Writes, then calls a mutation that writes and a query that reads: each sees the writes
/// made before it in this transaction.
#[mutation]
fn nested_writes_are_visible(ctx: &MutationCtx) -> Result<Seen, Error> {
    ctx.db.insert(TABLE, &tag("outer"))?;
    let count_from_callee = ctx.run_mutation("calls:insert", tag("inner"))?;
    let tags_from_query = ctx.run_query("calls:tags", ())?;
    Ok(Seen {
        count_from_callee,
        tags_from_query,
    })
}

/// A query that calls a query: it reads the caller's snapshot.
#[query]
fn query_runs_query(ctx: &QueryCtx) -> Result<Vec<String>, Error> {
    ctx.run_query("calls:tags", ())
}

/// Not allowed: a query calling a mutation.
#[query]
fn query_runs_mutation(ctx: &QueryCtx) -> Result<usize, Error> {
    // `QueryCtx` has no `run_mutation`: go through the raw import, as any language could.
    let _ = ctx;
    kiln::__private::raw_run_mutation("calls:insert", tag("from-query"))
}

/// Not allowed: a mutation calling an action.
#[mutation]
fn mutation_runs_action(ctx: &MutationCtx) -> Result<Value, Error> {
    let _ = ctx;
    kiln::__private::raw_run_action("calls:echo", ())
}

/// Calls itself until the nesting limit stops it.
#[query]
fn recurse(ctx: &QueryCtx) -> Result<u32, Error> {
    let depth: u32 = ctx.run_query("calls:recurse", ())?;
    Ok(depth + 1)
}

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Echo {
    #[serde(default)]
    value: Option<Value>,
}

/// An internal action that returns what it was given.
#[action(internal)]
fn echo(_ctx: &ActionCtx, args: Echo) -> Result<Option<Value>, Error> {
    Ok(args.value)
}

#[derive(Serialize, kiln::Validate)]
struct ActionResult {
    count: usize,
    tags: Vec<String>,
    echoed: Option<Value>,
}

/// An action that writes through a mutation, reads through a query, and calls an action:
/// each its own call, internal functions included.
#[action]
fn action_runs_everything(ctx: &ActionCtx, args: Tag) -> Result<ActionResult, Error> {
    let count = ctx.run_mutation("calls:insert", &args)?;
    let tags = ctx.run_query("calls:tags", ())?;
    let echoed = ctx.run_action(
        "calls:echo",
        Echo {
            value: Some(Value::from(args.tag)),
        },
    )?;
    Ok(ActionResult {
        count,
        tags,
        echoed,
    })
}

/// An action that hands on the error of a mutation it called: `?` keeps its data.
#[action]
fn action_passes_on_error(ctx: &ActionCtx, args: Tag) -> Result<Value, Error> {
    ctx.run_mutation("calls:write_then_fail", args)
}

#[derive(Deserialize, kiln::Validate)]
struct Meet {
    me: String,
    other: String,
}

/// Records that `me` arrived, then waits (polling, at most ~20 s) until `other` has too:
/// it can only return if both actions run at the same time.
#[action]
fn meet(ctx: &ActionCtx, args: Meet) -> Result<u32, Error> {
    ctx.run_mutation::<usize>("calls:insert", tag(&args.me))?;
    for polls in 1..=2_000 {
        let tags: Vec<String> = ctx.run_query("calls:tags", ())?;
        if tags.contains(&args.other) {
            return Ok(polls);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(Error::new(format!("{} never arrived", args.other)))
}

/// HTTP action for every `GET` under `/calls/`: runs a query, as an action may, and
/// answers the path it served with the tags.
#[kiln::http_action(method = "GET", path_prefix = "/calls/")]
fn calls_prefix(ctx: &ActionCtx, request: kiln::HttpRequest) -> Result<kiln::HttpResponse, Error> {
    let tags: Vec<String> = ctx.run_query("calls:tags", ())?;
    let body = BTreeMap::from([
        ("route".to_string(), Value::from("prefix")),
        ("path".to_string(), Value::from(request.path().to_string())),
        (
            "tags".to_string(),
            Value::Array(tags.into_iter().map(Value::from).collect()),
        ),
    ]);
    kiln::HttpResponse::json(200, &Value::Object(body).to_export_json())
}

/// HTTP action at exactly `GET /calls/exact`: wins over the prefix route.
#[kiln::http_action(method = "GET", path = "/calls/exact")]
fn calls_exact(_ctx: &ActionCtx, _request: kiln::HttpRequest) -> Result<kiln::HttpResponse, Error> {
    Ok(kiln::HttpResponse::text(201, "exact").header("x-route", "exact"))
}

/// HTTP action at `POST /calls/fail`: fails, so the server answers 500.
#[kiln::http_action(method = "POST", path = "/calls/fail")]
fn calls_fail(_ctx: &ActionCtx, _request: kiln::HttpRequest) -> Result<kiln::HttpResponse, Error> {
    Err(Error::new("calls_fail failed on purpose"))
}

#[derive(Deserialize, Serialize, kiln::Validate)]
struct CounterName {
    name: String,
}

/// For the benchmark: an action that runs one query and one mutation of the `counter`
/// module (deployed beside this one), to compare with calling the two directly.
#[action]
fn get_and_increment(ctx: &ActionCtx, args: CounterName) -> Result<i64, Error> {
    let _current: i64 = ctx.run_query("counter:get", &args)?;
    ctx.run_mutation("counter:increment", &args)
}

/// A public mutation that writes, then fails with application data: nothing commits.
#[mutation]
fn fail_with_data(ctx: &MutationCtx, args: Tag) -> Result<(), Error> {
    write_then_fail(ctx, args)
}

/// A public action that fails with application data.
#[action]
fn action_fails_with_data(_ctx: &ActionCtx, args: Tag) -> Result<(), Error> {
    Err(Error::with_data(
        "action_fails_with_data failed on purpose",
        BTreeMap::from([("tag".to_string(), Value::from(args.tag))]),
    ))
}

#[derive(Deserialize, kiln::Validate)]
struct Sleep {
    ms: u64,
}

/// An action that waits `ms` milliseconds (a WASI sleep: the host waits asynchronously,
/// holding no thread) and returns `ms`.
#[action]
fn sleep(_ctx: &ActionCtx, args: Sleep) -> Result<u64, Error> {
    std::thread::sleep(std::time::Duration::from_millis(args.ms));
    Ok(args.ms)
}

/// The subject of the caller's identity, or null.
#[query]
fn subject(ctx: &QueryCtx) -> Result<Option<String>, Error> {
    Ok(ctx
        .auth()
        .get_user_identity()
        .map(|identity| identity.subject))
}

#[derive(Serialize, kiln::Validate)]
struct Subjects {
    action: Option<String>,
    via_query: Option<String>,
    via_mutation: Option<String>,
}

/// The caller's identity as this action, a query it calls, and a query a mutation it
/// calls calls see it: the same at every level.
#[action]
fn subjects(ctx: &ActionCtx) -> Result<Subjects, Error> {
    Ok(Subjects {
        action: ctx
            .auth()
            .get_user_identity()
            .map(|identity| identity.subject),
        via_query: ctx.run_query("calls:subject", ())?,
        via_mutation: ctx.run_mutation("calls:subject_in_mutation", ())?,
    })
}

/// The subject as a query called from this mutation sees it.
#[mutation(internal)]
fn subject_in_mutation(ctx: &MutationCtx) -> Result<Option<String>, Error> {
    ctx.run_query("calls:subject", ())
}
