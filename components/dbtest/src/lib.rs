//! Database calls that must fail, each with a clear error and nothing committed, plus the
//! helpers the tests use to look at what is stored.

use kiln::{ActionCtx, Document, Error, Id, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::Deserialize;

// The raw `db` interface: the SDK's types do not let a query write, but the host must
// refuse it even from a guest that tries.
mod raw_bindings {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "test:dbtest/raw-db",
        generate_all,
    });
}
use raw_bindings::kiln::platform::db as raw;

#[derive(Deserialize, kiln::Validate)]
struct Table {
    table: String,
}

/// A query that writes: the host must refuse.
#[query]
fn write_from_query(_ctx: &QueryCtx, args: Table) -> Result<String, Error> {
    raw::insert(&args.table, "{}").map_err(Error::new)
}

/// An action that reads: the host must refuse.
#[action]
fn read_from_action(_ctx: &ActionCtx) -> Result<Option<String>, Error> {
    raw::get(None, "anything").map_err(Error::new)
}

#[derive(Deserialize, kiln::Validate)]
struct Get {
    table: Option<String>,
    id: String,
}

#[query]
fn get(ctx: &QueryCtx, args: Get) -> Result<Option<Document>, Error> {
    let id = Id(args.id);
    match args.table {
        Some(table) => ctx.db.get_in(&table, &id),
        None => ctx.db.get(&id),
    }
}

#[derive(Deserialize, kiln::Validate)]
struct Insert {
    table: String,
    document: Value,
}

#[mutation]
fn insert(ctx: &MutationCtx, args: Insert) -> Result<Id, Error> {
    ctx.db.insert(&args.table, &args.document)
}

/// Inserts, then fails: nothing may be committed.
#[mutation]
fn insert_then_fail(ctx: &MutationCtx, args: Insert) -> Result<(), Error> {
    ctx.db.insert(&args.table, &args.document)?;
    Err(Error::new("failing after the insert on purpose"))
}

#[derive(Deserialize, kiln::Validate)]
struct ByIndex {
    table: String,
    index: String,
    field: String,
    value: Value,
}

#[query]
fn by_index(ctx: &QueryCtx, args: ByIndex) -> Result<Vec<Document>, Error> {
    ctx.db
        .query(&args.table)
        .with_index(&args.index, |q| q.eq(&args.field, &args.value))
        .collect()
}

#[derive(Deserialize, kiln::Validate)]
struct Filtered {
    table: String,
    field: String,
    above: Value,
}

/// Documents whose `field` is greater than `above`, through a host-evaluated filter.
#[query]
fn filtered(ctx: &QueryCtx, args: Filtered) -> Result<Vec<Document>, Error> {
    ctx.db
        .query(&args.table)
        .filter(|q| q.gt(q.field(&args.field), q.literal(&args.above)))
        .collect()
}

#[query]
fn count(ctx: &QueryCtx, args: Table) -> Result<usize, Error> {
    Ok(ctx.db.query(&args.table).collect()?.len())
}

#[derive(Deserialize, kiln::Validate)]
struct Pair {
    table: String,
    tag: String,
}

/// Writes two documents with the same tag: after a crash, a tag appears twice or not at all.
#[mutation]
fn insert_pair(ctx: &MutationCtx, args: Pair) -> Result<(), Error> {
    for half in ["first", "second"] {
        let document: std::collections::BTreeMap<&str, &str> =
            [("tag", args.tag.as_str()), ("half", half)].into();
        ctx.db.insert(&args.table, &document)?;
    }
    Ok(())
}

#[derive(Deserialize, kiln::Validate)]
struct InsertMany {
    table: String,
    count: u32,
    document: Value,
}

/// Inserts `count` copies of `document` in one mutation (to fill tables for benchmarks).
#[mutation]
fn insert_many(ctx: &MutationCtx, args: InsertMany) -> Result<u32, Error> {
    for _ in 0..args.count {
        ctx.db.insert(&args.table, &args.document)?;
    }
    Ok(args.count)
}

/// Inserts `count` copies of `document`, ignoring every error: a limit exceeded on the way
/// must still fail the mutation and commit nothing, even though the function returns.
#[mutation]
fn insert_many_ignoring_errors(ctx: &MutationCtx, args: InsertMany) -> Result<u32, Error> {
    let mut inserted = 0;
    for _ in 0..args.count {
        if ctx.db.insert(&args.table, &args.document).is_ok() {
            inserted += 1;
        }
    }
    Ok(inserted)
}

/// Inserts, then panics (a trap): nothing may be committed.
#[mutation]
fn insert_then_panic(ctx: &MutationCtx, args: Insert) -> Result<(), Error> {
    ctx.db.insert(&args.table, &args.document)?;
    panic!("panicking after the insert on purpose");
}

