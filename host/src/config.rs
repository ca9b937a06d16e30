//! Every limit and setting of a Kiln server, in one place (STYLE.md section 5).
//!
//! Each field has its unit in its name and a default from DESIGN.md section 1. A server
//! reads them from an optional TOML file (`kiln serve --config FILE`); anything the file
//! leaves out keeps its default. The README's limits table lists the same fields.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::runtime::FunctionKind;

/// The whole server configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub limits: Limits,
    pub cors: CorsConfig,
    pub fetch: FetchConfig,
    /// Where clients reach this server (`https://api.example.com`): the start of upload
    /// and file URLs. By default `http://` and the address it listens on.
    pub public_url: Option<String>,
    /// The database to keep data in: `postgres://user:password@host:port/database` for
    /// PostgreSQL (several hosts may share it); by default redb in the data directory.
    /// `kiln serve --database` overrides it.
    pub database: Option<String>,
}

impl ServerConfig {
    /// Reads a configuration file; a missing field keeps its default, an unknown one is an
    /// error (a typo should not silently leave a limit at its default).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        config
            .limits
            .validate()
            .and_then(|()| config.cors.validate())
            .and_then(|()| config.fetch.validate())
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }
}

/// Which browser origins may call the HTTP API (`[cors]`). An origin is written as a
/// browser sends it, `scheme://host[:port]` (`https://app.example`); `"*"` allows any.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to call the function API (`/api/query`, `/api/mutation`,
    /// `/api/action`, `/api/run/...`) and `/version`. Any by default, as Convex: these
    /// endpoints are public and take no cookies.
    pub allowed_origins: Vec<String>,
    /// Origins allowed to call the admin endpoints (`/api/deploy`, `/api/functions`,
    /// `/api/data/...`). None by default: a page would have to hold the admin key.
    pub admin_allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight's answer, in seconds (browsers cap it:
    /// Chrome at 7200).
    pub max_age_s: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: vec!["*".to_string()],
            admin_allowed_origins: Vec::new(),
            max_age_s: 86_400,
        }
    }
}

