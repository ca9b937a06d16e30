//! Running an HTTP action: the request in, the response out (`module.call-http`), with
//! the powers and limits of an action.

use std::sync::Arc;

use bytes::Bytes;

use super::bindings::kiln::platform::types as wit;
use super::call::CallContext;
use super::invocation::DbAccess;
use super::{FunctionFailure, FunctionKind, LoadedModule, LogLine, Runtime};

/// An HTTP request as an HTTP action receives it.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    /// The whole URL the client asked for.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The response an HTTP action returned.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Runtime {
    /// Runs the HTTP action `function` of `module` on `request`. Its response body may be
    /// at most `max_body_bytes`.
    pub async fn invoke_http(
        self: &Arc<Self>,
        context: &CallContext,
        module: &LoadedModule,
        function: &str,
        request: HttpRequest,
        max_body_bytes: usize,
    ) -> (Result<HttpResponse, FunctionFailure>, Vec<LogLine>) {
        let function = module.guest_name(function);
        let request = wit::HttpRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body.into(),
        };
        let (outcome, log_lines, _db) = self
            .with_instance(
                &module.pre,
                context.clone(),
                FunctionKind::HttpAction,
                DbAccess::Denied,
                None,
                move |store, instance| {
                    Box::pin(async move {
                        instance
                            .kiln_platform_module()
                            .call_call_http(store, &function, &request)
                            .await
                    })
                },
            )
            .await;
        let outcome = outcome.and_then(|returned| match returned {
            Ok(response) => check_response(response, max_body_bytes),
            Err(error) => Err(self.decode_error(error)),
        });
        (outcome, log_lines)
    }
}

/// A response an HTTP server could send: a real status, headers HTTP can carry, a body
/// within the limit.
fn check_response(
    response: wit::HttpResponse,
    max_body_bytes: usize,
) -> Result<HttpResponse, FunctionFailure> {
    let invalid = |message: String| FunctionFailure::InvalidResult(message);
    if !(100..=999).contains(&response.status) || (100..200).contains(&response.status) {
        return Err(invalid(format!(
            "invalid HTTP response: status {} (use 200 to 999, not 1xx)",
            response.status
        )));
    }
    if response.body.len() > max_body_bytes {
        return Err(invalid(format!(
            "invalid HTTP response: the body is {} bytes, over the limit of {max_body_bytes} bytes (max_http_body_bytes)",
            response.body.len()
        )));
    }
    for (name, value) in &response.headers {
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || hyper::header::HeaderValue::from_str(value).is_err()
        {
            return Err(invalid(format!(
                "invalid HTTP response: header {name:?} cannot be sent"
            )));
        }
    }
    Ok(HttpResponse {
        status: response.status,
        headers: response.headers,
        body: response.body,
    })
}
