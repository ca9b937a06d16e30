//! The scheduler example (README, "The scheduler and cron jobs"):
//!
//! * `reminders:remind {text, delayMs}` schedules the internal mutation `reminders:deliver`
//!   for later, inside its own transaction, and returns the job's id; `reminders:job` reads
//!   that job's progress from the system table `_scheduled_functions`.
//! * `reminders:compactMessages {keep}` keeps the newest `keep` chat messages and deletes
//!   the others, a batch per run, scheduling itself again while more remain. The cron
//!   `compact-messages` in `components/kiln.toml` runs it every hour.
//!
//! `components/js/reminders.js` and `components/js/crons.js` are the same in JavaScript.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln::{Document, Error, Id, MutationCtx, Order, QueryCtx, mutation, query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct Remind {
    text: String,
    delay_ms: f64,
}

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Deliver {
    text: String,
}

/// Schedules the reminder `text` to be delivered after `delayMs`; returns the job's id.
#[mutation]
fn remind(ctx: &MutationCtx, args: Remind) -> Result<Id, Error> {
    if !(args.delay_ms >= 0.0 && args.delay_ms.is_finite()) {
        return Err(Error::new(
            "delayMs must be a number of milliseconds, at least 0",
        ));
    }
    ctx.scheduler().run_after(
        Duration::from_secs_f64(args.delay_ms / 1000.0),
        "reminders:deliver",
        Deliver { text: args.text },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    text: String,
    delivered_at: f64,
}

/// Delivers a reminder: what `remind` scheduled.
#[mutation(internal)]
fn deliver(ctx: &MutationCtx, args: Deliver) -> Result<(), Error> {
    let delivered_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0);
    ctx.db.insert(
        "notifications",
        &Notification {
            text: args.text,
            delivered_at,
        },
    )?;
    Ok(())
}

/// The delivered reminders, oldest first.
#[query]
fn notifications(ctx: &QueryCtx) -> Result<Vec<Document>, Error> {
    ctx.db.query("notifications").collect()
}

#[derive(Deserialize, kiln::Validate)]
struct JobId {
    id: Id,
}

/// A reminder's job: its state (`pending`, `success`, ...) and times.
#[query]
fn job(ctx: &QueryCtx, args: JobId) -> Result<Option<Document>, Error> {
    ctx.db.system().get(&args.id)
}

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Compact {
    keep: f64,
}

/// Messages deleted per run: a run stays a small transaction however many there are.
const COMPACT_BATCH: usize = 500;

/// Keeps the newest `keep` messages and deletes older ones, a batch per run; schedules
/// itself again at once while more remain. Returns how many it deleted.
#[mutation(internal, name = "compactMessages")]
fn compact_messages(ctx: &MutationCtx, args: Compact) -> Result<usize, Error> {
    let keep = args.keep.max(0.0) as usize;
    let old = ctx
        .db
        .query("messages")
        .order(Order::Desc)
        .take(keep + COMPACT_BATCH + 1)?;
    let doomed: Vec<&Document> = old.iter().skip(keep).collect();
    for message in doomed.iter().take(COMPACT_BATCH) {
        let id = message
            .id()
            .ok_or_else(|| Error::new("a message without an _id"))?;
        ctx.db.delete(&id)?;
    }
    if doomed.len() > COMPACT_BATCH {
        ctx.scheduler()
            .run_after(Duration::ZERO, "reminders:compactMessages", args)?;
    }
    Ok(doomed.len().min(COMPACT_BATCH))
}
