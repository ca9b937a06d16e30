//! Kiln's JavaScript runtime: a WASI component that runs an app's ES modules in QuickJS and
//! gives Convex's own `convex/server` library the interface it talks to a backend through
//! (`Convex.syscall`, `Convex.asyncSyscall`, `Convex.jsSyscall`), on top of Kiln's WIT
//! capabilities. Convex's udf-runtime and isolate crates are the model for both sides.
//!
//! Life of an instance:
//! * At deploy the host calls `js-loader.load` once with the app's modules: the runtime
//!   creates the JS engine, installs the environment (`js/src/environment.js`), evaluates
//!   every module and records the Convex functions they export. The host snapshots that
//!   instance (wasmtime-wizer); nothing a call does is ever in the snapshot.
//! * Every call starts from the snapshot: `module.call` runs one function through its
//!   `invoke*` entry point and drives its promise to the end.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "kiln:platform/js-runtime",
    });
}

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

mod engine;
mod errors;
mod loader;
mod promise;
mod random;
mod syscalls;
mod web;

use bindings::exports::kiln::platform::js_loader::{self, JsModule};
use bindings::exports::kiln::platform::module;
use bindings::kiln::platform::types::{FunctionError, FunctionSpec, HttpRequest, HttpResponse};

struct Runtime;

impl js_loader::Guest for Runtime {
    fn load(modules: Vec<JsModule>) -> Result<(), String> {
        loader::load(modules)
    }

    fn evaluate_config(module: JsModule) -> Result<String, String> {
        loader::evaluate_config(module)
    }
}

impl module::Guest for Runtime {
    fn functions() -> Vec<FunctionSpec> {
        loader::functions()
    }

    fn call(name: String, args: String) -> Result<String, FunctionError> {
        if name == loader::CRONS_CALL {
            return Ok(loader::crons());
        }
        engine::call(&name, &args)
    }

    fn call_http(name: String, request: HttpRequest) -> Result<HttpResponse, FunctionError> {
        engine::call_http(&name, request)
    }
}

bindings::export!(Runtime with_types_in bindings);
