//! The live deployment: the modules that calls are served from, and function lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::store::DeploymentRecord;
use crate::function_path::FunctionPath;
use crate::runtime::{FunctionSpec, FunctionTable, LoadedModule};

/// An immutable set of loaded modules. A deploy builds a new one and swaps it in whole, so a
/// call in flight keeps the deployment it started with.
#[derive(Default)]
pub struct Deployment {
    pub(crate) record: DeploymentRecord,
    pub(crate) modules: BTreeMap<String, Arc<LoadedModule>>,
}

impl Deployment {
    pub fn id(&self) -> u64 {
        self.record.id
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

impl FunctionTable for Deployment {
    fn find(&self, path: &FunctionPath) -> Option<(Arc<LoadedModule>, FunctionSpec)> {
        self.function(path)
            .map(|(module, spec)| (module.clone(), spec.clone()))
    }
}
