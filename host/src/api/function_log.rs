//! The recent function executions a client called, with their log lines, for
//! `GET /api/stream_function_logs?cursor=N` (what `npx convex dev` and `npx convex logs`
//! print). Kept in memory, the last [`CAPACITY`]; a restart starts it afresh.
//!
//! The cursor is a position in this log: entries are numbered from 2 on, and position 1
//! is the server's start, so a client's first request (`cursor=0`) always learns a
//! position to wait from, even before anything ran. A request at the head long-polls.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value as Json, json};
use tokio::sync::watch;

use super::router::json_response;
use super::{ApiError, AppState};
use crate::runtime::{FunctionKind, LogLevel, LogLine};

/// How many executions are kept.
pub const CAPACITY: usize = 1000;

/// How long a request at the head waits for an execution before it answers none (the
/// CLI asks again at once).
const LONG_POLL: Duration = Duration::from_secs(30);

pub struct FunctionLog {
    /// Each with its position. Kept as recorded and written as JSON only when a client
    /// reads them: every call records one, and few are ever read.
    entries: Mutex<VecDeque<(u64, Entry)>>,
    /// The position of the newest entry.
    head: watch::Sender<u64>,
}

impl Default for FunctionLog {
    fn default() -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            head: watch::Sender::new(1),
        }
    }
}

/// One finished execution, as it is logged.
pub struct Execution<'a> {
    pub kind: FunctionKind,
    /// `messages:list`, or `GET /hello` for an HTTP action.
    pub identifier: String,
    pub started: SystemTime,
    pub duration: Duration,
    pub log_lines: &'a [LogLine],
    /// The error it ended with, as its caller saw it.
    pub error: Option<String>,
}

/// An [`Execution`] as kept: what the stream needs, owned.
#[derive(Clone)]
struct Entry {
    kind: FunctionKind,
    identifier: String,
    started_ms: f64,
    duration: Duration,
    log_lines: Vec<LogLine>,
    error: Option<String>,
}

impl Entry {
    /// The entry as Convex's `stream_function_logs` writes a completion.
    fn to_json(&self) -> Json {
        let udf_type = match self.kind {
            FunctionKind::Query => "Query",
            FunctionKind::Mutation => "Mutation",
            FunctionKind::Action => "Action",
            FunctionKind::HttpAction => "HttpAction",
        };
        let log_lines: Vec<Json> = self
            .log_lines
            .iter()
            .map(|line| {
                json!({
                    "messages": [line.message],
                    "level": level(line.level),
                    "timestamp": self.started_ms,
                    "isTruncated": false,
                })
            })
            .collect();
        json!({
            "kind": "Completion",
            "udfType": udf_type,
            "identifier": self.identifier,
            "componentPath": null,
            "timestamp": self.started_ms / 1e3,
            "executionTime": self.duration.as_secs_f64(),
            "logLines": log_lines,
            "error": self.error,
            "cachedResult": false,
        })
    }
}

impl FunctionLog {
    pub fn record(&self, execution: Execution<'_>) {
        let entry = Entry {
            kind: execution.kind,
            identifier: execution.identifier,
            started_ms: execution
                .started
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |since| since.as_secs_f64() * 1e3),
            duration: execution.duration,
            log_lines: execution.log_lines.to_vec(),
            error: execution.error,
        };
        let mut entries = self.entries.lock().expect("function log lock");
        let position = *self.head.borrow() + 1;
        let evicted = match entries.len() == CAPACITY {
            true => entries.pop_front(),
            false => None,
        };
        entries.push_back((position, entry));
        self.head.send_replace(position);
        drop(entries);
        // Freed once the lock is let go.
        drop(evicted);
    }

    /// The entries after `cursor` and the position to ask from next. At the head, waits
    /// up to `wait` for one. A cursor of 0, or one past the head (from before a restart),
    /// answers at once with what is kept.
    async fn after(&self, cursor: u64, wait: Duration) -> (Vec<Json>, u64) {
        let mut head = self.head.subscribe();
        let current = *head.borrow_and_update();
        let cursor = if cursor == 0 || cursor > current {
            0
        } else {
            cursor
        };
        if cursor == current && tokio::time::timeout(wait, head.changed()).await.is_err() {
            return (Vec::new(), cursor);
        }
        let entries = self.entries.lock().expect("function log lock");
        let newest = entries
            .back()
            .map_or(*self.head.borrow(), |(position, _)| *position);
        let found: Vec<Entry> = entries
            .iter()
            .filter(|(position, _)| *position > cursor)
            .map(|(_, entry)| entry.clone())
            .collect();
        drop(entries);
        // Written out after the lock is let go: calls record while this runs.
        let found = found.iter().map(Entry::to_json).collect();
        (found, newest.max(cursor))
    }
}

