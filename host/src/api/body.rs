//! Reading request bodies: within a size limit (413 past it) and a time limit (408 past
//! it), as JSON (400 if it is not).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::ApiError;

/// How much of an oversized body is read and discarded before answering 413. A client
/// that sends its whole body before reading the answer (most do) would otherwise see the
/// connection reset instead of the 413; past this, the connection is simply closed.
const MAX_DISCARDED_BYTES: usize = 64 << 20;

/// Reads the whole body, refusing one over `limit` bytes or not received within
/// `timeout` (`body_read_timeout_ms`: a body trickled in a byte at a time must not hold a
/// connection and a request slot for ever).
pub async fn read(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let reading = read_within(body, limit);
    tokio::pin!(reading);
    // Most bodies arrived with their headers: read them without arming a timer, which
    // costs every request a trip through the runtime's timer wheel.
    tokio::select! {
        biased;
        read = &mut reading => return read,
        () = std::future::ready(()) => {}
    }
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or_else(|_elapsed| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!(
                    "the request body did not arrive within {} ms (body_read_timeout_ms)",
                    timeout.as_millis()
                ),
            ))
        })
}

async fn read_within(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    // A body in one frame (most are) is returned uncopied; from the second frame on they
    // are copied into one buffer (not kept as frames: a body trickled a byte per frame
    // would cost a handle per byte, each pinning a read buffer).
    let mut first: Option<Bytes> = None;
    let mut collected = BytesMut::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            ApiError::bad_request(
                "BadRequestBody",
                format!("cannot read the request body: {err}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received = received.saturating_add(data.len());
        if received <= limit {
            if first.is_none() && collected.is_empty() {
                first = Some(data);
            } else {
                if let Some(first) = first.take() {
                    collected.extend_from_slice(&first);
                }
                collected.extend_from_slice(&data);
            }
        } else if received > limit.saturating_add(MAX_DISCARDED_BYTES) {
            break;
        }
    }
    if received > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("the request body is over the limit of {limit} bytes"),
        ));
    }
    Ok(first.unwrap_or_else(|| collected.freeze()))
}

/// Reads the body as JSON of type `T` whose shape was checked first: no deeper than
/// `max_depth` and holding at most `max_elements` values, so a body that would parse
/// into a huge tree is refused before any tree is built.
pub async fn read_bounded_json<T: DeserializeOwned>(
    body: Incoming,
    limit: usize,
    timeout: Duration,
    max_depth: usize,
    max_elements: usize,
) -> Result<T, ApiError> {
    let bytes = read(body, limit, timeout).await?;
    kiln_values::check_json_shape(&bytes, max_depth, max_elements).map_err(|err| {
        match err.kind() {
            kiln_values::ValueErrorKind::InvalidJson(_) => ApiError::bad_request(
                "BadJsonBody",
                format!("the request body is not valid JSON for this endpoint: {err}"),
            ),
            _ => ApiError::bad_request("InvalidArgs", format!("invalid args: {err}")),
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(
            "BadJsonBody",
            format!("the request body is not valid JSON for this endpoint: {err}"),
        )
    })
}

/// Reads the body as JSON of type `T`.
pub async fn read_json<T: DeserializeOwned>(
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<T, ApiError> {
    let bytes = read(body, limit, timeout).await?;
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(
            "BadJsonBody",
            format!("the request body is not valid JSON for this endpoint: {err}"),
        )
    })
}
