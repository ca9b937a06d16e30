//! The HTTP API: Convex's function-call endpoints, deploy and admin endpoints. The only
//! layer that speaks HTTP.

mod auth;
mod body;
mod calls;
mod data;
mod deploy;
mod error;
mod router;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

pub use auth::AdminKey;
pub use deploy::FunctionListing;
pub use error::ApiError;
pub use service::RequestId;

use crate::database::store::DocumentStore;
use crate::deploy::Deployments;
use crate::runtime::Runtime;

/// A client must send a request's headers within this time (slow-loris protection).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What every request handler can reach.
pub struct AppState {
    pub runtime: Arc<Runtime>,
    /// The document store, for the admin data endpoint.
    pub store: Arc<DocumentStore>,
    pub deployments: Arc<Deployments>,
    pub admin_key: AdminKey,
}

/// Serves HTTP/1.1 with keep-alive on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Running out of file descriptors must not end the server.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(serve_connection(stream, peer, state));
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, state: Arc<AppState>) {
    let service = service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(service::handle(&state, request).await) }
    });
    if let Err(err) = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}
