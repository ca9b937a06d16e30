//! `GET /api/data/<table>?limit=N&cursor=C`: the documents of a table in creation order,
//! a page at a time, for an admin to see what is stored (`kiln data`). Needs the admin key.
//!
//! An admin read is not a function's transaction: it is not held to the per-transaction
//! read limits, but a page stops at `max_bytes_read` bytes (and at `limit` documents), and
//! `continueCursor` continues after it. Cursors are sealed like the ones functions get
//! (`database::cursor_seal`), for the table's `by_creation_time` index.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::router::json_response;
use super::{ApiError, AppState, query_string};
use crate::database::indexes::{BY_CREATION_TIME, IndexRange};
use crate::database::persistence::Order;
use crate::database::transaction::DbError;

/// Documents returned when the request names no limit.
const DEFAULT_LIMIT: usize = 100;
/// Most documents one request returns.
const MAX_LIMIT: usize = 10_000;
/// Documents read from the store per step while filling a page.
const READ_STEP: usize = 256;

/// One page of a table.
struct Page {
    documents: Vec<serde_json::Value>,
    /// The index key of the last document on the page.
    last_key: Option<Vec<u8>>,
    is_done: bool,
}

pub async fn documents(
    state: &AppState,
    request: Request<Incoming>,
    table: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let limit = query_string::limit(&request, DEFAULT_LIMIT, MAX_LIMIT)?;
    let bad_cursor = || {
        ApiError::bad_request(
            "BadCursor",
            "invalid cursor: cursor must be a continueCursor this endpoint returned for the same table",
        )
    };
    let cursor_key = state.runtime.cursor_key();
    let after =
        match query_string::parameter(&request, "cursor").filter(|cursor| !cursor.is_empty()) {
            None => None,
            Some(cursor) => Some(
                cursor_key
                    .open(table, BY_CREATION_TIME, cursor)
                    .map_err(|_| bad_cursor())?,
            ),
        };
    let store = state.store.clone();
    let table_name = table.to_string();
    let max_page_bytes = store.limits().max_bytes_read;
    // Reads are quick but synchronous: keep them off the async threads.
    let page = tokio::task::spawn_blocking(move || {
        let mut transaction = store.begin_admin_read()?;
        transaction.check_query(
            &table_name,
            BY_CREATION_TIME,
            &IndexRange::default(),
            after.as_deref(),
        )?;
        let mut page = Page {
            documents: Vec::new(),
            last_key: after,
            is_done: false,
        };
        let mut page_bytes = 0;
        while !page.is_done && page.documents.len() < limit && page_bytes < max_page_bytes {
            let step = READ_STEP.min(limit - page.documents.len());
            let found = transaction.scan(
                &table_name,
                BY_CREATION_TIME,
                &IndexRange::default(),
                Order::Asc,
                step,
                page.last_key.as_deref(),
            )?;
            page.is_done = found.len() < step;
            for (key, document) in found {
                if page_bytes >= max_page_bytes {
                    page.is_done = false;
                    break;
                }
                page_bytes += document.size_bytes();
                page.documents.push(document.to_value().to_convex_json());
                page.last_key = Some(key);
            }
        }
        if !page.is_done {
            // A full page: done only if nothing follows it.
            page.is_done = transaction
                .scan(
                    &table_name,
                    BY_CREATION_TIME,
                    &IndexRange::default(),
                    Order::Asc,
                    1,
                    page.last_key.as_deref(),
                )?
                .is_empty();
        }
        Ok::<_, DbError>(page)
    })
    .await
    .map_err(|err| ApiError::internal(&anyhow::anyhow!("data read panicked: {err}")))?
    .map_err(|err| match err {
        DbError::InvalidCursor(_) => bad_cursor(),
        DbError::Internal(err) => ApiError::internal(&err),
        other => ApiError::internal(&anyhow::Error::new(other)),
    })?;
    let continue_cursor = page
        .last_key
        .map(|key| cursor_key.seal(table, BY_CREATION_TIME, &key))
        .unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({
            "table": table,
            "documents": page.documents,
            "isDone": page.is_done,
            "continueCursor": continue_cursor,
        }),
    ))
}
