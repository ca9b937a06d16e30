//! `cargo xtask profile <workload>`: runs one workload against a release `kiln serve` while
//! `perf record` samples the server, then prints where its CPU time went: by binary
//! (Kiln, guest code, libc, the kernel) and the top functions by self time. The server
//! runs with `KILN_PROFILE=perfmap`, so guest frames have names (`/tmp/perf-<pid>.map`).
//!
//! Only the server is sampled; the load generator (this process) is not, though it shares
//! the machine's cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use super::{KilnServer, post};

/// The workloads, what each runs, and with how many clients.
pub const WORKLOADS: [(&str, &str); 10] = [
    (
        "instantiate",
        "a fresh instance of hello and its call, in process, one after another",
    ),
    ("trivial", "the trivial query (hello) over HTTP, 16 clients"),
    (
        "trivial-1",
        "the trivial query (hello) over HTTP, 1 client: the latency path",
    ),
    ("list", "messages:list returning 20 documents, 16 clients"),
    (
        "list-1",
        "messages:list returning 20 documents, 1 client: the latency path",
    ),
    ("send", "messages:send, 32 clients"),
    (
        "send-1",
        "messages:send, 32 clients, one commit per mutation (max_commit_batch = 1): a commit's cost",
    ),
    ("js-trivial", "a trivial JavaScript query, 16 clients"),
    (
        "js-list",
        "messages:list in JavaScript (20 documents), 16 clients",
    ),
    ("js-fib", "fib(25) in JavaScript, 1 client: the interpreter"),
];

/// Makes one request of a workload.
type MakeRequest = fn() -> Request<Full<Bytes>>;

/// How many of the top functions are printed.
const TOP_FUNCTIONS: usize = 40;

pub fn profile(workload: &str, duration: Duration) -> anyhow::Result<()> {
    let Some((_, description)) = WORKLOADS.iter().find(|(name, _)| *name == workload) else {
        let names: Vec<&str> = WORKLOADS.iter().map(|(name, _)| *name).collect();
        anyhow::bail!("unknown workload {workload:?}; the workloads are {names:?}");
    };
    anyhow::ensure!(
        std::env::var(kiln_host::runtime::PROFILE_ENV).as_deref() == Ok("perfmap"),
        "run through `cargo xtask profile`, which sets {}=perfmap",
        kiln_host::runtime::PROFILE_ENV
    );
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if workload == "instantiate" {
        return tokio.block_on(profile_in_process(description, duration));
    }
    let kiln = KilnServer::start(match workload {
        "send-1" => Some("[limits]\nmax_commit_batch = 1\n"),
        _ => None,
    })?;
    let (clients, request) = prepare(&kiln, workload)?;
    let addresses = [kiln.address];
    let load = |duration| super::load_for(&addresses, clients, request, duration);
    // Warm up (caches, pools, the pooling allocator's slots) unsampled.
    tokio.block_on(load(Duration::from_millis(500)))?;
    let sampling = Sampling::start(kiln.child.id())?;
    let completed = tokio.block_on(load(duration))?;
    sampling.finish(&format!("{workload} ({description})"), completed, duration)
}

/// The `instantiate` workload: this process calls `hello:default` on a fresh instance
/// after another, as `cargo xtask bench runtime` measures it, and samples itself.
async fn profile_in_process(description: &str, duration: Duration) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let runtime = super::in_process_runtime(data.path())?;
    let hello = std::fs::read(super::components_dir().join("hello.wasm"))?;
    let compiled = {
        let runtime = runtime.clone();
        tokio::task::spawn_blocking(move || runtime.compile(&hello)).await??
    };
    let module = runtime.load_module(&compiled.component, None).await?;
    let args = kiln_host::values::Value::Object(Default::default());
    let context = kiln_host::runtime::CallContext::isolated();
    let query = kiln_host::runtime::FunctionKind::Query;
    let call = async || {
        runtime
            .invoke(&context, &module, "default", query, &args)
            .await
            .outcome
            .map_err(|failure| anyhow::anyhow!("hello failed: {failure}"))
    };
    for _ in 0..1_000 {
        call().await?;
    }
    let sampling = Sampling::start(std::process::id())?;
    let end = Instant::now() + duration;
    let mut completed = 0;
    while Instant::now() < end {
        call().await?;
        completed += 1;
    }
    sampling.finish(&format!("instantiate ({description})"), completed, duration)
}

