//! Which handler answers which method and path.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::{
    ApiError, AppState, RequestPermit, ResponseBody, boxed, calls, convex_push, data, deploy,
    environment, function_log, http_actions, storage,
};
use crate::runtime::FunctionKind;

/// Routes one request; every error becomes its response here.
pub async fn route<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
) -> Response<ResponseBody> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    // A stored file's body is streamed; every other answer is whole.
    if method == Method::GET && storage::is_file_path(&path) {
        return storage::download(state, request, &path)
            .await
            .unwrap_or_else(|err| boxed(err.into_response()));
    }
    let result = match (&method, path.as_str()) {
        (&Method::GET, "/version") => Ok(text_response(StatusCode::OK, crate::VERSION)),
        (&Method::GET, "/ready") => return super::ready::ready(state).await,
        (&Method::POST, "/api/query") => {
            calls::call(state, request, permit, Some(FunctionKind::Query)).await
        }
        (&Method::POST, "/api/mutation") => {
            calls::call(state, request, permit, Some(FunctionKind::Mutation)).await
        }
        (&Method::POST, "/api/action") => {
            calls::call(state, request, permit, Some(FunctionKind::Action)).await
        }
        (&Method::POST, "/api/function") => calls::function(state, request, permit).await,
        (&Method::GET, "/api/sync_stats") => super::sync::stats(state, request).await,
        (&Method::GET, sync) if super::sync::is_sync_path(sync) => {
            super::sync::upgrade(state, request).await
        }
        (&Method::GET, "/api/stream_function_logs") => function_log::stream(state, request).await,
        (&Method::POST, run) if run.starts_with("/api/run/") => {
            let function = run["/api/run/".len()..].to_string();
            calls::run(state, request, permit, &function).await
        }
        (_, http) if http.starts_with("/http/") => {
            let route_path = http["/http".len()..].to_string();
            http_actions::serve(state, request, permit, &route_path).await
        }
        (&Method::POST, "/api/deploy") => deploy::deploy(state, request).await,
        (&Method::GET, "/api/functions") => deploy::functions(state, request).await,
        (&Method::GET, "/api/jobs") => super::jobs::list(state, request).await,
        (&Method::POST, "/api/storage/upload") => storage::upload(state, request).await,
        (&Method::POST, "/api/update_environment_variables") => {
            environment::update(state, request).await
        }
        (&Method::GET, "/api/environment_variables") => environment::list(state, request).await,
        (&Method::POST, "/api/get_config_hashes") => {
            convex_push::get_config_hashes(state, request).await
        }
        (&Method::POST, "/api/deploy2/evaluate_schema") => {
            convex_push::evaluate_schema(state, request).await
        }
        (&Method::POST, "/api/deploy2/evaluate_push") => {
            convex_push::evaluate_push(state, request).await
        }
        (&Method::POST, "/api/deploy2/start_push") => convex_push::start_push(state, request).await,
        (&Method::POST, "/api/deploy2/wait_for_schema") => {
            convex_push::wait_for_schema(state, request).await
        }
        (&Method::POST, "/api/deploy2/finish_push") => {
            convex_push::finish_push(state, request).await
        }
        (&Method::POST, "/api/deploy2/report_push_completed") => {
            convex_push::report_push_completed(state, request).await
        }
        (&Method::GET, "/api/v1/get_canonical_urls") => {
            convex_push::get_canonical_urls(state, request).await
        }
        (&Method::GET, data) if data.starts_with("/api/data/") => {
            let table = data["/api/data/".len()..].to_string();
            data::documents(state, request, &table).await
        }
        (_, known) if is_route(known) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no endpoint at {path}"),
        )),
    };
    boxed(result.unwrap_or_else(ApiError::into_response))
}

/// Whether some method is routed at `path` (so another method is a 405, not a 404).
fn is_route(path: &str) -> bool {
    matches!(
        path,
        "/version"
            | "/api/query"
            | "/api/mutation"
            | "/api/action"
            | "/api/function"
            | "/api/stream_function_logs"
            | "/api/deploy"
            | "/api/functions"
            | "/api/jobs"
            | "/api/storage/upload"
            | "/api/update_environment_variables"
            | "/api/environment_variables"
            | "/api/get_config_hashes"
            | "/api/deploy2/evaluate_schema"
            | "/api/deploy2/evaluate_push"
            | "/api/deploy2/start_push"
            | "/api/deploy2/wait_for_schema"
            | "/api/deploy2/finish_push"
            | "/api/deploy2/report_push_completed"
            | "/api/v1/get_canonical_urls"
    ) || path.starts_with("/api/run/")
        || path.starts_with("/api/data/")
}

/// Routes one request to the site listener: every path is an HTTP action's.
pub async fn route_site<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    http_actions::serve(state, request, permit, &path)
        .await
        .unwrap_or_else(ApiError::into_response)
}

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    json_body_response(
        status,
        serde_json::to_vec(body).expect("serializing a response cannot fail"),
    )
}

/// A response whose body is JSON text written already.
pub fn json_body_response(status: StatusCode, bytes: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("a valid response")
}

fn text_response(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("a valid response")
}
