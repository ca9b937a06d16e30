//! The one HTTP client of a server, built from `[fetch]`, and the only way out.
//!
//! It is a reqwest client with three things replaced so that it never connects where the
//! policy did not approve:
//!
//! * its DNS resolver resolves, then drops every address the policy refuses (failing
//!   with the rule's message if none is left); hyper connects only to what the resolver
//!   returned, so happy-eyeballs races only approved addresses;
//! * its redirect policy checks every hop's URL (host allowlist, IP-literal addresses,
//!   scheme) before following it, and counts hops;
//! * proxies from the environment are off (`no_proxy`), so the address connected to is
//!   the one resolved.
//!
//! A URL whose host is an address never reaches the resolver: [`FetchPolicy::check_url`]
//! checks it before the request and on each hop.

use std::cell::Cell;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::policy::{FetchPolicy, Refused};
use super::{FetchError, FetchErrorKind, FetchRequest};
use crate::config::FetchConfig;

/// What a request does with a redirect response, as the web's `RequestRedirect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectMode {
    /// Follow it (each hop checked), up to `fetch.max_redirects`.
    Follow,
    /// Fail the request.
    Error,
    /// Hand the redirect response back as it is.
    Manual,
}

/// A response whose headers arrived; its body is still on the connection.
pub struct FetchResponse {
    pub response: reqwest::Response,
    /// Whether at least one redirect was followed to get here.
    pub redirected: bool,
}

tokio::task_local! {
    /// The redirect mode of the request being sent, and whether a hop was followed.
    /// reqwest's redirect policy is per client; it runs inside the request's own future,
    /// so a task-local scope around that future carries the per-request mode to it. A
    /// policy run outside any scope (wasi:http) follows nothing.
    static REDIRECTS: RedirectScope;
}

struct RedirectScope {
    mode: RedirectMode,
    followed: Cell<bool>,
}

/// The client, its policy and its limits. Built once per server, shared by every call.
pub struct FetchClient {
    policy: Arc<FetchPolicy>,
    config: FetchConfig,
    client: reqwest::Client,
}

impl std::fmt::Debug for FetchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FetchClient {
    pub fn new(config: &FetchConfig) -> anyhow::Result<Self> {
        let policy = Arc::new(FetchPolicy::new(config)?);
        let redirect_policy = {
            let policy = policy.clone();
            let max_redirects = config.max_redirects as usize;
            reqwest::redirect::Policy::custom(move |attempt| {
                match REDIRECTS.try_with(|scope| scope.mode) {
                    Ok(RedirectMode::Follow) => {}
                    Ok(RedirectMode::Error) => {
                        let message = format!(
                            "fetch failed: the response redirects to {} and the request's redirect mode is \"error\"",
                            attempt.url()
                        );
                        return attempt.error(Failure(message));
                    }
                    Ok(RedirectMode::Manual) | Err(_) => return attempt.stop(),
                }
                // `previous` holds every URL requested so far, the first included.
                if attempt.previous().len() > max_redirects {
                    let message =
                        format!("more than {max_redirects} redirects (fetch.max_redirects)");
                    return attempt.error(Refused(message));
                }
                if let Err(Refused(why)) = policy.check_url(attempt.url()) {
                    let message = format!("{why} (redirected to {})", attempt.url());
                    return attempt.error(Refused(message));
                }
                let _ = REDIRECTS.try_with(|scope| scope.followed.set(true));
                attempt.follow()
            })
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .no_proxy()
            .redirect(redirect_policy)
            // A redirect target need not learn the URL that sent it there.
            .referer(false)
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| anyhow::anyhow!("cannot build the fetch client: {err}"))?;
        Ok(Self {
            policy,
            config: config.clone(),
            client,
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Sends `request` and waits for the response's headers. The URL is checked first; the
    /// resolver and the redirect policy check the rest on the way.
    pub async fn send(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        self.policy.check_url(&request.url)?;
        let mut builder = self
            .client
            .request(request.method, request.url)
            .headers(request.headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let scope = RedirectScope {
            mode: request.redirect,
            followed: Cell::new(false),
        };
        let (result, redirected) = REDIRECTS
            .scope(scope, async {
                let result = builder.send().await;
                (result, REDIRECTS.with(|scope| scope.followed.get()))
            })
            .await;
        let response = result.map_err(|err| self.error(&err))?;
        if let Some(declared) = response.content_length()
            && declared > self.config.max_response_bytes
        {
            return Err(self.response_too_large(Some(declared)));
        }
        Ok(FetchResponse {
            response,
            redirected,
        })
    }

    /// The error a guest sees for a failed request or body read: the policy's refusal if
    /// that is what stopped it, else the limit or the failure.
    pub fn error(&self, err: &reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        let mut causes = Vec::new();
        while let Some(current) = source {
            if let Some(refused) = current.downcast_ref::<Refused>() {
                return refused.clone().into();
            }
            if let Some(Failure(message)) = current.downcast_ref::<Failure>() {
                return FetchError::new(FetchErrorKind::Failed, message.clone());
            }
            let text = current.to_string();
            if !causes.iter().any(|cause: &String| cause.contains(&text)) {
                causes.push(text);
            }
            source = current.source();
        }
        if err.is_timeout() && err.is_connect() {
            return FetchError::new(
                FetchErrorKind::ConnectTimeout,
                format!(
                    "fetch failed: no connection within the limit of {} ms (fetch.connect_timeout_ms)",
                    self.config.connect_timeout_ms
                ),
            );
        }
        if err.is_timeout() {
            return FetchError::new(
                FetchErrorKind::Timeout,
                format!(
                    "fetch failed: no complete response within the limit of {} ms (fetch.timeout_ms)",
                    self.config.timeout_ms
                ),
            );
        }
        // reqwest's own text repeats the URL, which the guest knows: keep the causes.
        let causes = if causes.len() > 1 {
            &causes[1..]
        } else {
            &causes[..]
        };
        FetchError::new(
            FetchErrorKind::Failed,
            format!("fetch failed: {}", causes.join(": ")),
        )
    }

    /// The response body is (or says it is) over `fetch.max_response_bytes`.
    pub fn response_too_large(&self, declared: Option<u64>) -> FetchError {
        let limit = self.config.max_response_bytes;
        let message = match declared {
            Some(declared) => format!(
                "fetch failed: the response body is {declared} bytes, over the limit of {limit} bytes (fetch.max_response_bytes)"
            ),
            None => format!(
                "fetch failed: the response body is over the limit of {limit} bytes (fetch.max_response_bytes)"
            ),
        };
        FetchError::new(FetchErrorKind::ResponseTooLarge, message)
    }
}

/// A failure whose message is complete as it is (not a policy refusal).
#[derive(Debug, Clone)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Failure {}

/// Resolves with the system resolver and keeps only the addresses the policy allows.
struct PolicyResolver {
    policy: Arc<FetchPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|err| Failure(format!("fetch failed: cannot resolve {host}: {err}")))?
                .collect();
            let mut allowed = Vec::with_capacity(resolved.len());
            let mut first_denied = None;
            for address in resolved {
                match policy.check_address(address.ip()) {
                    Ok(()) => allowed.push(address),
                    Err(denied) => {
                        first_denied.get_or_insert(denied);
                    }
                }
            }
            if allowed.is_empty() {
                return Err(match first_denied {
                    Some(denied) => Box::new(denied.resolved_from(&host)) as _,
                    None => Box::new(Failure(format!(
                        "fetch failed: {host} resolves to no address"
                    ))) as _,
                });
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
