//! `ctx.scheduler` (convex/server's `impl/scheduler_impl.js`) on `kiln:platform/scheduler`:
//! `1.0/schedule` and `1.0/cancel_job` from mutations, `1.0/actions/schedule` and
//! `1.0/actions/cancel_job` from actions (which add a `requestId`). The host knows which
//! kind is calling, so both pairs are the same here.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{OpError, OpResult, json};
use crate::bindings::kiln::platform::scheduler;

/// `{name, ts, args, version, requestId?}`: `ts` in seconds since the Unix epoch,
/// `args` the Convex JSON of the arguments object. The job's id comes back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ScheduleArgs {
    name: Option<String>,
    function_handle: Option<String>,
    reference: Option<String>,
    ts: f64,
    args: Box<RawValue>,
}

pub(super) fn schedule(args: ScheduleArgs) -> OpResult {
    let path = super::functions::function_path(
        &args.name,
        &args.function_handle,
        &args.reference,
        "schedule",
    )?;
    let id = scheduler::run_at(args.ts * 1000.0, path, args.args.get()).map_err(OpError::new)?;
    json(&id)
}

/// `{id, requestId?}`
#[derive(Deserialize)]
pub(super) struct CancelArgs {
    id: String,
}

pub(super) fn cancel(args: CancelArgs) -> OpResult {
    scheduler::cancel(&args.id).map_err(OpError::new)?;
    Ok("null".into())
}
