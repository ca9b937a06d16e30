//! The HTTP API: Convex's function-call endpoints, deploy and admin endpoints. The only
//! layer that speaks HTTP.
//!
//! What a hostile client can hold is bounded here (`[limits]`): open connections
//! (`max_connections`), requests being handled (`max_requests_in_flight`), and time: for
//! an idle connection, for a request's headers and for its body.

mod auth;
mod body;
mod calls;
mod connection;
mod convex_push;
mod cors;
mod data;
mod deploy;
mod environment;
mod error;
mod function_log;
mod http_actions;
mod jobs;
mod query_string;
mod ready;
mod router;
mod self_wake;
mod service;
mod storage;
mod sync;

use std::net::SocketAddr;

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use auth::AdminKey;
pub use deploy::FunctionListing;
pub use error::ApiError;
pub use service::{RequestId, Surface};

use crate::config::CorsConfig;
use crate::database::store::DocumentStore;
use crate::deploy::Deployments;
use crate::runtime::{FunctionKind, Runtime};

/// How long the accept loop pauses after a failed accept (typically: out of file
/// descriptors) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// Least time between two warnings that every connection slot is taken.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// What every request handler can reach.
pub struct AppState {
    pub runtime: Arc<Runtime>,
    /// The document store, for the admin data endpoint.
    pub store: Arc<DocumentStore>,
    pub deployments: Arc<Deployments>,
    pub admin_key: AdminKey,
    /// Which browser origins may call which endpoints.
    cors: cors::Cors,
    /// One permit per request being handled (`max_requests_in_flight`).
    requests: Arc<Semaphore>,
    /// One permit per action a client's request runs (`max_concurrent_actions`).
    actions: Semaphore,
    /// The recent executions clients called, for `stream_function_logs`.
    function_log: function_log::FunctionLog,
    /// Convex CLI pushes started and not finished.
    pushes: crate::deploy::convex::push::Pushes,
    /// Where the site listener (HTTP actions) listens, if it does.
    pub site_address: Option<std::net::SocketAddr>,
    /// Query executions the sync connections share.
    query_cache: crate::sync::query_cache::QueryCache,
    /// Mutations sync clients sent, answered, for their resends after a reconnect.
    recent_mutations: crate::sync::recent_mutations::RecentMutations,
    /// One permit per open sync socket (`max_sync_connections`).
    sync_connections: Arc<Semaphore>,
}

/// The body of every answer: whole (`Full`), or, for a stored file, streamed from disk.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// A whole answer as a [`ResponseBody`].
pub(crate) fn boxed(
    response: hyper::Response<http_body_util::Full<Bytes>>,
) -> hyper::Response<ResponseBody> {
    use http_body_util::BodyExt as _;
    response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

/// A request's slot among those being handled (`max_requests_in_flight`).
pub(crate) type RequestPermit<'a> = tokio::sync::SemaphorePermit<'a>;

/// What a call holds while its function runs.
pub(crate) enum CallSlot<'a> {
    /// Queries and mutations keep their request's slot.
    Request(#[allow(dead_code)] RequestPermit<'a>),
    /// An action (which may wait on the network for minutes) gives its request slot back
    /// and holds one of `max_concurrent_actions` instead, waiting for one if need be: a
    /// crowd of slow actions neither fills the request slots that queries need nor holds
    /// more instances than leave room for them.
    Action(#[allow(dead_code)] tokio::sync::SemaphorePermit<'a>),
}

impl AppState {
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<DocumentStore>,
        deployments: Arc<Deployments>,
        admin_key: AdminKey,
        cors: &CorsConfig,
    ) -> Self {
        let requests = Arc::new(Semaphore::new(runtime.limits().max_requests_in_flight));
        let actions = Semaphore::new(runtime.limits().max_concurrent_actions);
        let sync_connections = Arc::new(Semaphore::new(runtime.limits().max_sync_connections));
        Self {
            runtime,
            store,
            deployments,
            admin_key,
            cors: cors::Cors::new(cors),
            requests,
            actions,
            function_log: Default::default(),
            pushes: Default::default(),
            site_address: None,
            query_cache: Default::default(),
            recent_mutations: Default::default(),
            sync_connections,
        }
    }

    /// The slot a call of `kind` runs in (see [`CallSlot`]): an action trades its request
    /// slot for an action slot, waiting for one if every one is taken.
    pub(crate) async fn call_slot<'a>(
        &'a self,
        kind: FunctionKind,
        request: RequestPermit<'a>,
    ) -> CallSlot<'a> {
        if !kind.is_action() {
            return CallSlot::Request(request);
        }
        drop(request);
        let action = self
            .actions
            .acquire()
            .await
            .expect("the action semaphore is never closed");
        CallSlot::Action(action)
    }

    /// How long a request's body may take to arrive.
    fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.runtime.limits().body_read_timeout_ms)
    }
}

/// Serves HTTP/1.1 with keep-alive on `listener` until the task is dropped, holding at
/// most `max_connections` connections open (per listener).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    surface: Surface,
) -> anyhow::Result<()> {
    let max_connections = state.runtime.limits().max_connections;
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut warned_full: Option<Instant> = None;
    loop {
        // A slot first, then a connection: past the limit, new connections wait in the
        // listen backlog (and the kernel refuses them once it is full) instead of taking
        // a file descriptor each. A slot comes back when a connection ends, and every
        // connection ends: the idle, header and body clocks see to it.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                tracing::debug!(
                    max_connections,
                    "all connection slots are taken (max_connections); waiting for a connection to close"
                );
                if warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                    tracing::warn!(
                        max_connections,
                        "all connection slots are taken (max_connections): new connections wait"
                    );
                    warned_full = Some(Instant::now());
                }
                slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the connection semaphore is never closed")
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Running out of file descriptors must not end the server. The slot is
                // dropped and taken again on the next turn.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        // hyper wakes a connection's task itself on every request with a body; taking that
        // wake in the task spares a wake-up of the other worker thread (see self_wake.rs).
        tokio::spawn(self_wake::RepollSelfWakes::new(async move {
            serve_connection(stream, peer, state, surface).await;
            drop(slot);
        }));
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: Arc<AppState>,
    surface: Surface,
) {
    let limits = state.runtime.limits();
    let activity = connection::Activity::new();
    let stream = connection::TimedStream::new(
        stream,
        activity.clone(),
        Duration::from_millis(limits.idle_timeout_ms),
        Duration::from_millis(limits.header_read_timeout_ms),
    );
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        let state = state.clone();
        let busy = activity.busy();
        // The sync endpoint's socket outlives its request: it takes the server and the
        // connection's clocks from here.
        request.extensions_mut().insert(sync::UpgradeContext {
            state: state.clone(),
            activity: activity.clone(),
        });
        async move {
            let response = service::handle(&state, request, surface).await;
            drop(busy);
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    if let Err(err) = http1::Builder::new()
        // `connection::TimedStream` keeps the header clock: hyper's starts while the
        // connection is still idle.
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        // hyper's own message names only the kind of error; its source says what failed.
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        tracing::debug!(%peer, error = %err, ?cause, "connection ended with an error");
    }
}
