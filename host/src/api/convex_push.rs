//! The endpoints the official Convex CLI pushes through (`npx convex deploy`, `dev`,
//! `codegen`) with `CONVEX_SELF_HOSTED_URL` pointing at Kiln, in the shapes the CLI
//! validates (`convex/src/cli/lib/deployApi/*.ts` of the supported version):
//!
//! * `POST /api/get_config_hashes`: the deployed files' hashes, so the CLI sends only
//!   the changed ones;
//! * `POST /api/deploy2/evaluate_schema`: what the schema change would cost (nothing to
//!   warn about: Kiln builds indexes in the background);
//! * `POST /api/deploy2/evaluate_push`: the schema change a push would make (the CLI's
//!   fallback when `evaluate_schema` fails);
//! * `POST /api/deploy2/start_push`: evaluates and stages the app, answers its analysis;
//! * `POST /api/deploy2/wait_for_schema`: the schema's readiness;
//! * `POST /api/deploy2/finish_push`: deploys what was staged, answers the diff;
//! * `POST /api/deploy2/report_push_completed`: the CLI's timings (ignored);
//! * `GET /api/v1/get_canonical_urls`: the API and HTTP-actions URLs.
//!
//! Every one needs the admin key, in the `Authorization: Convex <key>` header (or, on the
//! push endpoints, as `adminKey` in the body). Push bodies may be brotli-compressed.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, HOST};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use super::router::json_response;
use super::{ApiError, AppState, body};
use crate::database::schema::Schema;
use crate::deploy::convex::push::{self, PushError, SchemaCheck, StagedPush};
use crate::deploy::store::JsFile;
use crate::runtime::{FunctionKind, Visibility};

/// The Convex CLI versions Kiln accepts pushes from: the minor version the tests run
/// (`tests/convex-cli/package.json`), any patch.
pub const SUPPORTED_CLI: (u64, u64) = (1, 48);

/// A module as the CLI sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleConfig {
    path: String,
    source: String,
    #[serde(default)]
    source_map: Option<String>,
    environment: String,
}

/// A module the CLI did not send because its hash matches the deployed one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleHashConfig {
    path: String,
    environment: String,
    sha256: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppDefinition {
    #[serde(default)]
    dependencies: Vec<String>,
    schema: Option<ModuleConfig>,
    changed_modules: Vec<ModuleConfig>,
    unchanged_module_hashes: Vec<ModuleHashConfig>,
    udf_server_version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartPushRequest {
    admin_key: Option<String>,
    /// `npx convex deploy --dry-run`: analyse only; no index is built for it.
    #[serde(default)]
    dry_run: bool,
    app_definition: AppDefinition,
    #[serde(default)]
    component_definitions: Vec<Json>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FinishPushRequest {
    admin_key: Option<String>,
    start_push: StartPushEcho,
    #[serde(default)]
    dry_run: bool,
}

/// The part of its `start_push` answer the CLI sends back that Kiln reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartPushEcho {
    kiln_push_id: Option<u64>,
    #[serde(default)]
    schema_change: Json,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitForSchemaRequest {
    admin_key: Option<String>,
    schema_change: SchemaChangeEcho,
    timeout_ms: Option<u64>,
}

/// The `schemaChange` of a `start_push` answer, as the CLI sends it back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaChangeEcho {
    kiln_push_id: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdminKeyInBody {
    admin_key: Option<String>,
}

/// `POST /api/get_config_hashes`
pub async fn get_config_hashes(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    if let Some(refused) = refuse_unsupported_cli(&headers) {
        return Ok(refused);
    }
    let body: AdminKeyInBody = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    let deployment = state.deployments.current();
    let module_hashes: Vec<Json> = deployment
        .record
        .js_files
        .iter()
        .map(|(path, file)| json!({ "path": path, "hash": file.sha256, "environment": "isolate" }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "config": { "functions": "convex/", "authInfo": [] },
            "moduleHashes": module_hashes,
            "nodeDependencies": [],
            "udfServerVersion": null,
            "nodeVersion": null,
        }),
    ))
}