/// `perf record` sampling a process, with the process's own counters at the start.
struct Sampling {
    perf: Child,
    pid: u32,
    before: ProcessCounters,
    _folder: tempfile::TempDir,
    samples: PathBuf,
}

impl Sampling {
    fn start(pid: u32) -> anyhow::Result<Self> {
        let folder = tempfile::tempdir()?;
        // `KILN_PROFILE_SAMPLES=<file>` keeps the samples there, for `perf report` by hand.
        let samples = std::env::var_os("KILN_PROFILE_SAMPLES")
            .map_or_else(|| folder.path().join("perf.data"), PathBuf::from);
        let mut perf = Command::new("perf");
        perf.args(["record", "-F", "1999"]);
        // `KILN_PROFILE_CALL_GRAPH=1` records call stacks too (unwound from `.eh_frame`;
        // guest frames end the stack), for `perf report --children` by hand.
        if std::env::var_os("KILN_PROFILE_CALL_GRAPH").is_some() {
            perf.args(["--call-graph", "dwarf,16384"]);
        }
        let perf = perf
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(&samples)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| anyhow::anyhow!("cannot run perf ({err}): install linux-perf"))?;
        Ok(Self {
            perf,
            pid,
            before: ProcessCounters::read(pid)?,
            _folder: folder,
            samples,
        })
    }

    /// Stops sampling after `completed` requests in `duration` and prints the report.
    fn finish(self, title: &str, completed: u64, duration: Duration) -> anyhow::Result<()> {
        let after = ProcessCounters::read(self.pid)?;
        // SIGINT: perf writes its file and exits.
        Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status()?;
        let recorded = self.perf.wait_with_output()?;
        anyhow::ensure!(
            self.samples.exists(),
            "perf recorded nothing: {}",
            String::from_utf8_lossy(&recorded.stderr)
        );
        let before = &self.before;
        println!(
            "== profile: {title}, {:.0} requests/s over {:.1} s ==",
            completed as f64 / duration.as_secs_f64(),
            duration.as_secs_f64()
        );
        let per_request = |count: u64| count as f64 / completed.max(1) as f64;
        println!(
            "per request: {:.1} µs of CPU ({:.1} µs in the kernel), {:.2} voluntary and {:.2} involuntary context switches",
            per_request(after.cpu_us - before.cpu_us),
            per_request(after.system_us - before.system_us),
            per_request(after.voluntary_switches - before.voluntary_switches),
            per_request(after.involuntary_switches - before.involuntary_switches),
        );
        if after.committer_cpu_us > before.committer_cpu_us {
            println!(
                "per request: {:.1} µs of CPU in the committer thread, {:.2} KiB written to storage",
                per_request(after.committer_cpu_us - before.committer_cpu_us),
                per_request(after.written_to_storage - before.written_to_storage) / 1024.0,
            );
        }
        println!(
            "per request: {:.2} KiB passed to write calls (sockets and files)",
            per_request(after.written_by_calls - before.written_by_calls) / 1024.0,
        );
        let symbols = report(&self.samples, &["--sort", "dso,symbol"])?;
        println!("-- by binary (self time) --");
        for line in report(&self.samples, &["--sort", "dso"])?.iter().take(12) {
            println!("{line}");
        }
        println!("-- by crate or part (self time) --");
        for (part, share) in by_part(&symbols).iter().take(20) {
            println!("{share:>7.2}%  {part}");
        }
        println!("-- top {TOP_FUNCTIONS} functions (self time) --");
        for line in symbols.iter().take(TOP_FUNCTIONS) {
            println!("{line}");
        }
        // The process wrote its perf map for this report; nothing else reads it, unless
        // the samples are kept for reading by hand.
        if std::env::var_os("KILN_PROFILE_SAMPLES").is_none() {
            let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", self.pid));
        }
        Ok(())
    }
}

