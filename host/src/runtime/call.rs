//! What a call carries beyond its arguments, and passes on to the calls it makes
//! (`kiln:platform/functions`): the deployment it started in, how deep it is nested.

use std::sync::Arc;

use super::page_journal::PageJournal;
use super::{FunctionSpec, LoadedModule};
use crate::auth::UserIdentity;
use crate::function_path::FunctionPath;

/// The functions a call can reach by path. The live deployment implements it; a call
/// keeps the deployment it started with, so a deploy during a call does not change what
/// its nested calls reach.
pub trait FunctionTable: Send + Sync {
    /// The module and spec of the function at `path`, whatever its visibility.
    fn find(&self, path: &FunctionPath) -> Option<(Arc<LoadedModule>, FunctionSpec)>;
}

/// A table with no functions: what a module's own function listing runs with.
struct NoFunctions;

impl FunctionTable for NoFunctions {
    fn find(&self, _path: &FunctionPath) -> Option<(Arc<LoadedModule>, FunctionSpec)> {
        None
    }
}

/// Who is calling, and from where.
#[derive(Clone)]
pub struct CallContext {
    pub(crate) functions: Arc<dyn FunctionTable>,
    /// The user the call runs for (`kiln:platform/auth`): the client's verified identity,
    /// handed on unchanged to every call this one makes.
    pub(crate) identity: Option<Arc<UserIdentity>>,
    /// 0 for a call from a client; one more for each run-query/-mutation/-action.
    pub(crate) depth: usize,
    /// A subscribed query's journal (the end of the page it returned), for the client's
    /// call only: the calls it makes paginate afresh.
    pub(crate) page_journal: Option<Arc<PageJournal>>,
}

impl CallContext {
    /// A call from a client (HTTP, the CLI) into `functions`, for `identity`.
    pub fn root(functions: Arc<dyn FunctionTable>, identity: Option<Arc<UserIdentity>>) -> Self {
        Self {
            functions,
            identity,
            depth: 0,
            page_journal: None,
        }
    }

    /// This call with `journal` as its page journal (a subscribed query's run).
    pub fn with_page_journal(mut self, journal: Arc<PageJournal>) -> Self {
        self.page_journal = Some(journal);
        self
    }

    /// A call that can reach no other function (listing a module's functions, a
    /// benchmark of one component).
    pub fn isolated() -> Self {
        Self::root(Arc::new(NoFunctions), None)
    }

    /// The context of a call this one makes.
    pub(crate) fn nested(&self) -> Self {
        Self {
            functions: self.functions.clone(),
            identity: self.identity.clone(),
            depth: self.depth + 1,
            page_journal: None,
        }
    }
}
