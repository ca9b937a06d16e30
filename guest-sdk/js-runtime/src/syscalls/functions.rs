//! Calling other functions: `1.0/runUdf` (`ctx.runQuery`/`ctx.runMutation` in queries and
//! mutations) and `1.0/actions/{query,mutation,action}` (in actions), on
//! `kiln:platform/functions`, which applies Convex's rules for each kind of caller.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{OpError, OpResult};
use crate::bindings::kiln::platform::functions;
use crate::bindings::kiln::platform::types::FunctionError;

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Query,
    Mutation,
    Action,
}

/// What names the callee (convex/server's `getFunctionAddress`): `{name}`, or a function
/// handle or component reference, which Kiln does not have.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CallArgs {
    name: Option<String>,
    function_handle: Option<String>,
    reference: Option<String>,
    args: Box<RawValue>,
    udf_type: Option<String>,
}

/// `{udfType: "query" | "mutation" | "snapshotQuery", args, name}`
pub(super) fn run_udf(args: CallArgs) -> OpResult {
    let kind = match args.udf_type.as_deref() {
        Some("query") | Some("snapshotQuery") => Kind::Query,
        Some("mutation") => Kind::Mutation,
        other => {
            return Err(OpError::new(format!(
                "Invalid arguments for `1.0/runUdf`: udfType {other:?}"
            )));
        }
    };
    run(kind, args)
}

/// The path a function address names (convex/server's `getFunctionAddress`: a `name`, or a
/// function handle or component reference, which Kiln does not have); `verb` is what the
/// op does with it, for the error ("call", "schedule").
pub(super) fn function_path<'a>(
    name: &'a Option<String>,
    function_handle: &Option<String>,
    reference: &Option<String>,
    verb: &str,
) -> Result<&'a str, OpError> {
    match (name, function_handle, reference) {
        (Some(name), _, _) => Ok(name.as_str()),
        (None, Some(handle), _) => Err(OpError::new(format!(
            "function handles ({handle}) are not supported by Kiln yet: {verb} the function by name"
        ))),
        (None, None, Some(reference)) => Err(OpError::new(format!(
            "components ({reference}) are not supported by Kiln yet"
        ))),
        (None, None, None) => Err(OpError::new(format!("no function named to {verb}"))),
    }
}

/// `{name, args, version, requestId}` → the callee's result.
pub(super) fn run(kind: Kind, args: CallArgs) -> OpResult {
    let path = function_path(&args.name, &args.function_handle, &args.reference, "call")?;
    let outcome = match kind {
        Kind::Query => functions::run_query(path, args.args.get()),
        Kind::Mutation => functions::run_mutation(path, args.args.get()),
        Kind::Action => functions::run_action(path, args.args.get()),
    };
    outcome.map_err(|FunctionError { message, data }| OpError { message, data })
}