/// What the kernel counts for a process: CPU time and context switches, over its threads;
/// the committer thread's CPU time; what it wrote.
pub(crate) struct ProcessCounters {
    cpu_us: u64,
    system_us: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
    /// CPU time of the `kiln-committer` thread (the commit path, which is serial).
    pub(crate) committer_cpu_us: u64,
    /// Bytes passed to write system calls (`wchar` of /proc/PID/io): sockets and files.
    written_by_calls: u64,
    /// Bytes the process caused to be sent to storage (`write_bytes`, counted when a page
    /// of the file cache is first dirtied): the database's pages.
    pub(crate) written_to_storage: u64,
}

impl ProcessCounters {
    pub(crate) fn read(pid: u32) -> anyhow::Result<Self> {
        let tick_us = 1_000_000 / clock_ticks_per_second();
        let (user, system) = cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat"))?);
        let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
        let io_field = |name: &str| {
            io.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut counters = Self {
            cpu_us: (user + system) * tick_us,
            system_us: system * tick_us,
            voluntary_switches: 0,
            involuntary_switches: 0,
            committer_cpu_us: 0,
            written_by_calls: io_field("wchar:"),
            written_to_storage: io_field("write_bytes:"),
        };
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let task = task?.path();
            let Ok(status) = std::fs::read_to_string(task.join("status")) else {
                continue; // the thread ended meanwhile
            };
            if status.lines().next() == Some("Name:\tkiln-committer")
                && let Ok(stat) = std::fs::read_to_string(task.join("stat"))
            {
                let (user, system) = cpu_ticks(&stat);
                counters.committer_cpu_us += (user + system) * tick_us;
            }
            for line in status.lines() {
                let number = |prefix: &str| {
                    line.strip_prefix(prefix)
                        .and_then(|rest| rest.trim().parse::<u64>().ok())
                };
                if let Some(count) = number("voluntary_ctxt_switches:") {
                    counters.voluntary_switches += count;
                } else if let Some(count) = number("nonvoluntary_ctxt_switches:") {
                    counters.involuntary_switches += count;
                }
            }
        }
        Ok(counters)
    }
}

/// utime and stime, fields 14 and 15 of a /proc/PID/stat or /proc/PID/task/TID/stat, in
/// clock ticks (the command name before them is in parentheses and may hold spaces).
fn cpu_ticks(stat: &str) -> (u64, u64) {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|f| f.parse().ok()).unwrap_or(0) };
    // Fields counted from 3 (the state) after the name: utime is the 12th of those.
    (ticks(11), ticks(12))
}

/// The kernel's clock tick rate (`getconf CLK_TCK`; 100 on Linux unless configured).
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// `perf report`'s rows over `samples`, sorted by `sort`, trimmed of padding.
fn report(samples: &Path, sort: &[&str]) -> anyhow::Result<Vec<String>> {
    let output = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--percent-limit",
            "0.05",
        ])
        .args(sort)
        .arg("-i")
        .arg(samples)
        .stderr(Stdio::null())
        .output()?;
    anyhow::ensure!(output.status.success(), "perf report failed");
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.trim_end().trim_end_matches(['-', ' ']).to_string())
        .collect())
}

