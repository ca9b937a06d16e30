//! The one JS engine of an instance: created by `load` (so it is in the snapshot), with the
//! primitives the environment script builds on, and running the calls made on it.
//!
//! The host gives every call a fresh instance of the snapshot, so each call sees the
//! modules' top-level state as loading left it. Only the benchmark's warm-call figure
//! calls one instance again; that call sees what the one before it left.

use std::cell::{Cell, OnceCell};

use javy::quickjs::{Ctx, Function, Object, Persistent, TypedArray, Value};

use crate::bindings::kiln::platform::log::{self, Level};
use crate::bindings::kiln::platform::types::{FunctionError, HttpRequest, HttpResponse};
use crate::promise::{Settled, drive};
use crate::{bundled, errors, random, syscalls, web};

/// Where the instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No engine yet: `load` has not run.
    Empty,
    /// `load` is evaluating the app's modules: no host calls but logging.
    Loading,
    /// `evaluate-config` is evaluating a config module (`schema.js`, `auth.config.js`):
    /// logging and environment variables, nothing else. Never snapshotted.
    Configuring,
    /// Loaded (and snapshotted), or back from a call: ready for a call.
    Ready,
    /// Running a function.
    Calling,
}

pub(crate) struct Engine {
    pub(crate) runtime: javy::Runtime,
    /// What `js/src/environment.js` exports: `register`, `invoke`, `describeError`.
    pub(crate) environment: Persistent<Object<'static>>,
}

thread_local! {
    static ENGINE: OnceCell<Engine> = const { OnceCell::new() };
    static PHASE: Cell<Phase> = const { Cell::new(Phase::Empty) };
}

pub(crate) fn phase() -> Phase {
    PHASE.with(Cell::get)
}

pub(crate) fn set_phase(phase: Phase) {
    PHASE.with(|cell| cell.set(phase));
}

/// QuickJS collects reference cycles once this much was allocated since the last run
/// (javy's default never does).
const GC_THRESHOLD_BYTES: usize = 8 << 20;

/// Creates the engine and installs the environment. Called once, by `load`.
pub(crate) fn create() -> Result<(), String> {
    let mut config = javy::Config::default();
    config
        // convex/values measures documents with TextEncoder.
        .text_encoding(true)
        .weak_ref(true)
        // Its clock would start at snapshot time.
        .performance(false)
        .gc_threshold(GC_THRESHOLD_BYTES);
    let runtime =
        javy::Runtime::new(config).map_err(|err| format!("cannot start the JS engine: {err:#}"))?;
    let environment = runtime
        .context()
        .with(|ctx| install_environment(&ctx).map_err(|err| errors::describe(&ctx, err)))
        .map_err(|err| format!("cannot install the JS environment: {err}"))?;
    ENGINE.with(|cell| {
        cell.set(Engine {
            runtime,
            environment,
        })
        .map_err(|_| "the JS engine exists already".to_string())
    })
}

fn install_environment<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Persistent<Object<'static>>> {
    // atob, btoa (and DOMException), which QuickJS has but javy does not add.
    unsafe { rquickjs::qjs::JS_AddIntrinsicAToB(ctx.as_raw().as_ptr()) };
    let primitives = Object::new(ctx.clone())?;
    primitives.set("syscall", Function::new(ctx.clone(), host_syscall)?)?;
    primitives.set("log", Function::new(ctx.clone(), host_log)?)?;
    primitives.set("random", Function::new(ctx.clone(), random::next_f64)?)?;
    primitives.set("fetch", Function::new(ctx.clone(), web::fetch)?)?;
    primitives.set(
        "randomBytes",
        Function::new(ctx.clone(), web::random_bytes)?,
    )?;
    primitives.set("digest", Function::new(ctx.clone(), web::digest)?)?;
    primitives.set("env", Function::new(ctx.clone(), environment_variable)?)?;
    primitives.set("envNames", Function::new(ctx.clone(), environment_names)?)?;
    ctx.globals().set("__kiln", primitives)?;
    ctx.eval::<(), _>(bundled::ENVIRONMENT)?;
    let environment: Object = ctx.globals().get("__kilnEnvironment")?;
    ctx.globals().remove("__kilnEnvironment")?;
    Ok(Persistent::save(ctx, environment))
}

/// Runs `work` with the engine; `None` before `load`.
pub(crate) fn with_engine<R>(work: impl FnOnce(&Engine) -> R) -> Option<R> {
    ENGINE.with(|cell| cell.get().map(work))
}

/// `Convex.syscall` and `Convex.asyncSyscall` end here: one op on Kiln's capabilities.
fn host_syscall<'js>(ctx: Ctx<'js>, op: String, args: String) -> rquickjs::Result<String> {
    if phase() != Phase::Calling {
        let message = format!(
            "`{op}` cannot run while modules load: the database, other functions and the network are only reachable inside a function"
        );
        return Err(errors::throw(&ctx, &message, None));
    }
    syscalls::dispatch(&op, &args)
        .map_err(|err| errors::throw(&ctx, &err.message, err.data.as_deref()))
}

