//! `GET /api/data/<table>?limit=N`: the documents of a table in creation order, for an
//! admin to see what is stored (`kiln data`). Needs the admin key.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::router::json_response;
use super::{ApiError, AppState};
use crate::database::indexes::{BY_CREATION_TIME, IndexRange};
use crate::database::persistence::Order;

/// Documents returned when the request names no limit.
const DEFAULT_LIMIT: usize = 100;
/// Most documents one request returns.
const MAX_LIMIT: usize = 10_000;

pub async fn documents(
    state: &AppState,
    request: Request<Incoming>,
    table: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let limit = match request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("limit="))
    }) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "BadLimit",
                    format!("limit must be a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    let store = state.store.clone();
    let table = table.to_string();
    // Reads are quick but synchronous: keep them off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        let mut transaction = store.begin_query()?;
        // One more than asked, to tell whether more exist.
        let found = transaction.scan(
            &table,
            BY_CREATION_TIME,
            &IndexRange::default(),
            Order::Asc,
            limit + 1,
            None,
        )?;
        anyhow::Ok((table, found))
    })
    .await
    .map_err(|err| ApiError::internal(&anyhow::anyhow!("data read panicked: {err}")))?;
    let (table, mut found) = result.map_err(|err| ApiError::internal(&err))?;
    let is_done = found.len() <= limit;
    found.truncate(limit);
    let documents: Vec<serde_json::Value> = found
        .iter()
        .map(|(_, document)| document.to_value().to_convex_json())
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "table": table, "documents": documents, "isDone": is_done }),
    ))
}