/// `POST /api/deploy2/evaluate_schema`: the CLI asks before a push whether it drops
/// indexes of large tables or adds ones that would backfill long; Kiln reports nothing to
/// confirm (it builds indexes while serving).
pub async fn evaluate_schema(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    if let Some(refused) = refuse_unsupported_cli(&headers) {
        return Ok(refused);
    }
    let body: AdminKeyInBody = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "componentSchemaEvaluations": {}, "newComponentDefinitions": [] }),
    ))
}

/// `POST /api/deploy2/evaluate_push`: what the push would change in the schema, without
/// staging anything (the CLI asks only when `evaluate_schema` failed).
pub async fn evaluate_push(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    if let Some(refused) = refuse_unsupported_cli(&headers) {
        return Ok(refused);
    }
    let body: StartPushRequest = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    let schema_source = body.app_definition.schema.map(|module| JsFile {
        source: module.source,
        source_map: module.source_map,
    });
    let schema = push::evaluate_schema(&state.runtime, schema_source.as_ref())
        .await
        .map_err(push_error)?;
    let live = state.deployments.current().record.schema.clone();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "schemaChange": {
            "allocatedComponentIds": null,
            "schemaIds": null,
            "indexDiffs": { "": index_diff(&live, &schema) },
        }}),
    ))
}

/// `POST /api/deploy2/start_push`
pub async fn start_push(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    if let Some(refused) = refuse_unsupported_cli(&headers) {
        return Ok(refused);
    }
    let body: StartPushRequest = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    let app = body.app_definition;
    if !app.dependencies.is_empty() || !body.component_definitions.is_empty() {
        return Err(ApiError::bad_request(
            "ComponentsUnsupported",
            format!(
                "Kiln does not run Convex components yet; convex.config.ts uses: {}",
                app.dependencies.join(", ")
            ),
        ));
    }
    let node_modules: Vec<&str> = app
        .changed_modules
        .iter()
        .filter(|module| module.environment != "isolate")
        .map(|module| module.path.as_str())
        .chain(
            app.unchanged_module_hashes
                .iter()
                .filter(|module| module.environment != "isolate")
                .map(|module| module.path.as_str()),
        )
        .collect();
    if !node_modules.is_empty() {
        return Err(ApiError::bad_request(
            "DeploymentNotConfiguredForNodeActions",
            format!(
                "Kiln does not run \"use node\" modules: {}. Kiln runs every function in its own JavaScript sandbox, without Node.js; remove \"use node\" from a module that does not need Node's APIs.",
                node_modules.join(", ")
            ),
        ));
    }
    let files = push_files(state, app.changed_modules, app.unchanged_module_hashes).await?;
    let schema_source = app.schema.map(|module| JsFile {
        source: module.source,
        source_map: module.source_map,
    });
    let staged = push::start(
        &state.runtime,
        &state.deployments,
        files,
        schema_source.as_ref(),
        !body.dry_run,
    )
    .await
    .map_err(push_error)?;
    let old_schema = state.deployments.current().record.schema.clone();
    let index_diff = index_diff(&old_schema, &staged.schema);
    let analysis = analysis(&staged, &app.udf_server_version);
    let app_auth = app_auth(&staged);
    let (push_id, staged) = state.pushes.stage(staged);
    let routes: Vec<Json> = staged
        .functions
        .values()
        .flatten()
        .filter_map(|spec| spec.route.as_ref())
        .map(|route| json!({ "method": route.method, "path": route.path }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "environmentVariables": state.runtime.environment_map(),
            "externalDepsId": null,
            "componentDefinitionPackages": {},
            "appAuth": app_auth,
            "analysis": { "": analysis },
            "app": {
                "definitionPath": "",
                "componentPath": "",
                "args": {},
                "childComponents": {},
                "httpRoutes": {
                    "httpModuleRoutes": if routes.is_empty() { Json::Null } else { Json::Array(routes) },
                    "mounts": [],
                },
                "exports": {},
            },
            "schemaChange": {
                "allocatedComponentIds": null,
                "schemaIds": null,
                "indexDiffs": { "": index_diff },
                // Comes back in wait_for_schema: whose schema check to wait for.
                "kilnPushId": push_id,
            },
            // Comes back in finish_push's `startPush`: which staged push to deploy.
            "kilnPushId": push_id,
        }),
    ))
}

