//! A Convex CLI push in Kiln: `start_push` evaluates the app (its schema, its auth config,
//! its modules) without touching the live deployment and stages the result; `finish_push`
//! deploys what was staged. Between the two the CLI runs codegen and the type checker, and
//! may never finish (`npx convex codegen` starts a push only to read its analysis).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{auth, schema};
use crate::auth::AuthConfig;
use crate::database::schema::Schema;
use crate::database::validator::DocumentValidator;
use crate::deploy::store::JsFile;
use crate::deploy::{DeployError, DeployReport, Deployments, NewDeployment};
use crate::runtime::{FunctionSpec, Runtime, js};

/// The file whose default export is the app's auth providers. Convex evaluates it apart,
/// with the environment variables; it is not one of the app's function modules.
pub const AUTH_CONFIG: &str = "auth.config.js";

/// How many started pushes are kept waiting for their finish; the oldest goes first.
const MAX_STAGED: usize = 8;

/// A push analysed and waiting for `finish_push`.
pub struct StagedPush {
    /// Every file of the app by path, with source maps.
    pub files: BTreeMap<String, JsFile>,
    pub schema: Schema,
    pub auth: AuthConfig,
    /// The functions the app's modules export, by module.
    pub functions: BTreeMap<String, Vec<FunctionSpec>>,
    /// The schema made ready in the background from `start_push` on: the stored
    /// documents checked against its new validators, its new indexes built
    /// (`wait_for_schema` reports it; the deploy finds them built).
    pub schema_check: watch::Receiver<SchemaCheck>,
}

/// How making a push's schema ready stands.
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaCheck {
    Running {
        /// Every stored document of a table with a new validator was checked.
        validation_complete: bool,
        indexes_complete: usize,
        indexes_total: usize,
    },
    Passed,
    /// A stored document the new schema refuses (its table, and what is wrong), or an
    /// index that could not be built (no table).
    Failed {
        table: Option<String>,
        message: String,
    },
}

impl StagedPush {
    /// The check as it stands once it ended, or once `wait` passed.
    pub async fn schema_check_within(&self, wait: std::time::Duration) -> SchemaCheck {
        let mut check = self.schema_check.clone();
        let _ = tokio::time::timeout(
            wait,
            check.wait_for(|state| !matches!(state, SchemaCheck::Running { .. })),
        )
        .await;
        check.borrow().clone()
    }
}

/// Pushes started and not finished, by id.
#[derive(Default)]
pub struct Pushes {
    next_id: AtomicU64,
    staged: Mutex<VecDeque<(u64, Arc<StagedPush>)>>,
}

impl Pushes {
    /// Keeps `push` for its finish; its id.
    pub fn stage(&self, push: StagedPush) -> (u64, Arc<StagedPush>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let push = Arc::new(push);
        let mut staged = self.staged.lock().expect("pushes lock");
        if staged.len() == MAX_STAGED {
            staged.pop_front();
        }
        staged.push_back((id, push.clone()));
        (id, push)
    }

    /// The push `id` started, if it is still waiting for its finish.
    pub fn get(&self, id: u64) -> Option<Arc<StagedPush>> {
        let staged = self.staged.lock().expect("pushes lock");
        staged
            .iter()
            .find(|(staged_id, _)| *staged_id == id)
            .map(|(_, push)| push.clone())
    }

    /// The push `id` started, taken out: a push finishes once.
    pub fn take(&self, id: u64) -> Option<Arc<StagedPush>> {
        let mut staged = self.staged.lock().expect("pushes lock");
        let position = staged.iter().position(|(staged_id, _)| *staged_id == id)?;
        staged.remove(position).map(|(_, push)| push)
    }
}

/// Why a push cannot go ahead, with Convex's error code where it has one.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Deploy(#[from] DeployError),
}

fn invalid(code: &'static str, message: impl Into<String>) -> PushError {
    PushError::Invalid {
        code,
        message: message.into(),
    }
}

/// Evaluates an app: the schema (`schema_source`, `schema.js`), the auth config, and every
/// module, which are loaded and snapshotted (staged in `deployments` for the finish).
pub async fn start(
    runtime: &Arc<Runtime>,
    deployments: &Deployments,
    files: BTreeMap<String, JsFile>,
    schema_source: Option<&JsFile>,
    build_indexes: bool,
) -> Result<StagedPush, PushError> {
    let schema = evaluate_schema(runtime, schema_source).await?;
    let auth = match files.get(AUTH_CONFIG) {
        Some(file) => {
            let json = js::evaluate_config(runtime, AUTH_CONFIG, &file.source)
                .await
                .map_err(|err| config_error("InvalidAuthConfig", "the auth config", err))?;
            let auth = auth::from_convex_json(&json)
                .map_err(|err| invalid("AuthConfigNotMatchingSchemaError", err))?;
            auth.validate().map_err(|err| {
                invalid(
                    "InvalidAuthConfig",
                    format!("auth.config.ts: {err} (a provider's value from `process.env` that is not set is missing here: set it with `npx convex env set`)"),
                )
            })?;
            auth
        }
        None => AuthConfig::default(),
    };
    let functions = deployments
        .stage_js(modules_of(&files))
        .await
        .map_err(|err| match err {
            DeployError::InvalidJs(message) => invalid(
                "InvalidModules",
                format!(
                    "Hit an error while pushing:\nLoading the pushed modules encountered the following error:\n{message}"
                ),
            ),
            other => PushError::Deploy(other),
        })?;
    let schema_check = prepare_schema(
        runtime,
        &deployments.current().record.schema,
        &schema,
        build_indexes,
    );
    Ok(StagedPush {
        files,
        schema,
        auth,
        functions,
        schema_check,
    })
}

