//! Loading an app: its ES modules, Convex's library under the bare names `convex/server`
//! and `convex/values`, and `_generated/server` / `_generated/api` when the app has none
//! (as `npx convex codegen` would write them, untyped). Each of the app's modules is
//! imported, which declares, links and evaluates it and its imports once (a syntax error
//! names its file and line), and its Convex functions are recorded.

use std::cell::RefCell;
use std::collections::BTreeMap;

use javy::quickjs::function::This;
use javy::quickjs::{Ctx, Function, Module, Object, Value};
use rquickjs::loader::{Loader, Resolver};
use serde::Deserialize;

use crate::bindings::exports::kiln::platform::js_loader::JsModule;
use crate::bindings::kiln::platform::types::{FunctionKind, FunctionSpec, HttpRoute, Visibility};
use crate::engine::{self, Phase};
use crate::promise::{Settled, drive};
use crate::{bundled, errors, random};

/// One Convex function the app exports, as `register` in the environment describes it.
#[derive(Deserialize)]
struct Registered {
    /// `dir/module:export`
    name: String,
    kind: String,
    visibility: String,
    args: Option<String>,
    returns: Option<String>,
    /// For an HTTP router's route.
    route: Option<Route>,
}

#[derive(Deserialize)]
struct Route {
    method: String,
    path: String,
    prefix: bool,
}

thread_local! {
    static FUNCTIONS: RefCell<Vec<Registered>> = const { RefCell::new(Vec::new()) };
    /// The app's cron jobs: the `crons` of `crons.js`'s default export (`cronJobs()`), as
    /// JSON; `{}` without one. Kept in the snapshot, read by the host through `CRONS_CALL`.
    static CRONS: RefCell<String> = RefCell::new("{}".to_string());
}

/// The function name the host calls (never listed, so no client can) to read the app's
/// crons: `call("_kiln:crons", "{}")` returns them as JSON text.
pub(crate) const CRONS_CALL: &str = "_kiln:crons";

/// Where Convex apps declare their cron jobs.
const CRONS_MODULE: &str = "crons.js";

const GENERATED_SERVER: &str = "_generated/server.js";
const GENERATED_API: &str = "_generated/api.js";

/// What `npx convex codegen` writes, without the types.
const GENERATED_SERVER_SOURCE: &str = r#"export {
  queryGeneric as query,
  internalQueryGeneric as internalQuery,
  mutationGeneric as mutation,
  internalMutationGeneric as internalMutation,
  actionGeneric as action,
  internalActionGeneric as internalAction,
  httpActionGeneric as httpAction,
} from "convex/server";
"#;
const GENERATED_API_SOURCE: &str = r#"import { anyApi, componentsGeneric } from "convex/server";
export const api = anyApi;
export const internal = anyApi;
export const components = componentsGeneric();
"#;

pub(crate) fn load(modules: Vec<JsModule>) -> Result<(), String> {
    let app = start(modules, Phase::Loading)?;
    engine::with_engine(|engine| {
        engine.runtime.context().with(|ctx| {
            let environment = engine
                .environment
                .clone()
                .restore(&ctx)
                .map_err(|err| errors::describe(&ctx, err))?;
            let mut found = Vec::new();
            for path in app.keys() {
                let namespace = import(&ctx, path)?;
                if path == CRONS_MODULE
                    && let Some(crons) = cron_jobs(&ctx, &namespace)?
                {
                    CRONS.with(|slot| *slot.borrow_mut() = crons);
                }
                found.extend(register(&ctx, &environment, path, namespace)?);
            }
            FUNCTIONS.with(|functions| *functions.borrow_mut() = found);
            Ok::<_, String>(())
        })
    })
    .unwrap_or_else(|| Err("the JS engine was not created".into()))?;
    // What the snapshot keeps: nothing a call could observe but the loaded modules.
    engine::with_engine(|engine| engine.runtime.context().runtime().run_gc());
    random::reset();
    engine::set_phase(Phase::Ready);
    Ok(())
}