/// `POST /api/deploy2/wait_for_schema`: waits (up to the CLI's `timeoutMs`) for the
/// push's schema to be ready, which `start_push` began in the background: the stored
/// documents checked against the new validators, the new indexes built. The deploy in
/// `finish_push` checks the documents written since.
pub async fn wait_for_schema(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    let body: WaitForSchemaRequest = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    let Some(staged) = body
        .schema_change
        .kiln_push_id
        .and_then(|id| state.pushes.get(id))
    else {
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "type": "complete" }),
        ));
    };
    let wait = Duration::from_millis(body.timeout_ms.unwrap_or(10_000).min(MAX_SCHEMA_WAIT_MS));
    let answer = match staged.schema_check_within(wait).await {
        SchemaCheck::Passed => json!({ "type": "complete" }),
        SchemaCheck::Failed { table, message } => json!({
            "type": "failed",
            "error": message,
            "componentPath": "",
            "tableName": table,
        }),
        SchemaCheck::Running {
            validation_complete,
            indexes_complete,
            indexes_total,
        } => json!({
            "type": "inProgress",
            "components": { "": {
                "schemaValidationComplete": validation_complete,
                "indexesComplete": indexes_complete,
                "indexesTotal": indexes_total,
            }},
        }),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// The longest `wait_for_schema` holds a request.
const MAX_SCHEMA_WAIT_MS: u64 = 30_000;

/// `POST /api/deploy2/finish_push`
pub async fn finish_push(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    if let Some(refused) = refuse_unsupported_cli(&headers) {
        return Ok(refused);
    }
    let body: FinishPushRequest = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    let empty_diff = || json!({ "authDiff": { "added": [], "removed": [] }, "definitionDiffs": {}, "componentDiffs": {} });
    if body.dry_run {
        return Ok(json_response(StatusCode::OK, &empty_diff()));
    }
    let staged = body
        .start_push
        .kiln_push_id
        .and_then(|id| state.pushes.take(id))
        .ok_or_else(|| {
            ApiError::bad_request(
                "PushExpired",
                "this push was not started on this server, or it finished already (the server may have restarted): push again",
            )
        })?;
    let old = state.deployments.current();
    let old_providers: Vec<String> = old
        .auth()
        .providers()
        .map(|provider| provider.describe())
        .collect();
    let report = push::finish(&state.deployments, &staged)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(
        deployment = report.deployment_id,
        added = ?report.added,
        updated = ?report.updated,
        removed = ?report.removed,
        "deployed a Convex CLI push"
    );
    let as_file = |names: &[String]| -> Vec<String> {
        names.iter().map(|name| format!("{name}.js")).collect()
    };
    let added_providers: Vec<&String> = report
        .auth_providers
        .iter()
        .filter(|provider| !old_providers.contains(provider))
        .collect();
    let removed_providers: Vec<&String> = old_providers
        .iter()
        .filter(|provider| !report.auth_providers.contains(provider))
        .collect();
    let index_diff = body
        .start_push
        .schema_change
        .pointer("/indexDiffs/")
        .cloned()
        .unwrap_or_else(|| json!({ "added_indexes": [], "removed_indexes": [] }));
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "authDiff": { "added": added_providers, "removed": removed_providers },
            "definitionDiffs": {},
            "componentDiffs": { "": {
                "diffType": { "type": "modify" },
                "moduleDiff": { "added": as_file(&report.added), "removed": as_file(&report.removed) },
                "udfConfigDiff": null,
                "cronDiff": { "added": [], "updated": [], "deleted": [] },
                "indexDiff": index_diff,
                "schemaDiff": null,
            }},
        }),
    ))
}

/// `POST /api/deploy2/report_push_completed`: the CLI's timings of the push.
pub async fn report_push_completed(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let headers = request.headers().clone();
    let body: AdminKeyInBody = read_body(state, request).await?;
    require_admin(state, &headers, body.admin_key.as_deref())?;
    Ok(json_response(StatusCode::OK, &Json::Null))
}