fn level(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Log => "LOG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// `GET /api/stream_function_logs?cursor=N`: `{entries, newCursor}`. Needs the admin key.
pub async fn stream(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let cursor = super::query_string::parameter(&request, "cursor")
        .map(|cursor| {
            // The CLI sends back whatever number it was given.
            cursor.parse::<f64>().map_err(|_| {
                ApiError::bad_request(
                    "InvalidCursor",
                    format!("cursor {cursor:?} is not a number"),
                )
            })
        })
        .transpose()?
        .unwrap_or(0.0);
    let (entries, new_cursor) = state.function_log.after(cursor as u64, LONG_POLL).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "entries": entries, "newCursor": new_cursor }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(log: &FunctionLog, name: &str) {
        log.record(Execution {
            kind: FunctionKind::Query,
            identifier: name.to_string(),
            started: SystemTime::now(),
            duration: Duration::from_millis(1),
            log_lines: &[],
            error: None,
        });
    }

    fn names(entries: &[Json]) -> Vec<&str> {
        entries
            .iter()
            .map(|entry| entry["identifier"].as_str().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_entry_reads_as_convex_writes_a_completion() {
        let log = FunctionLog::default();
        let started = UNIX_EPOCH + Duration::from_millis(1_500);
        log.record(Execution {
            kind: FunctionKind::Mutation,
            identifier: "messages:send".into(),
            started,
            duration: Duration::from_millis(250),
            log_lines: &[LogLine {
                level: LogLevel::Warn,
                message: "careful".into(),
            }],
            error: Some("Uncaught Error: no".into()),
        });
        let (entries, _) = log.after(0, Duration::from_secs(60)).await;
        assert_eq!(
            entries,
            [json!({
                "kind": "Completion",
                "udfType": "Mutation",
                "identifier": "messages:send",
                "componentPath": null,
                "timestamp": 1.5,
                "executionTime": 0.25,
                "logLines": [{
                    "messages": ["careful"],
                    "level": "WARN",
                    "timestamp": 1500.0,
                    "isTruncated": false,
                }],
                "error": "Uncaught Error: no",
                "cachedResult": false,
            })]
        );
    }

    #[tokio::test]
    async fn a_client_reads_from_its_cursor_and_waits_at_the_head() {
        let log = FunctionLog::default();
        // The first request answers at once, even with nothing logged.
        let (entries, head) = log.after(0, Duration::from_secs(60)).await;
        assert!(entries.is_empty());
        assert_eq!(head, 1);
        // At the head it waits, and answers none when nothing ran.
        let (entries, same) = log.after(head, Duration::from_millis(10)).await;
        assert!(entries.is_empty());
        assert_eq!(same, head);

        record(&log, "a:one");
        record(&log, "a:two");
        let (entries, next) = log.after(head, Duration::from_secs(60)).await;
        assert_eq!(names(&entries), ["a:one", "a:two"]);

        // A waiting request is woken by the next execution.
        let waiting = log.after(next, Duration::from_secs(60));
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut waiting)
                .await
                .is_err()
        );
        record(&log, "a:three");
        let (entries, _) = waiting.await;
        assert_eq!(names(&entries), ["a:three"]);
    }
}
