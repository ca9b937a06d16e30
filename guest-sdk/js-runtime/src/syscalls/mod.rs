//! Convex's syscall ops (what `convex/server` sends through `Convex.syscall` and
//! `Convex.asyncSyscall`), each carried out with Kiln's capabilities. Arguments and results
//! are JSON text in the shapes Convex's backend uses (`crates/isolate/src/environment/udf/`
//! and `.../action/`): see each op.

mod db;
mod functions;
mod meta;
mod query;
mod scheduler;
mod storage;

use serde::de::DeserializeOwned;

/// A failed op: thrown into JS as an `Error` with this message and, for a callee's
/// ConvexError, `.data` (Convex JSON text of the value).
pub(crate) struct OpError {
    pub(crate) message: String,
    pub(crate) data: Option<String>,
}

impl OpError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }
}

type OpResult = Result<String, OpError>;

/// Per-call state: set when a call begins.
pub(crate) fn begin_call(path: &str) {
    meta::begin_call(path);
    query::begin_call();
}

pub(crate) fn dispatch(op: &str, args: &str) -> OpResult {
    match op {
        "1.0/get" => db::get(parse(op, args)?),
        "1.0/insert" => db::insert(parse(op, args)?),
        "1.0/shallowMerge" => db::shallow_merge(parse(op, args)?),
        "1.0/replace" => db::replace(parse(op, args)?),
        "1.0/remove" => db::remove(parse(op, args)?),
        "1.0/db/normalizeId" => db::normalize_id(parse(op, args)?),
        "1.0/queryStream" => query::stream(parse(op, args)?),
        "1.0/queryStreamNext" => query::stream_next(parse(op, args)?),
        "1.0/queryCleanup" => query::cleanup(parse(op, args)?),
        "1.0/queryPage" => query::page(parse(op, args)?),
        "1.0/count" => query::count(parse(op, args)?),
        "1.0/runUdf" => functions::run_udf(parse(op, args)?),
        "1.0/actions/query" => functions::run(functions::Kind::Query, parse(op, args)?),
        "1.0/actions/mutation" => functions::run(functions::Kind::Mutation, parse(op, args)?),
        "1.0/actions/action" => functions::run(functions::Kind::Action, parse(op, args)?),
        "1.0/getUserIdentity" => meta::user_identity(),
        "1.0/getFunctionMetadata" => meta::function_metadata(),
        "1.0/getDeploymentMetadata" => meta::deployment_metadata(),
        "1.0/getRequestMetadata" => meta::request_metadata(),
        "1.0/schedule" | "1.0/actions/schedule" => scheduler::schedule(parse(op, args)?),
        "1.0/cancel_job" | "1.0/actions/cancel_job" => scheduler::cancel(parse(op, args)?),
        "1.0/storageGenerateUploadUrl" => storage::generate_upload_url(),
        "1.0/storageGetUrl" => storage::get_url(parse(op, args)?),
        "1.0/storageGetMetadata" => storage::get_metadata(parse(op, args)?),
        "1.0/storageDelete" => storage::delete(parse(op, args)?),
        "1.0/storageStore" => storage::store(parse(op, args)?),
        "1.0/storageGet" => storage::get(parse(op, args)?),
        // Convex's backend answers an op it does not know with exactly this text (and
        // convex/server's getTransactionMetrics looks for it).
        _ => Err(OpError::new(format!("Unknown async operation {op}"))),
    }
}

/// The op's JSON arguments, or Convex's error for arguments it cannot read.
fn parse<T: DeserializeOwned>(op: &str, args: &str) -> Result<T, OpError> {
    serde_json::from_str(args)
        .map_err(|err| OpError::new(format!("Invalid arguments for `{op}`: {err}")))
}

/// JSON text of a serializable result.
fn json(value: &impl serde::Serialize) -> OpResult {
    serde_json::to_string(value)
        .map_err(|err| OpError::new(format!("cannot encode a result: {err}")))
}