#[derive(Deserialize, kiln::Validate)]
struct RawBatch {
    table: String,
    max: u32,
    /// Swallow the error and return 0: the query must fail all the same.
    #[serde(default)]
    catch: bool,
}

/// Asks a raw cursor for `max` documents at once: over `max_query_batch` is an error.
#[query]
fn raw_batch(_ctx: &QueryCtx, args: RawBatch) -> Result<usize, Error> {
    let catch = args.catch;
    let cursor = raw::open_query(&raw::Query {
        table: args.table,
        index: None,
        range: "[]".to_string(),
        order: raw::Order::Asc,
        filter: None,
        after: None,
    })
    .map_err(Error::new)?;
    match cursor.next(args.max) {
        Ok(batch) => Ok(batch.len()),
        Err(_) if catch => Ok(0),
        Err(message) => Err(Error::new(message)),
    }
}

#[derive(Deserialize, kiln::Validate)]
struct NeverMatches {
    table: String,
    field: String,
    /// Size of the string literal the filter compares every document with.
    literal_bytes: u32,
}

/// Scans `table` with a filter that never matches and carries a large literal: the host
/// must count every document it reads, compare without copying the literal, and stop at
/// the call's limits without holding a worker thread.
#[query]
fn filter_never_matches(ctx: &QueryCtx, args: NeverMatches) -> Result<usize, Error> {
    let literal = "~".repeat(args.literal_bytes as usize);
    Ok(ctx
        .db
        .query(&args.table)
        .filter(|q| q.eq(q.field(&args.field), q.literal(&literal)))
        .collect()?
        .len())
}

#[derive(Deserialize, kiln::Validate)]
struct ProbeMany {
    table: String,
    index: String,
    field: String,
    count: u32,
}

/// Looks up `count` distinct values through an index, finding nothing: each lookup
/// records an index range that the committer would have to check, so their number is
/// bounded (`max_read_ranges`). A mutation, so that its read set reaches the committer.
#[mutation]
fn probe_many(ctx: &MutationCtx, args: ProbeMany) -> Result<u32, Error> {
    let mut found = 0;
    for value in 0..args.count {
        let hit = ctx
            .db
            .query(&args.table)
            .with_index(&args.index, |q| q.eq(&args.field, f64::from(value)))
            .first()?;
        found += u32::from(hit.is_some());
    }
    Ok(found)
}

#[derive(Deserialize, kiln::Validate)]
struct RawText {
    table: String,
    /// Length of the string field, so the document's JSON text is a little longer.
    bytes: u32,
}

/// Hands the host a document as raw JSON text of about `bytes` bytes: text over
/// `max_value_bytes` must be refused before the host parses it.
#[mutation]
fn raw_insert_text(_ctx: &MutationCtx, args: RawText) -> Result<String, Error> {
    let text = format!(r#"{{"text": "{}"}}"#, "x".repeat(args.bytes as usize));
    raw::insert(&args.table, &text).map_err(Error::new)
}

#[derive(Deserialize, kiln::Validate)]
struct OpenMany {
    table: String,
    count: u32,
    /// Size of the string literal in each cursor's filter.
    filter_bytes: u32,
}

/// Opens `count` queries with a large filter each and keeps them all open: what the host
/// holds for them is bounded per call (`max_host_memory_bytes`).
#[query]
fn open_many(_ctx: &QueryCtx, args: OpenMany) -> Result<u32, Error> {
    let filter = format!(
        r#"{{"$eq": [{{"$field": "tag"}}, {{"$literal": "{}"}}]}}"#,
        "~".repeat(args.filter_bytes as usize)
    );
    let mut open = Vec::new();
    for _ in 0..args.count {
        let cursor = raw::open_query(&raw::Query {
            table: args.table.clone(),
            index: None,
            range: "[]".to_string(),
            order: raw::Order::Asc,
            filter: Some(filter.clone()),
            after: None,
        })
        .map_err(Error::new)?;
        open.push(cursor);
    }
    Ok(open.len() as u32)
}

#[derive(Deserialize, kiln::Validate)]
struct WideFilter {
    table: String,
    field: String,
    /// How many comparisons the filter ORs together (none matches).
    operands: u32,
}

/// Scans `table` with a filter of `operands` comparisons that never match: cheap per
/// comparison, costly per document, so a scan's host call runs long unless the host
/// checks the call's deadline as it goes.
#[query]
fn wide_filter(ctx: &QueryCtx, args: WideFilter) -> Result<usize, Error> {
    Ok(ctx
        .db
        .query(&args.table)
        .filter(|q| {
            q.or((0..args.operands)
                .map(|i| q.eq(q.field(&args.field), q.literal(format!("never-{i}")))))
        })
        .collect()?
        .len())
}