/// A deployment environment variable (`process.env.NAME`), read from the call's WASI
/// environment each time. While modules load there are none: nothing of the environment
/// may end up in the snapshot. A config module (never snapshotted) reads them.
fn environment_variable(name: String) -> Option<String> {
    if !matches!(phase(), Phase::Calling | Phase::Configuring) {
        return None;
    }
    wasi::cli::environment::get_environment()
        .into_iter()
        .find(|(variable, _)| *variable == name)
        .map(|(_, value)| value)
}

fn environment_names() -> Vec<String> {
    if !matches!(phase(), Phase::Calling | Phase::Configuring) {
        return Vec::new();
    }
    wasi::cli::environment::get_environment()
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn host_log(level: String, line: String) {
    match level.as_str() {
        "log" => log::console_log(&line),
        "debug" => log::log(Level::Debug, &line),
        "info" => log::log(Level::Info, &line),
        "warn" => log::log(Level::Warn, &line),
        _ => log::log(Level::Error, &line),
    }
}

/// Runs the function at `path` (`dir/module:name`) on `args` (Convex JSON text of an
/// object) and returns the Convex JSON text of its result.
pub(crate) fn call(path: &str, args: &str) -> Result<String, FunctionError> {
    run(
        path,
        |_, environment| {
            environment
                .get::<_, Function>("invoke")?
                .call::<_, Value>((path, args))
        },
        |_, value| {
            value
                .as_string()
                .and_then(|text| text.to_string().ok())
                .ok_or_else(|| failure(format!("{path} did not resolve to Convex JSON text")))
        },
    )
}

/// Runs `request` through the HTTP router of the route `name` (`dir/module:route_N`).
pub(crate) fn call_http(name: &str, request: HttpRequest) -> Result<HttpResponse, FunctionError> {
    let module_path = name.rsplit_once(':').map_or(name, |(module, _)| module);
    run(
        name,
        |ctx, environment| {
            let headers: Vec<Vec<String>> = request
                .headers
                .into_iter()
                .map(|(name, value)| vec![name, value])
                .collect();
            let body = TypedArray::<u8>::new(ctx.clone(), request.body)?;
            environment
                .get::<_, Function>("invokeHttp")?
                .call::<_, Value>((module_path, request.method, request.url, headers, body))
        },
        |ctx, value| {
            http_response(value)
                .map_err(|err| failure(format!("{name}: {}", errors::describe(ctx, err))))
        },
    )
}

/// One call of this instance: `start` begins it in JS (with the environment), the promise
/// it returns is driven to its end, and `finish` reads what it resolved to. A rejection is
/// the function's error, as Convex reports it.
fn run<T>(
    name: &str,
    start: impl for<'js> FnOnce(&Ctx<'js>, &Object<'js>) -> rquickjs::Result<Value<'js>>,
    finish: impl for<'js> FnOnce(&Ctx<'js>, Value<'js>) -> Result<T, FunctionError>,
) -> Result<T, FunctionError> {
    if phase() != Phase::Ready {
        return Err(failure(format!(
            "the JS runtime cannot run {name}: it is {:?}, not loaded and idle",
            phase()
        )));
    }
    set_phase(Phase::Calling);
    random::reset();
    syscalls::begin_call(name);
    let result = with_engine(|engine| {
        engine.runtime.context().with(|ctx| {
            let environment = engine.environment.clone().restore(&ctx).map_err(|err| {
                failure(format!("the JS environment is gone: {}", errors::describe(&ctx, err)))
            })?;
            let outcome = match start(&ctx, &environment) {
                Ok(value) => drive(&ctx, value, Some(&environment)),
                Err(err) => Settled::Rejected(errors::caught(&ctx, err)),
            };
            match outcome {
                Settled::Resolved(value) => finish(&ctx, value),
                Settled::Rejected(reason) => Err(errors::function_error(&ctx, &environment, reason)),
                Settled::NeverSettles => Err(failure(format!(
                    "Uncaught Error: {name} never finished: it awaits a promise that can never settle (one nobody resolves)"
                ))),
            }
        })
    })
    .unwrap_or_else(|| Err(failure("the JS runtime was never loaded".to_string())));
    set_phase(Phase::Ready);
    result
}

/// `{status, headers, body}` as `invokeHttp` resolves.
fn http_response(value: Value<'_>) -> rquickjs::Result<HttpResponse> {
    let object = Object::from_value(value)?;
    let headers: Vec<Vec<String>> = object.get("headers")?;
    let body: TypedArray<u8> = object.get("body")?;
    Ok(HttpResponse {
        status: object.get("status")?,
        headers: headers
            .into_iter()
            .filter_map(|pair| <[String; 2]>::try_from(pair).ok())
            .map(|[name, value]| (name, value))
            .collect(),
        body: body.as_bytes().unwrap_or_default().to_vec(),
    })
}

fn failure(message: String) -> FunctionError {
    FunctionError {
        message,
        data: None,
    }
}
