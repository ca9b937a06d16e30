//! `cargo xtask bench`: builds the components, then runs the benchmark harness
//! (`host/benches/kiln.rs`) in the release profile. It prints figures and asserts nothing.

use crate::{cargo, components};

/// Runs the named sections of the harness (`runtime`, `http`, `mutations`, `queries`,
/// `actions`, `attack`, `fetch`, `auth`, `js`, `convex`, `sync`, `scheduler`, `storage`,
/// `hosts`), or all of them.
pub fn run(sections: &[String]) -> anyhow::Result<()> {
    crate::js_runtime::build()?;
    components::build()?;
    let mut args = vec!["bench", "-p", "kiln-host", "--bench", "kiln", "--"];
    args.extend(sections.iter().map(String::as_str));
    // The `hosts` section compares redb with PostgreSQL: a throwaway server for it.
    if sections.is_empty() || sections.iter().any(|section| section == "hosts") {
        let postgres = crate::postgres::Throwaway::start()?;
        return crate::cargo_with_env(&args, &[("KILN_BENCH_POSTGRES", &postgres.url)]);
    }
    cargo(&args)
}

/// Runs one workload of the harness under `perf record` (`--profile`), with guest code
/// named through wasmtime's perf map (`KILN_PROFILE=perfmap`, inherited by the server).
pub fn profile(workload: &str, seconds: f64) -> anyhow::Result<()> {
    crate::js_runtime::build()?;
    components::build()?;
    let seconds = seconds.to_string();
    let args = [
        "bench",
        "-p",
        "kiln-host",
        "--bench",
        "kiln",
        "--",
        "--profile",
        workload,
        "--seconds",
        &seconds,
    ];
    crate::cargo_with_env(&args, &[("KILN_PROFILE", "perfmap")])
}