/// `GET /api/v1/get_canonical_urls`: where clients call functions (this server, as the
/// request reached it) and where HTTP actions are served (the site listener, or `/http`).
pub async fn get_canonical_urls(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    if let Some(refused) = refuse_unsupported_cli(request.headers()) {
        return Ok(refused);
    }
    state.admin_key.require_admin(request.headers())?;
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let cloud = format!("http://{host}");
    let site = match state.site_address {
        Some(site) => {
            let hostname = host
                .rsplit_once(':')
                .map_or(host.as_str(), |(name, _)| name);
            format!("http://{hostname}:{}", site.port())
        }
        None => format!("{cloud}/http"),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "convexCloudUrl": cloud, "convexSiteUrl": site }),
    ))
}

/// The admin key in the `Authorization` header, or else in the body.
fn require_admin(
    state: &AppState,
    headers: &HeaderMap,
    in_body: Option<&str>,
) -> Result<(), ApiError> {
    match (headers.contains_key(AUTHORIZATION), in_body) {
        (false, Some(key)) if state.admin_key.matches(key) => Ok(()),
        (false, Some(_)) => Err(ApiError::unauthorized("the admin key is wrong")),
        _ => state.admin_key.require_admin(headers),
    }
}

/// Reads a JSON body, brotli-compressed (`Content-Encoding: br`) or not, within the
/// deploy limit (compressed and uncompressed).
async fn read_body<T: DeserializeOwned>(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let limit = state.runtime.limits().max_deploy_body_bytes;
    let brotli = request
        .headers()
        .get(CONTENT_ENCODING)
        .is_some_and(|encoding| encoding.as_bytes().eq_ignore_ascii_case(b"br"));
    let bytes = body::read(request.into_body(), limit, state.body_read_timeout()).await?;
    let bytes = if brotli {
        let mut decompressed = Vec::new();
        brotli_decompressor::Decompressor::new(bytes.as_ref(), 64 << 10)
            .take(limit as u64 + 1)
            .read_to_end(&mut decompressed)
            .map_err(|err| {
                ApiError::bad_request(
                    "BadRequestBody",
                    format!("the request body is not valid brotli: {err}"),
                )
            })?;
        if decompressed.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                format!("the decompressed request body is over the limit of {limit} bytes"),
            ));
        }
        Bytes::from(decompressed)
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(
            "BadJsonBody",
            format!("the request body is not valid JSON for this endpoint: {err}"),
        )
    })
}

/// The app's files: the changed ones as sent, the unchanged ones from the deployment.
async fn push_files(
    state: &AppState,
    changed: Vec<ModuleConfig>,
    unchanged: Vec<ModuleHashConfig>,
) -> Result<BTreeMap<String, JsFile>, ApiError> {
    let mut files = BTreeMap::new();
    for module in changed {
        let file = JsFile {
            source: module.source,
            source_map: module.source_map,
        };
        files.insert(module.path, file);
    }
    let deployment = state.deployments.current();
    for module in unchanged {
        let missing = || {
            ApiError::new(
                StatusCode::CONFLICT,
                "MissingExistingModule",
                format!(
                    "{} was sent as unchanged, but this deployment does not have it with hash {}: push again",
                    module.path, module.sha256
                ),
            )
        };
        let deployed = deployment
            .record
            .js_files
            .get(&module.path)
            .filter(|file| file.sha256 == module.sha256)
            .ok_or_else(missing)?;
        let file = state
            .deployments
            .stored_js_file(deployed.sha256.clone())
            .await
            .map_err(|err| ApiError::internal(&err))?
            .ok_or_else(missing)?;
        files.insert(module.path, file);
    }
    Ok(files)
}

