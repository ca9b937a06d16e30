//! One sync connection's state machine (Convex's sync worker): the query set the client
//! asked for, who it is, and the version of the state it has been sent.
//!
//! Three things run for a connection: the socket's reader hands each client message to
//! [`Session::handle`]; the *round* loop ([`Session::run_rounds`]) computes one Transition
//! at a time, re-running only the queries that are new or whose subscription a commit made
//! stale, all at one snapshot; the mutation queue runs the connection's mutations one at a
//! time, in the order sent. Actions run as tasks of their own, concurrently. Whatever
//! arrives while a round runs is folded into the next one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures_util::StreamExt as _;
use kiln_values::Value;
use serde_json::Value as Json;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use super::super::AppState;
use super::super::auth::{Caller, Principal};
use super::super::calls::{FUNCTION_LOG, find_function};
use super::super::error::internal_message;
use super::super::function_log::Execution;
use super::Outgoing;
use super::system::{SystemQuery, is_system_path};
use crate::auth::UserIdentity;
use crate::deploy::Deployment;
use crate::function_path::FunctionPath;
use crate::runtime::page_journal::{PageEnd, PageJournal};
use crate::runtime::{CallContext, FunctionFailure, FunctionKind, Invocation, LogLine};
use crate::sync::protocol::{
    CallOutcome, ClientMessage, Modification, QuerySetModification, ServerMessage, StateVersion,
    TokenType, decode_ts,
};
use crate::sync::query_cache::{QueryKey, QueryOutcome, QueryResult};

/// Queries one connection re-runs at once in a round (Convex's `UPDATE_QUERY_CONCURRENCY`).
const QUERY_CONCURRENCY: usize = 20;

/// Why the connection ends: what the client is told, and the close frame.
#[derive(Debug)]
pub(super) struct Closing {
    /// A last message (`FatalError`, `AuthError`), if any.
    pub message: Option<Box<ServerMessage>>,
    /// The close code and reason; `None` closes without a code (as Convex does for bad
    /// requests and auth errors).
    pub close: Option<(u16, String)>,
}

impl Closing {
    /// The client sent something the protocol does not allow: `FatalError`, then close.
    pub fn fatal(error: impl Into<String>) -> Self {
        Self {
            message: Some(Box::new(ServerMessage::FatalError {
                error: error.into(),
            })),
            close: None,
        }
    }

    /// The server failed: close 1011, which the client retries.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("sync connection failed: {cause}");
        Self {
            message: None,
            close: Some((1011, "InternalServerError".into())),
        }
    }

    /// What a client is told of a host failure whose cause goes to the log.
    pub fn internal_message(cause: &dyn std::fmt::Display) -> String {
        tracing::error!("sync system query failed: {cause}");
        internal_message("internal error")
    }

    /// A limit the client ran into that clears with time: close 1013 ("try again").
    pub fn again(reason: impl Into<String>) -> Self {
        Self {
            message: None,
            close: Some((1013, reason.into())),
        }
    }
}

/// A query the client subscribed to.
#[derive(Clone, Debug)]
struct Subscribed {
    /// The canonical path, or why the path is not one.
    path: Result<FunctionPath, String>,
    /// The arguments, or why they are not valid.
    args: Result<Value, String>,
    /// `path` and `args` as text: the query's identity in the cache.
    path_key: String,
    args_key: String,
    /// The journal the client sent with the query (one of ours, from before a reconnect).
    journal: Option<String>,
}

/// What the reader has received; the round loop reads it.
struct Received {
    session_id: Option<String>,
    queries: BTreeMap<u64, Subscribed>,
    query_set_version: u64,
    identity_version: u64,
    /// The identity version of the last Transition sent: what an `AuthError` names.
    identity_sent: u64,
    caller: Caller,
    /// When a user's token expires (seconds since the epoch, clock skew included).
    expires_at: Option<u64>,
}

/// A mutation waiting in the connection's queue, with who sent it.
pub(super) struct QueuedMutation {
    request_id: u64,
    udf_path: String,
    args: Vec<Json>,
    caller: Caller,
}

