//! Turning uploaded modules into the live deployment, and bringing it back at start-up.
//!
//! A deploy validates and compiles every module first (off the async threads), links each
//! and reads its function list, and only then stores the new deployment, together with
//! its schema changes, in one write transaction (through the committer) and swaps it in.
//! Any failure leaves the old deployment live and names the module and the reason.

pub mod artifacts;
pub mod convex;
mod deployment;
pub mod environment;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use artifacts::ArtifactCache;
pub use deployment::Deployment;
use store::{DeploymentRecord, JsFile, JsFileRecord, ModuleRecord, NewModuleBlobs};

use crate::auth::fetch::Fetcher;
use crate::auth::{AuthConfig, AuthSettings, AuthVerifier};
use crate::database::kv::{KvStore, KvWrite};
use crate::database::schema::{Schema, SchemaError, SchemaReport};
use crate::database::transaction::AlsoWrite;
use crate::function_path::check_module_name;
use crate::runtime::{CompiledComponent, FunctionSpec, HttpRoute, LoadedModule, Runtime, js};
use crate::scheduler::crons::CronSpec;

/// How often a host over a shared database checks for a deployment another host made,
/// when no commit wakes it sooner.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// Owns the live deployment and replaces it.
pub struct Deployments {
    runtime: Arc<Runtime>,
    /// Where the environment variables are kept (the deployment goes through the store).
    db: Arc<dyn KvStore>,
    /// Where compiled artifacts are kept (the store, or this host's disk).
    artifacts: Arc<ArtifactCache>,
    /// Serialises changes to the environment variables.
    environment: tokio::sync::Mutex<()>,
    /// Fetches the keys of every deployment's auth providers.
    auth_fetcher: Arc<Fetcher>,
    auth_settings: AuthSettings,
    live: RwLock<Arc<Deployment>>,
    /// Deploys run one at a time; calls never wait for it.
    deploying: tokio::sync::Mutex<()>,
    /// The JavaScript app last loaded but not (yet) deployed: what a Convex CLI push's
    /// `start_push` analysed, which its `finish_push` then deploys without loading again.
    staged_js: std::sync::Mutex<Option<Arc<StagedJsApp>>>,
    /// Bumped each time what a call runs against changes (a deploy, the environment
    /// variables): every subscribed query re-runs.
    epoch: tokio::sync::watch::Sender<u64>,
}

/// What a deploy is made of.
#[derive(Default)]
pub struct NewDeployment {
    /// `.wasm` modules by name.
    pub modules: BTreeMap<String, Vec<u8>>,
    /// The JavaScript app: sources (loaded and snapshotted here) or a `kiln build` snapshot.
    pub js: js::JsApp,
    /// Every file of the JavaScript app by path, with its source map when it has one (also
    /// the files the snapshot does not load, such as `auth.config.js`): what
    /// `get_config_hashes` lists to the Convex CLI.
    pub js_files: BTreeMap<String, JsFile>,
    pub schema: Schema,
    pub auth: AuthConfig,
    /// Cron jobs by name (`[crons]` of kiln.toml); the JS app's `crons.js` adds its own.
    pub crons: BTreeMap<String, CronSpec>,
}

/// A JavaScript app loaded, snapshotted and compiled, keyed by its app hash.
struct StagedJsApp {
    app_hash: String,
    compiled: CompiledComponent,
    snapshot: Vec<u8>,
    memory_bytes: usize,
    modules: BTreeMap<String, Arc<LoadedModule>>,
    /// The crons of its `crons.js`.
    crons: BTreeMap<String, CronSpec>,
}

/// Why a deploy was refused. The old deployment stays live.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("module `{module}`: {reason}")]
    InvalidModule { module: String, reason: String },
    #[error("{0}")]
    InvalidSchema(String),
    /// The JavaScript app cannot be loaded: the JS error, with its file and line.
    #[error("JavaScript: {0}")]
    InvalidJs(String),
    /// An `[auth]` provider that cannot be used: names the provider and the field.
    #[error("{0}")]
    InvalidAuthConfig(String),
    /// A cron job that cannot run: names the cron and what is wrong.
    #[error("{0}")]
    InvalidCron(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a deploy changed, for `kiln deploy` to print.
#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeployReport {
    pub deployment_id: u64,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Canonical paths of every function now deployed.
    pub functions: Vec<String>,
    /// Tables created and indexes built or dropped.
    pub schema: SchemaReport,
    /// The auth providers now live, described (`oidc https://... (applicationID app)`).
    pub auth_providers: Vec<String>,
    /// The names of the cron jobs now installed.
    pub crons: Vec<String>,
    /// When this deploy loaded a JavaScript app: the linear memory each call's instance
    /// starts with (the loaded snapshot's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub js_memory_bytes: Option<usize>,
}

