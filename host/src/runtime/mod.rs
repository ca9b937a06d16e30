//! Runs components: one wasmtime engine, compiled modules, one fresh instance per call,
//! each inside its limits. Knows nothing of HTTP or of how deployments are stored.

mod bench;
pub(crate) mod bindings;
pub(crate) mod call;
mod compile;
pub(crate) mod determinism;
mod engine;
mod guest_call;
mod http_action;
pub(crate) mod invocation;
mod invoke;
pub mod js;
mod module;
mod output;
pub mod page_journal;
mod returned;
mod run_slots;
#[cfg(test)]
mod test_support;
mod validation;

pub use bench::FirstAndWarm;
pub use call::{CallContext, FunctionTable};
pub use compile::{CompileError, CompiledComponent};
pub use engine::{PROFILE_ENV, Runtime};
pub use http_action::{HttpRequest, HttpResponse};
pub use invocation::{InvocationState, LogLevel, LogLine};
pub use invoke::{BeforeCommit, FunctionFailure, Invocation, SpentInstance};
pub use module::{FunctionSpec, HttpRoute, LoadedModule, ModuleError, is_function_name};
pub use returned::Returned;

/// What a function may do (DESIGN.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FunctionKind {
    Query,
    Mutation,
    Action,
    /// An action that answers HTTP requests at its route.
    HttpAction,
}

impl FunctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Query => "query",
            FunctionKind::Mutation => "mutation",
            FunctionKind::Action => "action",
            FunctionKind::HttpAction => "httpAction",
        }
    }

    /// "a query", "a mutation", "an action": for messages.
    pub fn with_article(self) -> &'static str {
        match self {
            FunctionKind::Query => "a query",
            FunctionKind::Mutation => "a mutation",
            FunctionKind::Action => "an action",
            FunctionKind::HttpAction => "an HTTP action",
        }
    }

    /// Actions and HTTP actions: side effects allowed, no transaction of their own, the
    /// real clock and randomness, the action limits.
    pub fn is_action(self) -> bool {
        matches!(self, FunctionKind::Action | FunctionKind::HttpAction)
    }
}

impl std::fmt::Display for FunctionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Internal,
}