pub(super) struct Session {
    app: Arc<AppState>,
    out: mpsc::Sender<Outgoing>,
    /// Wakes the round loop: a query set or identity change, a stale subscription, a
    /// mutation's or action's completion. One stored permit folds many into one round.
    wake: Arc<Notify>,
    received: Mutex<Received>,
    mutations: mpsc::Sender<QueuedMutation>,
    actions: Arc<Semaphore>,
}

/// What the round loop keeps between rounds.
struct Rounds {
    /// The version the client is at: the last Transition's end.
    version: StateVersion,
    /// The result the client has for each query, under the key its next run would have.
    sent: HashMap<u64, (QueryKey, Arc<QueryResult>)>,
    /// Each query's journal: the end of the page its last run returned.
    journals: HashMap<u64, Option<String>>,
    epoch: watch::Receiver<u64>,
}

impl Session {
    /// A session sending on `out`; returns it with its mutation queue's receiving end (for
    /// [`Session::run_mutations`]).
    pub fn new(
        app: Arc<AppState>,
        out: mpsc::Sender<Outgoing>,
    ) -> (Arc<Self>, mpsc::Receiver<QueuedMutation>) {
        let limits = app.runtime.limits();
        let (mutations, queue) = mpsc::channel(limits.max_pending_mutations_per_connection);
        let actions = Arc::new(Semaphore::new(limits.max_pending_actions_per_connection));
        let session = Arc::new(Self {
            app,
            out,
            wake: Arc::new(Notify::new()),
            received: Mutex::new(Received {
                session_id: None,
                queries: BTreeMap::new(),
                query_set_version: 0,
                identity_version: 0,
                identity_sent: 0,
                caller: Caller {
                    principal: Principal::Public,
                    identity: None,
                },
                expires_at: None,
            }),
            mutations,
            actions,
        });
        (session, queue)
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().expect("sync session poisoned")
    }

    /// Handles one text frame from the client.
    pub async fn handle(self: &Arc<Self>, text: &str) -> Result<(), Closing> {
        let message: ClientMessage = serde_json::from_str(text)
            .map_err(|err| Closing::fatal(format!("Received Invalid JSON on websocket: {err}")))?;
        match message {
            ClientMessage::Connect {
                session_id,
                max_observed_timestamp,
                ..
            } => {
                let observed = max_observed_timestamp.as_deref().map(decode_ts);
                if let Some(observed) = observed {
                    let observed = observed.ok_or_else(|| {
                        Closing::fatal("Connect: maxObservedTimestamp is not a base64 u64")
                    })?;
                    let latest = self.app.store.snapshot().map_err(Closing::internal)?.ts;
                    if observed > latest {
                        // The client saw a newer state than this server has: serving it
                        // an older one would go back in time.
                        return Err(Closing::internal(format!(
                            "the client has observed timestamp {observed}, ahead of the latest commit {latest}"
                        )));
                    }
                }
                self.received().session_id = Some(session_id);
            }
            ClientMessage::ModifyQuerySet {
                base_version,
                new_version,
                modifications,
            } => self.modify_query_set(base_version, new_version, modifications)?,
            ClientMessage::Authenticate {
                token_type,
                value,
                base_version,
                impersonating,
            } => {
                self.authenticate(token_type, value, base_version, impersonating)
                    .await?
            }
            ClientMessage::Mutation {
                request_id,
                udf_path,
                args,
                component_path,
            } => {
                let caller = self.caller_for_call(component_path.as_deref())?;
                let queued = QueuedMutation {
                    request_id,
                    udf_path,
                    args,
                    caller,
                };
                if self.mutations.try_send(queued).is_err() {
                    let limit = self
                        .app
                        .runtime
                        .limits()
                        .max_pending_mutations_per_connection;
                    return Err(Closing::again(format!(
                        "TooManyConcurrentMutations: more than {limit} pending (max_pending_mutations_per_connection)"
                    )));
                }
            }
            ClientMessage::Action {
                request_id,
                udf_path,
                args,
                component_path,
            } => {
                let caller = self.caller_for_call(component_path.as_deref())?;
                self.start_action(request_id, udf_path, args, caller);
            }
            ClientMessage::Event {} => {}
        }
        Ok(())
    }

