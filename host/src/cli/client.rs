//! The HTTP client the CLI commands share: JSON in, JSON out, server errors as one line.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value as Json;
use ureq::Agent;

use super::ServerArgs;

pub struct Client {
    url: String,
    admin_key: Option<String>,
    agent: Agent,
}

/// Deploys upload whole modules and wait for compilation.
const TIMEOUT: Duration = Duration::from_secs(600);
/// Largest response the CLI reads (a deploy report, a function's 8 MiB result).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

impl Client {
    pub fn new(args: &ServerArgs) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Self {
            url: args.url.trim_end_matches('/').to_string(),
            admin_key: args.admin_key.clone(),
            agent,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fails early, with the fix, when an admin command has no key.
    pub fn require_admin_key(&self) -> anyhow::Result<()> {
        if self.admin_key.is_none() {
            bail!("this command needs the admin key: pass --admin-key or set KILN_ADMIN_KEY");
        }
        Ok(())
    }

    pub fn post(&self, path: &str, body: &impl Serialize) -> anyhow::Result<Json> {
        let body = serde_json::to_string(body)?;
        let mut request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if let Some(key) = &self.admin_key {
            request = request.header("Authorization", format!("Convex {key}"));
        }
        self.finish(request.send(body))
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Json> {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if let Some(key) = &self.admin_key {
            request = request.header("Authorization", format!("Convex {key}"));
        }
        self.finish(request.call())
    }

    fn finish(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Json> {
        let mut response = response.with_context(|| {
            format!(
                "cannot reach the Kiln server at {} (is `kiln serve` running?)",
                self.url
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .context("cannot read the server's response")?;
        if !status.is_success() {
            // Request errors are `{"code", "message"}`: show the message.
            let message = serde_json::from_str::<Json>(&text)
                .ok()
                .and_then(|json| {
                    json.get("message")
                        .and_then(Json::as_str)
                        .map(str::to_string)
                })
                .unwrap_or(text);
            bail!("the server answered {}: {message}", status.as_u16());
        }
        serde_json::from_str(&text).context("the server's response is not JSON")
    }
}