/// What `analysis[""]` says of the app: its functions by module file.
fn analysis(staged: &StagedPush, server_version: &str) -> Json {
    let functions: serde_json::Map<String, Json> = staged
        .functions
        .iter()
        .map(|(module, specs)| {
            let listed: Vec<Json> = specs
                .iter()
                .filter_map(|spec| {
                    let udf_type = match spec.kind {
                        FunctionKind::Query => "Query",
                        FunctionKind::Mutation => "Mutation",
                        FunctionKind::Action => "Action",
                        FunctionKind::HttpAction => return None,
                    };
                    let visibility = match spec.visibility {
                        Visibility::Public => "public",
                        Visibility::Internal => "internal",
                    };
                    Some(json!({
                        "name": spec.name,
                        "pos": null,
                        "udfType": udf_type,
                        "visibility": { "kind": visibility },
                        "args": spec.args.as_ref().map(|args| args.to_json_string()),
                        "returns": spec.returns.as_ref().map(|returns| returns.to_json_string()),
                    }))
                })
                .collect();
            let entry = json!({
                "functions": listed,
                "httpRoutes": null,
                "cronSpecs": null,
                "sourceMapped": null,
            });
            (format!("{module}.js"), entry)
        })
        .collect();
    json!({
        "definition": {
            "path": "",
            "definitionType": { "type": "app" },
            "childComponents": [],
            "httpMounts": {},
            "exports": { "type": "branch", "branch": [] },
        },
        "schema": null,
        "functions": functions,
        "udfConfig": {
            "serverVersion": server_version,
            "importPhaseRngSeed": null,
            "importPhaseUnixTimestamp": null,
        },
    })
}

/// The auth providers as `appAuth` lists them.
fn app_auth(staged: &StagedPush) -> Vec<Json> {
    staged
        .auth
        .providers
        .iter()
        .map(|provider| match provider.kind.as_deref() {
            Some("customJwt") => json!({
                "type": "customJwt",
                "applicationID": provider.application_id,
                "issuer": provider.issuer,
                "jwks": provider.jwks,
                "algorithm": provider.algorithm,
            }),
            _ => json!({ "applicationID": provider.application_id, "domain": provider.domain }),
        })
        .collect()
}

/// The database indexes a push adds and removes, as the CLI prints them: `table.index`
/// with its fields and the implicit `_creationTime` last. A changed index is removed and
/// added under its name, as in Convex.
fn index_diff(old: &Schema, new: &Schema) -> Json {
    let entries = |schema: &Schema| -> BTreeMap<String, Vec<String>> {
        schema
            .tables
            .iter()
            .flat_map(|(table, definition)| {
                definition.indexes.iter().map(move |(index, fields)| {
                    let mut fields = fields.clone();
                    fields.push("_creationTime".to_string());
                    (format!("{table}.{index}"), fields)
                })
            })
            .collect()
    };
    let (old, new) = (entries(old), entries(new));
    let describe = |(name, fields): (&String, &Vec<String>)| json!({ "name": name, "type": "database", "fields": fields, "staged": false });
    let added: Vec<Json> = new
        .iter()
        .filter(|(name, fields)| old.get(*name) != Some(*fields))
        .map(describe)
        .collect();
    let removed: Vec<Json> = old
        .iter()
        .filter(|(name, fields)| new.get(*name) != Some(*fields))
        .map(describe)
        .collect();
    json!({ "added_indexes": added, "removed_indexes": removed })
}

fn push_error(err: PushError) -> ApiError {
    match err {
        PushError::Invalid { code, message } => ApiError::bad_request(code, message),
        PushError::Deploy(err) => ApiError::from(err),
    }
}

/// A CLI outside [`SUPPORTED_CLI`] gets a 400 the CLI prints as just its message (the
/// deprecation headers make it stop at once). Requests without `Convex-Client` (not the
/// CLI) pass.
fn refuse_unsupported_cli(headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
    let client = headers.get("convex-client")?.to_str().ok()?;
    let version = client.strip_prefix("npm-cli-")?;
    let mut parts = version.split(['.', '-']).map(|part| part.parse::<u64>());
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return None;
    };
    if (major, minor) == SUPPORTED_CLI {
        return None;
    }
    let (supported_major, supported_minor) = SUPPORTED_CLI;
    let message = format!(
        "Kiln accepts pushes from the Convex CLI {supported_major}.{supported_minor}.x; this is the Convex CLI {version}. Install it with `npm install convex@{supported_major}.{supported_minor}`"
    );
    let mut response =
        ApiError::bad_request("ClientVersionUnsupported", message.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-convex-deprecation-state",
        hyper::header::HeaderValue::from_static("Deprecated"),
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&message) {
        headers.insert("x-convex-deprecation-message", value);
    }
    Some(response)
}