    /// Who a mutation or action runs as: the identity when it arrives (a later
    /// Authenticate does not change it), once its token is checked for expiry.
    fn caller_for_call(&self, component_path: Option<&str>) -> Result<Caller, Closing> {
        refuse_components(component_path)?;
        self.check_expiry()?;
        Ok(self.received().caller.clone())
    }

    fn modify_query_set(
        &self,
        base_version: u64,
        new_version: u64,
        modifications: Vec<QuerySetModification>,
    ) -> Result<(), Closing> {
        let limits = self.app.runtime.limits();
        let mut received = self.received();
        if base_version != received.query_set_version {
            return Err(Closing::fatal(format!(
                "Base version {base_version} passed up doesn't match the current version {}",
                received.query_set_version
            )));
        }
        if new_version <= base_version {
            return Err(Closing::fatal(format!(
                "ModifyQuerySet: newVersion {new_version} must be greater than baseVersion {base_version}"
            )));
        }
        for modification in modifications {
            match modification {
                QuerySetModification::Add {
                    query_id,
                    udf_path,
                    args,
                    component_path,
                    journal,
                } => {
                    refuse_components(component_path.as_deref())?;
                    if received.queries.contains_key(&query_id) {
                        return Err(Closing::fatal(format!(
                            "ModifyQuerySet: query {query_id} is already in the query set"
                        )));
                    }
                    if received.queries.len() >= limits.max_queries_per_connection {
                        return Err(Closing::fatal(format!(
                            "TooManyQueries: one connection may subscribe to at most {} queries (max_queries_per_connection)",
                            limits.max_queries_per_connection
                        )));
                    }
                    let mut subscribed = self.subscribed(&udf_path, args);
                    subscribed.journal = journal;
                    received.queries.insert(query_id, subscribed);
                }
                QuerySetModification::Remove { query_id } => {
                    if received.queries.remove(&query_id).is_none() {
                        return Err(Closing::fatal(format!(
                            "ModifyQuerySet: query {query_id} is not in the query set"
                        )));
                    }
                }
            }
        }
        received.query_set_version = new_version;
        drop(received);
        self.wake.notify_one();
        Ok(())
    }

    /// A query as subscribed: its path and arguments parsed (a bad one fails the query,
    /// not the connection).
    fn subscribed(&self, udf_path: &str, args: Vec<Json>) -> Subscribed {
        let path = FunctionPath::parse(udf_path).map_err(|err| err.to_string());
        let args = decode_args(&self.app, args);
        Subscribed {
            path_key: path
                .as_ref()
                .map_or_else(|_| udf_path.to_string(), ToString::to_string),
            args_key: args
                .as_ref()
                .map_or_else(Clone::clone, |args| args.to_convex_json_string()),
            path,
            args,
            journal: None,
        }
    }

    async fn authenticate(
        &self,
        token_type: TokenType,
        value: Option<String>,
        base_version: u64,
        impersonating: Option<Json>,
    ) -> Result<(), Closing> {
        let current = self.received().identity_version;
        if base_version != current {
            return Err(Closing::fatal(format!(
                "Authenticate: base version {base_version} doesn't match the current identity version {current}"
            )));
        }
        let auth_error = |error: String| Closing {
            message: Some(Box::new(ServerMessage::AuthError {
                error,
                base_version: current,
                auth_update_attempted: true,
            })),
            close: None,
        };
        let mut expires_at = None;
        let caller = match token_type {
            TokenType::None => Caller {
                principal: Principal::Public,
                identity: None,
            },
            TokenType::User => {
                let token = value.unwrap_or_default();
                let deployment = self.app.deployments.current();
                let (identity, expiry) = deployment
                    .auth()
                    .verify_with_expiry(&token)
                    .await
                    .map_err(|err| auth_error(err.to_string()))?;
                expires_at = Some(expiry);
                Caller {
                    principal: Principal::Public,
                    identity: Some(Arc::new(identity)),
                }
            }
            TokenType::Admin => {
                let key = value.unwrap_or_default();
                if !self.app.admin_key.matches(&key) {
                    return Err(auth_error(
                        "The provided admin key was invalid for this instance".into(),
                    ));
                }
                let identity = impersonating
                    .map(UserIdentity::from_acting_as)
                    .transpose()
                    .map_err(|err| auth_error(format!("invalid identity to act as: {err}")))?;
                Caller {
                    principal: Principal::Admin,
                    identity: identity.map(Arc::new),
                }
            }
        };
        let mut received = self.received();
        received.caller = caller;
        received.expires_at = expires_at;
        received.identity_version = current + 1;
        drop(received);
        self.wake.notify_one();
        Ok(())
    }

