//! Functions that break the rules on purpose, one per limit, each beside a well-behaved
//! twin just under the same limit. The end-to-end tests call them to check that every
//! limit is enforced with an error naming it and that the server carries on.

use std::hint::black_box;

use kiln::{Error, QueryCtx, query};
use serde::Deserialize;

/// Loops forever: stopped by the fuel budget or the wall-clock timeout.
#[query]
fn spin(_ctx: &QueryCtx) -> Result<u64, Error> {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates 1 MiB blocks, touching each, until the memory limit refuses one.
#[query]
fn hog(_ctx: &QueryCtx) -> Result<usize, Error> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(black_box(vec![1u8; 1 << 20]));
    }
}

#[derive(Deserialize, kiln::Validate)]
struct Allocate {
    mib: u32,
}

/// Allocates `mib` MiB and returns how many it got: the twin of `hog`, under the limit.
#[query]
fn allocate(_ctx: &QueryCtx, args: Allocate) -> Result<usize, Error> {
    let blocks: Vec<Vec<u8>> = (0..args.mib)
        .map(|_| black_box(vec![1u8; 1 << 20]))
        .collect();
    Ok(blocks.len())
}

/// Recurses without bound: stopped by the wasm stack limit.
#[query]
fn recurse(_ctx: &QueryCtx) -> Result<u64, Error> {
    Ok(depth(black_box(1)))
}

/// Recursion that lives on the wasm stack only (no locals in linear memory), so it is the
/// engine's stack limit that stops it. The addition keeps the call out of tail position.
#[allow(unconditional_recursion)]
fn depth(n: u64) -> u64 {
    depth(black_box(n + 1)) + black_box(1)
}

#[query]
fn panic(_ctx: &QueryCtx) -> Result<(), Error> {
    panic!("misbehave:panic was asked to panic");
}

/// Returns a 20 MiB string: over the 8 MiB result limit, well under the memory limit.
#[query]
fn huge(_ctx: &QueryCtx) -> Result<String, Error> {
    Ok("x".repeat(20 << 20))
}

#[derive(Deserialize, kiln::Validate)]
struct SizedArgs {
    bytes: u32,
}

/// Returns a string of `bytes` bytes: the twin of `huge`, for the limit's edge.
#[query]
fn sized(_ctx: &QueryCtx, args: SizedArgs) -> Result<String, Error> {
    Ok("x".repeat(args.bytes as usize))
}

/// Fails with application data, like `throw new ConvexError({...})`.
#[query]
fn fail(_ctx: &QueryCtx) -> Result<(), Error> {
    let mut data = std::collections::BTreeMap::new();
    data.insert("code".to_string(), kiln::Value::from("E_TEST"));
    Err(Error::with_data(
        "misbehave:fail failed on purpose",
        kiln::Value::Object(data),
    ))
}

#[derive(Deserialize, kiln::Validate)]
struct Chatty {
    lines: u32,
}

/// Prints `lines` lines to stdout, one to stderr, and one through the log import: all
/// become log lines, in order, within the per-call log limit.
#[query]
fn chatty(ctx: &QueryCtx, args: Chatty) -> Result<u32, Error> {
    ctx.log("starting");
    for i in 0..args.lines {
        println!("line {i}");
    }
    eprintln!("done");
    Ok(args.lines)
}

#[derive(Deserialize, kiln::Validate)]
struct Count {
    to: u64,
}

/// Counts to `to` and returns it: the bounded twin of `spin`, for the fuel limit's edge.
#[query]
fn count(_ctx: &QueryCtx, args: Count) -> Result<u64, Error> {
    let mut counter: u64 = 0;
    while counter < args.to {
        counter = black_box(counter + 1);
    }
    Ok(counter)
}

#[derive(Deserialize, kiln::Validate)]
struct Sleep {
    ms: u64,
}

/// Sleeps `ms` milliseconds in a WASI host call: no wasm runs meanwhile, so it is the
/// host's timer, not the epoch, that must stop it at the wall-clock limit.
#[query]
fn sleep(_ctx: &QueryCtx, args: Sleep) -> Result<u64, Error> {
    std::thread::sleep(std::time::Duration::from_millis(args.ms));
    Ok(args.ms)
}

#[derive(Deserialize, kiln::Validate)]
struct Pollables {
    count: u32,
}

/// Subscribes to `count` clock pollables and holds them all: past `max_resources` the
/// host's resource table is full and the call fails with an error naming that limit.
#[query]
fn pollables(_ctx: &QueryCtx, args: Pollables) -> Result<u32, Error> {
    let held: Vec<wasi::io::poll::Pollable> = (0..args.count)
        .map(|_| wasi::clocks::monotonic_clock::subscribe_duration(1_000_000_000))
        .collect();
    Ok(held.len() as u32)
}
