//! Admin endpoints for the deployment's environment variables:
//! `POST /api/update_environment_variables` (Convex's, as its CLI sends it:
//! `{"changes": [{"name", "value"?}]}`, a missing value removes) and
//! `GET /api/environment_variables` (`{"variables": {name: value}}`).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;

use super::router::json_response;
use super::{ApiError, AppState, body};
use crate::deploy::environment::{Change, UpdateError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    changes: Vec<Change>,
}

/// Bodies are a few variables: far below the deploy limit.
const MAX_BODY_BYTES: usize = 1 << 20;

pub async fn update(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let body: UpdateRequest = body::read_json(
        request.into_body(),
        MAX_BODY_BYTES,
        state.body_read_timeout(),
    )
    .await?;
    let variables = state
        .deployments
        .update_environment(body.changes)
        .await
        .map_err(|err| match err {
            UpdateError::Invalid(err) => {
                ApiError::bad_request("InvalidEnvironmentVariable", err.to_string())
            }
            UpdateError::Store(err) => ApiError::internal(&err),
        })?;
    tracing::info!(names = ?variables.keys().collect::<Vec<_>>(), "environment variables updated");
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}

pub async fn list(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let variables = state.runtime.environment_map();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "variables": variables }),
    ))
}
