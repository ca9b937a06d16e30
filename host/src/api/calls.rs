//! Convex's function-call endpoints: `POST /api/query`, `/api/mutation`, `/api/action`
//! (body `{path, args, format}`) and `POST /api/run/<module path>/<function>` (body
//! `{args, format}`, any kind).
//!
//! A request that cannot be understood is a 4xx `{code, message}`. Once it names a
//! function, every outcome is `200 {"status": "success" | "error", ...}` with the log lines.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use kiln_values::{Value, ValueLimits, json_type_name};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use std::time::{Instant, SystemTime};

use super::auth::{Caller, Principal};
use super::function_log::Execution;
use super::router::{json_body_response, json_response};
use super::{ApiError, AppState, RequestPermit, body, error};
use crate::function_path::FunctionPath;
use std::sync::Arc;

use crate::deploy::Deployment;
use crate::runtime::{
    CallContext, FunctionFailure, FunctionKind, FunctionSpec, LoadedModule, LogLine, Returned,
    Visibility,
};

/// How values are written in a request and its response.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    /// Convex JSON: lossless (`{"$integer": ...}`, `{"$bytes": ...}`).
    ConvexEncodedJson,
    /// Plain JSON: numbers are float64 in arguments; int64 and bytes come back as strings.
    Json,
}

impl Format {
    fn parse(format: Option<&str>) -> Result<Self, ApiError> {
        match format {
            None | Some("convex_encoded_json") => Ok(Format::ConvexEncodedJson),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(ApiError::bad_request(
                "BadFormat",
                format!("unknown format {other:?}: use \"convex_encoded_json\" or \"json\""),
            )),
        }
    }

    /// Decodes a value and checks it against `limits` (size, depth, field names).
    fn decode(self, json: Json, limits: &ValueLimits) -> Result<Value, kiln_values::ValueError> {
        match self {
            Format::ConvexEncodedJson => Value::from_convex_json_with_limits(json, limits),
            Format::Json => Value::from_plain_json_with_limits(json, limits),
        }
    }

    fn encode(self, value: &Value) -> Json {
        match self {
            Format::ConvexEncodedJson => value.to_convex_json(),
            Format::Json => value.to_export_json(),
        }
    }
}

/// The answer of a call that succeeded: `{"logLines": [...], "status": "success",
/// "value": ...}`, fields in name order. Convex JSON is the text the function returned,
/// copied in as it is (see [`Returned`]): no value is built of it.
fn success_response(
    format: Format,
    lines: &[LogLine],
    returned: Returned,
) -> Response<Full<Bytes>> {
    let value = match format {
        Format::ConvexEncodedJson => returned.into_text(),
        Format::Json => returned.value().to_export_json().to_string(),
    };
    let mut body = Vec::with_capacity(value.len() + 64);
    body.extend_from_slice(br#"{"logLines":"#);
    serde_json::to_writer(&mut body, &log_lines(lines))
        .expect("writing JSON into a Vec cannot fail");
    body.extend_from_slice(br#","status":"success","value":"#);
    body.extend_from_slice(value.as_bytes());
    body.push(b'}');
    json_body_response(StatusCode::OK, body)
}

/// The log target of the lines functions log, so an operator can filter them apart
/// (`KILN_LOG=info,kiln::function_log=off`). Each carries the request id (its span) and
/// the function path.
pub const FUNCTION_LOG: &str = "kiln::function_log";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallBody {
    path: String,
    #[serde(default)]
    args: Option<Json>,
    #[serde(default)]
    format: Option<String>,
}

/// `/api/function` (what `npx convex run` and `ConvexHttpClient.function` send).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FunctionBody {
    path: String,
    #[serde(default)]
    args: Option<Json>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    component_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    args: Option<Json>,
    #[serde(default)]
    format: Option<String>,
}

/// `/api/query`, `/api/mutation`, `/api/action`: the function must be of `expected` kind.
pub async fn call<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
    expected: Option<FunctionKind>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (head, body) = request.into_parts();
    let body: CallBody = read_call_body(state, body).await?;
    let caller = authenticate(state, &head.headers).await?;
    let path = FunctionPath::parse(&body.path)
        .map_err(|err| ApiError::bad_request("InvalidFunctionPath", err.to_string()))?;
    execute(
        state,
        permit,
        caller,
        path,
        expected,
        body.args,
        body.format.as_deref(),
    )
    .await
}

/// `/api/function`: any kind, by path, as `npx convex run` calls.
pub async fn function<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (head, body) = request.into_parts();
    let body: FunctionBody = read_call_body(state, body).await?;
    let caller = authenticate(state, &head.headers).await?;
    if let Some(component) = body.component_path.filter(|path| !path.is_empty()) {
        return Err(ApiError::bad_request(
            "ComponentsUnsupported",
            format!("Kiln does not run Convex components yet (componentPath {component:?})"),
        ));
    }
    let path = FunctionPath::parse(&body.path)
        .map_err(|err| ApiError::bad_request("InvalidFunctionPath", err.to_string()))?;
    execute(
        state,
        permit,
        caller,
        path,
        None,
        body.args,
        body.format.as_deref(),
    )
    .await
}

/// A call's body, its shape checked before it is parsed: the arguments sit one level
/// inside the body (two when sent as a one-element array), so the body may nest that much
/// deeper than a value.
async fn read_call_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    body: Incoming,
) -> Result<T, ApiError> {
    let limits = state.runtime.limits();
    body::read_bounded_json(
        body,
        limits.max_call_body_bytes,
        state.body_read_timeout(),
        limits.max_value_depth + 2,
        limits.max_value_elements,
    )
    .await
}

