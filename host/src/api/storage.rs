//! Convex's file storage endpoints:
//!
//! * `POST /api/storage/upload?token=...`: the raw body becomes a stored file (its
//!   `Content-Type` kept; an optional `Digest: sha-256=<base64>` checked), answered with
//!   `{"storageId": "..."}`. The token comes from `generateUploadUrl`: sealed, good for
//!   one hour and one upload (401 otherwise). Over `max_file_bytes`: 413. The body is
//!   written to disk as it arrives, never held whole.
//! * `GET /api/storage/<id>`: the file, with its content type, an `ETag` (its SHA-256) and
//!   one `Range` (206, or 416); streamed from disk. An unknown or deleted id: 404.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH, RANGE,
};
use hyper::{Request, Response, StatusCode};

use super::router::json_response;
use super::{ApiError, AppState, ResponseBody, query_string};
use crate::database::id::DocumentId;
use crate::scheduler::jobs::now_ms;
use crate::storage::files::NewFile;
use crate::storage::records;
use crate::storage::tokens::{TokenError, UploadToken};

/// Bytes gathered before they are written (on a blocking thread), and read per step of a
/// download: the most of a file held in memory at once.
const CHUNK_BYTES: usize = 256 << 10;

fn storage(state: &AppState) -> Result<&std::sync::Arc<crate::storage::Storage>, ApiError> {
    state
        .runtime
        .storage()
        .ok_or_else(|| ApiError::internal(&anyhow::anyhow!("this server has no file storage")))
}

fn invalid_token(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidUploadToken",
        err.to_string(),
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "FileTooLarge",
        format!("the file is over the limit of {limit} bytes (max_file_bytes)"),
    )
}

/// `Digest: sha-256=<base64>` (other algorithms are ignored, as the header allows).
fn expected_digest(request: &Request<Incoming>) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(header) = request.headers().get("digest") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "InvalidDigest",
            "the Digest header must be sha-256=<base64 of the 32-byte SHA-256>",
        )
    };
    let text = header.to_str().map_err(|_| invalid())?;
    for part in text.split(',') {
        let Some((algorithm, value)) = part.trim().split_once('=') else {
            continue;
        };
        if algorithm.eq_ignore_ascii_case("sha-256") {
            let bytes = BASE64.decode(value.trim()).map_err(|_| invalid())?;
            return <[u8; 32]>::try_from(bytes).map(Some).map_err(|_| invalid());
        }
    }
    Ok(None)
}

pub async fn upload(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let storage = storage(state)?.clone();
    let token = query_string::parameter(&request, "token")
        .ok_or_else(|| invalid_token("the upload URL has no token"))?;
    let token = UploadToken::open(storage.key(), token, now_ms()).map_err(invalid_token)?;
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let digest = expected_digest(&request)?;
    let limits = state.runtime.limits();
    let max = limits.max_file_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(too_large(max));
    }
    let idle = Duration::from_millis(limits.body_read_timeout_ms);
    let file = storage
        .files()
        .create()
        .map_err(|err| ApiError::internal(&err))?;
    let name = file.name().to_string();
    let written = match receive(request.into_body(), file, max, idle).await {
        Ok(written) => written,
        Err(err) => {
            storage.files().discard(&name);
            return Err(err);
        }
    };
    if digest.is_some_and(|digest| digest != written.sha256) {
        storage.files().discard(written.name());
        return Err(ApiError::bad_request(
            "DigestMismatch",
            "the body's SHA-256 is not the one the Digest header gives: nothing was stored",
        ));
    }
    let id = storage
        .keep(&state.store, written, content_type.as_deref(), Some(&token))
        .await
        .map_err(|err| match err {
            crate::storage::StoreError::Refused(message)
                if message == TokenError::Used.to_string() =>
            {
                invalid_token(message)
            }
            crate::storage::StoreError::Refused(message) => {
                ApiError::bad_request("StorageRefused", message)
            }
            crate::storage::StoreError::Internal(err) => ApiError::internal(&err),
        })?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "storageId": id.encode() }),
    ))
}

/// Writes the body into `file` as it arrives (a chunk at a time, on a blocking thread),
/// within `max` bytes and with at most `idle` between two frames; syncs it.
async fn receive(
    mut body: Incoming,
    mut file: NewFile,
    max: u64,
    idle: Duration,
) -> Result<crate::storage::files::WrittenFile, ApiError> {
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let write = |mut file: NewFile, chunk: Vec<u8>| async move {
        tokio::task::spawn_blocking(move || file.write(&chunk).map(|()| file))
            .await
            .map_err(|err| anyhow::anyhow!("an upload's write panicked: {err}"))?
            .map_err(anyhow::Error::from)
    };
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    format!(
                        "the upload stalled: nothing arrived for {} ms (body_read_timeout_ms)",
                        idle.as_millis()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|err| {
                ApiError::bad_request("BadBody", format!("the upload broke off: {err}"))
            })?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if file.size() + (pending.len() + data.len()) as u64 > max {
            return Err(too_large(max));
        }
        pending.extend_from_slice(&data);
        if pending.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut pending, Vec::with_capacity(CHUNK_BYTES));
            file = write(file, chunk)
                .await
                .map_err(|err| ApiError::internal(&err))?;
        }
    }
    if !pending.is_empty() {
        file = write(file, pending)
            .await
            .map_err(|err| ApiError::internal(&err))?;
    }
    tokio::task::spawn_blocking(move || file.finish())
        .await
        .map_err(|err| ApiError::internal(&anyhow::anyhow!("an upload's sync panicked: {err}")))?
        .map_err(|err| ApiError::internal(&anyhow::Error::from(err)))
}