/// How the deployment was brought back at start-up.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub modules: usize,
    /// Modules whose stored artifact was reused.
    pub from_cache: usize,
    /// Modules compiled again because their artifact did not fit this engine.
    pub recompiled: usize,
}

impl Deployments {
    /// Loads the stored deployment, reusing compiled artifacts where the engine accepts them.
    pub async fn load(
        runtime: Arc<Runtime>,
        db: Arc<dyn KvStore>,
        artifacts: ArtifactCache,
    ) -> anyhow::Result<(Self, LoadReport)> {
        let artifacts = Arc::new(artifacts);
        let mut report = LoadReport::default();
        let variables = blocking({
            let db = db.clone();
            move || environment::load(db.as_ref())
        })
        .await
        .context("cannot read the environment variables")?;
        runtime.set_environment(variables);
        let record = blocking({
            let db = db.clone();
            move || store::current_deployment(db.as_ref())
        })
        .await?
        .unwrap_or_default();
        let auth_settings = AuthSettings::from_limits(runtime.limits());
        let auth_fetcher = Arc::new(crate::auth::fetcher(runtime.limits())?);
        let live = restore(
            &runtime,
            &db,
            &artifacts,
            record,
            &auth_settings,
            &auth_fetcher,
            &mut report,
        )
        .await?;
        Ok((
            Self {
                runtime,
                db,
                artifacts,
                environment: tokio::sync::Mutex::new(()),
                auth_fetcher,
                auth_settings,
                live: RwLock::new(Arc::new(live)),
                deploying: tokio::sync::Mutex::new(()),
                staged_js: std::sync::Mutex::new(None),
                epoch: tokio::sync::watch::channel(1).0,
            },
            report,
        ))
    }