/// A Convex config module's default export as JSON: `schema.js`'s `export()`, or
/// `auth.config.js`'s object.
pub(crate) fn evaluate_config(module: JsModule) -> Result<String, String> {
    let path = module.path.clone();
    start(vec![module], Phase::Configuring)?;
    engine::with_engine(|engine| {
        engine.runtime.context().with(|ctx| {
            let namespace = import(&ctx, &path)?;
            let fail = |err| format!("{path}: {}", errors::describe(&ctx, err));
            let default: Value = namespace.get("default").map_err(fail)?;
            if default.is_undefined() {
                return Err(format!("{path}: it has no default export"));
            }
            // A schema (`defineSchema`) describes itself through `export()`.
            let export = default
                .as_object()
                .map(|object| object.get::<_, Value>("export"))
                .transpose()
                .map_err(fail)?
                .and_then(|export| export.into_function());
            let text = match export {
                Some(export) => export
                    .call::<_, Value>((This(default.clone()),))
                    .map_err(fail)?
                    .into_string()
                    .ok_or_else(|| format!("{path}: its export() returned no JSON text"))?,
                None => ctx
                    .json_stringify(default)
                    .map_err(fail)?
                    .ok_or_else(|| format!("{path}: its default export is not JSON"))?,
            };
            text.to_string().map_err(fail)
        })
    })
    .unwrap_or_else(|| Err("the JS engine was not created".into()))
}

/// Checks `modules`, creates the engine, and gives it a module loader serving them,
/// `_generated` stand-ins and the bundled convex library; the instance is then in `phase`.
/// The app's modules by path.
fn start(modules: Vec<JsModule>, phase: Phase) -> Result<BTreeMap<String, String>, String> {
    if engine::phase() != Phase::Empty {
        return Err("the JS runtime is loaded already: `load` runs once".into());
    }
    let mut app = BTreeMap::new();
    for module in modules {
        check_path(&module.path)?;
        if app.insert(module.path.clone(), module.source).is_some() {
            return Err(format!("{}: given twice", module.path));
        }
    }
    let mut sources: BTreeMap<String, String> = app.clone();
    for (path, source) in [
        (GENERATED_SERVER, GENERATED_SERVER_SOURCE),
        (GENERATED_API, GENERATED_API_SOURCE),
    ] {
        sources
            .entry(path.to_string())
            .or_insert_with(|| source.to_string());
    }
    for (name, source) in bundled::CONVEX_MODULES {
        sources.insert(name.to_string(), source.to_string());
    }

    engine::create()?;
    engine::set_phase(phase);
    let names: Vec<String> = sources.keys().cloned().collect();
    engine::with_engine(|engine| {
        engine.runtime.context().runtime().set_loader(
            AppResolver {
                names: names.clone(),
            },
            SourceLoader { sources },
        );
    })
    .ok_or("the JS engine was not created")?;
    Ok(app)
}

/// A path within the app: relative, `/`-separated, a `.js` or `.mjs` file, no `.` or `..`
/// segments; `convex/...` is the library's.
fn check_path(path: &str) -> Result<(), String> {
    let valid = !path.is_empty()
        && !path.starts_with('/')
        && (path.ends_with(".js") || path.ends_with(".mjs"))
        && path
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && !path.contains('\\');
    if !valid {
        return Err(format!(
            "{path:?} is not a module path: use a relative path of a .js or .mjs file"
        ));
    }
    if bundled::CONVEX_MODULES
        .iter()
        .any(|(name, _)| *name == path)
    {
        return Err(format!(
            "{path}: the name of a module of Kiln's bundled convex library"
        ));
    }
    Ok(())
}

/// Imports (links and evaluates) the declared module `path`; its namespace.
fn import<'js>(ctx: &Ctx<'js>, path: &str) -> Result<Object<'js>, String> {
    let promise = Module::import(ctx, path).map_err(|err| errors::describe(ctx, err))?;
    match drive(ctx, promise.into_value(), None) {
        Settled::Resolved(namespace) => namespace
            .into_object()
            .ok_or_else(|| format!("{path}: importing it gave no module namespace")),
        Settled::Rejected(reason) => Err(errors::describe_value(ctx, reason)),
        Settled::NeverSettles => Err(format!(
            "{path}: its top-level await never finishes (it awaits a promise nobody resolves)"
        )),
    }
}

/// The Convex functions `path` exports, through the environment's `register`.
fn register<'js>(
    ctx: &Ctx<'js>,
    environment: &Object<'js>,
    path: &str,
    namespace: Object<'js>,
) -> Result<Vec<Registered>, String> {
    let module_path = path
        .strip_suffix(".mjs")
        .or_else(|| path.strip_suffix(".js"))
        .unwrap_or(path);
    let described = environment
        .get::<_, Function>("register")
        .and_then(|register| register.call::<_, Value>((module_path, namespace)))
        .and_then(|found| ctx.json_stringify(found))
        .map_err(|err| format!("{path}: {}", errors::describe(ctx, err)))?
        .and_then(|text| text.to_string().ok())
        .unwrap_or_else(|| "[]".into());
    serde_json::from_str(&described)
        .map_err(|err| format!("{path}: cannot read its functions: {err}"))
}

