//! The `js` section: JavaScript functions (Convex's convex/server in the QuickJS runtime
//! component) beside the same work in Rust, and QuickJS beside node.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
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
    // Kiln and node take turns in short rounds, and the ratio is taken within each round:
    // this machine's speed swings within seconds (one run read node at 818–1 293 calls/s
    // and Kiln at 41.6–68.0 in rounds of a quarter of a second), and a round of about
    // 0.1 s mostly falls in one phase. node runs in one process for the whole run, warmed
    // up once, so that a round measures fib and not node's start.
    let mut node = match NodeFib::start() {
        Ok(node) => node,
        Err(err) => {
            let (median, _) = super::latency_samples(kiln.address, fib, 50).await?;
            println!(
                "fib(25): Kiln JS {:>7.1} calls/s; node not measured ({err})",
                1e6 / median
            );
            return in_process_figures().await;
        }
    };
    let mut rounds = Vec::with_capacity(FIB_ROUNDS);
    for _ in 0..FIB_ROUNDS {
        let (median, _) = super::latency_samples(kiln.address, fib, FIB_CALLS_PER_ROUND).await?;
        rounds.push((
            1e6 / median,
            node.calls_per_second(FIB_NODE_CALLS_PER_ROUND)?,
        ));
    }
    let median = super::rounds::median_round(rounds, |kiln, node| node / kiln);
    let ((kiln_per_second, node_per_second), (low, high)) = (median.pair, median.quartiles);
    super::ratios::record(|figures| {
        figures.fib_per_second = Some((kiln_per_second, node_per_second))
    });
    println!(
        "fib(25): Kiln JS {kiln_per_second:>7.1} calls/s (over HTTP)   node {node_per_second:>7.1} calls/s   node ÷ Kiln {:.1}   (the median of {FIB_ROUNDS} alternating rounds; quartiles {low:.1}–{high:.1})",
        median.ratio
    );
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

/// Rounds of fib(25), Kiln's calls then node's, and the calls of each per round.
const FIB_ROUNDS: usize = 21;
const FIB_CALLS_PER_ROUND: usize = 4;
const FIB_NODE_CALLS_PER_ROUND: usize = 60;

/// node running the same fib(25), in the same run: one process, asked for a number of
/// calls at a time on stdin; it answers with its calls per second on stdout.
struct NodeFib {
    process: Child,
    answers: BufReader<ChildStdout>,
}

impl NodeFib {
    fn start() -> anyhow::Result<Self> {
        let script = r#"
function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
for (let i = 0; i < 20; i++) fib(25);
require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const runs = Number(line);
  const started = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < runs; i++) sink += fib(25);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(runs / seconds, sink);
});
"#;
        let mut process = Command::new("node")
            .arg("-e")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let answers = BufReader::new(process.stdout.take().expect("stdout is piped"));
        Ok(Self { process, answers })
    }

    fn calls_per_second(&mut self, calls: usize) -> anyhow::Result<f64> {
        let stdin = self.process.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{calls}")?;
        stdin.flush()?;
        let mut line = String::new();
        anyhow::ensure!(self.answers.read_line(&mut line)? > 0, "node exited");
        Ok(line.split_whitespace().next().unwrap_or_default().parse()?)
    }
}

impl Drop for NodeFib {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
