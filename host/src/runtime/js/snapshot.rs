//! Loading a JavaScript app into the runtime component and snapshotting the loaded instance
//! with wasmtime-wizer, so every call starts from modules already evaluated.
//!
//! The runtime is instrumented, instantiated on an engine of its own (no pool, no epochs;
//! fuel bounds the load), given the app through its `js-loader.load` export, and snapshotted
//! only when that succeeded. While loading, the guest sees the Unix epoch and a zero seed
//! (`FrozenInputs::fixed`) and no database (`DbAccess::Denied`); the runtime itself refuses
//! every syscall but logging until a call begins.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use wasmtime::component::{Component, ComponentType, Instance, Lift, Linker, Lower, WasmList};
use wasmtime::{Config, Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::{JsAppError, runtime_wasm};
use crate::runtime::call::CallContext;
use crate::runtime::determinism::FrozenInputs;
use crate::runtime::invocation::{DbAccess, InvocationState, MemoryLimitExceeded};
use crate::runtime::{FunctionKind, Runtime};

/// `kiln:platform/js-loader.js-module`
#[derive(ComponentType, Lower)]
#[component(record)]
pub(super) struct JsModule {
    pub(super) path: String,
    pub(super) source: String,
}

pub(super) const LOADER_INTERFACE: &str = "kiln:platform/js-loader@0.1.0";

/// The most work loading an app may do (wasm instructions, about): evaluating Convex's
/// library and a large app takes a small fraction; a top-level loop stops here.
pub(super) const LOAD_FUEL: u64 = 4_000_000_000;

/// The engine and linker apps are loaded with (built on first use).
pub(super) fn loading_engine() -> anyhow::Result<&'static (Engine, Linker<InvocationState>)> {
    static ENGINE: OnceLock<(Engine, Linker<InvocationState>)> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    // The instrumented runtime runs once per deploy: compile it fast, not well.
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the engine JS apps load in")?;
    let mut linker = Linker::new(&engine);
    crate::capabilities::add_to_linker(&mut linker)?;
    Ok(ENGINE.get_or_init(|| (engine, linker)))
}

/// A loaded app, snapshotted.
pub struct Snapshot {
    /// The new component.
    pub component: Vec<u8>,
    /// The linear memory the loaded instance holds: what every call's instance starts
    /// with (copy-on-write: only the pages a call touches become its own).
    pub memory_bytes: usize,
}

/// The runtime component with `modules` (path → source) loaded, as a new component.
pub async fn snapshot(
    runtime: &Arc<Runtime>,
    modules: &BTreeMap<String, String>,
) -> Result<Snapshot, JsAppError> {
    let wasm = runtime_wasm()?;
    let (engine, linker) = loading_engine()?;
    let mut wizer = Wizer::new();
    // Keeping the loader export avoids wasmtime issue #13168; a second `load` is refused.
    wizer.keep_init_func(true);
    let (context, component) = tokio::task::spawn_blocking({
        let wizer = wizer.clone();
        move || -> anyhow::Result<_> {
            let (context, instrumented) = wizer
                .instrument_component(wasm)
                .map_err(anyhow::Error::from)
                .context("cannot instrument the JS runtime")?;
            let component = Component::new(engine, &instrumented)
                .map_err(anyhow::Error::from)
                .context("cannot compile the JS runtime")?;
            Ok((context, component))
        }
    })
    .await
    .context("the JS runtime's compilation panicked")??;

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
    let load = {
        let interface = instance
            .get_export_index(&mut store, None, LOADER_INTERFACE)
            .context("the JS runtime does not export js-loader")?;
        let load = instance
            .get_export_index(&mut store, Some(&interface), "load")
            .context("the JS runtime does not export js-loader.load")?;
        instance
            .get_typed_func::<(Vec<JsModule>,), (Result<(), String>,)>(&mut store, &load)
            .map_err(anyhow::Error::from)
            .context("js-loader.load has another type than this kiln expects")?
    };
    let modules = modules
        .iter()
        .map(|(path, source)| JsModule {
            path: path.clone(),
            source: source.clone(),
        })
        .collect();
    let outcome = load.call_async(&mut store, (modules,)).await;
    let log_lines = store.data().log_lines();
    for line in &log_lines {
        tracing::info!(target: "kiln::function_log", "while loading JS modules: {line}");
    }
    match outcome {
        Ok((Ok(()),)) => {}
        Ok((Err(message),)) => return Err(JsAppError::Load(message)),
        Err(trap) => return Err(JsAppError::Load(describe_trap(&store, trap))),
    }

    let memory_bytes = store.data().limiter.total_bytes();
    // Reading the instance's state runs the snapshot accessors: fuel is no longer the bound.
    store.set_fuel(u64::MAX).map_err(anyhow::Error::from)?;
    let snapshot = wizer
        .snapshot_component(
            &context,
            &mut LoadedInstance {
                store: &mut store,
                instance,
            },
        )
        .await
        .map_err(anyhow::Error::from)
        .context("cannot snapshot the loaded JS runtime")?;
    Ok(Snapshot {
        component: snapshot,
        memory_bytes,
    })
}

/// Why loading stopped, naming the limit.
pub(super) fn describe_trap(store: &Store<InvocationState>, trap: wasmtime::Error) -> String {
    if let Some(exceeded) = trap.downcast_ref::<MemoryLimitExceeded>() {
        return format!("loading the modules ran out of memory: {exceeded}");
    }
    if matches!(store.get_fuel(), Ok(0))
        || matches!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::OutOfFuel)
        )
    {
        return "loading the modules took too long (does top-level code loop forever?)".into();
    }
    format!("loading the modules failed: {trap:#}")
}

/// What wizer reads the loaded instance's memories and globals through.
struct LoadedInstance<'a> {
    store: &'a mut Store<InvocationState>,
    instance: Instance,
}

impl LoadedInstance<'_> {
    async fn call<R: Lift + Send + Sync + 'static, T>(
        &mut self,
        interface: &str,
        function: &str,
        use_result: impl FnOnce(&mut Store<InvocationState>, R) -> T,
    ) -> T {
        let interface = self
            .instance
            .get_export_index(&mut *self.store, None, interface)
            .expect("wizer's instrumentation exports its accessors");
        let function = self
            .instance
            .get_export_index(&mut *self.store, Some(&interface), function)
            .expect("wizer's instrumentation exports its accessors");
        let function = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, function)
            .expect("wizer's accessors have the types wizer asks for");
        let (result,) = function
            .call_async(&mut *self.store, ())
            .await
            .expect("wizer's accessors do not trap");
        use_result(self.store, result)
    }
}

impl ComponentInstanceState for LoadedInstance<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(&*store))
        })
        .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, value| value).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, value| value).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, value: f32| value.to_bits())
            .await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, value: f64| value.to_bits())
            .await
    }
}