    /// Over a shared database, keeps this host serving what any host deployed: after the
    /// commits of other hosts (the subscriptions' progress), and at least every few
    /// seconds, reads the stored deployment and environment, and takes them up if they
    /// changed. Over redb (one host) there is nothing to follow.
    pub fn follow_other_hosts(self: &Arc<Self>) {
        if !self.db.shared() {
            return;
        }
        let this = Arc::downgrade(self);
        let mut processed = self.runtime.store.subscriptions().processed_watch();
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(FOLLOW_INTERVAL, processed.changed()).await;
                let Some(this) = this.upgrade() else { return };
                if let Err(err) = this.take_up_stored().await {
                    tracing::error!(error = ?err, "cannot take up the deployment another host stored");
                }
                drop(this);
                // At most a few reads a second however many commits happen.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// Takes up the stored deployment if it is newer than the live one (another host
    /// deployed it), and the stored environment variables if they differ.
    async fn take_up_stored(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.deploying.lock().await;
        self.take_up_stored_locked().await
    }

    /// [`take_up_stored`](Self::take_up_stored), for a caller that holds `deploying`.
    async fn take_up_stored_locked(&self) -> anyhow::Result<()> {
        let mut changed = self.take_up_stored_environment().await?;
        let db = self.db.clone();
        let record = blocking(move || store::current_deployment(db.as_ref())).await?;
        if let Some(record) = record.filter(|record| record.id > self.current().id()) {
            let id = record.id;
            let mut report = LoadReport::default();
            let deployment = restore(
                &self.runtime,
                &self.db,
                &self.artifacts,
                record,
                &self.auth_settings,
                &self.auth_fetcher,
                &mut report,
            )
            .await
            .with_context(|| format!("cannot load deployment {id}"))?;
            *self.live.write().expect("deployment lock poisoned") = Arc::new(deployment);
            tracing::info!(
                deployment = id,
                modules = report.modules,
                "took up the deployment another host made"
            );
            changed = true;
        }
        if changed {
            self.epoch.send_modify(|epoch| *epoch += 1);
        }
        Ok(())
    }

    /// Takes up the stored environment variables if they differ from the live ones; whether
    /// they did. Holds `environment` from the read to the swap, so an update on this host
    /// in between cannot be undone by the older variables this read saw.
    async fn take_up_stored_environment(&self) -> anyhow::Result<bool> {
        let _one_at_a_time = self.environment.lock().await;
        let db = self.db.clone();
        let variables = blocking(move || environment::load(db.as_ref())).await?;
        if variables == self.runtime.environment_map() {
            return Ok(false);
        }
        self.runtime.set_environment(variables);
        Ok(true)
    }

    /// Sets and removes environment variables (all or none); every call that starts after
    /// this returns sees them. The variables now.
    pub async fn update_environment(
        &self,
        changes: Vec<environment::Change>,
    ) -> Result<BTreeMap<String, String>, environment::UpdateError> {
        let _one_at_a_time = self.environment.lock().await;
        let current = self.runtime.environment_map();
        let db = self.db.clone();
        let next = tokio::task::spawn_blocking(move || {
            environment::update(db.as_ref(), &current, &changes)
        })
        .await
        .map_err(|err| {
            environment::UpdateError::Store(anyhow::anyhow!("the update task failed: {err}"))
        })??;
        self.runtime.set_environment(next.clone());
        self.epoch.send_modify(|epoch| *epoch += 1);
        Ok(next)
    }

    /// A stored file of the JavaScript app, by its hash.
    pub async fn stored_js_file(&self, sha256: String) -> anyhow::Result<Option<JsFile>> {
        let db = self.db.clone();
        blocking(move || store::js_file(db.as_ref(), &sha256)).await
    }

    /// Watches what calls run against: the value changes with every deploy and every
    /// change to the environment variables.
    pub fn epoch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// The deployment calls are served from now.
    pub fn current(&self) -> Arc<Deployment> {
        self.live.read().expect("deployment lock poisoned").clone()
    }

    /// Replaces the deployment with `modules` (name → `.wasm` bytes), the JavaScript app
    /// `js` (sources, or a `kiln build` snapshot; its modules are named by path), its
    /// schema and its auth providers, all or nothing.
    ///
    /// Runs as a task of its own: a client that hangs up mid-deploy must not cancel it
    /// between storing the new deployment and swapping it in.
    pub async fn deploy(self: &Arc<Self>, new: NewDeployment) -> Result<DeployReport, DeployError> {
        let this = self.clone();
        tokio::spawn(async move { this.deploy_to_completion(new).await })
            .await
            .map_err(|err| {
                DeployError::Internal(anyhow::anyhow!("the deploy task failed: {err}"))
            })?
    }

    async fn deploy_to_completion(&self, new: NewDeployment) -> Result<DeployReport, DeployError> {
        let NewDeployment {
            modules,
            js,
            js_files,
            schema,
            auth,
            crons,
        } = new;
        schema
            .validate()
            .map_err(|err| DeployError::InvalidSchema(err.to_string()))?;
        let providers = auth
            .validate()
            .map_err(|err| DeployError::InvalidAuthConfig(err.to_string()))?;
        let _one_at_a_time = self.deploying.lock().await;
        if self.db.shared() {
            // Build on what any host deployed last (the store refuses a deployment that
            // does not follow the stored one, should another host deploy meanwhile).
            self.take_up_stored_locked().await?;
        }
        let old = self.current();
        // Unchanged providers keep their verifier, and with it the keys it has fetched.
        let verifier = if old.record.auth == auth {
            old.auth.clone()
        } else {
            Arc::new(AuthVerifier::new(
                providers,
                &self.auth_settings,
                &self.auth_fetcher,
            ))
        };
        let mut report = DeployReport::default();
        let mut record = DeploymentRecord {
            id: old.record.id + 1,
            deployed_at_ms: now_ms(),
            modules: BTreeMap::new(),
            schema: Schema::default(),
            auth,
            js_files: BTreeMap::new(),
            crons: BTreeMap::new(),
            js_crons: BTreeMap::new(),
        };
        let mut loaded_modules = BTreeMap::new();
        let mut new_blobs = Vec::new();
        for (path, file) in &js_files {
            let sha256 = file.sha256();
            let stored = old.record.js_files.values().any(|old| old.sha256 == sha256)
                || new_blobs
                    .iter()
                    .any(|blob: &NewModuleBlobs| blob.sha256 == sha256);
            if !stored {
                new_blobs.push(NewModuleBlobs::js_file(file));
            }
            record
                .js_files
                .insert(path.clone(), JsFileRecord { sha256 });
        }

        for (name, bytes) in modules {
            let invalid = |reason: String| DeployError::InvalidModule {
                module: name.clone(),
                reason,
            };
            check_module_name(&name).map_err(invalid)?;
            if name.ends_with(".js") {
                return Err(invalid(
                    "module names may not end in .js: the suffix is dropped from function paths"
                        .into(),
                ));
            }
            let sha256 = hex::encode(Sha256::digest(&bytes));
            let unchanged = old
                .record
                .modules
                .get(&name)
                .filter(|module| module.sha256 == sha256)
                .and_then(|_| old.modules.get(&name));
            let loaded = match unchanged {
                Some(loaded) => {
                    report.unchanged.push(name.clone());
                    loaded.clone()
                }
                None => {
                    if old.modules.contains_key(&name) {
                        report.updated.push(name.clone());
                    } else {
                        report.added.push(name.clone());
                    }
                    let runtime = self.runtime.clone();
                    let (compiled, source) =
                        blocking(move || Ok((runtime.compile(&bytes), bytes))).await?;
                    let compiled = compiled.map_err(|err| invalid(err.to_string()))?;
                    let loaded = self
                        .runtime
                        .load_module(&compiled.component, None)
                        .await
                        .map_err(|err| invalid(err.to_string()))?;
                    new_blobs.push(NewModuleBlobs {
                        sha256: sha256.clone(),
                        source,
                        artifact: compiled.artifact,
                    });
                    Arc::new(loaded)
                }
            };
            record.modules.insert(
                name.clone(),
                ModuleRecord {
                    sha256,
                    functions: loaded.functions().to_vec(),
                    js: false,
                },
            );
            loaded_modules.insert(name, loaded);
        }
        if !js.is_empty() {
            self.deploy_js(
                &old,
                js,
                &mut record,
                &mut loaded_modules,
                &mut new_blobs,
                &mut report,
            )
            .await?;
        }
        check_routes(&loaded_modules)?;
        record.crons = check_crons(
            crons,
            &record.js_crons,
            &loaded_modules,
            self.runtime.limits(),
        )?;
        report.removed = old
            .modules
            .keys()
            .filter(|name| !record.modules.contains_key(*name))
            .cloned()
            .collect();

        // Every module compiled and linked: build the tables and indexes the new functions
        // need, and store the deployment, in one commit: after a failure or a crash the
        // stored schema and the stored deployment still belong together.
        record.schema = schema;
        let stored_record = record.clone();
        if !self.artifacts.in_store() {
            // Kept on this host (see `artifacts`): the store gets the sources only.
            let (artifacts, db) = (self.artifacts.clone(), self.db.clone());
            new_blobs = blocking(move || {
                for blob in &mut new_blobs {
                    if !blob.artifact.is_empty() {
                        artifacts.put(db.as_ref(), &blob.sha256, &blob.artifact)?;
                        blob.artifact = Vec::new();
                    }
                }
                Ok(new_blobs)
            })
            .await?;
        }
        let new_blobs = Arc::new(new_blobs);
        let store_deployment: AlsoWrite = Arc::new(move |txn: &mut dyn KvWrite| {
            store::write_deployment(txn, &stored_record, &new_blobs)
                .context("cannot store the deployment")
        });
        report.schema = self
            .runtime
            .store
            .apply_schema(&record.schema, Some(store_deployment))
            .await
            .map_err(|err| match err {
                SchemaError::Invalid(_) | SchemaError::Db(_) | SchemaError::Violation(_) => {
                    DeployError::InvalidSchema(err.to_string())
                }
                SchemaError::Commit(err) => {
                    DeployError::Internal(anyhow::anyhow!("cannot store the deployment: {err}"))
                }
                SchemaError::Backfill(err) => DeployError::Internal(err),
            })?;

        let deployment = Deployment {
            record,
            modules: loaded_modules,
            auth: verifier,
        };
        report.deployment_id = deployment.id();
        report.auth_providers = deployment
            .auth()
            .providers()
            .map(|provider| provider.describe())
            .collect();
        report.functions = deployment
            .functions()
            .map(|(path, _)| path.to_string())
            .collect();
        report.crons = deployment.record.crons.keys().cloned().collect();
        let crons = deployment.record.crons.clone();
        *self.live.write().expect("deployment lock poisoned") = Arc::new(deployment);
        self.epoch.send_modify(|epoch| *epoch += 1);
        // The deployment is stored: if this fails (or the server stops first), the start
        // of the scheduler installs them from it.
        if let Err(err) = crate::scheduler::crons::install_all(&self.runtime.store, &crons).await {
            tracing::error!(error = %err, "cannot install the deployment's cron jobs");
        }
        // Removed indexes go once the functions that no longer use them are live, in
        // chunks, while the server serves. Until then nothing reads their entries.
        let removed = std::mem::take(&mut report.schema.removed_index_ids);
        if !removed.is_empty() {
            let store = self.runtime.store.clone();
            tokio::spawn(async move {
                if let Err(err) = store.drop_indexes(&removed).await {
                    tracing::error!(error = ?err, "cannot drop removed indexes");
                }
            });
        }
        Ok(report)
    }
}

impl Deployments {
    /// Loads the JavaScript app (unless the live deployment has the very same app on the
    /// same runtime) and adds its modules to the new deployment.
    async fn deploy_js(
        &self,
        old: &Deployment,
        js: js::JsApp,
        record: &mut DeploymentRecord,
        loaded_modules: &mut BTreeMap<String, Arc<LoadedModule>>,
        new_blobs: &mut Vec<NewModuleBlobs>,
        report: &mut DeployReport,
    ) -> Result<(), DeployError> {
        let app_hash = match &js {
            js::JsApp::Sources(modules) => js::app_hash(modules).map_err(js_error)?,
            js::JsApp::Prebuilt(snapshot) => js::prebuilt_hash(snapshot),
        };
        let unchanged: BTreeMap<String, Arc<LoadedModule>> = old
            .record
            .modules
            .iter()
            .filter(|(_, module)| module.js && module.sha256 == app_hash)
            .filter_map(|(name, _)| Some((name.clone(), old.modules.get(name)?.clone())))
            .collect();
        let app = if unchanged.is_empty() {
            let staged = self.load_js(js, app_hash.clone()).await?;
            record.js_crons = staged.crons.clone();
            report.js_memory_bytes = Some(staged.memory_bytes);
            new_blobs.push(NewModuleBlobs {
                sha256: app_hash.clone(),
                source: staged.snapshot.clone(),
                artifact: staged.compiled.artifact.clone(),
            });
            staged.modules.clone()
        } else {
            record.js_crons = old.record.js_crons.clone();
            unchanged
        };
        for (name, loaded) in app {
            if record.modules.contains_key(&name) {
                return Err(DeployError::InvalidModule {
                    module: name,
                    reason: "both a .wasm module and a JavaScript module have this name".into(),
                });
            }
            let previous = old.record.modules.get(&name);
            match previous {
                Some(module) if module.js && module.sha256 == app_hash => {
                    report.unchanged.push(name.clone())
                }
                Some(_) => report.updated.push(name.clone()),
                None => report.added.push(name.clone()),
            }
            record.modules.insert(
                name.clone(),
                ModuleRecord {
                    sha256: app_hash.clone(),
                    functions: loaded.functions().to_vec(),
                    js: true,
                },
            );
            loaded_modules.insert(name, loaded);
        }
        Ok(())
    }
}

impl Deployments {
    /// Loads, snapshots and compiles a JavaScript app (the staged one, if it is this app),
    /// and keeps it staged.
    async fn load_js(
        &self,
        js: js::JsApp,
        app_hash: String,
    ) -> Result<Arc<StagedJsApp>, DeployError> {
        if let Some(staged) = self.staged_js.lock().expect("staged lock").clone()
            && staged.app_hash == app_hash
        {
            return Ok(staged);
        }
        let runtime = self.runtime.clone();
        let (compiled, snapshot, memory_bytes) = match js {
            js::JsApp::Sources(modules) => {
                let js::Snapshot {
                    component: snapshot,
                    memory_bytes,
                } = js::snapshot(&self.runtime, &modules)
                    .await
                    .map_err(js_error)?;
                let (compiled, snapshot) =
                    blocking(move || Ok((runtime.compile_trusted(&snapshot), snapshot))).await?;
                let compiled = compiled.map_err(|err| {
                    DeployError::Internal(anyhow::anyhow!(
                        "cannot compile the JS app's snapshot: {err}"
                    ))
                })?;
                (compiled, snapshot, memory_bytes)
            }
            // Uploaded bytes: checked and size-limited like any module.
            js::JsApp::Prebuilt(snapshot) => {
                let (compiled, snapshot) =
                    blocking(move || Ok((runtime.compile(&snapshot), snapshot))).await?;
                let compiled = compiled
                    .map_err(|err| DeployError::InvalidJs(format!("the prebuilt app: {err}")))?;
                (compiled, snapshot, 0)
            }
        };
        let loaded = self
            .runtime
            .load_js_app(&compiled.component, None)
            .await
            .map_err(|err| DeployError::InvalidJs(err.to_string()))?;
        let crons = match loaded.values().next() {
            Some(module) => {
                let json = self.runtime.js_app_crons(module).await.map_err(js_error)?;
                crate::scheduler::crons::from_convex_json(&json)
                    .map_err(DeployError::InvalidCron)?
            }
            None => BTreeMap::new(),
        };
        let staged = Arc::new(StagedJsApp {
            app_hash,
            compiled,
            snapshot,
            memory_bytes,
            modules: loaded
                .into_iter()
                .map(|(name, module)| (name, Arc::new(module)))
                .collect(),
            crons,
        });
        *self.staged_js.lock().expect("staged lock") = Some(staged.clone());
        Ok(staged)
    }

