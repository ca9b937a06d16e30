//! Driving a promise to its end. Kiln's host calls complete before they return, so every
//! continuation is a QuickJS job: when the job queue is empty and a promise is still
//! pending, it awaits something that does not exist, and never settles.

use javy::quickjs::{Ctx, Value};
use rquickjs::promise::PromiseState;

pub(crate) enum Settled<'js> {
    Resolved(Value<'js>),
    Rejected(Value<'js>),
    NeverSettles,
}

/// Runs jobs until `value` (a promise, or any value, which counts as resolved) settles;
/// then runs what is still queued, so `finally` blocks and un-awaited work complete.
pub(crate) fn drive<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Settled<'js> {
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
                    break Settled::NeverSettles;
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
