//! The host side of every interface a component may import: one file per WIT interface
//! (STYLE.md section 1), holding its implementation, its permission checks per function
//! kind and its limits. `add_to_linker` is the one list that links them all.

mod auth;
pub mod db;
mod functions;
pub mod http;
mod log;
mod scheduler;
mod storage;
mod wasi_http;

use wasmtime::component::{HasSelf, Linker};

use crate::runtime::InvocationState;
use crate::runtime::bindings::kiln::platform;

/// Links WASI (no filesystem, sockets or environment: see `InvocationState`), wasi:http's
/// outgoing handler (under the fetch policy: `wasi_http.rs`) and every Kiln capability.
pub fn add_to_linker(linker: &mut Linker<InvocationState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    platform::log::add_to_linker::<InvocationState, HasSelf<InvocationState>>(linker, |state| {
        state
    })?;
    platform::db::add_to_linker::<InvocationState, HasSelf<InvocationState>>(linker, |state| {
        state
    })?;
    platform::functions::add_to_linker::<InvocationState, HasSelf<InvocationState>>(
        linker,
        |state| state,
    )?;
    platform::http::add_to_linker::<InvocationState, HasSelf<InvocationState>>(linker, |state| {
        state
    })?;
    platform::auth::add_to_linker::<InvocationState, HasSelf<InvocationState>>(linker, |state| {
        state
    })?;
    platform::scheduler::add_to_linker::<InvocationState, HasSelf<InvocationState>>(
        linker,
        |state| state,
    )?;
    platform::storage::add_to_linker::<InvocationState, HasSelf<InvocationState>>(
        linker,
        |state| state,
    )?;
    Ok(())
}
