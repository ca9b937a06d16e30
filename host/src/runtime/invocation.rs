//! Everything one invocation owns (STYLE.md section 2): its WASI context, resource table,
//! memory limiter and log lines. Built fresh for every call from the function's kind and
//! limits, and dropped with the call's store.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::call::CallContext;
use super::determinism::FrozenInputs;
use super::output::{LogBuffer, OutputCapture};
use super::{FunctionKind, Runtime};
use crate::auth::UserIdentity;
use crate::capabilities::http::HttpState;
use crate::config::{FunctionLimits, Limits};
use crate::database::cursor_seal::CursorKey;
use crate::database::store::DocumentStore;
use crate::database::transaction::Transaction;

/// The severity of a log line. `Log` is the guest's stdout, like `console.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Log,
    Info,
    Warn,
    Error,
}

/// One line a function logged.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

impl std::fmt::Display for LogLine {
    /// Convex's `logLines` form: `[LEVEL] message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Log => "LOG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        write!(f, "[{level}] {}", self.message)
    }
}

/// How long host work runs before it lets other tasks have its worker thread.
const HOST_WORK_SLICE: Duration = Duration::from_micros(500);

/// The store data of one invocation.
pub struct InvocationState {
    pub(crate) kind: FunctionKind,
    /// The runtime, for the calls this one makes (`kiln:platform/functions`).
    pub(crate) runtime: Arc<Runtime>,
    /// What this call passes on to the calls it makes.
    pub(crate) context: CallContext,
    /// A query's or mutation's clock and seed (none for actions): the queries and
    /// mutations it calls get the same clock and a seed derived from this one.
    pub(crate) frozen: Option<FrozenInputs>,
    /// How many functions this call has called, to derive each one's seed.
    pub(crate) calls_made: u64,
    /// Whether this call has paginated (a call may once, as in Convex).
    pub(crate) paginated: bool,
    /// Jobs this call scheduled (`max_jobs_scheduled_per_call`, for actions: a
    /// mutation's transaction counts its own).
    pub(crate) jobs_scheduled: usize,
    /// Bytes this call moved through `storage.get` and `storage.store`
    /// (`max_action_storage_bytes`).
    pub(crate) storage_bytes: u64,
    /// The database access of a query or mutation; actions have none.
    pub(crate) db: DbAccess,
    /// Most documents a guest may ask one cursor batch for (`max_query_batch`).
    pub(crate) max_query_batch: usize,
    /// What JSON text a guest hands the host (documents, ranges, filters) may be.
    pub(crate) guest_text_limits: GuestTextLimits,
    /// The memory the host holds on this call's behalf (open queries), within
    /// `max_host_memory_bytes`.
    pub(crate) host_memory: HostMemory,
    /// Seals the positions `db` hands out and opens the ones a query continues from.
    pub(crate) cursor_key: Arc<CursorKey>,
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: Arc<Mutex<LogBuffer>>,
    /// When the call's wall-clock limit runs out. Host work that can run long checks it
    /// as it goes ([`InvocationState::checkpoint`]): fuel and its yields stop only wasm.
    pub(crate) deadline: Instant,
    /// Set when host work found the deadline passed: the call is reported as timed out
    /// even if the guest caught the host call's error.
    pub(crate) timed_out: bool,
    /// When host work last handed its worker thread back to the executor.
    last_yield: Instant,
    /// Outbound requests (`kiln:platform/http`, `wasi:http`): the server's client and
    /// this call's open responses.
    pub(crate) http: HttpState,
    /// The caller's verified user (`kiln:platform/auth`), if any.
    pub(crate) identity: Option<Arc<UserIdentity>>,
}

impl InvocationState {
    pub(crate) fn new(
        runtime: &Arc<Runtime>,
        context: CallContext,
        kind: FunctionKind,
        db: DbAccess,
        frozen: Option<FrozenInputs>,
    ) -> Self {
        let limits: &Limits = &runtime.limits;
        let identity = context.identity.clone();
        let log = Arc::new(Mutex::new(LogBuffer::new(
            limits.max_log_lines,
            limits.max_output_bytes,
        )));
        // No preopened directories, no arguments, no sockets: the sandbox has only what the
        // capabilities give it (DESIGN.md section 7); its environment is the deployment's
        // environment variables.
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(runtime.environment().as_slice());
        wasi.stdout(OutputCapture::new(log.clone(), LogLevel::Log))
            .stderr(OutputCapture::new(log.clone(), LogLevel::Error));
        // Queries and mutations: a frozen clock and seeded randomness. Actions (`None`):
        // the real ones.
        if let Some(frozen) = frozen {
            frozen.apply(&mut wasi);
        }
        let wasi = wasi.build();
        // Every handle a guest holds (streams, pollables, ...) is a host object: bound them.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        let now = Instant::now();
        Self {
            kind,
            runtime: runtime.clone(),
            context,
            frozen,
            calls_made: 0,
            paginated: false,
            jobs_scheduled: 0,
            storage_bytes: 0,
            db,
            max_query_batch: limits.max_query_batch,
            guest_text_limits: GuestTextLimits {
                value: limits.value_limits(),
                max_elements: limits.max_value_elements,
            },
            host_memory: HostMemory {
                held_bytes: 0,
                limit_bytes: limits.max_host_memory_bytes,
            },
            cursor_key: runtime.cursor_key.clone(),
            wasi,
            table,
            limiter: MemoryLimiter::new(limits.for_kind(kind)),
            log,
            deadline: now + Duration::from_millis(limits.for_kind(kind).timeout_ms),
            timed_out: false,
            last_yield: now,
            http: HttpState::new(kind, runtime.fetch.clone()),
            identity,
        }
    }

