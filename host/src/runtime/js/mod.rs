//! JavaScript apps: ES modules run by Kiln's JavaScript runtime component
//! (`guest-sdk/js-runtime`), which this binary embeds. At deploy the runtime loads the
//! app's modules and is snapshotted (`snapshot`); the snapshot is then compiled and served
//! like any component, one module per module path.

mod config;
mod snapshot;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub use config::evaluate_config;
pub use snapshot::{Snapshot, snapshot};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/js_runtime.rs"));
}

/// Why a JavaScript app cannot be deployed. The old deployment stays live.
#[derive(Debug, thiserror::Error)]
pub enum JsAppError {
    #[error(
        "this kiln was built without its JavaScript runtime: build it with `cargo xtask build-js-runtime`, then rebuild kiln"
    )]
    NoRuntime,
    /// A module does not parse, an import does not resolve, top-level code threw or ran
    /// past a limit: the JS message, with the file and line.
    #[error("{0}")]
    Load(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The runtime component's bytes.
pub fn runtime_wasm() -> Result<&'static [u8], JsAppError> {
    embedded::JS_RUNTIME.ok_or(JsAppError::NoRuntime)
}

/// Hex SHA-256 of the embedded runtime: part of every app's key.
fn runtime_hash() -> Result<&'static str, JsAppError> {
    static HASH: OnceLock<String> = OnceLock::new();
    let wasm = runtime_wasm()?;
    Ok(HASH.get_or_init(|| hex::encode(Sha256::digest(wasm))))
}

/// The key of an app's snapshot (and of its stored artifact): the runtime and every
/// module's path and source. The same app on the same runtime is never loaded twice.
pub fn app_hash(modules: &BTreeMap<String, String>) -> Result<String, JsAppError> {
    let mut hasher = Sha256::new();
    hasher.update(b"kiln-js-app\0");
    hasher.update(runtime_hash()?.as_bytes());
    for (path, source) in modules {
        // Length-prefixed, so no two sets of modules hash alike.
        for part in [path.as_bytes(), source.as_bytes()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A JavaScript app as a deploy brings it.
pub enum JsApp {
    /// ES modules by path (`chat/messages.js` → source): loaded and snapshotted here.
    Sources(BTreeMap<String, String>),
    /// An app `kiln build` loaded and snapshotted already: the snapshot component.
    Prebuilt(Vec<u8>),
}

impl Default for JsApp {
    fn default() -> Self {
        JsApp::Sources(BTreeMap::new())
    }
}

impl JsApp {
    pub fn is_empty(&self) -> bool {
        match self {
            JsApp::Sources(modules) => modules.is_empty(),
            JsApp::Prebuilt(_) => false,
        }
    }
}

/// The key of a prebuilt app: its bytes (the runtime and the sources are inside them).
pub fn prebuilt_hash(snapshot: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"kiln-js-prebuilt\0");
    hasher.update(snapshot);
    hex::encode(hasher.finalize())
}

/// `kiln build`: loads and snapshots `modules` without a server (an in-memory database
/// that nothing touches, default limits), and lists the functions the snapshot serves.
pub async fn build_offline(
    modules: &BTreeMap<String, String>,
) -> Result<(Vec<u8>, Vec<String>), JsAppError> {
    use std::sync::Arc;

    use crate::config::{FetchConfig, Limits};
    use crate::database::committer::CommitterOptions;
    use crate::database::cursor_seal::CursorKey;
    use crate::database::store::DocumentStore;
    use crate::fetch::FetchClient;

    let limits = Limits::default();
    let kv = crate::database::kv::redb_kv::RedbStore::in_memory()?;
    let store = Arc::new(DocumentStore::open(
        Arc::new(kv),
        limits.transaction_limits(),
        CommitterOptions {
            max_batch: limits.max_commit_batch,
            write_log_bytes: limits.max_write_log_bytes,
        },
    )?);
    let fetch = Arc::new(FetchClient::new(&FetchConfig::default())?);
    let runtime = Arc::new(super::Runtime::new(
        limits,
        store,
        CursorKey::generate()?,
        fetch,
    )?);
    let snapshot = snapshot(&runtime, modules).await?.component;
    let compiled = runtime
        .compile_trusted(&snapshot)
        .map_err(|err| anyhow::anyhow!("cannot compile the snapshot: {err}"))?;
    let app = runtime
        .load_js_app(&compiled.component, None)
        .await
        .map_err(|err| JsAppError::Load(err.to_string()))?;
    let functions = app
        .iter()
        .flat_map(|(module, loaded)| {
            loaded
                .functions()
                .iter()
                .map(move |spec| format!("{module}:{}", spec.name))
        })
        .collect();
    Ok((snapshot, functions))
}

/// The function a JS app's instance answers with its cron jobs (`crons.js`), as JSON text;
/// never listed, so only the host calls it (`guest-sdk/js-runtime/src/loader.rs`).
const CRONS_CALL: &str = "_kiln:crons";

impl super::Runtime {
    /// The cron jobs of the JS app `module` belongs to (any of its modules will do): the
    /// `crons` of its `crons.js` default export, as JSON text (`{}` if it has none).
    pub async fn js_app_crons(
        self: &std::sync::Arc<Self>,
        module: &super::LoadedModule,
    ) -> Result<String, JsAppError> {
        use super::determinism::FrozenInputs;
        use super::invocation::DbAccess;
        let (outcome, _, _) = self
            .with_instance(
                &module.pre,
                super::CallContext::isolated(),
                super::FunctionKind::Query,
                DbAccess::Denied,
                Some(FrozenInputs::now()),
                |store, instance| {
                    Box::pin(async move {
                        instance
                            .kiln_platform_module()
                            .call_call(store, CRONS_CALL, "{}")
                            .await
                    })
                },
            )
            .await;
        match outcome {
            Ok(Ok(json)) => Ok(json),
            Ok(Err(error)) => Err(JsAppError::Load(format!(
                "cannot read the app's crons: {}",
                error.message
            ))),
            Err(failure) => Err(JsAppError::Load(format!(
                "cannot read the app's crons: {failure}"
            ))),
        }
    }
}
