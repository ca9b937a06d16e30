//! A module ready to run: its component pre-instantiated against the linker, and the
//! functions it declared.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_values::Validator;
use wasmtime::component::Component;

use super::bindings::FunctionModulePre;
use super::bindings::kiln::platform::types as wit;
use super::call::CallContext;
use super::determinism::FrozenInputs;
use super::invocation::{DbAccess, InvocationState};
use super::{FunctionKind, Runtime, Visibility};
use crate::function_path::check_module_name;

/// One function a module declares, as the deployment records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    pub kind: FunctionKind,
    pub visibility: Visibility,
    /// The validator its arguments are checked against; `None`: not checked. (Records
    /// written before validators existed have neither, hence the defaults.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Validator>,
    /// The validator its return value is checked against; `None`: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<Validator>,
    /// Where an HTTP action is served; `None` for every other kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<HttpRoute>,
}

/// Where an HTTP action is served (`kiln:platform/types.http-route`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// `path` is a prefix (ending in `/`) rather than the exact path.
    pub prefix: bool,
}

/// The methods an HTTP action may be routed on (Convex's `ROUTABLE_HTTP_METHODS`).
pub const ROUTABLE_METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Longest route path accepted.
const MAX_ROUTE_PATH_LEN: usize = 1024;

impl HttpRoute {
    /// Whether a request path is served by this route.
    pub fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path.starts_with(&self.path)
        } else {
            path == self.path
        }
    }

    /// Refuses a route no request could reach, or that is ambiguous.
    fn check(&self) -> Result<(), String> {
        if !ROUTABLE_METHODS.contains(&self.method.as_str()) {
            return Err(format!(
                "method {:?} cannot be routed: use one of {}",
                self.method,
                ROUTABLE_METHODS.join(", ")
            ));
        }
        if !self.path.starts_with('/')
            || self.path.len() > MAX_ROUTE_PATH_LEN
            || self.path.contains(['?', '#'])
            || self.path.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(format!(
                "route path {:?} must start with / and hold no query, fragment, space or control character (at most {MAX_ROUTE_PATH_LEN} bytes)",
                self.path
            ));
        }
        if self.prefix && !self.path.ends_with('/') {
            return Err(format!("route path prefix {:?} must end with /", self.path));
        }
        Ok(())
    }
}

impl std::fmt::Display for HttpRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.prefix { "*" } else { "" };
        write!(f, "{} {}{star}", self.method, self.path)
    }
}

/// A module whose component links against this server and whose function list was read.
pub struct LoadedModule {
    pub(crate) pre: FunctionModulePre<InvocationState>,
    pub functions: Vec<FunctionSpec>,
    /// What the component calls a function: its name, or for a module of a JavaScript app
    /// (one component serving all of the app's modules) `dir/module:` then its name.
    pub(crate) guest_prefix: Option<String>,
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

    /// The name `module.call` is given for the function `name`.
    pub(crate) fn guest_name(&self, name: &str) -> String {
        match &self.guest_prefix {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_string(),
        }
    }
}

impl Runtime {
    /// Links `component` and asks it for its functions (one instantiation, with query
    /// limits). `known_functions` skips that call when the list was read at deploy.
    pub async fn load_module(
        self: &Arc<Self>,
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
        Ok(LoadedModule {
            pre,
            functions,
            guest_prefix: None,
        })
    }

