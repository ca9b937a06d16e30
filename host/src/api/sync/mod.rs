//! `GET /api/<client version>/sync` (and `/api/sync`): the WebSocket the Convex clients
//! (`ConvexClient`, `ConvexReactClient`, the CLI) keep open to subscribe to queries and
//! run mutations and actions (Convex's sync protocol, `crate::sync::protocol`).
//!
//! The upgrade is answered here; the socket then runs as tasks of its own: a reader that
//! hands each message to the [`session::Session`], a writer that sends what the session
//! produces (with a `Ping` after 15 s of silence, so the client, which reconnects after
//! 60 s without a message, stays connected), the round loop and the mutation queue. A
//! client that does not read what it is sent is disconnected after
//! `sync_send_timeout_ms`: at most one bounded queue of messages waits for it.

mod session;
mod system;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HeaderValue, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use self::session::{Closing, Session};
use super::connection::Activity;
use super::{ApiError, AppState};
use crate::sync::protocol::ServerMessage;

/// Time without a message to the client after which it is sent a `Ping`.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Messages waiting for the writer. A producer that finds the queue full waits, so a
/// connection holds at most this many unsent messages (plus one Transition being built).
const OUTGOING_QUEUE: usize = 16;

/// What the writer is asked to do.
#[derive(Debug)]
enum Outgoing {
    Message(ServerMessage),
    /// Send the last message, if any, close the socket and stop.
    Close(Closing),
}

/// What the connection's handler hands the sync endpoint: the server (which the socket's
/// tasks outlive the request with) and the connection's clocks (held busy while the socket
/// is open, so the idle timeout of HTTP keep-alive does not cut it).
#[derive(Clone)]
pub(crate) struct UpgradeContext {
    pub state: Arc<AppState>,
    pub activity: Arc<Activity>,
}

/// Whether `path` is the sync endpoint's: `/api/sync` or `/api/<version>/sync`.
pub fn is_sync_path(path: &str) -> bool {
    path == "/api/sync"
        || path
            .strip_prefix("/api/")
            .and_then(|rest| rest.strip_suffix("/sync"))
            .is_some_and(|version| {
                !version.is_empty()
                    && version
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b".-+_".contains(&byte))
            })
}

/// Answers the upgrade and starts the socket's tasks.
pub async fn upgrade(
    state: &AppState,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers();
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocketUpgradeRequired",
            "this is the sync WebSocket: connect with a WebSocket client (Upgrade: websocket)",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err(ApiError::bad_request(
            "UnsupportedWebSocketVersion",
            "Sec-WebSocket-Version must be 13",
        ));
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_request(
            "MissingWebSocketKey",
            "the upgrade has no Sec-WebSocket-Key",
        ));
    };
    if !state.cors.allows_public(headers.get(ORIGIN)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "OriginNotAllowed",
            "this origin may not use the API ([cors] public_origins)",
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    let Some(context) = request.extensions().get::<UpgradeContext>().cloned() else {
        return Err(ApiError::internal(&anyhow::anyhow!(
            "the sync endpoint was reached without its connection context"
        )));
    };
    let Ok(slot) = state.sync_connections.clone().try_acquire_owned() else {
        let limit = state.runtime.limits().max_sync_connections;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Overloaded",
            format!(
                "the server holds its limit of {limit} sync connections (max_sync_connections); retry later"
            ),
        ));
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let busy = context.activity.busy();
        match on_upgrade.await {
            Ok(upgraded) => serve(context.state, TokioIo::new(upgraded)).await,
            Err(err) => tracing::debug!(error = %err, "the sync upgrade failed"),
        }
        drop(busy);
        drop(slot);
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let response_headers = response.headers_mut();
    response_headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    response_headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    response_headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    Ok(response)
}

/// `GET /api/sync_stats` (admin): what the realtime layer holds and has done since the
/// server started, for operators and the benchmark.
pub async fn stats(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let limits = state.runtime.limits();
    let subscriptions = state.store.subscriptions();
    let counters = subscriptions.counters();
    let ordering = std::sync::atomic::Ordering::Relaxed;
    let body = serde_json::json!({
        "connections": limits.max_sync_connections - state.sync_connections.available_permits(),
        "liveSubscriptions": subscriptions.live_count(),
        "queryExecutions": state.query_cache.runs(),
        "commitsChecked": counters.commits.load(ordering),
        "subscriptionsInvalidated": counters.marked_stale.load(ordering),
    });
    Ok(super::router::json_response(StatusCode::OK, &body))
}

