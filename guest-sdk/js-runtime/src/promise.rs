//! Driving a promise to its end. Kiln's host calls complete before they return, so every
//! continuation is a QuickJS job or a timer: when the job queue is empty, no timer is set
//! and a promise is still pending, it awaits something that does not exist, and never
//! settles.

use std::time::Duration;

use javy::quickjs::{Ctx, Function, Object, Value};
use rquickjs::promise::PromiseState;

pub(crate) enum Settled<'js> {
    Resolved(Value<'js>),
    Rejected(Value<'js>),
    NeverSettles,
}

/// Runs jobs (and, given the environment, its due timers) until `value` (a promise, or any
/// value, which counts as resolved) settles; then runs what is still queued, so `finally`
/// blocks and un-awaited work complete. Waiting for a timer sleeps through WASI, which the
/// host serves asynchronously: the call holds no server thread meanwhile, and its time
/// limit still applies.
pub(crate) fn drive<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    timers: Option<&Object<'js>>,
) -> Settled<'js> {
    let Some(promise) = value.as_promise().cloned() else {
        return Settled::Resolved(value);
    };
    let settled = loop {
        match promise.state() {
            PromiseState::Resolved => match promise.result::<Value>() {
                Some(Ok(value)) => break Settled::Resolved(value),
                _ => break Settled::Rejected(ctx.catch()),
            },
            PromiseState::Rejected => {
                let _ = promise.result::<Value>();
                break Settled::Rejected(ctx.catch());
            }
            PromiseState::Pending => {
                if !ctx.execute_pending_job() {
                    match timers.map(|environment| run_next_timer(environment)) {
                        Some(Ok(true)) => continue,
                        Some(Err(_)) => break Settled::Rejected(ctx.catch()),
                        Some(Ok(false)) | None => break Settled::NeverSettles,
                    }
                }
                // A job that threw leaves its exception pending (an uncatchable one, such
                // as running out of memory, ends the call).
                if ctx.has_exception() {
                    break Settled::Rejected(ctx.catch());
                }
            }
        }
    };
    while ctx.execute_pending_job() {
        if ctx.has_exception() {
            let _ = ctx.catch();
        }
    }
    settled
}

/// Waits for the environment's next timer and runs the due ones; `false` when none is set.
fn run_next_timer(environment: &Object<'_>) -> rquickjs::Result<bool> {
    let delay: f64 = environment.get::<_, Function>("nextTimerDelay")?.call(())?;
    if delay < 0.0 {
        return Ok(false);
    }
    if delay > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(delay / 1e3));
    }
    environment
        .get::<_, Function>("runDueTimers")?
        .call::<_, ()>(())?;
    Ok(true)
}