    /// Called between the steps of host work that may run long (a scan that a filter
    /// keeps going): past the call's deadline it fails with the time limit's error (and
    /// marks the call timed out); otherwise, once every [`HOST_WORK_SLICE`], it yields, so
    /// one call's host work never holds a worker thread that other requests need.
    pub(crate) async fn checkpoint(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now >= self.deadline {
            self.timed_out = true;
            return Err("the call ran out of time in a host call".to_string());
        }
        if now.duration_since(self.last_yield) >= HOST_WORK_SLICE {
            tokio::task::yield_now().await;
            self.last_yield = Instant::now();
        }
        Ok(())
    }

    pub(crate) fn log_lines(&self) -> Vec<super::LogLine> {
        self.log.lock().expect("log buffer poisoned").finish()
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What the host holds for one call beyond the guest's own linear memory (which the
/// memory limiter bounds): open query cursors with their ranges, filters and positions.
/// Charged before the memory is taken, released when the guest lets go.
pub(crate) struct HostMemory {
    held_bytes: usize,
    limit_bytes: usize,
}

impl HostMemory {
    /// Counts `bytes` more, or refuses them (nothing counted) past the limit.
    pub(crate) fn charge(&mut self, bytes: usize, what: &str) -> Result<(), String> {
        let total = self.held_bytes.saturating_add(bytes);
        if total > self.limit_bytes {
            return Err(format!(
                "host memory limit of {} bytes for this call exceeded (max_host_memory_bytes): {what} needs {bytes} bytes and {} are held; drop open queries first",
                self.limit_bytes, self.held_bytes
            ));
        }
        self.held_bytes = total;
        Ok(())
    }

    pub(crate) fn release(&mut self, bytes: usize) {
        self.held_bytes = self.held_bytes.saturating_sub(bytes);
    }
}

/// The limits on JSON text a guest hands the host, checked before it is parsed.
pub(crate) struct GuestTextLimits {
    pub(crate) value: kiln_values::ValueLimits,
    pub(crate) max_elements: usize,
}

/// The database access of one invocation. The transaction begins at the first database
/// call, so a function that never touches the database pays nothing for it.
pub(crate) enum DbAccess {
    /// Actions: no transaction, ever.
    Denied,
    /// A query (`writable: false`) or mutation that has not called the database yet.
    NotBegun {
        store: Arc<DocumentStore>,
        writable: bool,
    },
    Begun(Box<Transaction>),
    /// The transaction is with a query or mutation this one called (run-query,
    /// run-mutation), which hands it back when it returns.
    Lent,
    /// A nested call never handed the transaction back (its task failed). Nothing of
    /// this call may commit.
    Lost,
}

/// A mutation's transaction did not come back from a call it made: see [`DbAccess::Lost`].
#[derive(Debug, thiserror::Error)]
#[error("the transaction was lost in a nested call")]
pub(crate) struct TransactionLost;

impl DbAccess {
    /// The transaction, begun now if need be; `None` for actions (and while it is lent).
    pub(crate) fn transaction(&mut self) -> anyhow::Result<Option<&mut Transaction>> {
        if let DbAccess::NotBegun { store, writable } = self {
            let transaction = if *writable {
                store.begin_mutation()?
            } else {
                store.begin_query()?
            };
            *self = DbAccess::Begun(Box::new(transaction));
        }
        Ok(match self {
            DbAccess::Begun(transaction) => Some(transaction),
            _ => None,
        })
    }

    /// The transaction, if the function began one.
    pub(crate) fn into_transaction(self) -> Result<Option<Transaction>, TransactionLost> {
        match self {
            DbAccess::Begun(transaction) => Ok(Some(*transaction)),
            DbAccess::Lent | DbAccess::Lost => Err(TransactionLost),
            DbAccess::Denied | DbAccess::NotBegun { .. } => Ok(None),
        }
    }

    /// Takes the transaction out (begun now if need be) to lend it to a nested call;
    /// leaves [`DbAccess::Lent`] in its place. `None` for actions.
    pub(crate) fn lend(&mut self) -> anyhow::Result<Option<Transaction>> {
        if self.transaction()?.is_none() {
            return Ok(None);
        }
        match std::mem::replace(self, DbAccess::Lent) {
            DbAccess::Begun(transaction) => Ok(Some(*transaction)),
            _ => unreachable!("transaction() returned Some, so it has begun"),
        }
    }
}

/// The memory limit of the function's kind was reached. Carried as the trap's error so the
/// caller can name the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit_mib} MiB exceeded (the function asked for {desired_mib} MiB)")]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) limit_mib: usize,
    pub(crate) desired_mib: usize,
}

/// Refuses linear-memory growth past the kind's limit by trapping, so the call fails with
/// an error naming the limit instead of a guest-side allocation failure. The limit is for
/// the instance as a whole: a component with several memories shares one budget.
pub(crate) struct MemoryLimiter {
    limit_bytes: usize,
    /// Bytes of linear memory the instance holds, over all its memories.
    total_bytes: usize,
}

impl MemoryLimiter {
    fn new(limits: &FunctionLimits) -> Self {
        Self {
            limit_bytes: limits.memory_bytes,
            total_bytes: 0,
        }
    }

    /// The linear memory the instance holds now.
    pub(crate) fn total_bytes(&self) -> usize {
        self.total_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total_bytes - current.min(self.total_bytes) + desired;
        if total > self.limit_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit_mib: self.limit_bytes >> 20,
                desired_mib: total.div_ceil(1 << 20),
            }));
        }
        self.total_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pooling allocator's per-table element limit (`table_elements`) is the bound.
        Ok(true)
    }
}