    /// A user's token that has expired since it was accepted ends the connection with an
    /// `AuthError` (`authUpdateAttempted: false`), as Convex does: the client fetches a
    /// fresh token and reconnects. Checked before each mutation, action and Transition.
    fn check_expiry(&self) -> Result<(), Closing> {
        let received = self.received();
        let Some(expires_at) = received.expires_at else {
            return Ok(());
        };
        let now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        if now < expires_at {
            return Ok(());
        }
        Err(Closing {
            message: Some(Box::new(ServerMessage::AuthError {
                error: "token expired: the identity's token expired while the connection was open"
                    .into(),
                base_version: received.identity_sent,
                auth_update_attempted: false,
            })),
            close: None,
        })
    }

    /// Computes and sends Transitions until the connection ends: one per wake-up, with
    /// every change since the last.
    pub async fn run_rounds(self: Arc<Self>) {
        let mut rounds = Rounds {
            version: StateVersion::default(),
            sent: HashMap::new(),
            journals: HashMap::new(),
            epoch: self.app.deployments.epoch(),
        };
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                changed = rounds.epoch.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            match self.round(&mut rounds).await {
                Ok(()) => {}
                Err(closing) => {
                    let _ = self.out.send(Outgoing::Close(closing)).await;
                    return;
                }
            }
        }
    }

    /// One Transition: every query that is new, whose subscription went stale, or whose
    /// identity or deployment changed re-runs at one snapshot; the changed results go out.
    async fn round(&self, rounds: &mut Rounds) -> Result<(), Closing> {
        self.check_expiry()?;
        let epoch = *rounds.epoch.borrow_and_update();
        let deployment = self.app.deployments.current();
        let (queries, query_set_version, identity_version, caller) = {
            let received = self.received();
            (
                received.queries.clone(),
                received.query_set_version,
                received.identity_version,
                received.caller.clone(),
            )
        };
        let identity_key = identity_key(&caller);
        let snapshot = self.app.store.snapshot().map_err(Closing::internal)?;
        let snapshot_ts = snapshot.ts;
        // Every commit up to the snapshot has been checked against the subscriptions: one
        // not stale by now is valid at the snapshot.
        self.app
            .store
            .subscriptions()
            .wait_processed(snapshot_ts)
            .await;
        let mut runs = Vec::new();
        for (&query_id, query) in &queries {
            let journal = rounds
                .journals
                .entry(query_id)
                .or_insert_with(|| query.journal.clone())
                .clone();
            let key = QueryKey {
                path: query.path_key.clone(),
                args: query.args_key.clone(),
                identity: identity_key.clone(),
                epoch,
                journal,
            };
            if let Some((sent_key, result)) = rounds.sent.get(&query_id)
                && *sent_key == key
                && result.valid_at(snapshot_ts)
            {
                continue;
            }
            let (snapshot, caller, deployment) =
                (snapshot.clone(), caller.clone(), deployment.clone());
            runs.push(async move {
                let result = self
                    .app
                    .query_cache
                    .get(key.clone(), snapshot_ts, || {
                        self.run_query(query, key.journal.clone(), snapshot, caller, deployment)
                    })
                    .await;
                (query_id, key, result)
            });
        }
        let mut modifications = Vec::new();
        // At most QUERY_CONCURRENCY at once, as Convex: each run holds an instance.
        let results: Vec<_> = futures_util::stream::iter(runs)
            .buffered(QUERY_CONCURRENCY)
            .collect()
            .await;
        for (query_id, mut key, result) in results {
            if let Some(subscription) = &result.subscription {
                subscription.watch(&self.wake);
            }
            // The next run reads up to the end of the page this one returned.
            if result.journal.is_some() {
                key.journal = result.journal.clone();
                rounds.journals.insert(query_id, result.journal.clone());
            }
            let changed = rounds.sent.get(&query_id).is_none_or(|(_, sent)| {
                sent.outcome != result.outcome || sent.log_lines != result.log_lines
            });
            if changed {
                modifications.push(modification(query_id, &result));
            }
            rounds.sent.insert(query_id, (key, result));
        }
        let mut removed: Vec<u64> = rounds
            .sent
            .keys()
            .filter(|query_id| !queries.contains_key(query_id))
            .copied()
            .collect();
        removed.sort_unstable();
        rounds
            .journals
            .retain(|query_id, _| queries.contains_key(query_id));
        for query_id in removed {
            rounds.sent.remove(&query_id);
            modifications.push(Modification::Removed { query_id });
        }
        let end = StateVersion {
            query_set: query_set_version,
            identity: identity_version,
            ts: snapshot_ts.max(rounds.version.ts),
        };
        // Sent even when nothing changed: a mutation's promise resolves only on a
        // Transition that comes after its MutationResponse (whose change an earlier
        // Transition may already have carried).
        let transition = ServerMessage::Transition {
            start: rounds.version,
            end,
            modifications,
        };
        rounds.version = end;
        self.send(transition).await?;
        self.received().identity_sent = end.identity;
        Ok(())
    }

    async fn send(&self, message: ServerMessage) -> Result<(), Closing> {
        self.out
            .send(Outgoing::Message(message))
            .await
            .map_err(|_| Closing {
                message: None,
                close: None,
            })
    }

    /// Runs a subscribed query at `snapshot` and subscribes to what it read.
    async fn run_query(
        &self,
        query: &Subscribed,
        journal: Option<String>,
        snapshot: crate::database::persistence::Snapshot,
        caller: Caller,
        deployment: Arc<Deployment>,
    ) -> QueryResult {
        let ts = snapshot.ts;
        let unchangeable = |message: String| QueryResult::unchangeable(message, ts);
        let args = match &query.args {
            Ok(args) => args,
            Err(message) => return unchangeable(message.clone()),
        };
        if is_system_path(&query.path_key) {
            return self
                .run_system_query(&query.path_key, args, snapshot, &caller)
                .await;
        }
        let path = match &query.path {
            Ok(path) => path,
            Err(message) => return unchangeable(message.clone()),
        };
        let (module, spec) = match find_function(
            &deployment,
            path,
            caller.principal,
            Some(FunctionKind::Query),
        ) {
            Ok(found) => found,
            Err(message) => return unchangeable(message),
        };
        // A journal we cannot read (not one of ours) is none: the page is read afresh.
        let previous = journal.and_then(|journal| PageEnd::from_journal(&journal).ok());
        let journal = Arc::new(PageJournal::new(previous));
        let context = CallContext::root(deployment.clone(), caller.identity.clone())
            .with_page_journal(journal.clone());
        let transaction = self.app.store.begin_query_at(snapshot);
        let started = (SystemTime::now(), Instant::now());
        let (invocation, transaction) = self
            .app
            .runtime
            .invoke_query_at(&context, module, &spec.name, args, transaction)
            .await;
        self.record(FunctionKind::Query, path, started, &invocation);
        let (ts, reads) = match transaction {
            Some(transaction) => transaction.into_reads(),
            None => (ts, Default::default()),
        };
        let subscription = self.app.store.subscriptions().subscribe(reads, ts);
        let outcome = match invocation.outcome {
            Ok(returned) => QueryOutcome::Value(returned.to_convex_json()),
            Err(failure) => {
                let (message, data) = failure_message(path, failure);
                QueryOutcome::Error { message, data }
            }
        };
        QueryResult {
            outcome,
            log_lines: log_lines(&invocation.log_lines),
            subscription: Some(subscription),
            ts,
            journal: journal.recorded().map(|end| end.to_journal()),
        }
    }

    /// Runs a `_system/` query (the admin's only, not acting as a user) off the async
    /// workers: counting a table reads all of it.
    async fn run_system_query(
        &self,
        udf_path: &str,
        args: &Value,
        snapshot: crate::database::persistence::Snapshot,
        caller: &Caller,
    ) -> QueryResult {
        let ts = snapshot.ts;
        let failed = |message: String| QueryResult::unchangeable(message, ts);
        if caller.principal != Principal::Admin || caller.identity.is_some() {
            return failed(format!(
                "{udf_path} is a system function: only the admin key (not acting as a user) may call it"
            ));
        }
        let query = match SystemQuery::parse(udf_path, args) {
            Ok(query) => query,
            Err(message) => return failed(message),
        };
        let app = self.app.clone();
        let ran = tokio::task::spawn_blocking(move || query.run(&app, snapshot)).await;
        match ran {
            Ok(Ok((value, reads))) => QueryResult {
                outcome: QueryOutcome::Value(value),
                log_lines: Vec::new(),
                subscription: Some(self.app.store.subscriptions().subscribe(reads, ts)),
                ts,
                journal: None,
            },
            Ok(Err(message)) => failed(message),
            Err(err) => failed(Closing::internal_message(&err)),
        }
    }

    /// Logs a call's lines and records it for `stream_function_logs`.
    fn record(
        &self,
        kind: FunctionKind,
        path: &FunctionPath,
        started: (SystemTime, Instant),
        invocation: &Invocation,
    ) {
        for line in &invocation.log_lines {
            tracing::info!(target: FUNCTION_LOG, function = %path, "{line}");
        }
        self.app.function_log.record(Execution {
            kind,
            identifier: path.to_string(),
            started: started.0,
            duration: started.1.elapsed(),
            log_lines: &invocation.log_lines,
            error: invocation.outcome.as_ref().err().map(ToString::to_string),
        });
    }

    /// Runs the connection's mutations one at a time, in the order sent, until it ends.
    pub async fn run_mutations(self: Arc<Self>, mut queue: mpsc::Receiver<QueuedMutation>) {
        while let Some(mutation) = queue.recv().await {
            // A task of its own: if the connection drops mid-mutation, the mutation still
            // runs to its end and its answer is kept, so the client's resend after it
            // reconnects gets that answer instead of running it a second time.
            let session = self.clone();
            let running = tokio::spawn(async move {
                let session_id = session.received().session_id.clone();
                let run = || session.run_mutation(&mutation);
                match &session_id {
                    Some(id) => {
                        session
                            .app
                            .recent_mutations
                            .answer(id, mutation.request_id, run)
                            .await
                    }
                    None => run().await,
                }
            });
            let Ok(response) = running.await else {
                return;
            };
            if self.send(response).await.is_err() {
                return;
            }
            // The client waits for a Transition at or past the mutation's commit.
            self.wake.notify_one();
        }
    }

    async fn run_mutation(&self, mutation: &QueuedMutation) -> ServerMessage {
        let (outcome, log_lines, ts) = self
            .call(
                FunctionKind::Mutation,
                &mutation.udf_path,
                mutation.args.clone(),
                &mutation.caller,
            )
            .await;
        ServerMessage::MutationResponse {
            request_id: mutation.request_id,
            outcome,
            ts: ts.unwrap_or_else(|| self.app.store.subscriptions().processed_ts()),
            log_lines,
        }
    }

    fn start_action(
        self: &Arc<Self>,
        request_id: u64,
        udf_path: String,
        args: Vec<Json>,
        caller: Caller,
    ) {
        let session = self.clone();
        let Ok(permit) = self.actions.clone().try_acquire_owned() else {
            let limit = self.app.runtime.limits().max_pending_actions_per_connection;
            tokio::spawn(async move {
                let _ = session
                    .send(ServerMessage::ActionResponse {
                        request_id,
                        outcome: CallOutcome::Failure {
                            message: format!(
                                "TooManyInflightActions: this connection already runs {limit} actions (max_pending_actions_per_connection)"
                            ),
                            data: None,
                        },
                        log_lines: Vec::new(),
                    })
                    .await;
            });
            return;
        };
        tokio::spawn(async move {
            let (outcome, log_lines, _) = session
                .call(FunctionKind::Action, &udf_path, args, &caller)
                .await;
            drop(permit);
            let response = ServerMessage::ActionResponse {
                request_id,
                outcome,
                log_lines,
            };
            if session.send(response).await.is_ok() {
                session.wake.notify_one();
            }
        });
    }

    /// Runs a mutation or action for the client: the function must be of that kind.
    async fn call(
        &self,
        kind: FunctionKind,
        udf_path: &str,
        args: Vec<Json>,
        caller: &Caller,
    ) -> (CallOutcome, Vec<String>, Option<u64>) {
        let failure = |message: String| {
            (
                CallOutcome::Failure {
                    message,
                    data: None,
                },
                Vec::new(),
                None,
            )
        };
        let path = match FunctionPath::parse(udf_path) {
            Ok(path) => path,
            Err(err) => return failure(err.to_string()),
        };
        let args = match decode_args(&self.app, args) {
            Ok(args) => args,
            Err(message) => return failure(message),
        };
        let deployment = self.app.deployments.current();
        let (module, spec) = match find_function(&deployment, &path, caller.principal, Some(kind)) {
            Ok(found) => found,
            Err(message) => return failure(message),
        };
        // Actions hold one of `max_concurrent_actions`, as over HTTP.
        let _slot = match kind {
            FunctionKind::Action => Some(
                self.app
                    .actions
                    .acquire()
                    .await
                    .expect("the action semaphore is never closed"),
            ),
            _ => None,
        };
        let context = CallContext::root(deployment.clone(), caller.identity.clone());
        let started = (SystemTime::now(), Instant::now());
        let invocation = self
            .app
            .runtime
            .invoke(&context, module, &spec.name, kind, &args)
            .await;
        self.record(kind, &path, started, &invocation);
        let log_lines = log_lines(&invocation.log_lines);
        match invocation.outcome {
            Ok(returned) => (
                CallOutcome::Success(returned.to_convex_json()),
                log_lines,
                invocation.commit_ts,
            ),
            Err(failure) => {
                let (message, data) = failure_message(&path, failure);
                (CallOutcome::Failure { message, data }, log_lines, None)
            }
        }
    }
}