/// The `crons` of `crons.js`'s default export as JSON, if it is a `cronJobs()` object.
fn cron_jobs<'js>(ctx: &Ctx<'js>, namespace: &Object<'js>) -> Result<Option<String>, String> {
    let fail = |err| format!("{CRONS_MODULE}: {}", errors::describe(ctx, err));
    let default: Value = namespace.get("default").map_err(fail)?;
    let Some(default) = default.as_object() else {
        return Ok(None);
    };
    if default.get::<_, Value>("isCrons").map_err(fail)?.as_bool() != Some(true) {
        return Ok(None);
    }
    let crons: Value = default.get("crons").map_err(fail)?;
    let text = ctx
        .json_stringify(crons)
        .map_err(fail)?
        .ok_or_else(|| format!("{CRONS_MODULE}: its crons are not JSON"))?;
    text.to_string().map(Some).map_err(fail)
}

/// The app's cron jobs as JSON (see `CRONS`).
pub(crate) fn crons() -> String {
    CRONS.with(|crons| crons.borrow().clone())
}

pub(crate) fn functions() -> Vec<FunctionSpec> {
    FUNCTIONS.with(|functions| {
        functions
            .borrow()
            .iter()
            .map(|function| FunctionSpec {
                name: function.name.clone(),
                kind: match function.kind.as_str() {
                    "query" => FunctionKind::Query,
                    "mutation" => FunctionKind::Mutation,
                    "httpAction" => FunctionKind::HttpAction,
                    _ => FunctionKind::Action,
                },
                visibility: if function.visibility == "internal" {
                    Visibility::Internal
                } else {
                    Visibility::Public
                },
                args: function.args.clone(),
                returns: function.returns.clone(),
                route: function.route.as_ref().map(|route| HttpRoute {
                    method: route.method.clone(),
                    path: route.path.clone(),
                    prefix: route.prefix,
                }),
            })
            .collect()
    })
}

/// Resolves imports among the app's modules: `./x` and `../x` against the importer (with
/// `.js`, `.mjs` or `/index.js` added when left out), and the bare `convex/server` and
/// `convex/values`.
struct AppResolver {
    names: Vec<String>,
}

impl AppResolver {
    fn known(&self, name: &str) -> bool {
        self.names.iter().any(|known| known == name)
    }
}

impl Resolver for AppResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let joined = if name.starts_with("./") || name.starts_with("../") {
            let directory = base.rsplit_once('/').map_or("", |(directory, _)| directory);
            join(directory, name)
        } else {
            Some(name.to_string())
        };
        let found = joined.and_then(|path| {
            let candidates = [
                path.clone(),
                format!("{path}.js"),
                format!("{path}.mjs"),
                format!("{path}/index.js"),
            ];
            candidates
                .into_iter()
                .find(|candidate| self.known(candidate))
                // A module in a folder of the app importing `_generated/...` from where the
                // app's own would be: the untyped stand-ins at the root, if it has none.
                .or_else(|| {
                    let file = path.trim_end_matches(".js");
                    [GENERATED_SERVER, GENERATED_API]
                        .into_iter()
                        .find(|generated| file.ends_with(generated.trim_end_matches(".js")))
                        .filter(|generated| self.known(generated))
                        .map(str::to_string)
                })
        });
        found.ok_or_else(|| {
            rquickjs::Error::new_resolving_message(
                base,
                name,
                "no such module in the app (relative imports name the app's own .js files; the bare imports Kiln provides are convex/server and convex/values)",
            )
        })
    }
}

/// `directory` joined with the relative `name`; `None` when it climbs above the app.
fn join(directory: &str, name: &str) -> Option<String> {
    let mut segments: Vec<&str> = directory.split('/').filter(|s| !s.is_empty()).collect();
    for segment in name.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                segments.pop()?;
            }
            other => segments.push(other),
        }
    }
    Some(segments.join("/"))
}

/// Declares a module from its source the first time it is imported (QuickJS keeps it from
/// then on, so each is evaluated once). A syntax error fails the import naming the file
/// and line.
struct SourceLoader {
    sources: BTreeMap<String, String>,
}

impl Loader for SourceLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<rquickjs::loader::ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, rquickjs::module::Declared>> {
        let source = self
            .sources
            .remove(name)
            .ok_or_else(|| rquickjs::Error::new_loading(name))?;
        Module::declare(ctx.clone(), name, source)
    }
}
