//! Admin endpoints: `POST /api/deploy` replaces the deployment; `GET /api/functions`
//! lists what is deployed. Both need the admin key.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::router::json_response;
use super::{ApiError, AppState, body};
use crate::database::schema::{Schema, TableSchema};
use crate::runtime::{FunctionKind, Visibility};

/// `{"modules": {"<module name>": "<base64 of the .wasm>"}}`: the complete new set of
/// modules. A module left out is removed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub modules: BTreeMap<String, String>,
    /// Tables and their indexes (`[tables]` of kiln.toml); none means no declared tables.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSchema>,
}

pub async fn deploy(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let limit = state.runtime.limits().max_deploy_body_bytes;
    let body: DeployRequest =
        body::read_json(request.into_body(), limit, state.body_read_timeout()).await?;
    let mut modules = BTreeMap::new();
    for (name, encoded) in body.modules {
        let bytes = BASE64.decode(encoded.as_bytes()).map_err(|err| {
            ApiError::bad_request(
                "InvalidModule",
                format!("module `{name}`: its bytes are not valid base64: {err}"),
            )
        })?;
        modules.insert(name, bytes);
    }
    let schema = Schema {
        tables: body.tables,
    };
    let report = state.deployments.deploy(modules, schema).await?;
    tracing::info!(
        deployment = report.deployment_id,
        added = ?report.added,
        updated = ?report.updated,
        removed = ?report.removed,
        "deployed"
    );
    Ok(json_response(StatusCode::OK, &report))
}

/// One row of `GET /api/functions`.
#[derive(Serialize, Deserialize)]
pub struct FunctionListing {
    pub path: String,
    pub kind: FunctionKind,
    pub visibility: Visibility,
}

pub async fn functions(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let deployment = state.deployments.current();
    let functions: Vec<FunctionListing> = deployment
        .functions()
        .map(|(path, spec)| FunctionListing {
            path: path.to_string(),
            kind: spec.kind,
            visibility: spec.visibility,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "deploymentId": deployment.id(), "functions": functions }),
    ))
}