/// Components are Convex's; Kiln has none.
fn refuse_components(component_path: Option<&str>) -> Result<(), Closing> {
    match component_path.filter(|path| !path.is_empty()) {
        Some(path) => Err(Closing::fatal(format!(
            "Kiln does not run Convex components yet (componentPath {path:?})"
        ))),
        None => Ok(()),
    }
}

/// Arguments travel as an array holding one object.
fn decode_args(app: &AppState, args: Vec<Json>) -> Result<Value, String> {
    let mut args = args;
    let object = match args.len() {
        0 => Json::Object(Default::default()),
        1 => args.remove(0),
        n => {
            return Err(format!(
                "args must be an array of one object, got {n} elements"
            ));
        }
    };
    if !object.is_object() {
        return Err(format!(
            "args must be an object, got {}",
            kiln_values::json_type_name(&object)
        ));
    }
    let limits = app.runtime.limits().value_limits();
    Value::from_convex_json_with_limits(object, &limits)
        .map_err(|err| format!("invalid args: {}", err.with_root("args")))
}

/// Who runs a query, as its cache key.
fn identity_key(caller: &Caller) -> String {
    let identity = caller
        .identity
        .as_ref()
        .map(|identity| identity.to_json().to_string())
        .unwrap_or_default();
    match caller.principal {
        Principal::Admin => format!("admin:{identity}"),
        Principal::Public => identity,
    }
}

/// A failure as the client sees it: the message, and the `ConvexError` data if any. A
/// host failure's cause is for the log only.
fn failure_message(path: &FunctionPath, failure: FunctionFailure) -> (String, Option<Json>) {
    match failure {
        FunctionFailure::Raised { message, data } => {
            (message, data.map(|data| data.to_convex_json()))
        }
        FunctionFailure::Internal(cause) => {
            tracing::error!(function = %path, "internal error: {cause}");
            (internal_message("internal error"), None)
        }
        other => (other.to_string(), None),
    }
}

fn log_lines(lines: &[LogLine]) -> Vec<String> {
    lines.iter().map(ToString::to_string).collect()
}

fn modification(query_id: u64, result: &QueryResult) -> Modification {
    match &result.outcome {
        QueryOutcome::Value(value) => Modification::Updated {
            query_id,
            value: value.clone(),
            log_lines: result.log_lines.clone(),
            journal: result.journal.clone(),
        },
        QueryOutcome::Error { message, data } => Modification::Failed {
            query_id,
            error_message: message.clone(),
            error_data: data.clone(),
            log_lines: result.log_lines.clone(),
            journal: result.journal.clone(),
        },
    }
}
