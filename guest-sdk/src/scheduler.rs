//! Scheduling mutations and actions to run later (`kiln:platform/scheduler`, Convex's
//! `ctx.scheduler`), from mutations and actions.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use kiln::{mutation, MutationCtx, Error, Id};
//! #[mutation]
//! fn remind(ctx: &MutationCtx, text: String) -> Result<Id, Error> {
//!     // Part of this mutation's transaction: if it fails, nothing is scheduled.
//!     ctx.scheduler().run_after(Duration::from_secs(60), "reminders:send", serde_json::json!({"text": text}))
//! }
//! ```
//!
//! Each job is a document of the system table `_scheduled_functions` (read it with
//! `ctx.db.system()`), with its state: `pending`, `inProgress`, `success`, `failed` (with
//! the error) or `canceled`. A scheduled mutation runs exactly once, an action at most
//! once; both run as no user.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kiln_values::Value;
use serde::Serialize;

use crate::Error;
use crate::bindings::kiln::platform::scheduler as wit;
use crate::db::Id;

/// Schedules functions: from a mutation, inside its transaction; from an action, at once.
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct Scheduler;

impl Scheduler {
    /// Runs the mutation or action at `path` (`module:function`) with `args` after
    /// `delay`; returns the job's id.
    pub fn run_after(
        &self,
        delay: Duration,
        path: &str,
        args: impl Serialize,
    ) -> Result<Id, Error> {
        let args = encode_args(path, args)?;
        wit::run_after(delay.as_secs_f64() * 1000.0, path, &args)
            .map(Id)
            .map_err(Error::new)
    }

    /// Runs the mutation or action at `path` at `time` (at once if it has passed).
    pub fn run_at(&self, time: SystemTime, path: &str, args: impl Serialize) -> Result<Id, Error> {
        let ms = match time.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_secs_f64() * 1000.0,
            Err(before) => -before.duration().as_secs_f64() * 1000.0,
        };
        self.run_at_ms(ms, path, args)
    }

    /// [`run_at`](Self::run_at) with the time in milliseconds since the Unix epoch.
    pub fn run_at_ms(
        &self,
        timestamp_ms: f64,
        path: &str,
        args: impl Serialize,
    ) -> Result<Id, Error> {
        let args = encode_args(path, args)?;
        wit::run_at(timestamp_ms, path, &args)
            .map(Id)
            .map_err(Error::new)
    }

    /// Cancels a job: a pending one will not run; a running action goes on but its job is
    /// recorded as canceled; a finished one stays as it is.
    pub fn cancel(&self, job: &Id) -> Result<(), Error> {
        wit::cancel(job.as_str()).map_err(Error::new)
    }
}

fn encode_args(path: &str, args: impl Serialize) -> Result<String, Error> {
    let args = kiln_values::to_value(&args)
        .map_err(|err| Error::new(format!("cannot encode the arguments for {path}: {err}")))?;
    // `()` (no arguments) is the empty object a function without arguments takes.
    let args = match args {
        Value::Null => Value::Object(Default::default()),
        args => args,
    };
    Ok(args.to_convex_json_string())
}