/// `/api/run/<module path>/<function>`: any kind.
pub async fn run<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
    url_path: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let (head, body) = request.into_parts();
    let body: RunBody = read_call_body(state, body).await?;
    let caller = authenticate(state, &head.headers).await?;
    let path = FunctionPath::from_url_path(url_path)
        .map_err(|err| ApiError::bad_request("InvalidFunctionPath", err.to_string()))?;
    execute(
        state,
        permit,
        caller,
        path,
        None,
        body.args,
        body.format.as_deref(),
    )
    .await
}

/// The caller, its token checked against the live deployment's auth providers.
///
/// Called once the body has been read: a refusal sent while the body is still arriving
/// makes hyper close the connection after it, and a client that has already put the
/// connection back in its pool sends its next request into the closed socket ("peer
/// disconnected"; seen in e2e `auth` under PostgreSQL load).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let deployment = state.deployments.current();
    state.admin_key.caller(headers, deployment.auth()).await
}

async fn execute<'a>(
    state: &'a AppState,
    permit: RequestPermit<'a>,
    caller: Caller,
    path: FunctionPath,
    expected: Option<FunctionKind>,
    args: Option<Json>,
    format: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let format = Format::parse(format)?;
    let args = decode_args(state, format, args)?;
    let principal = caller.principal;

    let deployment = state.deployments.current();
    let (module, spec) = match find_function(&deployment, &path, principal, expected) {
        Ok(found) => found,
        Err(message) => return Ok(function_error(format, message, None, &[])),
    };

    let _slot = state.call_slot(spec.kind, permit).await;
    tracing::debug!("calling {path}");
    let context = CallContext::root(deployment.clone(), caller.identity);
    let started = (SystemTime::now(), Instant::now());
    let mut invocation = state
        .runtime
        .invoke(&context, module, &spec.name, spec.kind, &args)
        .await;
    // The instance's memory is reset after the answer has gone out.
    let spent = invocation.spent.take();
    for line in &invocation.log_lines {
        tracing::info!(target: FUNCTION_LOG, function = %path, "{line}");
    }
    state.function_log.record(Execution {
        kind: spec.kind,
        identifier: path.to_string(),
        started: started.0,
        duration: started.1.elapsed(),
        log_lines: &invocation.log_lines,
        error: invocation.outcome.as_ref().err().map(ToString::to_string),
    });
    let response = match invocation.outcome {
        Ok(returned) => success_response(format, &invocation.log_lines, returned),
        Err(FunctionFailure::Raised { message, data }) => {
            function_error(format, message, data.as_ref(), &invocation.log_lines)
        }
        Err(FunctionFailure::Internal(cause)) => {
            // The cause may hold host internals (a wasm backtrace, a storage error): it
            // goes to the log, in this request's span; the caller gets the request id.
            tracing::error!(function = %path, "internal error: {cause}");
            let message = error::internal_message("internal error");
            function_error(format, message, None, &invocation.log_lines)
        }
        Err(failure) => {
            tracing::info!(function = %path, "{failure}");
            function_error(format, failure.to_string(), None, &invocation.log_lines)
        }
    };
    if let Some(spent) = spent {
        spent.drop_after_this_task_waits();
    }
    Ok(response)
}

/// The function a caller with `principal` may call at `path` (of `expected` kind, if
/// given), or the message that says why there is none: the same answers over HTTP and the
/// sync socket.
pub(crate) fn find_function<'d>(
    deployment: &'d Deployment,
    path: &FunctionPath,
    principal: Principal,
    expected: Option<FunctionKind>,
) -> Result<(&'d Arc<LoadedModule>, &'d FunctionSpec), String> {
    let found = deployment
        .function(path)
        .filter(|(_, spec)| spec.visibility == Visibility::Public || principal == Principal::Admin);
    let Some((module, spec)) = found else {
        // An internal function answers a public caller exactly like a missing one.
        let visibility = if principal == Principal::Admin {
            ""
        } else {
            "public "
        };
        return Err(format!(
            "Could not find {visibility}function for '{path}'. Did you forget to run `kiln deploy`?"
        ));
    };
    if let Some(route) = &spec.route {
        return Err(format!(
            "'{path}' is an HTTP action: it answers requests to {route} (on the site address, or under /http on this one), not function calls"
        ));
    }
    if let Some(expected) = expected.filter(|expected| *expected != spec.kind) {
        return Err(format!(
            "'{path}' is {}, not {}: call it with /api/{}",
            spec.kind.with_article(),
            expected.with_article(),
            spec.kind
        ));
    }
    Ok((module, spec))
}

/// Arguments are one object, sent bare or as a one-element array (Convex accepts both).
fn decode_args(state: &AppState, format: Format, args: Option<Json>) -> Result<Value, ApiError> {
    let invalid = |message: String| ApiError::bad_request("InvalidArgs", message);
    let object = match args {
        None | Some(Json::Null) => Json::Object(Map::new()),
        Some(Json::Array(mut items)) if items.len() == 1 => items.remove(0),
        Some(other) => other,
    };
    if !object.is_object() {
        return Err(invalid(format!(
            "args must be an object (or an array holding one object), got {}",
            json_type_name(&object)
        )));
    }
    let limits = state.runtime.limits().value_limits();
    format
        .decode(object, &limits)
        .map_err(|err| invalid(format!("invalid args: {}", err.with_root("args"))))
}

fn function_error(
    format: Format,
    message: String,
    data: Option<&Value>,
    lines: &[LogLine],
) -> Response<Full<Bytes>> {
    let mut body = json!({
        "status": "error",
        "errorMessage": message,
        "logLines": log_lines(lines),
    });
    if let Some(data) = data {
        body["errorData"] = format.encode(data);
    }
    json_response(StatusCode::OK, &body)
}

fn log_lines(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(ToString::to_string).collect()
}