/// The app's schema (`schema_source`: its `schema.js`), as Kiln's; none declares no
/// tables.
pub async fn evaluate_schema(
    runtime: &Arc<Runtime>,
    schema_source: Option<&JsFile>,
) -> Result<Schema, PushError> {
    let Some(file) = schema_source else {
        return Ok(Schema::default());
    };
    let json = js::evaluate_config(runtime, "schema.js", &file.source)
        .await
        .map_err(|err| config_error("InvalidSchema", "your schema", err))?;
    let schema = schema::from_convex_json(&json)
        .map_err(|err| invalid("InvalidSchema", format!("schema.ts: {err}")))?;
    schema
        .validate()
        .map_err(|err| invalid("InvalidSchema", format!("schema.ts: {err}")))?;
    Ok(schema)
}

/// Makes `new` ready in the background: checks the stored documents of every table whose
/// validator it changes (a table at a time), then (with `build_indexes`: not for a dry
/// run) adds its new indexes as building and backfills them, reporting how far it got.
fn prepare_schema(
    runtime: &Arc<Runtime>,
    live: &Schema,
    new: &Schema,
    build_indexes: bool,
) -> watch::Receiver<SchemaCheck> {
    let changed: Vec<(String, DocumentValidator)> = new
        .tables
        .iter()
        .filter_map(|(table, definition)| {
            let validator = definition.document.clone()?;
            let unchanged = live
                .tables
                .get(table)
                .is_some_and(|live| live.document.as_ref() == Some(&validator));
            (!unchanged).then(|| (table.clone(), validator))
        })
        .collect();
    let (report, check) = watch::channel(SchemaCheck::Running {
        validation_complete: false,
        indexes_complete: 0,
        indexes_total: 0,
    });
    let store = runtime.store.clone();
    let new = new.clone();
    tokio::spawn(async move {
        let checking = store.clone();
        let violation = tokio::task::spawn_blocking(move || {
            for (table, validator) in changed {
                match checking.first_violation(&table, &validator) {
                    Ok(None) => {}
                    Ok(Some(message)) => return Some((table, message)),
                    // The deploy checks again, and reports what fails there.
                    Err(err) => {
                        tracing::warn!(table, "cannot check the stored documents: {err:#}")
                    }
                }
            }
            None
        })
        .await
        .unwrap_or_default();
        if let Some((table, message)) = violation {
            report.send_replace(SchemaCheck::Failed {
                table: Some(table),
                message,
            });
            return;
        }
        if !build_indexes {
            report.send_replace(SchemaCheck::Passed);
            return;
        }
        let failed = |message: String| SchemaCheck::Failed {
            table: None,
            message,
        };
        let building = match store.prepare_indexes(&new).await {
            Ok(building) => building,
            Err(err) => {
                report.send_replace(failed(format!("cannot add the new indexes: {err}")));
                return;
            }
        };
        let indexes_total = building.len();
        for (indexes_complete, (table_number, index_id)) in building.into_iter().enumerate() {
            report.send_replace(SchemaCheck::Running {
                validation_complete: true,
                indexes_complete,
                indexes_total,
            });
            if let Err(err) = store.backfill_index(table_number, index_id).await {
                report.send_replace(failed(format!("cannot build a new index: {err:#}")));
                return;
            }
        }
        report.send_replace(SchemaCheck::Passed);
    });
    check
}

/// Deploys a staged push: it replaces the whole deployment, as a `kiln deploy` does. Its
/// schema's background work ends first (the CLI waited for it already), so the deploy
/// finds the indexes built.
pub async fn finish(
    deployments: &Arc<Deployments>,
    push: &StagedPush,
) -> Result<DeployReport, DeployError> {
    let _ = push
        .schema_check
        .clone()
        .wait_for(|state| !matches!(state, SchemaCheck::Running { .. }))
        .await;
    deployments
        .deploy(NewDeployment {
            modules: BTreeMap::new(),
            js: js::JsApp::Sources(modules_of(&push.files)),
            js_files: push.files.clone(),
            schema: push.schema.clone(),
            auth: push.auth.clone(),
            // A Convex app's crons are its crons.js's, which the app brings.
            crons: BTreeMap::new(),
        })
        .await
}

/// The files the runtime loads: all but the auth config.
fn modules_of(files: &BTreeMap<String, JsFile>) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|(path, _)| path.as_str() != AUTH_CONFIG)
        .map(|(path, file)| (path.clone(), file.source.clone()))
        .collect()
}

fn config_error(code: &'static str, what: &str, err: js::JsAppError) -> PushError {
    match err {
        js::JsAppError::Internal(err) => PushError::Deploy(DeployError::Internal(err)),
        other => invalid(
            code,
            format!("Hit an error while pushing:\nHit an error while evaluating {what}:\n{other}"),
        ),
    }
}
