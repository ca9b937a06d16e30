//! The live deployment: the modules that calls are served from, and function lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::store::DeploymentRecord;
use crate::auth::AuthVerifier;
use crate::function_path::FunctionPath;
use crate::runtime::{FunctionSpec, LoadedModule};

/// An immutable set of loaded modules and the auth providers that go with them. A deploy
/// builds a new one and swaps it in whole, so a call in flight keeps the deployment it
/// started with, and tokens are always checked against the providers of the modules live.
#[derive(Default)]
pub struct Deployment {
    pub(crate) record: DeploymentRecord,
    pub(crate) modules: BTreeMap<String, Arc<LoadedModule>>,
    /// Verifies tokens against `record.auth`; shared with the next deployment when its
    /// providers are the same, so their cached keys survive a deploy.
    pub(crate) auth: Arc<AuthVerifier>,
}

impl Deployment {
    pub fn id(&self) -> u64 {
        self.record.id
    }

    /// The deployment's auth providers, to verify a request's token with.
    pub fn auth(&self) -> &AuthVerifier {
        &self.auth
    }

    /// The module and spec of the function at `path`, whatever its visibility: the caller
    /// decides who may see it.
    pub fn function(&self, path: &FunctionPath) -> Option<(&Arc<LoadedModule>, &FunctionSpec)> {
        let module = self.modules.get(&path.module)?;
        let spec = module.function(&path.function)?;
        Some((module, spec))
    }

    /// Every function, as `(path, spec)`, in path order.
    pub fn functions(&self) -> impl Iterator<Item = (FunctionPath, &FunctionSpec)> {
        self.modules.iter().flat_map(|(module_name, module)| {
            module.functions().iter().map(move |spec| {
                let path = FunctionPath {
                    module: module_name.clone(),
                    function: spec.name.clone(),
                };
                (path, spec)
            })
        })
    }
}
