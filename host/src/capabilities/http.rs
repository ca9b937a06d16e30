//! `kiln:platform/http`: outbound `fetch`, for actions only.
//!
//! Who may call it: actions (and, when they come, HTTP actions): [`fetch_permitted`] is
//! the one rule, which `wasi:http` (`wasi_http.rs`) applies too. Queries and mutations
//! must be deterministic, so their `fetch` fails with an error naming the rule. What a
//! request may reach is the server's policy (`crate::fetch`). Limits: a call holds at most
//! `fetch.max_open_responses` bodies at once; a body is read in chunks no larger than the
//! network delivered, counted against `fetch.max_response_bytes`; waiting on the network
//! stops at the call's own deadline, which then reports the call's time limit.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Resource;
use wasmtime_wasi_http::WasiHttpCtx;

use super::wasi_http::Hooks;
use crate::fetch::body::BodyReader;
use crate::fetch::request::latin1_text;
use crate::fetch::{FetchClient, FetchRequest, FetchResponse, RedirectMode};
use crate::runtime::bindings::kiln::platform::http::{self as wit, Host, HostResponseBody};
use crate::runtime::{FunctionKind, InvocationState};

/// Whether a function of `kind` may make outbound requests, through either interface.
pub(crate) fn fetch_permitted(kind: FunctionKind) -> Result<(), String> {
    match kind {
        FunctionKind::Action | FunctionKind::HttpAction => Ok(()),
        FunctionKind::Query | FunctionKind::Mutation => Err(format!(
            "fetch is not allowed in {}: only actions and HTTP actions may make outbound requests ({kind}s must be deterministic); call an action instead",
            kind.with_article()
        )),
    }
}

/// The body of a response the guest holds; it keeps its slot of `max_open_responses`.
pub struct ResponseBody {
    reader: BodyReader,
    _open: OwnedSemaphorePermit,
}

/// What one invocation needs to make outbound requests, through either interface.
pub(crate) struct HttpState {
    client: Arc<FetchClient>,
    /// One permit per response whose body the call holds (`fetch.max_open_responses`),
    /// shared with wasi:http's responses.
    open_responses: Arc<Semaphore>,
    pub(crate) wasi: WasiHttpCtx,
    pub(crate) hooks: Hooks,
}

impl HttpState {
    pub(crate) fn new(kind: FunctionKind, client: Arc<FetchClient>) -> Self {
        let open_responses = Arc::new(Semaphore::new(client.config().max_open_responses as usize));
        Self {
            hooks: Hooks::new(kind, client.clone(), open_responses.clone()),
            client,
            open_responses,
            wasi: WasiHttpCtx::new(),
        }
    }
}

/// A permit for one more open response, or the error naming the limit.
pub(crate) fn open_response(
    open_responses: &Arc<Semaphore>,
    client: &FetchClient,
) -> Result<OwnedSemaphorePermit, String> {
    open_responses.clone().try_acquire_owned().map_err(|_| {
        format!(
            "fetch refused: this call already holds {} open responses (fetch.max_open_responses): read their bodies to the end or drop them first",
            client.config().max_open_responses
        )
    })
}

/// `work`, unless the call's deadline comes first.
async fn before<T>(deadline: Instant, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout_at(deadline.into(), work).await.ok()
}

impl InvocationState {
    /// The deadline passed while waiting on the network: the call is reported as having
    /// run out of time, whatever the guest does with this error.
    fn fetch_ran_out_of_time(&mut self) -> String {
        self.timed_out = true;
        "the call ran out of time waiting for fetch".to_string()
    }
}

impl Host for InvocationState {
    async fn fetch(&mut self, request: wit::Request) -> Result<wit::Response, String> {
        fetch_permitted(self.kind)?;
        let client = self.http.client.clone();
        let open = open_response(&self.http.open_responses, &client)?;
        let redirect = match request.redirect {
            wit::RedirectMode::Follow => RedirectMode::Follow,
            wit::RedirectMode::Error => RedirectMode::Error,
            wit::RedirectMode::Manual => RedirectMode::Manual,
        };
        let request = FetchRequest::from_guest(
            &request.method,
            &request.url,
            request.headers,
            request.body,
            redirect,
            client.config().max_request_body_bytes,
        )
        .map_err(|err| err.message)?;
        let Some(sent) = before(self.deadline, client.send(request)).await else {
            return Err(self.fetch_ran_out_of_time());
        };
        let FetchResponse {
            response,
            redirected,
        } = sent.map_err(|err| err.message)?;
        let status = response.status().as_u16();
        let url = response.url().to_string();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), latin1_text(value)))
            .collect();
        let body = self
            .table
            .push(ResponseBody {
                reader: BodyReader::new(client, response),
                _open: open,
            })
            .map_err(|err| format!("fetch: cannot hold the response: {err}"))?;
        Ok(wit::Response {
            status,
            url,
            redirected,
            headers,
            body,
        })
    }
}

impl HostResponseBody for InvocationState {
    async fn read(
        &mut self,
        body: Resource<ResponseBody>,
        max: u32,
    ) -> Result<Option<Vec<u8>>, String> {
        let deadline = self.deadline;
        let body = self.table.get_mut(&body).map_err(|err| err.to_string())?;
        match before(deadline, body.reader.read(max as usize)).await {
            Some(Ok(chunk)) => Ok(chunk.map(|bytes| bytes.to_vec())),
            Some(Err(err)) => Err(err.message),
            None => Err(self.fetch_ran_out_of_time()),
        }
    }

    async fn drop(&mut self, body: Resource<ResponseBody>) -> wasmtime::Result<()> {
        self.table.delete(body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_actions_may_fetch_and_the_refusal_names_the_rule() {
        assert!(fetch_permitted(FunctionKind::Action).is_ok());
        let err = fetch_permitted(FunctionKind::Query).unwrap_err();
        assert!(
            err.starts_with("fetch is not allowed in a query: only actions"),
            "{err}"
        );
        let err = fetch_permitted(FunctionKind::Mutation).unwrap_err();
        assert!(
            err.starts_with("fetch is not allowed in a mutation"),
            "{err}"
        );
    }

    #[test]
    fn open_responses_are_counted_until_dropped() {
        let client = FetchClient::new(&crate::config::FetchConfig {
            max_open_responses: 2,
            ..Default::default()
        })
        .unwrap();
        let open = Arc::new(Semaphore::new(2));
        let first = open_response(&open, &client).unwrap();
        let _second = open_response(&open, &client).unwrap();
        let err = open_response(&open, &client).unwrap_err();
        assert!(
            err.contains("holds 2 open responses (fetch.max_open_responses)"),
            "{err}"
        );
        drop(first);
        assert!(open_response(&open, &client).is_ok());
    }
}
