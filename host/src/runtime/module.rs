//! A module ready to run: its component pre-instantiated against the linker, and the
//! functions it declared.

use wasmtime::component::Component;

use super::bindings::FunctionModulePre;
use super::bindings::kiln::platform::types as wit;
use super::determinism::FrozenInputs;
use super::invocation::{DbAccess, InvocationState};
use super::{FunctionKind, Runtime, Visibility};

/// One function a module declares, as the deployment records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    pub kind: FunctionKind,
    pub visibility: Visibility,
}

/// A module whose component links against this server and whose function list was read.
pub struct LoadedModule {
    pub(crate) pre: FunctionModulePre<InvocationState>,
    pub functions: Vec<FunctionSpec>,
}

/// Why a compiled component cannot be deployed.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// It imports something the host does not provide, or lacks the `module` export.
    #[error("{0}")]
    Link(String),
    /// Listing its functions failed or returned something unusable.
    #[error("{0}")]
    Functions(String),
}

impl LoadedModule {
    pub fn functions(&self) -> &[FunctionSpec] {
        &self.functions
    }

    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|function| function.name == name)
    }
}

impl Runtime {
    /// Links `component` and asks it for its functions (one instantiation, with query
    /// limits). `known_functions` skips that call when the list was read at deploy.
    pub async fn load_module(
        &self,
        component: &Component,
        known_functions: Option<Vec<FunctionSpec>>,
    ) -> Result<LoadedModule, ModuleError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|err| ModuleError::Link(format!("{err:#}")))?;
        let pre = FunctionModulePre::new(instance_pre).map_err(|err| {
            ModuleError::Link(format!(
                "it does not export the kiln:platform/module interface: {err:#}"
            ))
        })?;
        let functions = match known_functions {
            Some(functions) => functions,
            None => self.read_functions(&pre).await?,
        };
        Ok(LoadedModule { pre, functions })
    }

    async fn read_functions(
        &self,
        pre: &FunctionModulePre<InvocationState>,
    ) -> Result<Vec<FunctionSpec>, ModuleError> {
        let specs = self
            .with_instance(
                pre,
                FunctionKind::Query,
                DbAccess::Denied,
                // Run as a query, so as deterministic as one.
                Some(FrozenInputs::now()),
                None,
                |store, module| {
                    Box::pin(
                        async move { module.kiln_platform_module().call_functions(store).await },
                    )
                },
            )
            .await
            .0
            .map_err(|failure| {
                ModuleError::Functions(format!("listing its functions failed: {failure}"))
            })?;
        let mut functions: Vec<FunctionSpec> = Vec::with_capacity(specs.len());
        for spec in specs {
            if !is_function_name(&spec.name) {
                return Err(ModuleError::Functions(format!(
                    "invalid function name {:?}: use letters, digits and _, not starting with a digit",
                    spec.name
                )));
            }
            if functions.iter().any(|f| f.name == spec.name) {
                return Err(ModuleError::Functions(format!(
                    "two functions are named {:?}",
                    spec.name
                )));
            }
            functions.push(FunctionSpec {
                name: spec.name,
                kind: match spec.kind {
                    wit::FunctionKind::Query => FunctionKind::Query,
                    wit::FunctionKind::Mutation => FunctionKind::Mutation,
                    wit::FunctionKind::Action => FunctionKind::Action,
                },
                visibility: match spec.visibility {
                    wit::Visibility::Public => Visibility::Public,
                    wit::Visibility::Internal => Visibility::Internal,
                },
            });
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(functions)
    }
}

/// A function name is an identifier: `greet`, `list_all`, `default`.
pub fn is_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256
}
