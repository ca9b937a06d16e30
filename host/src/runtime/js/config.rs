//! Evaluating a Convex app's config modules, `schema.js` and `auth.config.js`, as Convex
//! does at push: in a fresh instance of the runtime (never snapshotted) that may read the
//! deployment's environment variables and nothing else, through `js-loader.evaluate-config`.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use wasmtime::Store;
use wasmtime::component::Component;

use super::snapshot::{JsModule, LOAD_FUEL, LOADER_INTERFACE, describe_trap, loading_engine};
use super::{JsAppError, runtime_wasm};
use crate::runtime::call::CallContext;
use crate::runtime::determinism::FrozenInputs;
use crate::runtime::invocation::{DbAccess, InvocationState};
use crate::runtime::{FunctionKind, Runtime};

/// The runtime compiled on the loading engine (once: it is the same for every push).
async fn runtime_component() -> Result<Component, JsAppError> {
    static COMPONENT: OnceLock<Component> = OnceLock::new();
    if let Some(component) = COMPONENT.get() {
        return Ok(component.clone());
    }
    let wasm = runtime_wasm()?;
    let component = tokio::task::spawn_blocking(move || -> anyhow::Result<Component> {
        let (engine, _) = loading_engine()?;
        Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .context("cannot compile the JS runtime")
    })
    .await
    .context("the JS runtime's compilation panicked")??;
    Ok(COMPONENT.get_or_init(|| component).clone())
}

/// The default export of the config module `path` (`schema.js`, `auth.config.js`) as
/// JSON text. A module that does not parse, throws, or has no default export is a
/// [`JsAppError::Load`] naming it.
pub async fn evaluate_config(
    runtime: &Arc<Runtime>,
    path: &str,
    source: &str,
) -> Result<String, JsAppError> {
    let component = runtime_component().await?;
    let (engine, linker) = loading_engine()?;
    let state = InvocationState::new(
        runtime,
        CallContext::isolated(),
        FunctionKind::Query,
        DbAccess::Denied,
        Some(FrozenInputs::fixed()),
    );
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_fuel(LOAD_FUEL).map_err(anyhow::Error::from)?;
    let instance = linker
        .instantiate_async(&mut store, &component)
        .await
        .map_err(anyhow::Error::from)
        .context("cannot instantiate the JS runtime")?;
    let evaluate = {
        let interface = instance
            .get_export_index(&mut store, None, LOADER_INTERFACE)
            .context("the JS runtime does not export js-loader")?;
        let evaluate = instance
            .get_export_index(&mut store, Some(&interface), "evaluate-config")
            .context("the JS runtime does not export js-loader.evaluate-config")?;
        instance
            .get_typed_func::<(JsModule,), (Result<String, String>,)>(&mut store, &evaluate)
            .map_err(anyhow::Error::from)
            .context("js-loader.evaluate-config has another type than this kiln expects")?
    };
    let module = JsModule {
        path: path.to_string(),
        source: source.to_string(),
    };
    let outcome = evaluate.call_async(&mut store, (module,)).await;
    for line in store.data().log_lines() {
        tracing::info!(target: "kiln::function_log", "while evaluating {path}: {line}");
    }
    match outcome {
        Ok((Ok(json),)) => Ok(json),
        Ok((Err(message),)) => Err(JsAppError::Load(message)),
        Err(trap) => Err(JsAppError::Load(describe_trap(&store, trap))),
    }
}