impl CorsConfig {
    /// Refuses an origin a browser could never send (a path, a trailing `/`, no scheme),
    /// naming the field: such an entry would silently match nothing.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (field, origins) in [
            ("allowed_origins", &self.allowed_origins),
            ("admin_allowed_origins", &self.admin_allowed_origins),
        ] {
            for origin in origins {
                anyhow::ensure!(
                    origin == "*" || is_origin(origin),
                    "cors.{field}: {origin:?} is not an origin: write scheme://host[:port] (no path, no trailing /) or \"*\""
                );
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]`, as the `Origin` header carries it.
fn is_origin(text: &str) -> bool {
    let Some((scheme, authority)) = text.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', '@', ' '])
}

/// What outbound requests functions may make (`[fetch]`): `kiln:platform/http`'s `fetch`
/// and `wasi:http/outgoing-handler` alike, from actions only. See `host/src/fetch/`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Hosts a request may name: `"*"` (any), an exact name or address (`api.example.com`,
    /// `203.0.113.7`), or `*.example.com` (any name below `example.com`, not itself).
    /// Checked on the first URL and on every redirect. Any by default.
    pub allowed_hosts: Vec<String>,
    /// Addresses or networks (`"127.0.0.1/32"`, `"10.1.0.0/16"`, `"::1"`) that requests may
    /// reach although they are not public: loopback, private, link-local, unique-local,
    /// CGNAT, documentation and other special ranges are refused unless listed here.
    /// A cloud metadata address (169.254.169.254, fd00:ec2::254, ...) is allowed only by
    /// an entry naming exactly it. None by default.
    pub allowed_networks: Vec<String>,
    /// Time to establish a connection (DNS, TCP and TLS), in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time for a whole request, from connecting to the last byte of the response body
    /// (redirects included), in milliseconds. The calling action's own time limit applies
    /// too, whichever ends first.
    pub timeout_ms: u64,
    /// Largest response body one request may read, in bytes (decoded, as received).
    pub max_response_bytes: u64,
    /// Largest request body, in bytes.
    pub max_request_body_bytes: u64,
    /// Redirects one request may follow (the fetch standard's 20).
    pub max_redirects: u32,
    /// Responses one call may hold open at once (each holds a connection until its body
    /// is read to the end or dropped).
    pub max_open_responses: u32,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["*".to_string()],
            allowed_networks: Vec::new(),
            connect_timeout_ms: 10_000,
            timeout_ms: 60_000,
            max_response_bytes: 64 << 20,
            max_request_body_bytes: 16 << 20,
            max_redirects: 20,
            max_open_responses: 32,
        }
    }
}

impl FetchConfig {
    /// Refuses entries that could never match and values the client cannot run with,
    /// naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::fetch::FetchPolicy::new(self)?;
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        for (name, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("timeout_ms", self.timeout_ms),
        ] {
            anyhow::ensure!(
                (1..=DAY_MS).contains(&value),
                "fetch.{name} must be between 1 and {DAY_MS}"
            );
        }
        for (name, value) in [
            ("max_response_bytes", self.max_response_bytes),
            ("max_request_body_bytes", self.max_request_body_bytes),
            ("max_open_responses", u64::from(self.max_open_responses)),
        ] {
            anyhow::ensure!(value > 0, "fetch.{name} must be positive");
        }
        Ok(())
    }
}

/// All limits, per function kind and for the server as a whole.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    #[serde(deserialize_with = "query_limits")]
    pub query: FunctionLimits,
    #[serde(deserialize_with = "mutation_limits")]
    pub mutation: FunctionLimits,
    #[serde(deserialize_with = "action_limits")]
    pub action: FunctionLimits,
    /// Largest arguments value and largest return value of a call, in bytes (Convex: 8 MiB).
    pub max_value_bytes: usize,
    /// Deepest nesting of arrays and objects in a value (Convex: 64).
    pub max_value_depth: usize,
    /// Most values (scalars, arrays and objects) the JSON body of a call may hold, checked
    /// before anything is built from it: a JSON tree costs tens of bytes per value, so
    /// this, not the size estimate, bounds the memory a request body can take.
    pub max_value_elements: usize,
    /// Largest body of a function call request. Bigger than `max_value_bytes` because the
    /// JSON encoding of a value is larger than the value.
    pub max_call_body_bytes: usize,
    /// Largest body of a request to an HTTP action, and of the response it returns
    /// (Convex: 20 MiB).
    pub max_http_body_bytes: usize,
    /// Largest body of a deploy request (all modules, base64-encoded).
    pub max_deploy_body_bytes: usize,
    /// Largest single module (`.wasm`) accepted at deploy.
    pub max_module_bytes: usize,
    /// Log lines kept per invocation; later lines are dropped and counted.
    pub max_log_lines: usize,
    /// Bytes of stdout/stderr kept per invocation.
    pub max_output_bytes: usize,
    /// Wasm stack available to a guest; deeper recursion is a "stack overflow" error.
    pub max_wasm_stack_bytes: usize,
    /// Instances that may exist at once (the pooling allocator's slots). A call that finds
    /// every slot taken fails with an error saying the server is at capacity.
    pub max_concurrent_instances: u32,
    /// Actions (and HTTP actions) that clients' requests run at once. More wait for a
    /// turn; a waiting or running action does not count against `max_requests_in_flight`.
    /// Below `max_concurrent_instances`, so that slow actions always leave instances for
    /// queries and mutations.
    pub max_concurrent_actions: usize,
    /// Queries that run at once, however they were started (an HTTP call, a sync
    /// subscription, an action's run-query). More wait for a slot, and a call's time limit
    /// starts when it has one. A query called from a query or mutation runs in its
    /// caller's slot. Default: 16, or twice the cores if that is more.
    pub max_concurrent_queries: usize,
    /// Mutations whose functions run at once, as `max_concurrent_queries` (a mutation's
    /// commit happens after it gives its slot back).
    pub max_concurrent_mutations: usize,
    /// Host objects (streams, pollables, ...) one invocation may hold at once.
    pub max_resources: usize,
    /// Documents one transaction (a query or a mutation) may read.
    pub max_documents_read: usize,
    /// Bytes of documents one transaction may read.
    pub max_bytes_read: usize,
    /// Documents one mutation may write (insert, patch, replace, delete).
    pub max_documents_written: usize,
    /// Bytes of documents one mutation may write.
    pub max_bytes_written: usize,
    /// Largest document, system fields included (Convex: 1 MiB).
    pub max_document_bytes: usize,
    /// Most documents a guest may ask one query cursor for at once (`cursor.next(max)`);
    /// asking for more fails the function. At least [`MIN_QUERY_BATCH`], the batch the
    /// Rust SDK asks for.
    pub max_query_batch: usize,
    /// Bytes the host may hold on one call's behalf beyond its linear memory: open query
    /// cursors with their ranges and filters. Opening a query past it fails.
    pub max_host_memory_bytes: usize,
    /// Index ranges one transaction may record in its read set: each `get` records one,
    /// each query one (however many pages), and so does each table found missing. The
    /// committer checks every write since a mutation's snapshot against these.
    pub max_read_ranges: usize,
    /// Bytes of index keys the ranges in one transaction's read set may hold: a range over
    /// a large value keeps that value (twice) until the commit is checked.
    pub max_read_set_bytes: usize,
    /// Bytes of recent commits (the index keys they touched) the committer remembers to
    /// validate mutations. A mutation whose snapshot is older than what fits re-runs.
    pub max_write_log_bytes: usize,
    /// How deep functions may call functions (run-query, run-mutation, run-action): a
    /// call from a client is level 1; a call past this level fails with an error naming
    /// the limit. Each level holds an instance while it waits.
    pub max_call_depth: usize,
    /// Times a mutation that conflicts with a concurrent one is re-run before its caller
    /// gets an error.
    pub max_mutation_retries: usize,
    /// Most mutations the committer writes in one redb transaction (one fsync). 1 turns
    /// group commit off; the benchmark compares the two.
    pub max_commit_batch: usize,
    /// Open HTTP connections. Past it the server accepts no new connection until one
    /// closes (they wait in the listen backlog), so a flood of connections cannot exhaust
    /// file descriptors or memory.
    pub max_connections: usize,
    /// Requests being handled at once, body reading included. Past it a request is
    /// answered 503 `Overloaded` with `Retry-After` at once, without reading its body.
    pub max_requests_in_flight: usize,
    /// Time a client has to send a request's headers, in milliseconds, from its first
    /// byte (slow-loris protection). Past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body, in milliseconds, from the end of
    /// its headers. Past it the request is answered 408 `RequestTimeout` and the
    /// connection closed: a body trickled a byte at a time cannot hold a connection.
    pub body_read_timeout_ms: u64,
    /// Time a connection may wait for a request with nothing received, in milliseconds:
    /// from its opening, or from the previous response on a keep-alive connection. Past
    /// it the connection is closed.
    pub idle_timeout_ms: u64,
    /// Slack allowed when checking a JWT's `exp` and `nbf`, in seconds: clocks of the
    /// server and of the identity provider may differ this much (Convex: 5 s).
    pub jwt_clock_skew_s: u64,
    /// Time one request to an identity provider (OIDC discovery, JWKS) may take, in
    /// milliseconds, connecting included.
    pub jwks_fetch_timeout_ms: u64,
    /// Largest OIDC discovery document or JWKS accepted from a provider, in bytes.
    pub max_jwks_bytes: usize,
    /// How long a provider's keys are kept before they are fetched again on next use, in
    /// seconds.
    pub jwks_cache_ttl_s: u64,
    /// Least time between two fetches of one provider's keys forced by a token with an
    /// unknown key id (or following a failed fetch), in milliseconds: a flood of made-up
    /// key ids costs the provider one request per interval.
    pub jwks_refetch_interval_ms: u64,
    /// Sync WebSockets (`/api/<version>/sync`) open at once. Past it an upgrade is
    /// answered 503 `Overloaded`. An upgraded connection no longer counts against
    /// `max_connections`.
    pub max_sync_connections: usize,
    /// Queries one sync connection may subscribe to at once. A query set past it ends the
    /// connection with a `FatalError` naming the limit.
    pub max_queries_per_connection: usize,
    /// Largest message a sync client may send, in bytes (a frame or a message past it
    /// ends the connection).
    pub max_sync_message_bytes: usize,
    /// Mutations one sync connection may have waiting or running. Past it the connection
    /// is closed (code 1013, try again), as Convex does.
    pub max_pending_mutations_per_connection: usize,
    /// Actions one sync connection may have running. Past it the action fails with an
    /// error naming the limit.
    pub max_pending_actions_per_connection: usize,
    /// Time a sync client may take to accept a message the server sends, in
    /// milliseconds. A client that does not read its socket is disconnected, never
    /// buffered for without bound.
    pub sync_send_timeout_ms: u64,
    /// Jobs one function call may schedule (`scheduler.run-after`/`run-at`); a mutation's
    /// nested mutations count with it.
    pub max_jobs_scheduled_per_call: usize,
    /// Largest arguments object of one scheduled job, in bytes.
    pub max_scheduled_args_bytes: usize,
    /// Jobs that may be pending (scheduled, not yet started) at once.
    pub max_pending_jobs: usize,
    /// Scheduled jobs (and cron runs) the executor runs at once; due jobs past it wait
    /// their turn, in due-time order.
    pub scheduler_concurrency: usize,
    /// How long a finished job (succeeded, failed or canceled) stays in
    /// `_scheduled_functions`, in seconds (Convex keeps them a week).
    pub scheduled_job_retention_s: u64,
    /// Over a shared database (several hosts): how long a scheduled action in progress
    /// stays its host's without a renewal, in seconds. The host renews it while the action
    /// runs; once it runs out (the host stopped), any host marks the job failed.
    pub scheduled_action_lease_s: u64,
    /// Largest file one upload (or one `store` from an action) may hold, in bytes.
    pub max_file_bytes: u64,
    /// Bytes one action may `get` and `store` in all.
    pub max_action_storage_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            query: FunctionLimits::QUERY,
            mutation: FunctionLimits::MUTATION,
            action: FunctionLimits::ACTION,
            max_value_bytes: 8 << 20,
            max_value_depth: 64,
            max_value_elements: 1 << 18,
            max_call_body_bytes: 16 << 20,
            max_http_body_bytes: 20 << 20,
            max_deploy_body_bytes: 256 << 20,
            max_module_bytes: 64 << 20,
            max_log_lines: 256,
            max_output_bytes: 1 << 20,
            max_wasm_stack_bytes: 512 << 10,
            max_concurrent_instances: 1_024,
            max_concurrent_actions: 256,
            max_concurrent_queries: default_run_slots(),
            max_concurrent_mutations: default_run_slots(),
            max_resources: 10_000,
            max_documents_read: 16_384,
            max_bytes_read: 8 << 20,
            max_documents_written: 8_192,
            max_bytes_written: 8 << 20,
            max_document_bytes: 1 << 20,
            max_query_batch: 1_024,
            max_host_memory_bytes: 64 << 20,
            max_read_ranges: 32_768,
            max_read_set_bytes: 16 << 20,
            max_write_log_bytes: 64 << 20,
            max_call_depth: 16,
            max_mutation_retries: 100,
            max_commit_batch: 256,
            max_connections: 1_024,
            max_sync_connections: 1_000,
            max_queries_per_connection: 1_000,
            max_sync_message_bytes: 16 << 20,
            max_pending_mutations_per_connection: 1_000,
            max_pending_actions_per_connection: 1_000,
            sync_send_timeout_ms: 30_000,
            max_jobs_scheduled_per_call: 1_000,
            max_scheduled_args_bytes: 1 << 20,
            max_pending_jobs: 1_000_000,
            scheduler_concurrency: 16,
            scheduled_job_retention_s: 7 * 24 * 3600,
            scheduled_action_lease_s: 30,
            max_file_bytes: 1 << 30,
            max_action_storage_bytes: 256 << 20,
            max_requests_in_flight: 512,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            jwt_clock_skew_s: 5,
            jwks_fetch_timeout_ms: 5_000,
            max_jwks_bytes: 1 << 20,
            jwks_cache_ttl_s: 3_600,
            jwks_refetch_interval_ms: 10_000,
        }
    }
}

/// The default of `max_concurrent_queries` and `max_concurrent_mutations`: Convex's 16,
/// or twice the cores where that is more, so that a large machine's cores are all used
/// while a small one does not share its cores among a crowd of calls.
fn default_run_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    (2 * cores).max(16)
}

/// The smallest `max_query_batch` allowed: the Rust SDK asks cursors for this many
/// documents at a time (`guest-sdk/src/db.rs`, `BATCH`).
pub const MIN_QUERY_BATCH: usize = 128;

impl Limits {
    /// Refuses values the server cannot run with, naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        for (kind, limits) in [
            ("query", &self.query),
            ("mutation", &self.mutation),
            ("action", &self.action),
        ] {
            anyhow::ensure!(
                (1..=DAY_MS).contains(&limits.timeout_ms),
                "limits.{kind}.timeout_ms must be between 1 and {DAY_MS}"
            );
            anyhow::ensure!(
                (1 << 20..=4 << 30).contains(&limits.memory_bytes),
                "limits.{kind}.memory_bytes must be between 1 MiB and 4 GiB"
            );
            anyhow::ensure!(limits.fuel > 0, "limits.{kind}.fuel must be positive");
        }
        anyhow::ensure!(
            (1..=10_000).contains(&self.max_concurrent_instances),
            "limits.max_concurrent_instances must be between 1 and 10000"
        );
        anyhow::ensure!(
            (1..self.max_concurrent_instances as usize).contains(&self.max_concurrent_actions),
            "limits.max_concurrent_actions must be at least 1 and below max_concurrent_instances ({}), so that actions leave instances for queries and mutations",
            self.max_concurrent_instances
        );
        for (name, value) in [
            ("max_value_bytes", self.max_value_bytes),
            ("max_value_depth", self.max_value_depth),
            ("max_call_body_bytes", self.max_call_body_bytes),
            ("max_value_elements", self.max_value_elements),
            ("max_deploy_body_bytes", self.max_deploy_body_bytes),
            ("max_http_body_bytes", self.max_http_body_bytes),
            ("max_module_bytes", self.max_module_bytes),
            ("max_wasm_stack_bytes", self.max_wasm_stack_bytes),
            ("max_resources", self.max_resources),
            ("max_documents_read", self.max_documents_read),
            ("max_bytes_read", self.max_bytes_read),
            ("max_documents_written", self.max_documents_written),
            ("max_bytes_written", self.max_bytes_written),
            ("max_document_bytes", self.max_document_bytes),
            ("max_query_batch", self.max_query_batch),
            ("max_commit_batch", self.max_commit_batch),
            ("max_read_ranges", self.max_read_ranges),
            ("max_read_set_bytes", self.max_read_set_bytes),
            ("max_host_memory_bytes", self.max_host_memory_bytes),
            ("max_write_log_bytes", self.max_write_log_bytes),
            ("max_call_depth", self.max_call_depth),
            ("max_jwks_bytes", self.max_jwks_bytes),
            ("max_sync_message_bytes", self.max_sync_message_bytes),
            ("max_scheduled_args_bytes", self.max_scheduled_args_bytes),
        ] {
            anyhow::ensure!(value > 0, "limits.{name} must be positive");
        }
        // Tokio's semaphores hold at most `usize::MAX >> 3` permits; a million is already
        // far past what one process can serve.
        for (name, value) in [
            ("max_connections", self.max_connections),
            ("max_sync_connections", self.max_sync_connections),
            (
                "max_queries_per_connection",
                self.max_queries_per_connection,
            ),
            (
                "max_pending_mutations_per_connection",
                self.max_pending_mutations_per_connection,
            ),
            (
                "max_pending_actions_per_connection",
                self.max_pending_actions_per_connection,
            ),
            ("max_requests_in_flight", self.max_requests_in_flight),
            ("max_concurrent_queries", self.max_concurrent_queries),
            ("max_concurrent_mutations", self.max_concurrent_mutations),
            (
                "max_jobs_scheduled_per_call",
                self.max_jobs_scheduled_per_call,
            ),
            ("max_pending_jobs", self.max_pending_jobs),
            ("scheduler_concurrency", self.scheduler_concurrency),
        ] {
            anyhow::ensure!(
                (1..=1_000_000).contains(&value),
                "limits.{name} must be between 1 and 1000000"
            );
        }
        for (name, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("sync_send_timeout_ms", self.sync_send_timeout_ms),
            ("jwks_fetch_timeout_ms", self.jwks_fetch_timeout_ms),
        ] {
            anyhow::ensure!(
                (1..=DAY_MS).contains(&value),
                "limits.{name} must be between 1 and {DAY_MS}"
            );
        }
        anyhow::ensure!(
            (1..=3_600).contains(&self.scheduled_action_lease_s),
            "limits.scheduled_action_lease_s must be between 1 and 3600"
        );
        anyhow::ensure!(
            self.jwt_clock_skew_s <= 3_600,
            "limits.jwt_clock_skew_s must be at most 3600"
        );
        anyhow::ensure!(
            self.jwks_cache_ttl_s > 0,
            "limits.jwks_cache_ttl_s must be positive"
        );
        anyhow::ensure!(
            self.max_query_batch >= MIN_QUERY_BATCH,
            "limits.max_query_batch must be at least {MIN_QUERY_BATCH}: the Rust SDK reads query results in batches of that size"
        );
        Ok(())
    }

    pub fn for_kind(&self, kind: FunctionKind) -> &FunctionLimits {
        match kind {
            FunctionKind::Query => &self.query,
            FunctionKind::Mutation => &self.mutation,
            FunctionKind::Action | FunctionKind::HttpAction => &self.action,
        }
    }

    /// The memory every pooling slot must be able to hold: the largest per-kind limit.
    pub fn max_memory_bytes(&self) -> usize {
        [&self.query, &self.mutation, &self.action]
            .iter()
            .map(|limits| limits.memory_bytes)
            .max()
            .unwrap_or(0)
    }

    pub fn transaction_limits(&self) -> crate::database::transaction::TransactionLimits {
        crate::database::transaction::TransactionLimits {
            max_documents_read: self.max_documents_read,
            max_bytes_read: self.max_bytes_read,
            max_documents_written: self.max_documents_written,
            max_bytes_written: self.max_bytes_written,
            max_document_bytes: self.max_document_bytes,
            max_read_ranges: self.max_read_ranges,
            max_read_set_bytes: self.max_read_set_bytes,
            value_limits: self.value_limits(),
        }
    }

    pub fn value_limits(&self) -> kiln_values::ValueLimits {
        kiln_values::ValueLimits {
            max_size_bytes: self.max_value_bytes,
            max_nesting_depth: self.max_value_depth,
        }
    }
}

/// What one invocation of a function of a given kind may use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionLimits {
    /// Wall-clock time from instantiation to result, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory of the instance, in bytes.
    pub memory_bytes: usize,
    /// Wasm instructions (wasmtime fuel units) the call may execute. Bounds CPU even when
    /// the wall clock is generous, e.g. for actions that mostly wait.
    pub fuel: u64,
}

impl FunctionLimits {
    /// Queries: 1 s and 64 MiB (DESIGN.md section 1). 10¹⁰ fuel is roughly 0.4–0.7 s of
    /// straight-line wasm on this class of machine: a guest that computes runs out of fuel
    /// (a deterministic bound), and the wall clock stops one that waits.
    pub const QUERY: Self = Self {
        timeout_ms: 1_000,
        memory_bytes: 64 << 20,
        fuel: 10_000_000_000,
    };
    /// Mutations: as queries.
    pub const MUTATION: Self = Self::QUERY;
    /// Actions: 2 minutes and 512 MiB, as Convex.
    pub const ACTION: Self = Self {
        timeout_ms: 120_000,
        memory_bytes: 512 << 20,
        fuel: 1_000_000_000_000,
    };
}

/// A `[limits.<kind>]` table as written in the file: each field overrides the kind's
/// default, so `[limits.action] timeout_ms = 5000` keeps the action memory default.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FunctionLimitsOverride {
    timeout_ms: Option<u64>,
    memory_bytes: Option<usize>,
    fuel: Option<u64>,
}

impl FunctionLimitsOverride {
    fn over(self, base: FunctionLimits) -> FunctionLimits {
        FunctionLimits {
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            fuel: self.fuel.unwrap_or(base.fuel),
        }
    }
}

fn query_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FunctionLimits, D::Error> {
    Ok(FunctionLimitsOverride::deserialize(d)?.over(FunctionLimits::QUERY))
}

fn mutation_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FunctionLimits, D::Error> {
    Ok(FunctionLimitsOverride::deserialize(d)?.over(FunctionLimits::MUTATION))
}

fn action_limits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<FunctionLimits, D::Error> {
    Ok(FunctionLimitsOverride::deserialize(d)?.over(FunctionLimits::ACTION))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK treats a short batch as the end of a query, which is right only while it
    /// never asks for more than the host allows: keep the floor and its batch equal.
    #[test]
    fn the_smallest_query_batch_is_the_rust_sdks_batch() {
        let sdk = include_str!("../../guest-sdk/src/db.rs");
        assert!(
            sdk.contains(&format!("const BATCH: u32 = {MIN_QUERY_BATCH};")),
            "guest-sdk/src/db.rs must read in batches of MIN_QUERY_BATCH ({MIN_QUERY_BATCH})"
        );
    }

    #[test]
    fn max_query_batch_below_the_sdks_batch_is_refused() {
        let limits = Limits {
            max_query_batch: MIN_QUERY_BATCH - 1,
            ..Limits::default()
        };
        let err = limits.validate().unwrap_err().to_string();
        assert!(
            err.contains("max_query_batch must be at least 128"),
            "{err}"
        );
    }

    #[test]
    fn a_partial_file_keeps_the_other_defaults() {
        let config: ServerConfig = toml::from_str(
            "[limits]\nmax_log_lines = 3\n[limits.query]\ntimeout_ms = 50\n[limits.action]\nfuel = 7\n",
        )
        .unwrap();
        assert_eq!(config.limits.max_log_lines, 3);
        assert_eq!(config.limits.query.timeout_ms, 50);
        assert_eq!(config.limits.query.memory_bytes, 64 << 20);
        assert_eq!(config.limits.action.fuel, 7);
        assert_eq!(config.limits.action.memory_bytes, 512 << 20);
        assert_eq!(config.limits.mutation, FunctionLimits::MUTATION);
    }

    /// A tidy check (STYLE.md section 9): every limit is documented in the README's table.
    #[test]
    fn the_readme_documents_every_limit() {
        let readme = include_str!("../../README.md");
        let limits = serde_json::to_value(Limits::default()).unwrap();
        for (field, value) in limits.as_object().unwrap() {
            match value.as_object() {
                Some(per_kind) => {
                    for subfield in per_kind.keys() {
                        let name = format!("limits.query.{subfield}");
                        assert!(readme.contains(&name), "README.md does not document {name}");
                    }
                }
                None => {
                    let name = format!("limits.{field}");
                    assert!(readme.contains(&name), "README.md does not document {name}");
                }
            }
        }
    }

    #[test]
    fn out_of_range_limits_are_refused_by_name() {
        let mut limits = Limits::default();
        assert!(limits.validate().is_ok());
        limits.action.timeout_ms = 0;
        let err = limits.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "limits.action.timeout_ms must be between 1 and 86400000"
        );
    }

    #[test]
    fn cors_defaults_allow_any_origin_for_functions_and_none_for_admin() {
        let config: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(config.cors.allowed_origins, ["*"]);
        assert!(config.cors.admin_allowed_origins.is_empty());
        let config: ServerConfig =
            toml::from_str("[cors]\nallowed_origins = [\"https://app.example\"]\n").unwrap();
        assert_eq!(config.cors.allowed_origins, ["https://app.example"]);
        assert_eq!(config.cors.max_age_s, 86_400);
        config.cors.validate().unwrap();
    }

    #[test]
    fn an_origin_a_browser_cannot_send_is_refused_by_name() {
        for bad in [
            "app.example",
            "https://app.example/",
            "https://app.example/x",
            "",
        ] {
            let cors = CorsConfig {
                admin_allowed_origins: vec![bad.to_string()],
                ..CorsConfig::default()
            };
            let err = cors.validate().unwrap_err().to_string();
            assert!(
                err.starts_with("cors.admin_allowed_origins: "),
                "{bad:?}: {err}"
            );
        }
        let cors = CorsConfig {
            allowed_origins: vec!["http://localhost:5173".into(), "*".into()],
            ..CorsConfig::default()
        };
        cors.validate().unwrap();
    }

    #[test]
    fn connection_limits_out_of_range_are_refused_by_name() {
        let limits = Limits {
            max_requests_in_flight: 0,
            ..Limits::default()
        };
        let err = limits.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "limits.max_requests_in_flight must be between 1 and 1000000"
        );
        let limits = Limits {
            body_read_timeout_ms: 0,
            ..Limits::default()
        };
        let err = limits.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "limits.body_read_timeout_ms must be between 1 and 86400000"
        );
    }

    #[test]
    fn fetch_defaults_allow_any_public_host_and_no_special_network() {
        let config: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(config.fetch.allowed_hosts, ["*"]);
        assert!(config.fetch.allowed_networks.is_empty());
        let config: ServerConfig =
            toml::from_str("[fetch]\nallowed_networks = [\"127.0.0.1/32\"]\nmax_redirects = 0\n")
                .unwrap();
        config.fetch.validate().unwrap();
        assert_eq!(config.fetch.max_redirects, 0);
        assert_eq!(config.fetch.timeout_ms, 60_000);
    }

    #[test]
    fn a_bad_fetch_entry_is_refused_by_name() {
        for (toml, expected) in [
            (
                "allowed_networks = [\"127.0.0.1/33\"]",
                "fetch.allowed_networks: \"127.0.0.1/33\"",
            ),
            (
                "allowed_hosts = [\"https://api.example.com\"]",
                "fetch.allowed_hosts: \"https://api.example.com\"",
            ),
            (
                "allowed_hosts = [\"a.*.com\"]",
                "fetch.allowed_hosts: \"a.*.com\"",
            ),
            ("timeout_ms = 0", "fetch.timeout_ms must be between 1"),
            (
                "max_response_bytes = 0",
                "fetch.max_response_bytes must be positive",
            ),
        ] {
            let config: ServerConfig = toml::from_str(&format!("[fetch]\n{toml}\n")).unwrap();
            let err = config.fetch.validate().unwrap_err().to_string();
            assert!(err.starts_with(expected), "{toml}: {err}");
        }
    }

    /// A tidy check: every `[fetch]` field is documented in the README's limits table.
    #[test]
    fn the_readme_documents_every_fetch_field() {
        let readme = include_str!("../../README.md");
        let fetch = serde_json::to_value(FetchConfig::default()).unwrap();
        for field in fetch.as_object().unwrap().keys() {
            let name = format!("fetch.{field}");
            assert!(readme.contains(&name), "README.md does not document {name}");
        }
    }

    #[test]
    fn a_misspelled_limit_is_an_error() {
        let err = toml::from_str::<ServerConfig>("[limits]\nmax_log_line = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_log_line"), "{err}");
    }
}
