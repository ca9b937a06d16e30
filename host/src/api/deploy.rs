//! Admin endpoints: `POST /api/deploy` replaces the deployment (modules, tables and auth
//! providers); `GET /api/functions` lists what is deployed. Both need the admin key.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::router::json_response;
use super::{ApiError, AppState, body};
use crate::auth::AuthConfig;
use crate::database::schema::{Schema, TableSchema};
use crate::deploy::NewDeployment;
use crate::deploy::store::JsFile;
use crate::runtime::js::JsApp;
use crate::runtime::{FunctionKind, HttpRoute, Visibility};
use crate::scheduler::crons::CronSpec;

/// `{"modules": {"<module name>": "<base64 of the .wasm>"}, "js": {"<path>.js": "<source>"},
/// "tables": ..., "auth": ...}`: the complete new set of modules. A module left out is
/// removed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    #[serde(default, deserialize_with = "unique_modules")]
    pub modules: BTreeMap<String, String>,
    /// The JavaScript app: ES modules by path (`chat/messages.js`), each file the module of
    /// its path without the extension (`chat/messages:list`).
    #[serde(default, deserialize_with = "unique_js_files")]
    pub js: BTreeMap<String, String>,
    /// Or the JavaScript app `kiln build` made: base64 of the snapshot component.
    #[serde(default, rename = "jsApp")]
    pub js_app: Option<String>,
    /// Tables and their indexes (`[tables]` of kiln.toml); none means no declared tables.
    #[serde(default, deserialize_with = "unique_tables")]
    pub tables: BTreeMap<String, TableSchema>,
    /// Auth providers (`[auth]` of kiln.toml); none means tokens are refused.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Cron jobs by name (`[crons]` of kiln.toml), besides the JS app's `crons.js`.
    #[serde(default)]
    pub crons: BTreeMap<String, CronSpec>,
}

fn unique_modules<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("module"))
}

fn unique_js_files<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("JavaScript file"))
}

fn unique_tables<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, TableSchema>, D::Error> {
    deserializer.deserialize_map(UniqueKeys::new("table"))
}

/// Reads a JSON object whose keys must all differ. serde's maps keep the last of two equal
/// keys, so a deploy naming a module twice would silently deploy one of the two: it is
/// refused instead, naming the key.
struct UniqueKeys<V> {
    /// What a key names, for the error.
    what: &'static str,
    value: PhantomData<V>,
}

impl<V> UniqueKeys<V> {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            value: PhantomData,
        }
    }
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeys<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an object of {}s by name", self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            if entries.contains_key(&name) {
                return Err(serde::de::Error::custom(format!(
                    "{} `{name}` is named twice",
                    self.what
                )));
            }
            entries.insert(name, map.next_value()?);
        }
        Ok(entries)
    }
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
    let js_files = body
        .js
        .iter()
        .map(|(path, source)| {
            let file = JsFile {
                source: source.clone(),
                source_map: None,
            };
            (path.clone(), file)
        })
        .collect();
    let js = match body.js_app {
        Some(_) if !body.js.is_empty() => {
            return Err(ApiError::bad_request(
                "InvalidJs",
                "give the JavaScript app as `js` (sources) or as `jsApp` (built), not both",
            ));
        }
        Some(encoded) => JsApp::Prebuilt(BASE64.decode(encoded.as_bytes()).map_err(|err| {
            ApiError::bad_request("InvalidJs", format!("jsApp is not valid base64: {err}"))
        })?),
        None => JsApp::Sources(body.js),
    };
    let report = state
        .deployments
        .deploy(NewDeployment {
            modules,
            js,
            js_files,
            schema,
            auth: body.auth,
            crons: body.crons,
        })
        .await?;
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
    /// The args validator as Convex's validator JSON; null when not checked.
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    /// The return-value validator as Convex's validator JSON; null when not checked.
    #[serde(default)]
    pub returns: Option<serde_json::Value>,
    /// Both, readably: `{name: string} -> string`.
    #[serde(default)]
    pub signature: String,
    /// Where an HTTP action is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<HttpRoute>,
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
            args: spec.args.as_ref().map(|validator| validator.to_json()),
            returns: spec.returns.as_ref().map(|validator| validator.to_json()),
            signature: spec.signature(),
            route: spec.route.clone(),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "deploymentId": deployment.id(), "functions": functions }),
    ))
}