/// Whether `path` names a stored file (`/api/storage/<id>`).
pub fn is_file_path(path: &str) -> bool {
    path.strip_prefix("/api/storage/")
        .is_some_and(|rest| !rest.is_empty() && rest != "upload" && !rest.contains('/'))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such file")
}

/// One byte range of a file of `size` bytes (`bytes=a-b`, `bytes=a-`, `bytes=-n`):
/// `Ok(None)` for no (or an ignorable) `Range`, `Err(())` for one it cannot satisfy.
fn byte_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|text| text.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    // Several ranges would need a multipart answer: the whole file is as good an answer.
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().map_err(|_| ())?;
            if suffix == 0 {
                return Err(());
            }
            (size.saturating_sub(suffix), size.checked_sub(1).ok_or(())?)
        }
        (start, "") => (
            start.parse().map_err(|_| ())?,
            size.checked_sub(1).ok_or(())?,
        ),
        (start, end) => {
            let start: u64 = start.parse().map_err(|_| ())?;
            let end: u64 = end.parse().map_err(|_| ())?;
            (start, end.min(size.saturating_sub(1)))
        }
    };
    if start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub async fn download(
    state: &AppState,
    request: Request<Incoming>,
    path: &str,
) -> Result<Response<ResponseBody>, ApiError> {
    let storage = storage(state)?.clone();
    let id = DocumentId::decode(&path["/api/storage/".len()..]).map_err(|_| not_found())?;
    let mut transaction = state
        .store
        .begin_admin_read()
        .map_err(|err| ApiError::internal(&err))?;
    let record = records::get(&mut transaction, &id)
        .map_err(|_| not_found())?
        .ok_or_else(not_found)?;
    let file = storage
        .files()
        .open_blob(&record.sha256)
        .map_err(|err| ApiError::internal(&err))?
        .ok_or_else(not_found)?;
    let etag = format!("\"{}\"", record.sha256_base64());
    let content_type = record
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let response = Response::builder()
        .header(ETAG, &etag)
        .header(ACCEPT_RANGES, "bytes");
    let if_none_match = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok());
    if if_none_match.is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag)) {
        return Ok(super::boxed(
            response
                .status(StatusCode::NOT_MODIFIED)
                .body(Full::new(Bytes::new()))
                .expect("a valid response"),
        ));
    }
    let range_header = request
        .headers()
        .get(RANGE)
        .and_then(|value| value.to_str().ok());
    let (status, start, length, response) = match byte_range(range_header, record.size) {
        Ok(None) => (StatusCode::OK, 0, record.size, response),
        Ok(Some((start, end))) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end - start + 1,
            response.header(
                CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", record.size),
            ),
        ),
        Err(()) => {
            return Ok(super::boxed(
                response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(CONTENT_RANGE, format!("bytes */{}", record.size))
                    .body(Full::new(Bytes::new()))
                    .expect("a valid response"),
            ));
        }
    };
    // Reads block (a file on disk, or chunks of it in a shared database): each runs on a
    // blocking thread, as tokio's own file reads do.
    let file = tokio::task::spawn_blocking(move || {
        let mut file = file;
        file.seek(SeekFrom::Start(start)).map(|_| file)
    })
    .await
    .map_err(|err| ApiError::internal(&anyhow::Error::from(err)))?
    .map_err(|err| ApiError::internal(&anyhow::Error::from(err)))?;
    let chunks = futures_util::stream::unfold((file, length), |(file, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let mut buffer = vec![0u8; (remaining as usize).min(CHUNK_BYTES)];
        let read = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let read = file.read(&mut buffer);
            (file, buffer, read)
        })
        .await;
        // A read that panicked ends the body short of its length: the client sees it fail.
        let Ok((file, mut buffer, read)) = read else {
            return None;
        };
        match read {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "a stored file is shorter than its record",
                )),
                (file, 0),
            )),
            Ok(read) => {
                buffer.truncate(read);
                Some((
                    Ok(Frame::data(Bytes::from(buffer))),
                    (file, remaining - read as u64),
                ))
            }
            Err(err) => Some((Err(err), (file, 0))),
        }
    });
    Ok(response
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, length)
        .body(StreamBody::new(chunks).boxed_unsync())
        .expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges_as_http_reads_them() {
        assert_eq!(byte_range(None, 10), Ok(None));
        assert_eq!(byte_range(Some("bytes=0-3"), 10), Ok(Some((0, 3))));
        assert_eq!(byte_range(Some("bytes=5-"), 10), Ok(Some((5, 9))));
        assert_eq!(byte_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(byte_range(Some("bytes=8-100"), 10), Ok(Some((8, 9))));
        assert_eq!(byte_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(byte_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=x-2"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(byte_range(Some("bytes=0-"), 0), Err(()));
    }
}
