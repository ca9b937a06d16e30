//! The live deployment: the modules that calls are served from, and function lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::store::DeploymentRecord;
use crate::auth::AuthVerifier;
use crate::function_path::FunctionPath;
use crate::runtime::{FunctionSpec, FunctionTable, LoadedModule};

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

    /// The HTTP action serving `method` at `path`: the route with that exact path, else
    /// the one with the longest prefix of it (as Convex's router). `Err` with the methods
    /// routed at the path when only the method is wrong.
    pub fn route(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(FunctionPath, &Arc<LoadedModule>, &FunctionSpec), Vec<String>> {
        let routes = || {
            self.modules.iter().flat_map(|(name, module)| {
                module.functions().iter().filter_map(move |spec| {
                    let route = spec.route.as_ref()?;
                    route.matches(path).then_some((name, module, spec, route))
                })
            })
        };
        let best = routes()
            .filter(|(_, _, _, route)| route.method == method)
            .max_by_key(|(_, _, _, route)| (!route.prefix, route.path.len()));
        match best {
            Some((name, module, spec, _)) => {
                let path = FunctionPath {
                    module: name.clone(),
                    function: spec.name.clone(),
                };
                Ok((path, module, spec))
            }
            None => {
                let mut methods: Vec<String> = routes()
                    .map(|(_, _, _, route)| route.method.clone())
                    .collect();
                methods.sort();
                methods.dedup();
                Err(methods)
            }
        }
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
