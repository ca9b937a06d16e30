//! The one wasmtime engine of a server and its linker.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use wasmtime::component::Linker;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy,
};

use super::invocation::InvocationState;
use crate::capabilities;
use crate::config::Limits;
use crate::database::cursor_seal::CursorKey;
use crate::database::store::DocumentStore;
use crate::fetch::FetchClient;

/// How much fuel a running guest uses between two yields to the async executor: about 1–2
/// ms of wasm on this class of machine (10¹⁰ fuel is 0.4–0.7 s). At each yield the call
/// stops if its deadline has passed (`guest_call::GuestCall`), so a guest that computes
/// is stopped within about that much of its time limit, and one busy guest does not hold
/// a worker thread.
///
/// Fuel, which every call meters anyway, serves for both: epoch interruption, which did
/// this before, added a second check to every loop iteration and function entry, and cost
/// QuickJS's interpreter 15–20% (fib(25) in JavaScript 59.8–65.2 → 75.1–75.6 calls/s).
pub(crate) const FUEL_YIELD_INTERVAL: u64 = 25_000_000;

/// The engine, the linker with every capability, and the limits they enforce. Built once
/// per server and shared by every deployment and call.
pub struct Runtime {
    pub(crate) engine: Engine,
    /// The document store queries and mutations run against.
    pub(crate) store: Arc<DocumentStore>,
    pub(crate) linker: Linker<InvocationState>,
    pub(crate) limits: Arc<Limits>,
    /// How many queries and mutations run at once (see `run_slots`).
    pub(crate) run_slots: super::run_slots::RunSlots,
    /// Seals the cursors queries hand out (see `database::cursor_seal`).
    pub(crate) cursor_key: Arc<CursorKey>,
    /// The outbound HTTP client and its policy (`[fetch]`), shared by every call.
    pub(crate) fetch: Arc<FetchClient>,
    /// The deployment's environment variables, as every call starting now sees them.
    environment: RwLock<Arc<Vec<(String, String)>>>,
    /// File storage (`ctx.storage`), once the server has opened it: `kiln build` and
    /// in-process benchmarks have none.
    storage: std::sync::OnceLock<Arc<crate::storage::Storage>>,
}