    /// Loads the JavaScript app `modules` without deploying it (the live app, if it is the
    /// same) and returns its functions by module: a Convex CLI push's analysis. The deploy
    /// that follows reuses the loaded app.
    pub async fn stage_js(
        &self,
        modules: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, Vec<FunctionSpec>>, DeployError> {
        let app_hash = js::app_hash(&modules).map_err(js_error)?;
        let live = self.current();
        let from_live: BTreeMap<String, Vec<FunctionSpec>> = live
            .record
            .modules
            .iter()
            .filter(|(_, module)| module.js && module.sha256 == app_hash)
            .map(|(name, module)| (name.clone(), module.functions.clone()))
            .collect();
        if !from_live.is_empty() {
            return Ok(from_live);
        }
        let staged = self.load_js(js::JsApp::Sources(modules), app_hash).await?;
        Ok(staged
            .modules
            .iter()
            .map(|(name, module)| (name.clone(), module.functions().to_vec()))
            .collect())
    }
}

fn js_error(err: js::JsAppError) -> DeployError {
    match err {
        js::JsAppError::Internal(err) => DeployError::Internal(err),
        other => DeployError::InvalidJs(other.to_string()),
    }
}

/// Builds the deployment `record` describes from the stored modules, reusing compiled
/// artifacts where the engine accepts them.
async fn restore(
    runtime: &Arc<Runtime>,
    db: &Arc<dyn KvStore>,
    artifacts: &Arc<ArtifactCache>,
    record: DeploymentRecord,
    auth_settings: &AuthSettings,
    auth_fetcher: &Arc<Fetcher>,
    report: &mut LoadReport,
) -> anyhow::Result<Deployment> {
    let mut modules = BTreeMap::new();
    let mut js_app = BTreeMap::new();
    for (name, module) in &record.modules {
        if module.js {
            js_app.insert(name.clone(), module.functions.clone());
            continue;
        }
        let component = load_component(runtime, db, artifacts, &module.sha256, report)
            .await
            .with_context(|| format!("cannot load module `{name}`"))?;
        let loaded = runtime
            .load_module(&component, Some(module.functions.clone()))
            .await
            .with_context(|| format!("cannot load module `{name}`"))?;
        modules.insert(name.clone(), Arc::new(loaded));
        report.modules += 1;
    }
    // The JavaScript app's modules share one component: loaded once.
    if let Some(sha256) = record
        .modules
        .values()
        .find(|module| module.js)
        .map(|module| module.sha256.clone())
    {
        let component = load_component(runtime, db, artifacts, &sha256, report)
            .await
            .context("cannot load the JavaScript app")?;
        let loaded = runtime
            .load_js_app(&component, Some(js_app))
            .await
            .context("cannot load the JavaScript app")?;
        report.modules += loaded.len();
        modules.extend(
            loaded
                .into_iter()
                .map(|(name, module)| (name, Arc::new(module))),
        );
    }
    let providers = record
        .auth
        .validate()
        .context("the stored deployment's [auth] config is invalid")?;
    let auth = Arc::new(AuthVerifier::new(providers, auth_settings, auth_fetcher));
    Ok(Deployment {
        record,
        modules,
        auth,
    })
}

/// The stored artifact of a module, or, if this engine refuses it, a fresh compilation of
/// its stored source (which then replaces the artifact).
async fn load_component(
    runtime: &Arc<Runtime>,
    db: &Arc<dyn KvStore>,
    artifacts: &Arc<ArtifactCache>,
    sha256: &str,
    report: &mut LoadReport,
) -> anyhow::Result<Component> {
    let (runtime, db, artifacts, sha256) = (
        runtime.clone(),
        db.clone(),
        artifacts.clone(),
        sha256.to_string(),
    );
    let (component, recompiled) = blocking(move || {
        if let Some(artifact) = artifacts.get(db.as_ref(), &sha256)?
            && let Some(component) = runtime.load_artifact(&artifact)
        {
            return Ok((component, false));
        }
        let source =
            store::module_source(db.as_ref(), &sha256)?.context("its stored source is missing")?;
        let compiled = runtime.compile(&source)?;
        artifacts.put(db.as_ref(), &sha256, &compiled.artifact)?;
        Ok((compiled.component, true))
    })
    .await?;
    if recompiled {
        report.recompiled += 1;
    } else {
        report.from_cache += 1;
    }
    Ok(component)
}

/// Runs blocking work (compilation, the store) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a blocking task panicked")?
}

/// Two HTTP actions of different modules routed at the same method and path would make
/// one unreachable: refused, naming both. (Within one module, loading refuses it.)
fn check_routes(modules: &BTreeMap<String, Arc<LoadedModule>>) -> Result<(), DeployError> {
    let mut seen: std::collections::HashMap<&HttpRoute, String> = Default::default();
    for (module_name, module) in modules {
        for spec in module.functions() {
            let Some(route) = &spec.route else { continue };
            let path = format!("{module_name}:{}", spec.name);
            if let Some(other) = seen.insert(route, path.clone()) {
                return Err(DeployError::InvalidModule {
                    module: module_name.clone(),
                    reason: format!("{other} and {path} are both routed at {route}"),
                });
            }
        }
    }
    Ok(())
}

/// The deployment's crons: `declared` (kiln.toml) and `from_js` (crons.js), each of which
/// must name a mutation or action of `modules` with arguments within the limits and a
/// schedule that parses. A name declared in both is refused.
fn check_crons(
    declared: BTreeMap<String, CronSpec>,
    from_js: &BTreeMap<String, CronSpec>,
    modules: &BTreeMap<String, Arc<LoadedModule>>,
    limits: &crate::config::Limits,
) -> Result<BTreeMap<String, CronSpec>, DeployError> {
    let mut crons = declared;
    for (name, spec) in from_js {
        if crons.insert(name.clone(), spec.clone()).is_some() {
            return Err(DeployError::InvalidCron(format!(
                "cron {name:?} is declared both in kiln.toml and in crons.js"
            )));
        }
    }
    for (name, spec) in &crons {
        let invalid = |why: String| DeployError::InvalidCron(format!("cron {name:?}: {why}"));
        crate::scheduler::crons::check_name(name).map_err(DeployError::InvalidCron)?;
        spec.schedule().map_err(invalid)?;
        let args = spec.args_value().map_err(invalid)?;
        if args.size_bytes() > limits.max_scheduled_args_bytes {
            return Err(invalid(format!(
                "its arguments are {} bytes, over the limit of {} bytes (max_scheduled_args_bytes)",
                args.size_bytes(),
                limits.max_scheduled_args_bytes
            )));
        }
        let path = crate::function_path::FunctionPath::parse(&spec.function)
            .map_err(|err| invalid(err.to_string()))?;
        let spec = modules
            .get(&path.module)
            .and_then(|module| module.function(&path.function))
            .ok_or_else(|| invalid(format!("the deployment has no function '{path}'")))?;
        if !matches!(
            spec.kind,
            crate::runtime::FunctionKind::Mutation | crate::runtime::FunctionKind::Action
        ) {
            return Err(invalid(format!(
                "'{path}' is {}; crons run mutations and actions",
                spec.kind.with_article()
            )));
        }
    }
    Ok(crons)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}
