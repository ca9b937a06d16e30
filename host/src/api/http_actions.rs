//! HTTP actions: requests to the routes modules declare, served on the site listener
//! (`kiln serve --site-listen`, Convex's site port) at their path, and on the main listener
//! under `/http/<path>`.
//!
//! An unmatched route is 404; a function error is 500 with a short text body (the details
//! are in the server log, under the request id); a request body over
//! `max_http_body_bytes` is 413. Everything else, CORS included, is the function's
//! business, as in Convex.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::{ApiError, AppState, RequestPermit, body, calls, error};
use crate::runtime::{CallContext, FunctionFailure, FunctionKind, HttpRequest};

/// The longest error message a failed HTTP action's 500 carries.
const MAX_ERROR_BODY_CHARS: usize = 1024;

/// Serves `request` with the HTTP action routed at `route_path` (its path on the site
/// listener; the part after `/http` on the main one).
pub async fn serve<'a>(
    state: &'a AppState,
    request: Request<Incoming>,
    permit: RequestPermit<'a>,
    route_path: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let deployment = state.deployments.current();
    let method = request.method().as_str().to_string();
    let (path, module, spec) = deployment.route(&method, route_path).map_err(|methods| {
        let hint = if methods.is_empty() {
            String::new()
        } else {
            format!(" (routed there: {})", methods.join(", "))
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NoMatchingRoute",
            format!("no HTTP action is routed at {method} {route_path}{hint}"),
        )
    })?;

    // `Authorization: Bearer <JWT>` makes the user the function's identity, as in
    // Convex. The header may as well be the function's own business (a webhook's secret):
    // a token that does not verify leaves the identity empty instead of refusing.
    let identity = match state
        .admin_key
        .caller(request.headers(), deployment.auth())
        .await
    {
        Ok(caller) => caller.identity,
        Err(err) => {
            tracing::debug!(
                "HTTP action request without a verified identity: {}",
                err.message
            );
            None
        }
    };
    let url = request_url(&request, route_path);
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let limits = state.runtime.limits();
    let body = body::read(
        request.into_body(),
        limits.max_http_body_bytes,
        state.body_read_timeout(),
    )
    .await?;
    let request = HttpRequest {
        method,
        url,
        headers,
        body,
    };

    let _slot = state.call_slot(FunctionKind::HttpAction, permit).await;
    tracing::debug!("HTTP action {path}");
    let context = CallContext::root(deployment.clone(), identity);
    let started = (std::time::SystemTime::now(), std::time::Instant::now());
    let identifier = format!("{} {route_path}", request.method);
    let (outcome, log_lines) = state
        .runtime
        .invoke_http(
            &context,
            module,
            &spec.name,
            request,
            limits.max_http_body_bytes,
        )
        .await;
    for line in &log_lines {
        tracing::info!(target: calls::FUNCTION_LOG, function = %path, "{line}");
    }
    state.function_log.record(super::function_log::Execution {
        kind: FunctionKind::HttpAction,
        identifier,
        started: started.0,
        duration: started.1.elapsed(),
        log_lines: &log_lines,
        error: outcome.as_ref().err().map(ToString::to_string),
    });
    match outcome {
        Ok(returned) => {
            let mut response = Response::builder().status(returned.status);
            for (name, value) in &returned.headers {
                // Checked when the response came back from the function.
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    response = response.header(name, value);
                }
            }
            Ok(response
                .body(Full::new(Bytes::from(returned.body)))
                .expect("status and headers were checked"))
        }
        Err(failure) => {
            let message = match failure {
                FunctionFailure::Internal(cause) => {
                    tracing::error!(function = %path, "internal error: {cause}");
                    error::internal_message("internal error")
                }
                failure => {
                    tracing::info!(function = %path, "{failure}");
                    failure.to_string()
                }
            };
            Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(short(&message))))
                .expect("a valid response"))
        }
    }
}

/// The URL as the function sees it: the host the client addressed, the route path, and
/// the query string (so a function sees the same URL on either listener).
fn request_url(request: &Request<Incoming>, route_path: &str) -> String {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost");
    match request.uri().query() {
        Some(query) => format!("http://{host}{route_path}?{query}"),
        None => format!("http://{host}{route_path}"),
    }
}

fn short(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}
