//! `wasi:http/outgoing-handler` (with `wasi:http/types`), for components built with a
//! standard wasi-http client, under exactly the rules of `kiln:platform/http`: the same
//! kind check ([`fetch_permitted`]), the same policy and client (`crate::fetch`), the same
//! limits. wasmtime-wasi-http does the WIT plumbing; its send hook is ours, so no request
//! leaves through any other path.
//!
//! wasi:http does not follow redirects (the guest sees the 3xx), so neither does this.
//! Refusals reach the guest as `error-code.internal-error` carrying the same message as
//! `fetch`'s; timeouts and size limits as their standard error codes.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{
    Error as WasiError, RequestOptions, WasiBody, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::http::{fetch_permitted, open_response};
use crate::fetch::body::{BoxError, CappedBody};
use crate::fetch::{FetchClient, FetchError, FetchErrorKind, FetchRequest, RedirectMode};
use crate::runtime::{FunctionKind, InvocationState};

/// The hooks wasmtime-wasi-http calls for one invocation.
pub(crate) struct Hooks {
    kind: FunctionKind,
    client: Arc<FetchClient>,
    open_responses: Arc<Semaphore>,
}

impl Hooks {
    pub(crate) fn new(
        kind: FunctionKind,
        client: Arc<FetchClient>,
        open_responses: Arc<Semaphore>,
    ) -> Self {
        Self {
            kind,
            client,
            open_responses,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.wasi,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), WasiError>> + Send>,
    ),
    WasiError,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), WasiError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        // Decided now, while the invocation's state is at hand; reported when the guest
        // looks at the response.
        let permitted = fetch_permitted(self.kind)
            .and_then(|()| open_response(&self.open_responses, &self.client));
        let client = self.client.clone();
        Box::new(async move {
            let open = permitted.map_err(|message| WasiError::InternalError(Some(message)))?;
            let request = convert_request(request, &client)?;
            let response = client
                .send(request)
                .await
                .map_err(|err| wasi_error(&err))?
                .response;
            let limit = client.config().max_response_bytes;
            let body_client = client.clone();
            let response = http::Response::<reqwest::Body>::from(response).map(move |body| {
                CappedBody::new(body, limit, response_too_large, open)
                    .map_err(move |err| body_error(&body_client, err))
                    .boxed_unsync()
            });
            Ok((
                response,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// A wasi:http request as the client sends it: the URL and headers wasi:http built, the
/// body streamed from the guest and counted against `fetch.max_request_body_bytes`.
fn convert_request(
    request: http::Request<WasiBody>,
    client: &FetchClient,
) -> Result<FetchRequest, WasiError> {
    let (mut parts, body) = request.into_parts();
    let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|err| {
        WasiError::InternalError(Some(format!("fetch: invalid URL {}: {err}", parts.uri)))
    })?;
    // wasi:http adds `host` from the authority; the client writes it from the URL.
    parts.headers.remove(http::header::HOST);
    let body = CappedBody::new(
        body,
        client.config().max_request_body_bytes,
        request_too_large,
        (),
    );
    Ok(FetchRequest {
        method: parts.method,
        url,
        headers: parts.headers,
        body: Some(reqwest::Body::wrap(body)),
        redirect: RedirectMode::Manual,
    })
}

fn request_too_large(limit: u64) -> BoxError {
    Box::new(SizeLimit::Request(limit))
}

fn response_too_large(limit: u64) -> BoxError {
    Box::new(SizeLimit::Response(limit))
}

#[derive(Debug, thiserror::Error)]
enum SizeLimit {
    #[error("the request body is over the limit of {0} bytes (fetch.max_request_body_bytes)")]
    Request(u64),
    #[error("the response body is over the limit of {0} bytes (fetch.max_response_bytes)")]
    Response(u64),
}

fn wasi_error(err: &FetchError) -> WasiError {
    match err.kind {
        FetchErrorKind::ConnectTimeout => WasiError::ConnectionTimeout,
        FetchErrorKind::Timeout => WasiError::HttpResponseTimeout,
        FetchErrorKind::ResponseTooLarge => WasiError::HttpResponseBodySize(None),
        FetchErrorKind::Refused | FetchErrorKind::Invalid | FetchErrorKind::Failed => {
            WasiError::InternalError(Some(err.message.clone()))
        }
    }
}

/// An error while the guest reads the response body.
fn body_error(client: &FetchClient, err: BoxError) -> WasiError {
    if let Some(limit) = err.downcast_ref::<SizeLimit>() {
        return match limit {
            SizeLimit::Response(limit) => WasiError::HttpResponseBodySize(Some(*limit)),
            SizeLimit::Request(limit) => WasiError::HttpRequestBodySize(Some(*limit)),
        };
    }
    match err.downcast::<reqwest::Error>() {
        Ok(err) => wasi_error(&client.error(&err)),
        Err(other) => WasiError::InternalError(Some(format!("fetch failed: {other}"))),
    }
}
