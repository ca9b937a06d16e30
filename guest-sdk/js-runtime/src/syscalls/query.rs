//! The query ops (`queryStream`, `queryStreamNext`, `queryCleanup`, `queryPage`, `count`):
//! Convex's query JSON (convex/server's `impl/query_impl.js`) mapped onto Kiln's cursors.
//!
//! ```text
//! {"source": {"type": "FullTableScan", "tableName": t, "order": o}
//!          | {"type": "IndexRange", "indexName": "t.index", "range": [{type, fieldPath, value}], "order": o},
//!  "operators": [{"filter": expression} | {"limit": n}]}
//! ```
//! Range types `Eq`/`Gt`/`Gte`/`Lt`/`Lte` become Kiln's `eq`/`gt`/...; filter expressions
//! are already Kiln's (the same JSON as Convex's filter builder); `limit` ends the stream.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;

use super::{OpError, OpResult, json};
use crate::bindings::kiln::platform::db::{self, Cursor, Order, Query};

#[derive(Deserialize)]
pub(super) struct QueryJson {
    source: Source,
    #[serde(default)]
    operators: Vec<Operator>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Source {
    #[serde(rename_all = "camelCase")]
    FullTableScan {
        table_name: String,
        order: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    IndexRange {
        index_name: String,
        range: Vec<RangeExpression>,
        order: Option<String>,
    },
    Search {},
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RangeExpression {
    #[serde(rename = "type")]
    kind: String,
    field_path: String,
    value: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Operator {
    Filter(serde_json::Value),
    Limit(u64),
}

/// The query as Kiln runs it, and how many documents it may still yield.
fn translate(query: QueryJson, after: Option<String>) -> Result<(Query, Option<u64>), OpError> {
    let (table, index, range, order) = match query.source {
        Source::FullTableScan { table_name, order } => (table_name, None, Vec::new(), order),
        Source::IndexRange {
            index_name,
            range,
            order,
        } => {
            let (table, index) = index_name.split_once('.').ok_or_else(|| {
                OpError::new(format!(
                    "invalid index name {index_name:?}: expected table.index"
                ))
            })?;
            (table.to_string(), Some(index.to_string()), range, order)
        }
        Source::Search {} => {
            return Err(OpError::new(
                "withSearchIndex: Kiln has no full-text search indexes yet",
            ));
        }
    };
    let range: Vec<serde_json::Value> = range
        .into_iter()
        .map(|bound| {
            let op = match bound.kind.as_str() {
                "Eq" => "eq",
                "Gt" => "gt",
                "Gte" => "gte",
                "Lt" => "lt",
                "Lte" => "lte",
                other => return Err(OpError::new(format!("unknown index range type {other:?}"))),
            };
            Ok(serde_json::json!({"field": bound.field_path, "op": op, "value": bound.value}))
        })
        .collect::<Result<_, _>>()?;
    let order = match order.as_deref() {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => return Err(OpError::new(format!("unknown order {other:?}"))),
    };
    let mut filters = Vec::new();
    let mut limit: Option<u64> = None;
    for operator in query.operators {
        match operator {
            Operator::Filter(_) if limit.is_some() => {
                return Err(OpError::new("a filter after a limit is not supported"));
            }
            Operator::Filter(expression) => filters.push(expression),
            Operator::Limit(n) => limit = Some(limit.map_or(n, |m| m.min(n))),
        }
    }
    let filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(serde_json::json!({ "$and": filters })),
    };
    let query = Query {
        table,
        index,
        range: serde_json::Value::Array(range).to_string(),
        order,
        filter: filter.map(|filter| filter.to_string()),
        after,
    };
    Ok((query, limit))
}

/// An open `queryStream`: its cursor, what was read ahead, and what it may still yield.
struct Stream {
    cursor: Cursor,
    buffered: VecDeque<String>,
    remaining: Option<u64>,
    exhausted: bool,
    /// How many documents the next read asks for: grows, so `first()` reads one and a
    /// long `collect()` reads in large batches.
    batch: u32,
}

/// The largest batch asked for at once (the host accepts at least 128).
const MAX_BATCH: u32 = 128;
const FIRST_BATCH: u32 = 8;

thread_local! {
    static STREAMS: RefCell<(u32, BTreeMap<u32, Stream>)> = const { RefCell::new((0, BTreeMap::new())) };
}

pub(super) fn begin_call() {
    STREAMS.with(|streams| *streams.borrow_mut() = (0, BTreeMap::new()));
}

#[derive(Deserialize)]
pub(super) struct StreamArgs {
    query: QueryJson,
}

/// `{query, version}` → `{"queryId": n}`
pub(super) fn stream(args: StreamArgs) -> OpResult {
    let (query, remaining) = translate(args.query, None)?;
    let cursor = db::open_query(&query).map_err(OpError::new)?;
    let id = STREAMS.with(|streams| {
        let (next_id, streams) = &mut *streams.borrow_mut();
        let id = *next_id;
        *next_id += 1;
        let batch = remaining.map_or(FIRST_BATCH, |n| n.clamp(1, MAX_BATCH as u64) as u32);
        streams.insert(
            id,
            Stream {
                cursor,
                buffered: VecDeque::new(),
                remaining,
                exhausted: false,
                batch,
            },
        );
        id
    });
    json(&serde_json::json!({ "queryId": id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryIdArgs {
    query_id: u32,
}

/// `{queryId}` → `{"value": document | null, "done": bool}`
pub(super) fn stream_next(args: QueryIdArgs) -> OpResult {
    let next = STREAMS.with(|streams| {
        let (_, streams) = &mut *streams.borrow_mut();
        let stream = streams
            .get_mut(&args.query_id)
            .ok_or_else(|| OpError::new("in-progress query not found"))?;
        if stream.remaining == Some(0) {
            return Ok(None);
        }
        if stream.buffered.is_empty() && !stream.exhausted {
            let want = match stream.remaining {
                Some(n) => n.min(stream.batch as u64) as u32,
                None => stream.batch,
            };
            let documents = stream.cursor.next(want).map_err(OpError::new)?;
            stream.exhausted = (documents.len() as u32) < want;
            stream.buffered.extend(documents);
            stream.batch = (stream.batch * 2).min(MAX_BATCH);
        }
        let document = stream.buffered.pop_front();
        if document.is_some()
            && let Some(remaining) = &mut stream.remaining
        {
            *remaining -= 1;
        }
        Ok(document)
    })?;
    match next {
        // The document is Convex JSON text already: spliced in, not re-encoded.
        Some(document) => Ok(format!(r#"{{"value":{document},"done":false}}"#)),
        None => {
            STREAMS.with(|streams| streams.borrow_mut().1.remove(&args.query_id));
            Ok(r#"{"value":null,"done":true}"#.into())
        }
    }
}

/// `{queryId}` → whether it was open.
pub(super) fn cleanup(args: QueryIdArgs) -> OpResult {
    let existed = STREAMS.with(|streams| streams.borrow_mut().1.remove(&args.query_id).is_some());
    json(&existed)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageArgs {
    query: QueryJson,
    cursor: Option<String>,
    #[serde(default)]
    end_cursor: Option<String>,
    page_size: f64,
}

/// `{query, cursor, endCursor, pageSize, ...}` → `{page, isDone, continueCursor,
/// splitCursor, pageStatus}`. The host reads the page (`db.paginate`), so a subscribed page
/// keeps its bounds when documents come and go.
pub(super) fn page(args: PageArgs) -> OpResult {
    if args.page_size.is_nan() || args.page_size < 0.0 {
        return Err(OpError::new(
            "paginationOpts.numItems must be a non-negative number",
        ));
    }
    let page_size = args.page_size.min(u32::MAX as f64) as u32;
    // Convex's first page has a null cursor; Kiln hands out "" when nothing was read.
    let start = args.cursor.filter(|cursor| !cursor.is_empty());
    let end = args.end_cursor.filter(|cursor| !cursor.is_empty());
    let (query, _) = translate(args.query, start)?;
    let page = db::paginate(&query, page_size, end.as_deref()).map_err(OpError::new)?;
    // The documents are Convex JSON text already: spliced in, not re-encoded.
    let documents = format!("[{}]", page.documents.join(","));
    Ok(format!(
        r#"{{"page":{documents},"isDone":{},"continueCursor":{},"splitCursor":null,"pageStatus":null}}"#,
        page.is_done,
        serde_json::Value::String(page.continue_cursor)
    ))
}

#[derive(Deserialize)]
pub(super) struct CountArgs {
    table: String,
}

/// `{table}` → the number of documents in it.
pub(super) fn count(args: CountArgs) -> OpResult {
    let query = Query {
        table: args.table,
        index: None,
        range: "[]".into(),
        order: Order::Asc,
        filter: None,
        after: None,
    };
    let cursor = db::open_query(&query).map_err(OpError::new)?;
    let mut count = 0u64;
    loop {
        let documents = cursor.next(MAX_BATCH).map_err(OpError::new)?;
        count += documents.len() as u64;
        if (documents.len() as u32) < MAX_BATCH {
            break;
        }
    }
    json(&count)
}