    /// Links a JavaScript app's snapshot and reads its functions, which it names by whole
    /// path (`chat/messages:list`): one module per module path, all served by the one
    /// component. `known` (module path → functions) skips the listing when it was read at
    /// deploy.
    pub async fn load_js_app(
        self: &Arc<Self>,
        component: &Component,
        known: Option<BTreeMap<String, Vec<FunctionSpec>>>,
    ) -> Result<BTreeMap<String, LoadedModule>, ModuleError> {
        let loaded = self.load_module(component, Some(Vec::new())).await?;
        let by_module = match known {
            Some(known) => known,
            None => {
                let mut by_module: BTreeMap<String, Vec<FunctionSpec>> = BTreeMap::new();
                let qualified = |name: &str| {
                    let (module, function) = name.rsplit_once(':')?;
                    (check_module_name(module).is_ok() && is_function_name(function))
                        .then(|| (module.to_string(), function.to_string()))
                };
                for mut spec in self.read_function_list(&loaded.pre, &qualified).await? {
                    let (module, function) =
                        qualified(&spec.name).expect("read_function_list checked the name");
                    spec.name = function;
                    by_module.entry(module).or_default().push(spec);
                }
                by_module
            }
        };
        Ok(by_module
            .into_iter()
            .map(|(module, functions)| {
                let prefix = format!("{module}:");
                let module_loaded = LoadedModule {
                    pre: loaded.pre.clone(),
                    functions,
                    guest_prefix: Some(prefix),
                };
                (module, module_loaded)
            })
            .collect())
    }

    async fn read_functions(
        self: &Arc<Self>,
        pre: &FunctionModulePre<InvocationState>,
    ) -> Result<Vec<FunctionSpec>, ModuleError> {
        self.read_function_list(pre, &|name| is_function_name(name).then_some(()))
            .await
    }

    /// The functions a component lists, checked; `valid_name` says whether a name is one
    /// this kind of component may use.
    async fn read_function_list<T>(
        self: &Arc<Self>,
        pre: &FunctionModulePre<InvocationState>,
        valid_name: &(dyn Fn(&str) -> Option<T> + Sync),
    ) -> Result<Vec<FunctionSpec>, ModuleError> {
        let specs = self
            .with_instance(
                pre,
                CallContext::isolated(),
                FunctionKind::Query,
                DbAccess::Denied,
                // Run as a query, so as deterministic as one.
                Some(FrozenInputs::now()),
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
            if valid_name(&spec.name).is_none() {
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
            let kind = match spec.kind {
                wit::FunctionKind::Query => FunctionKind::Query,
                wit::FunctionKind::Mutation => FunctionKind::Mutation,
                wit::FunctionKind::Action => FunctionKind::Action,
                wit::FunctionKind::HttpAction => FunctionKind::HttpAction,
            };
            let route = spec.route.map(|route| HttpRoute {
                method: route.method,
                path: route.path,
                prefix: route.prefix,
            });
            match (kind, &route) {
                (FunctionKind::HttpAction, Some(route)) => {
                    route.check().map_err(|reason| {
                        ModuleError::Functions(format!("function {:?}: {reason}", spec.name))
                    })?;
                    if let Some(other) = functions
                        .iter()
                        .find(|function| function.route.as_ref() == Some(route))
                    {
                        return Err(ModuleError::Functions(format!(
                            "functions {:?} and {:?} are both routed at {route}",
                            other.name, spec.name
                        )));
                    }
                }
                (FunctionKind::HttpAction, None) => {
                    return Err(ModuleError::Functions(format!(
                        "HTTP action {:?} has no route",
                        spec.name
                    )));
                }
                (_, Some(_)) => {
                    return Err(ModuleError::Functions(format!(
                        "function {:?} has a route but is {}: only HTTP actions are routed",
                        spec.name,
                        kind.with_article()
                    )));
                }
                (_, None) => {}
            }
            let validator = |text: Option<String>, what: &str| {
                text.map(|text| Validator::parse_optional(&text))
                    .transpose()
                    .map(Option::flatten)
                    .map_err(|err| {
                        ModuleError::Functions(format!(
                            "function {:?} has an invalid {what} validator: {err}",
                            spec.name
                        ))
                    })
            };
            let args = validator(spec.args, "args")?;
            let returns = validator(spec.returns, "returns")?;
            functions.push(FunctionSpec {
                name: spec.name,
                kind,
                visibility: match spec.visibility {
                    wit::Visibility::Public => Visibility::Public,
                    wit::Visibility::Internal => Visibility::Internal,
                },
                args,
                returns,
                route,
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
