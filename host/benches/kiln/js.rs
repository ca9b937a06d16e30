//! The `js` section: JavaScript functions (Convex's convex/server in the QuickJS runtime
//! component) beside the same work in Rust, and QuickJS beside node.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use super::{KilnServer, first_and_warm_latencies, in_process_runtime, latency, post};

/// The benchmark app: a trivial query, the chat app's `list`, and fib.
const APP: &str = r#"
import { query } from "./_generated/server";
import { v } from "convex/values";

export const hello = query(async () => "hello");

export const list = query({
  args: { channel: v.string() },
  handler: (ctx, { channel }) =>
    ctx.db.query("messages").withIndex("by_channel", (q) => q.eq("channel", channel)).collect(),
});

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

export const fibonacci = query({ args: { n: v.number() }, handler: (_, { n }) => fib(n) });
"#;

/// About 500 KB of JavaScript: many small functions and tables, as a bundled app with its
/// dependencies is.
fn large_bundle() -> String {
    let mut source = String::from("import { query } from \"./_generated/server\";\n");
    let mut index = 0;
    while source.len() < 500_000 {
        source.push_str(&format!(
            "export function helper{index}(x) {{ const table = [{index}, \"item {index}\", {{ id: {index}, tags: [\"a\", \"b\"] }}]; return table.map((t) => JSON.stringify(t) + x).join(\",\"); }}\n"
        ));
        index += 1;
    }
    source.push_str("export const ping = query(async () => helper1(\"!\"));\n");
    source
}

/// Deploys the example apps with the benchmark's JavaScript app (`jsbench`).
pub fn deploy_app(kiln: &KilnServer) -> anyhow::Result<()> {
    deploy(kiln, json!({ "jsbench.js": APP })).map(drop)
}

/// Deploys the example apps with the JavaScript modules `js`; returns the deploy report.
fn deploy(kiln: &KilnServer, js: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let body = json!({
        "modules": kiln.modules,
        "js": js,
        "tables": {
            "messages": { "indexes": { "by_channel": ["channel"] } },
            "counters": { "indexes": { "by_name": ["name"] } },
        },
    });
    kiln.call("/api/deploy", &body.to_string())
}

