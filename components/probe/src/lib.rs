//! Functions that report what the sandbox gives them: the wall and monotonic clocks, read
//! twice around some busy work, and randomness (`wasi:random/random` through `getrandom`,
//! and the seed std's `HashMap` keys come from). Queries and mutations must see a frozen
//! clock and seeded randomness; actions the real ones. Plus a filtered paginated query,
//! for the tests that look inside its cursor.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use kiln::{
    ActionCtx, Error, MutationCtx, Order, PaginationOpts, PaginationResult, QueryCtx, Value,
    action, mutation, query,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, kiln::Validate)]
struct Busy {
    /// Iterations of busy work between the two clock readings (a plain JSON number).
    iterations: f64,
}

/// What the function saw. Numbers are decimal strings so that no encoding can round them.
#[derive(Serialize, kiln::Validate)]
struct Readings {
    /// Nanoseconds since the Unix epoch, before and after the busy work.
    wall_ns: [String; 2],
    /// Nanoseconds elapsed on the monotonic clock across the busy work.
    monotonic_elapsed_ns: String,
    /// Three draws from `wasi:random/random`.
    random: [String; 3],
    /// A hash keyed by std's per-instance random seed.
    hash: String,
}

fn wall_ns() -> Result<String, Error> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| Error::new(format!("the clock is before 1970: {err}")))?;
    Ok(since_epoch.as_nanos().to_string())
}

fn random_u64() -> Result<String, Error> {
    getrandom::u64()
        .map(|n| n.to_string())
        .map_err(|err| Error::new(format!("getrandom: {err}")))
}

fn readings(iterations: f64) -> Result<Readings, Error> {
    let iterations = iterations as u64;
    let first = wall_ns()?;
    let started = Instant::now();
    let mut sum: u64 = 0;
    for n in 0..iterations {
        sum = black_box(sum.wrapping_add(n));
    }
    black_box(sum);
    let monotonic_elapsed_ns = started.elapsed().as_nanos().to_string();
    let second = wall_ns()?;
    Ok(Readings {
        wall_ns: [first, second],
        monotonic_elapsed_ns,
        random: [random_u64()?, random_u64()?, random_u64()?],
        hash: RandomState::new().hash_one(0u64).to_string(),
    })
}

#[query]
fn in_query(_ctx: &QueryCtx, args: Busy) -> Result<Readings, Error> {
    readings(args.iterations)
}

#[action]
fn in_action(_ctx: &ActionCtx, args: Busy) -> Result<Readings, Error> {
    readings(args.iterations)
}

/// Stores what it saw in `readings` and returns it.
#[mutation]
fn in_mutation(ctx: &MutationCtx, args: Busy) -> Result<Readings, Error> {
    let seen = readings(args.iterations)?;
    ctx.db.insert("readings", &seen)?;
    Ok(seen)
}

#[derive(Deserialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct PaginateWhere {
    table: String,
    index: String,
    descending: bool,
    /// Only documents whose `field` equals `equals` are returned; the others are still
    /// scanned, and the cursor may stand on one of them.
    field: String,
    equals: Value,
    pagination_opts: PaginationOpts,
}

/// One page of `table` through `index` (its whole range), filtered.
#[query]
fn paginate_where(ctx: &QueryCtx, args: PaginateWhere) -> Result<PaginationResult, Error> {
    ctx.db
        .query(&args.table)
        .with_index(&args.index, |range| range)
        .order(if args.descending {
            Order::Desc
        } else {
            Order::Asc
        })
        .filter(|f| f.eq(f.field(&args.field), f.literal(&args.equals)))
        .paginate(&args.pagination_opts)
}

/// Host pages the two scribbled statics span: one zero-initialised (`.bss`), one that
/// starts as `DATA_BYTE` (a data segment), so both ways a reset restores memory are seen.
const ZEROED_PAGES: usize = 256;
const DATA_PAGES: usize = 48;
const HOST_PAGE: usize = 4096;
const DATA_BYTE: u8 = 7;

static ZEROED: [AtomicU8; ZEROED_PAGES * HOST_PAGE] =
    [const { AtomicU8::new(0) }; ZEROED_PAGES * HOST_PAGE];
static DATA: [AtomicU8; DATA_PAGES * HOST_PAGE] =
    [const { AtomicU8::new(DATA_BYTE) }; DATA_PAGES * HOST_PAGE];

/// How many pages of its statics it finds changed by an earlier call (0, as every call
/// gets a fresh instance), then it writes every other page of both, well over the
/// 32 separate runs of dirty pages that wasmtime's memory reset handled in one scan
/// (third_party/README.md), so that a reset that missed some would show in the next call.
#[query]
fn scribble(_ctx: &QueryCtx) -> Result<u32, Error> {
    let mut changed = 0;
    for page in (0..ZEROED_PAGES).step_by(2) {
        let byte = &ZEROED[page * HOST_PAGE + page % HOST_PAGE];
        changed += u32::from(byte.load(Ordering::Relaxed) != 0);
        byte.store(1, Ordering::Relaxed);
    }
    for page in (0..DATA_PAGES).step_by(2) {
        let byte = &DATA[page * HOST_PAGE + page % HOST_PAGE];
        changed += u32::from(byte.load(Ordering::Relaxed) != DATA_BYTE);
        byte.store(DATA_BYTE + 1, Ordering::Relaxed);
    }
    Ok(changed)
}