impl Runtime {
    pub fn new(
        limits: Limits,
        store: Arc<DocumentStore>,
        cursor_key: CursorKey,
        fetch: Arc<FetchClient>,
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(&limits, profiler_from_env()?))
            .map_err(anyhow::Error::from)
            .context("cannot create the wasm engine")?;
        let mut linker = Linker::new(&engine);
        capabilities::add_to_linker(&mut linker)?;
        Ok(Self {
            engine,
            store,
            linker,
            run_slots: super::run_slots::RunSlots::new(
                limits.max_concurrent_queries,
                limits.max_concurrent_mutations,
            ),
            limits: Arc::new(limits),
            cursor_key: Arc::new(cursor_key),
            fetch,
            environment: RwLock::new(Arc::new(Vec::new())),
            storage: std::sync::OnceLock::new(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The environment variables calls see (`process.env`, `std::env::var`).
    pub(crate) fn environment(&self) -> Arc<Vec<(String, String)>> {
        self.environment
            .read()
            .expect("environment lock poisoned")
            .clone()
    }

    pub fn environment_map(&self) -> std::collections::BTreeMap<String, String> {
        self.environment().iter().cloned().collect()
    }

    pub fn set_environment(&self, variables: std::collections::BTreeMap<String, String>) {
        *self.environment.write().expect("environment lock poisoned") =
            Arc::new(variables.into_iter().collect());
    }

    /// The key every cursor this server hands out is sealed with, functions' and the
    /// admin data endpoint's alike.
    pub fn cursor_key(&self) -> &CursorKey {
        &self.cursor_key
    }

    /// The shared cursor key (upload tokens are sealed with it too).
    pub fn cursor_key_arc(&self) -> Arc<CursorKey> {
        self.cursor_key.clone()
    }

    /// Gives the runtime its file storage (once).
    pub fn set_storage(&self, storage: Arc<crate::storage::Storage>) {
        let _ = self.storage.set(storage);
    }

    /// The file storage, if the server has one.
    pub fn storage(&self) -> Option<&Arc<crate::storage::Storage>> {
        self.storage.get()
    }
}

/// Pool slots per component-instance slot (see `engine_config`).
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;
/// How much of each pooled memory, table and stack is reset in place rather than returned
/// to the kernel. Covers a small function's stack and heap; the cost is that much resident
/// memory per warm slot.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// The environment variable that turns on a profiler's view of guest code.
pub const PROFILE_ENV: &str = "KILN_PROFILE";

/// `KILN_PROFILE=perfmap` writes `/tmp/perf-<pid>.map` as guest code is loaded, so that
/// `perf report` names the guest's functions instead of showing bare addresses (what
/// `cargo xtask profile` uses). Unset or empty: no profiler, no cost.
fn profiler_from_env() -> anyhow::Result<ProfilingStrategy> {
    profiler_named(std::env::var(PROFILE_ENV).ok().as_deref())
}

fn profiler_named(name: Option<&str>) -> anyhow::Result<ProfilingStrategy> {
    match name {
        None | Some("") | Some("none") => Ok(ProfilingStrategy::None),
        Some("perfmap") => Ok(ProfilingStrategy::PerfMap),
        Some(other) => anyhow::bail!(
            "{PROFILE_ENV}={other:?} is not a profiler Kiln knows: use \"perfmap\" (or leave it unset)"
        ),
    }
}

fn engine_config(limits: &Limits, profiler: ProfilingStrategy) -> Config {
    let mut config = Config::new();
    config.profiler(profiler);
    config.wasm_component_model(true);
    // Fuel bounds a call's work, and its yields bound its time (`FUEL_YIELD_INTERVAL`).
    config.consume_fuel(true);
    config.max_wasm_stack(limits.max_wasm_stack_bytes);
    // The fiber stack that async calls run on must hold the wasm stack plus the host
    // frames beneath it.
    config.async_stack_size(limits.max_wasm_stack_bytes + (1 << 20));

    // Every call gets a fresh instance, so instantiation is on the hot path: the pooling
    // allocator reserves slots once and recycles them (copy-on-write memory images).
    let slots = limits.max_concurrent_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots);
    // A component instance is several core instances (the program, plus adapter shims) with
    // a few tables; these ratios leave room for that so the component count binds first.
    pool.total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT));
    pool.total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT));
    pool.total_tables(slots.saturating_mul(TABLES_PER_COMPONENT));
    pool.total_stacks(slots);
    pool.max_memory_size(limits.max_memory_bytes());
    // Resetting a slot with madvise costs a TLB shootdown on every core, which serialises
    // the whole server under load. Keeping the slot resident and resetting only its dirty
    // pages (found with the PAGEMAP_SCAN ioctl, Linux 6.7+) avoids the system call.
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
    pool.table_keep_resident(KEEP_RESIDENT_BYTES);
    pool.async_stack_keep_resident(KEEP_RESIDENT_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

#[cfg(test)]
mod tests {
    use super::{PROFILE_ENV, profiler_named};
    use wasmtime::ProfilingStrategy;

    #[test]
    fn kiln_profile_names_perfmap_or_nothing_and_refuses_the_rest() {
        for none in [None, Some(""), Some("none")] {
            assert!(matches!(profiler_named(none), Ok(ProfilingStrategy::None)));
        }
        assert!(matches!(
            profiler_named(Some("perfmap")),
            Ok(ProfilingStrategy::PerfMap)
        ));
        let refused = profiler_named(Some("jitdump")).unwrap_err().to_string();
        assert!(
            refused.contains(PROFILE_ENV) && refused.contains("\"perfmap\""),
            "{refused}"
        );
    }
}