pub async fn js_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    println!("== js: JavaScript functions (QuickJS, Convex's convex/server) ==");
    let bundle = large_bundle();
    let deploy_bundle = |tag: &str| -> anyhow::Result<(f64, Option<u64>)> {
        let started = Instant::now();
        let report = deploy(kiln, json!({ "jsbench.js": APP, "bundle.js": &bundle }))
            .map_err(|err| anyhow::anyhow!("{tag} deploy failed: {err}"))?;
        Ok((
            super::ms(started.elapsed()),
            report["jsMemoryBytes"].as_u64(),
        ))
    };
    let (first, memory) = deploy_bundle("first")?;
    let (cached, _) = deploy_bundle("cached")?;
    println!(
        "deploy of a {} KB bundle: first {first:.0} ms (load + snapshot + compile), again {cached:.0} ms (cached)",
        bundle.len() / 1000
    );
    if let Some(memory) = memory {
        println!(
            "linear memory of each call's instance (the loaded snapshot, copy-on-write): {:.1} MiB",
            memory as f64 / (1 << 20) as f64
        );
    }

    for _ in 0..20 {
        kiln.call(
            "/api/mutation",
            r#"{"path":"messages:send","args":{"channel":"jsbench","author":"b","body":"hello"}}"#,
        )?;
    }
    let rust_hello = || post("/api/query", r#"{"path":"hello","args":{}}"#);
    let js_hello = || post("/api/query", r#"{"path":"jsbench:hello","args":{}}"#);
    let (rust_median, rust_p99) = latency(kiln.address, rust_hello).await?;
    let (js_median, js_p99) = latency(kiln.address, js_hello).await?;
    println!(
        "trivial query over HTTP (an instance from the snapshot + first call): JS median {js_median:>7.1} µs p99 {js_p99:>7.1} µs   Rust median {rust_median:>7.1} µs p99 {rust_p99:>7.1} µs"
    );
    let rust_list = || {
        post(
            "/api/query",
            r#"{"path":"messages:list","args":{"channel":"jsbench"}}"#,
        )
    };
    let js_list = || {
        post(
            "/api/query",
            r#"{"path":"jsbench:list","args":{"channel":"jsbench"}}"#,
        )
    };
    let (rust_median, _) = latency(kiln.address, rust_list).await?;
    let (js_median, js_p99) = latency(kiln.address, js_list).await?;
    println!(
        "messages:list (20 messages): JS median {js_median:>7.1} µs p99 {js_p99:>7.1} µs   Rust median {rust_median:>7.1} µs   ratio {:.2}",
        js_median / rust_median
    );

    let fib = || {
        post(
            "/api/query",
            r#"{"path":"jsbench:fibonacci","args":{"n":25}}"#,
        )
    };
    // Kiln and node take turns, so that a swing of this machine's speed (they come and go
    // within minutes, and node alone has read 847 and 1 430 calls/s) falls on both.
    let mut kiln_rates = Vec::with_capacity(FIB_ROUNDS);
    let mut node_rates = Vec::with_capacity(FIB_ROUNDS);
    let mut node_failed = None;
    for _ in 0..FIB_ROUNDS {
        let (median, _) = super::latency_samples(kiln.address, fib, FIB_CALLS_PER_ROUND).await?;
        kiln_rates.push(1e6 / median);
        if node_failed.is_none() {
            match node_fib_per_second() {
                Ok(rate) => node_rates.push(rate),
                Err(err) => node_failed = Some(err),
            }
        }
    }
    let kiln_per_second = median(&mut kiln_rates);
    match node_failed {
        None => {
            let node_per_second = median(&mut node_rates);
            super::ratios::record(|figures| {
                figures.fib_per_second = Some((kiln_per_second, node_per_second))
            });
            println!(
                "fib(25): Kiln JS {kiln_per_second:>7.1} calls/s (over HTTP)   node {node_per_second:>7.1} calls/s   node ÷ Kiln {:.1}   (medians of {FIB_ROUNDS} alternating rounds; Kiln {}, node {})",
                node_per_second / kiln_per_second,
                spread(&kiln_rates),
                spread(&node_rates),
            )
        }
        Some(err) => {
            println!("fib(25): Kiln JS {kiln_per_second:>7.1} calls/s; node not measured ({err})")
        }
    }
    in_process_figures().await
}

/// The trivial query without HTTP: a fresh instance of the snapshot and its first call
/// (what every call costs), and a warm call (a second call on that instance).
async fn in_process_figures() -> anyhow::Result<()> {
    const CALLS: usize = 1_000;
    let data = tempfile::tempdir()?;
    let runtime = in_process_runtime(data.path())?;
    let modules = BTreeMap::from([("jsbench.js".to_string(), APP.to_string())]);
    let snapshot = kiln_host::runtime::js::snapshot(&runtime, &modules).await?;
    let compiled = {
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || runtime.compile_trusted(&snapshot.component)).await??
    };
    let app = runtime.load_js_app(&compiled.component, None).await?;
    let module = app
        .get("jsbench")
        .ok_or_else(|| anyhow::anyhow!("the snapshot lists no jsbench module"))?;
    let [(first_median, first_p99), (warm_median, warm_p99)] =
        first_and_warm_latencies(&runtime, module, "hello", CALLS).await?;
    super::ratios::record(|figures| {
        figures.js_instantiate_and_warm_us = Some((first_median, warm_median))
    });
    println!(
        "trivial query in process ({CALLS} calls): instance from the snapshot + first call median {first_median:>7.1} µs p99 {first_p99:>7.1} µs   warm call (a second call on that instance) median {warm_median:>7.1} µs p99 {warm_p99:>7.1} µs"
    );
    Ok(())
}

/// Rounds of fib(25), Kiln's then node's, and Kiln's calls per round.
const FIB_ROUNDS: usize = 5;
const FIB_CALLS_PER_ROUND: usize = 10;

/// The median of `rates` (sorted in place).
fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// "low–high" of `rates`.
fn spread(rates: &[f64]) -> String {
    let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let high = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{low:.1}–{high:.1}")
}

/// fib(25) calls per second in node, the same function, in the same run.
fn node_fib_per_second() -> anyhow::Result<f64> {
    let script = r#"
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
for (let i = 0; i < 20; i++) fib(25);
const runs = 200;
const started = process.hrtime.bigint();
let sink = 0;
for (let i = 0; i < runs; i++) sink += fib(25);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(runs / seconds, sink);
"#;
    let output = Command::new("node").arg("-e").arg(script).output()?;
    anyhow::ensure!(output.status.success(), "node failed");
    let text = String::from_utf8(output.stdout)?;
    Ok(text.split_whitespace().next().unwrap_or_default().parse()?)
}