/// Runs one sync socket until either side closes it.
async fn serve<S>(state: Arc<AppState>, io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = state.runtime.limits();
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_sync_message_bytes))
        .max_frame_size(Some(limits.max_sync_message_bytes));
    let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let (sink, mut stream) = socket.split();
    let (out, outgoing) = mpsc::channel(OUTGOING_QUEUE);
    let send_timeout = Duration::from_millis(limits.sync_send_timeout_ms);
    let writer = tokio::spawn(write(sink, outgoing, send_timeout));
    let (session, mutation_queue) = Session::new(state.clone(), out.clone());
    let rounds = tokio::spawn(session.clone().run_rounds());
    let mutations = tokio::spawn(session.clone().run_mutations(mutation_queue));

    let ended = loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            // The writer stopped (the client is gone or too slow): nothing more to read.
            () = out.closed() => break None,
        };
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => break None,
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                break Some(Closing::fatal(
                    "the sync protocol sends text frames (JSON), not binary",
                ));
            }
            Some(Err(err)) => {
                tracing::debug!(error = %err, "sync socket read failed");
                break Some(message_error(&err, limits.max_sync_message_bytes));
            }
        };
        if let Err(closing) = session.handle(text.as_str()).await {
            break Some(closing);
        }
    };
    rounds.abort();
    mutations.abort();
    if let Some(closing) = ended {
        let _ = out.send(Outgoing::Close(closing)).await;
    }
    drop(out);
    drop(session);
    let Ok(sink) = writer.await else { return };
    // Linger: a client still sending (the rest of a message over the limit) would get a
    // TCP reset on close, which discards the FatalError it has not read yet. Read and drop
    // what it sends for a moment first.
    if let Ok(mut socket) = sink.reunite(stream) {
        let io = socket.get_mut();
        let mut buffer = vec![0u8; 64 << 10];
        let _ = tokio::time::timeout(LINGER, async {
            let mut drained = 0usize;
            while drained < LINGER_MAX_BYTES {
                match tokio::io::AsyncReadExt::read(io, &mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => drained += read,
                }
            }
        })
        .await;
    }
}

/// How long, and for how many bytes, a closed socket is read before it is dropped.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 64 << 20;

/// What a failed read tells the client: a message over the limit is named.
fn message_error(err: &tokio_tungstenite::tungstenite::Error, limit: usize) -> Closing {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::CapacityError;
    match err {
        Error::Capacity(CapacityError::MessageTooLong { size, .. }) => Closing {
            message: Some(Box::new(ServerMessage::FatalError {
                error: format!(
                    "MessageTooLarge: a {size}-byte message is over the limit of {limit} bytes (max_sync_message_bytes)"
                ),
            })),
            close: Some((1009, "MessageTooLarge".into())),
        },
        _ => Closing {
            message: None,
            close: None,
        },
    }
}

/// Sends what the session produces; a `Ping` after [`HEARTBEAT_INTERVAL`] of silence.
/// Returns the sink once the socket is closed (or broken).
async fn write<S>(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    send_timeout: Duration,
) -> futures_util::stream::SplitSink<WebSocketStream<S>, Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let next = tokio::time::timeout(HEARTBEAT_INTERVAL, outgoing.recv()).await;
        let (message, closing) = match next {
            Err(_idle) => (Some(ServerMessage::Ping), None),
            Ok(None) => (None, None),
            Ok(Some(Outgoing::Message(message))) => (Some(message), None),
            Ok(Some(Outgoing::Close(closing))) => {
                (closing.message.clone().map(|m| *m), Some(closing))
            }
        };
        let Some(message) = message else {
            if closing.is_none() {
                // Every sender is gone: the connection ended without a word.
                let _ = sink.close().await;
                return sink;
            }
            close(&mut sink, closing, send_timeout).await;
            return sink;
        };
        let text = message.to_json().to_string();
        match tokio::time::timeout(send_timeout, sink.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "sync socket write failed");
                return sink;
            }
            Err(_slow) => {
                tracing::info!(
                    "disconnecting a sync client that did not read its socket for {} ms (sync_send_timeout_ms)",
                    send_timeout.as_millis()
                );
                return sink;
            }
        }
        if closing.is_some() {
            close(&mut sink, closing, send_timeout).await;
            return sink;
        }
    }
}

async fn close<S>(
    sink: &mut futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    closing: Option<Closing>,
    send_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = closing
        .and_then(|closing| closing.close)
        .map(|(code, reason)| CloseFrame {
            code: CloseCode::from(code),
            // A close reason is at most 123 bytes.
            reason: truncate(&reason, 123).to_string().into(),
        });
    let _ = tokio::time::timeout(send_timeout, sink.send(Message::Close(frame))).await;
    let _ = tokio::time::timeout(send_timeout, sink.close()).await;
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_paths() {
        assert!(is_sync_path("/api/sync"));
        assert!(is_sync_path("/api/1.48.0/sync"));
        assert!(!is_sync_path("/api//sync"));
        assert!(!is_sync_path("/api/a/b/sync"));
        assert!(!is_sync_path("/api/query"));
    }
}