/// Self time summed by where a function belongs: the kernel, libc, guest code (JIT), or
/// the Rust crate its symbol names (`wasmtime`, `hyper`, `kiln_host`, ...), largest first.
fn by_part(rows: &[String]) -> Vec<(String, f64)> {
    let mut parts: std::collections::BTreeMap<String, f64> = Default::default();
    for row in rows {
        let mut columns = row.split_whitespace();
        let Some(share) = columns
            .next()
            .and_then(|share| share.trim_end_matches('%').parse::<f64>().ok())
        else {
            continue;
        };
        let dso = columns.next().unwrap_or_default();
        let symbol: String = columns.skip(1).collect::<Vec<_>>().join(" ");
        let part = if dso.starts_with('[') && dso.contains("kernel") {
            "kernel".to_string()
        } else if dso.starts_with("[JIT]") {
            "guest code (JIT)".to_string()
        } else if dso.starts_with("libc") {
            match symbol.as_str() {
                s if s.contains("malloc") || s.contains("free") || s.contains("realloc") => {
                    "libc malloc/free".to_string()
                }
                s if s.contains("mem") => "libc memcpy/memset".to_string(),
                _ => "libc other".to_string(),
            }
        } else if symbol.starts_with("mi_") || symbol.starts_with("_mi_") {
            "mimalloc".to_string()
        } else {
            crate_of(&symbol)
        };
        *parts.entry(part).or_default() += share;
    }
    let mut parts: Vec<(String, f64)> = parts.into_iter().collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
}

/// The crate a Rust symbol belongs to: its first path segment, looking through `<...>`
/// and `impl` wrappers (`<hyper::proto::...>::poll` is hyper's).
fn crate_of(symbol: &str) -> String {
    let trimmed = symbol
        .trim_start_matches(['<', '&', '*'])
        .trim_start_matches("mut ");
    let trimmed = trimmed.strip_prefix("dyn ").unwrap_or(trimmed);
    match trimmed.split_once("::") {
        Some((first, _)) if !first.is_empty() => first.to_string(),
        _ => format!("other ({symbol})"),
    }
}

/// Deploys and stores what the workload needs; returns its clients and its request.
fn prepare(kiln: &KilnServer, workload: &str) -> anyhow::Result<(usize, MakeRequest)> {
    let send_messages = |channel: &str| -> anyhow::Result<()> {
        for _ in 0..20 {
            kiln.call(
                "/api/mutation",
                &format!(
                    r#"{{"path":"messages:send","args":{{"channel":"{channel}","author":"b","body":"hello"}}}}"#
                ),
            )?;
        }
        Ok(())
    };
    Ok(match workload {
        "trivial" => (16, || post("/api/query", r#"{"path":"hello","args":{}}"#)),
        "trivial-1" => (1, || post("/api/query", r#"{"path":"hello","args":{}}"#)),
        "list" | "list-1" => {
            send_messages("profile")?;
            (if workload == "list" { 16 } else { 1 }, || {
                post(
                    "/api/query",
                    r#"{"path":"messages:list","args":{"channel":"profile"}}"#,
                )
            })
        }
        "send" | "send-1" => (32, || {
            post(
                "/api/mutation",
                r#"{"path":"messages:send","args":{"channel":"load","author":"bench","body":"hello"}}"#,
            )
        }),
        "js-trivial" => {
            super::js::deploy_app(kiln)?;
            (16, || {
                post("/api/query", r#"{"path":"jsbench:hello","args":{}}"#)
            })
        }
        "js-list" => {
            super::js::deploy_app(kiln)?;
            send_messages("jsbench")?;
            (16, || {
                post(
                    "/api/query",
                    r#"{"path":"jsbench:list","args":{"channel":"jsbench"}}"#,
                )
            })
        }
        "js-fib" => {
            super::js::deploy_app(kiln)?;
            (1, || {
                post(
                    "/api/query",
                    r#"{"path":"jsbench:fibonacci","args":{"n":25}}"#,
                )
            })
        }
        other => unreachable!("{other} is checked against WORKLOADS"),
    })
}
