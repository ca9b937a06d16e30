//! The table `cargo xtask bench` ends with: every figure issue 16 tracks beside its floor
//! from the same run (bare hyper, node running the same JavaScript, the trivial query, a
//! warm call), the ratio, and the target. Sections record their figures as they run; a row
//! whose section did not run says which one to run.

use std::sync::Mutex;

/// The figures recorded so far in this run.
#[derive(Default)]
pub struct Figures {
    /// Trivial query over HTTP, req/s: (Kiln, bare hyper) at 1 and at 16 clients.
    pub http_1: Option<(f64, f64)>,
    pub http_16: Option<(f64, f64)>,
    /// Median latency over HTTP, µs: `messages:list` (20 documents of 10⁴) and the trivial
    /// query, measured side by side.
    pub list_and_trivial_us: Option<(f64, f64)>,
    /// `messages:send` mutations/s at 32 clients (group commit) and trivial-query req/s at
    /// 16, from the median of alternating rounds, with the quartiles of the ratio.
    pub send_32_and_trivial_16: Option<(f64, f64, f64, f64)>,
    /// Median µs of a fresh instance + call of the Rust trivial query, and of a warm call.
    pub rust_instantiate_and_warm_us: Option<(f64, f64)>,
    /// The same for JavaScript: an instance from the snapshot + first call, a warm call.
    pub js_instantiate_and_warm_us: Option<(f64, f64)>,
    /// fib(25) calls/s: Kiln's JavaScript over HTTP, node.
    pub fib_per_second: Option<(f64, f64)>,
}

pub static FIGURES: Mutex<Figures> = Mutex::new(Figures {
    http_1: None,
    http_16: None,
    list_and_trivial_us: None,
    send_32_and_trivial_16: None,
    rust_instantiate_and_warm_us: None,
    js_instantiate_and_warm_us: None,
    fib_per_second: None,
});

/// Records figures: `record(|figures| figures.http_1 = Some((kiln, bare)))`.
pub fn record(update: impl FnOnce(&mut Figures)) {
    update(&mut FIGURES.lock().expect("figures lock poisoned"));
}

/// One row: what is measured, Kiln's figure, its floor, the ratio and the target.
struct Row {
    path: &'static str,
    figures: Option<(String, String, f64)>,
    target: &'static str,
    /// The section that measures it, for a row this run did not.
    section: &'static str,
}

pub fn print_table() {
    let figures = FIGURES.lock().expect("figures lock poisoned");
    let http = |pair: Option<(f64, f64)>| {
        pair.map(|(kiln, bare)| {
            (
                format!("{kiln:.0} req/s"),
                format!("bare hyper {bare:.0} req/s"),
                kiln / bare,
            )
        })
    };
    let rows = [
        Row {
            path: "trivial query over HTTP, 1 client: Kiln ÷ bare hyper",
            figures: http(figures.http_1),
            target: "≥ 0.6",
            section: "http",
        },
        Row {
            path: "trivial query over HTTP, 16 clients: Kiln ÷ bare hyper",
            figures: http(figures.http_16),
            target: "≥ 0.5",
            section: "http",
        },
        Row {
            path: "messages:list (20 documents) ÷ trivial query, latency",
            figures: figures.list_and_trivial_us.map(|(list, trivial)| {
                (
                    format!("{list:.0} µs"),
                    format!("trivial {trivial:.0} µs"),
                    list / trivial,
                )
            }),
            target: "≤ 2",
            section: "queries",
        },
        Row {
            path: "messages:send at 32 clients ÷ trivial query at 16, throughput",
            figures: figures.send_32_and_trivial_16.map(|(send, trivial, _, _)| {
                (
                    format!("{send:.0} mutations/s"),
                    format!("trivial {trivial:.0} req/s"),
                    send / trivial,
                )
            }),
            target: "≥ 0.5",
            section: "mutations",
        },
        Row {
            path: "Rust: instantiate + call, median (÷ a warm call)",
            figures: figures.rust_instantiate_and_warm_us.map(|(first, warm)| {
                (
                    format!("{first:.1} µs"),
                    format!("warm {warm:.1} µs"),
                    first / warm,
                )
            }),
            target: "≤ 8 µs",
            section: "runtime",
        },
        Row {
            path: "JS: snapshot instance + first call, median (÷ a warm call)",
            figures: figures.js_instantiate_and_warm_us.map(|(first, warm)| {
                (
                    format!("{first:.1} µs"),
                    format!("warm {warm:.1} µs"),
                    first / warm,
                )
            }),
            target: "≤ 100 µs / warm ≤ 20 µs",
            section: "js",
        },
        Row {
            path: "JS: fib(25), node ÷ Kiln (calls/s)",
            figures: figures.fib_per_second.map(|(kiln, node)| {
                (
                    format!("{kiln:.1} calls/s"),
                    format!("node {node:.1} calls/s"),
                    node / kiln,
                )
            }),
            target: "≤ 20",
            section: "js",
        },
    ];
    println!("== the figures against their floors (issue 16) ==");
    println!(
        "{:<62} {:>18} {:>26} {:>7}  target",
        "path", "Kiln", "floor", "ratio"
    );
    for row in rows {
        match row.figures {
            Some((kiln, floor, ratio)) => println!(
                "{:<62} {kiln:>18} {floor:>26} {ratio:>7.2}  {}",
                row.path, row.target
            ),
            None => println!(
                "{:<62} (not measured: run the section {})",
                row.path, row.section
            ),
        }
    }
}
