//! `GET /ready`: whether this host can serve now, for a load balancer's health check. It
//! reads the database (one snapshot and its commit timestamp), so a host whose database
//! is down or unreachable answers 503 and comes back by itself once it is reachable.

use std::time::Duration;

use hyper::StatusCode;
use serde::Serialize;

use super::router::json_response;
use super::{AppState, ResponseBody, boxed};

/// How long the database may take to answer before the host counts as not ready.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Readiness {
    ready: bool,
    /// `redb` or `postgres`.
    database: &'static str,
    /// The deployment this host serves.
    deployment_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

pub async fn ready(state: &AppState) -> hyper::Response<ResponseBody> {
    let store = state.store.clone();
    let read = tokio::time::timeout(
        READ_TIMEOUT,
        tokio::task::spawn_blocking(move || store.snapshot().map(|snapshot| snapshot.ts)),
    )
    .await;
    let reason = match read {
        Ok(Ok(Ok(_))) => None,
        Ok(Ok(Err(err))) => {
            tracing::warn!(error = ?err, "not ready: the database cannot be read");
            Some("the database cannot be read".to_string())
        }
        Ok(Err(_)) => Some("the database check failed".to_string()),
        Err(_) => Some(format!(
            "the database did not answer within {} s",
            READ_TIMEOUT.as_secs()
        )),
    };
    let status = match reason {
        None => StatusCode::OK,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = Readiness {
        ready: reason.is_none(),
        database: state.store.kv().kind(),
        deployment_id: state.deployments.current().id(),
        reason,
    };
    boxed(json_response(status, &body))
}
