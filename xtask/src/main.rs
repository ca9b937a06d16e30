//! `cargo xtask <verb>`: every project chore, the same on every machine (STYLE.md §9).
//!
//! * `build-components` — builds every crate under `components/` for wasm32-wasip2 and
//!   writes `target/components/<crate>.wasm`.
//! * `build-js-runtime` — builds the JavaScript runtime component the host embeds
//!   (`target/js-runtime/kiln-js-runtime.wasm`).
//! * `demo` — the README's run command: builds, starts `kiln serve`, deploys the example
//!   project, prints the URL, the admin key and a curl line.
//! * `ci` — the README's test command: components, formatting, lints, the npm packages the
//!   client tests use, every test.
//! * `bench` — the benchmark harness; prints numbers, asserts nothing.
//! * `profile` — one workload under `perf record`; prints where the server's time went.
//! * `test-postgres` — the end-to-end suite with Kiln over a throwaway PostgreSQL.

mod apt;
mod bench;
mod components;
mod demo;
mod js_runtime;
mod postgres;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Build every component under components/ into target/components/.
    BuildComponents,
    /// Build the JavaScript runtime component into target/js-runtime/ (the host embeds it).
    BuildJsRuntime,
    /// Build everything, start `kiln serve`, deploy components/kiln.toml, keep serving.
    Demo,
    /// Set up and run every check and test (what CI runs).
    Ci,
    /// Run the benchmarks and print their figures: every section, or the ones named
    /// (runtime, http, mutations, commit, queries, actions, attack, fetch, auth, js, convex, sync,
    /// scheduler, storage, hosts).
    Bench { sections: Vec<String> },
    /// Run one workload against a release server under `perf record` and print where the
    /// server's CPU time went, guest frames named (instantiate, trivial, trivial-1, list,
    /// list-1, send, send-1, js-trivial, js-list, js-fib).
    Profile {
        workload: String,
        /// How long to sample.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Run the end-to-end tests (or those matching the filters) with every server over a
    /// throwaway PostgreSQL instead of redb.
    TestPostgres { filters: Vec<String> },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Verb::BuildComponents => components::build().map(|_| ()),
        Verb::BuildJsRuntime => js_runtime::build().map(|_| ()),
        Verb::Demo => demo::run(),
        Verb::Ci => ci(),
        Verb::Bench { sections } => bench::run(&sections),
        Verb::Profile { workload, seconds } => bench::profile(&workload, seconds),
        Verb::TestPostgres { filters } => test_postgres(&filters),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> anyhow::Result<()> {
    // A minimal rustup profile may lack these; adding an installed component is a no-op.
    run(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))?;
    // Before anything builds the host, which embeds it.
    js_runtime::build()?;
    components::build()?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "fmt",
        "--all",
        "--manifest-path",
        "components/Cargo.toml",
        "--",
        "--check",
    ])?;
    cargo(&[
        "fmt",
        "--all",
        "--manifest-path",
        "guest-sdk/js-runtime/Cargo.toml",
        "--",
        "--check",
    ])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    js_runtime::clippy()?;
    // The official Convex client, for the end-to-end test that calls Kiln with it.
    let client_tests = root().join("tests").join("convex-client");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&client_tests))?;
    js_runtime::test_js()?;
    apt::ensure_chromium()?;
    // Over redb; the tests of several hosts need PostgreSQL and run in the pass below.
    cargo(&["test", "--workspace", "--", "--skip", "hosts::"])?;
    // The same end-to-end tests again, over PostgreSQL.
    test_postgres(&[])
}

/// The end-to-end suite with every test server over a throwaway PostgreSQL: the harness
/// gives each server a database of its own there (`KILN_TEST_DATABASE`).
fn test_postgres(filters: &[String]) -> anyhow::Result<()> {
    let postgres = postgres::Throwaway::start()?;
    let mut args = vec!["test", "-p", "kiln-host", "--test", "e2e", "--"];
    args.extend(filters.iter().map(String::as_str));
    let bin = postgres.bin.to_string_lossy();
    cargo_with_env(
        &args,
        &[
            ("KILN_TEST_DATABASE", &postgres.url),
            ("KILN_TEST_POSTGRES_BIN", &bin),
        ],
    )
}

/// The repository root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the repository")
        .to_path_buf()
}

/// Runs `cargo <args>` at the root, failing if it fails.
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new(env!("CARGO")).args(args).current_dir(root()))
}

/// Runs `cargo <args>` at the root with extra environment variables.
pub fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut command = Command::new(env!("CARGO"));
    command.args(args).current_dir(root());
    for (name, value) in env {
        command.env(name, value);
    }
    run(&mut command)
}

pub fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
