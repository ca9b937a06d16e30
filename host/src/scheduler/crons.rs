//! Cron jobs: functions a deployment runs on a schedule, declared in `kiln.toml`
//! (`[crons.<name>]`) or in a Convex app's `crons.js` (`cronJobs()`). A deploy installs
//! them as documents of the system table `_cron_jobs` (one per name: a changed cron is
//! rescheduled, a removed or renamed one deleted), and the executor starts each run as a
//! job of `_scheduled_functions` when it is due, so runs are recorded like any scheduled
//! job. A cron whose last run has not finished is not started again: that run is skipped.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use kiln_values::Value;
use serde::{Deserialize, Serialize};

use super::jobs::{self, JobState, ScheduleLimits};
use crate::database::id::DocumentId;
use crate::database::indexes::IndexRange;
use crate::database::persistence::Order;
use crate::database::system_tables::{BY_NAME, BY_NEXT_RUN, CRON_JOBS};
use crate::database::transaction::{DbError, Transaction};
use crate::function_path::FunctionPath;

/// One cron job as declared: what to run, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronSpec {
    /// The mutation or action to run (`module:function`).
    pub function: String,
    /// Its arguments object (Convex JSON); none: `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
    /// Run every this many seconds (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<f64>,
    /// Or at the times of this cron expression: five fields (minute hour day-of-month
    /// month day-of-week), or six with seconds first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (`Europe/Berlin`); UTC if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// When a cron runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    Interval { ms: f64 },
    Cron { cron: Box<Cron>, timezone: Tz },
}

/// Longest cron name.
const MAX_NAME_LEN: usize = 256;

impl CronSpec {
    /// The schedule, or what is wrong with the declaration (for the deploy's error).
    pub fn schedule(&self) -> Result<Schedule, String> {
        match (&self.interval_seconds, &self.cron) {
            (Some(seconds), None) => {
                if self.timezone.is_some() {
                    return Err("timezone applies to cron expressions, not intervals".into());
                }
                if !(seconds.is_finite() && *seconds >= 1.0) {
                    return Err(format!(
                        "interval_seconds must be at least 1 (got {seconds})"
                    ));
                }
                Ok(Schedule::Interval {
                    ms: seconds * 1000.0,
                })
            }
            (None, Some(expression)) => {
                let cron = Cron::from_str(expression)
                    .map_err(|err| format!("invalid cron expression {expression:?}: {err}"))?;
                let timezone = match &self.timezone {
                    None => Tz::UTC,
                    Some(name) => Tz::from_str(name).map_err(|_| {
                        format!(
                            "unknown time zone {name:?}: use an IANA name such as \"Europe/Berlin\""
                        )
                    })?,
                };
                Ok(Schedule::Cron {
                    cron: Box::new(cron),
                    timezone,
                })
            }
            _ => Err("give exactly one of interval_seconds and cron".into()),
        }
    }

    /// The arguments as a value (`{}` if none); `Err` if they are not an object.
    pub fn args_value(&self) -> Result<Value, String> {
        let args = match &self.args {
            None => return Ok(Value::Object(BTreeMap::new())),
            Some(args) => Value::from_convex_json(args.clone())
                .map_err(|err| format!("invalid args: {err}"))?,
        };
        match args {
            Value::Object(_) => Ok(args),
            other => Err(format!("args must be an object, got {}", other.type_name())),
        }
    }
}

/// Checks a cron's name: printable ASCII, as Convex's cron identifiers.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|byte| (b' '..=b'~').contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid cron name {name:?}: use 1 to {MAX_NAME_LEN} printable ASCII characters"
        ))
    }
}

impl Schedule {
    /// When the run after one due at `previous` (none: the cron was just installed) is
    /// due, given the time is `now` (ms since the epoch). Runs missed while the server was
    /// down are skipped, not made up.
    pub fn next_run(&self, previous: Option<f64>, now: f64) -> Option<f64> {
        match self {
            Schedule::Interval { ms } => {
                let next = previous.map_or(now + ms, |previous| previous + ms);
                Some(if next <= now { now + ms } else { next })
            }
            Schedule::Cron { cron, timezone } => {
                let from = previous.map_or(now, |previous| previous.max(now));
                let from: DateTime<Utc> = Utc.timestamp_millis_opt(from as i64).single()?;
                let next = cron
                    .find_next_occurrence(&from.with_timezone(timezone), false)
                    .ok()?;
                Some(next.timestamp_millis() as f64)
            }
        }
    }
}

/// The crons of a Convex app's `crons.js` (its `cronJobs()` object's `crons`, as JSON:
/// `{identifier: {name, args: [args], schedule: {type, ...}}}`), as Kiln's. Convex's
/// schedules (`interval`, `hourly`, `daily`, `weekly`, `monthly`, `cron`) are in UTC.
pub fn from_convex_json(text: &str) -> Result<BTreeMap<String, CronSpec>, String> {
    #[derive(Deserialize)]
    struct ConvexCron {
        name: String,
        #[serde(default)]
        args: Vec<serde_json::Value>,
        schedule: serde_json::Map<String, serde_json::Value>,
    }
    let crons: BTreeMap<String, ConvexCron> =
        serde_json::from_str(text).map_err(|err| format!("crons.js: {err}"))?;
    let mut specs = BTreeMap::new();
    for (name, cron) in crons {
        let schedule = &cron.schedule;
        let number = |field: &str| schedule.get(field).and_then(serde_json::Value::as_f64);
        let whole = |field: &str| number(field).map(|n| n as i64);
        let minute = whole("minuteUTC").unwrap_or(0);
        let kind = schedule
            .get("type")
            .and_then(|kind| kind.as_str())
            .unwrap_or("");
        let invalid = |why: &str| format!("crons.js: cron {name:?}: {why}");
        let (interval_seconds, expression) = match kind {
            "interval" => {
                let seconds = number("seconds")
                    .or_else(|| number("minutes").map(|m| m * 60.0))
                    .or_else(|| number("hours").map(|h| h * 3600.0))
                    .ok_or_else(|| invalid("an interval needs seconds, minutes or hours"))?;
                (Some(seconds), None)
            }
            "hourly" => (None, Some(format!("{minute} * * * *"))),
            "daily" => {
                let hour = whole("hourUTC").ok_or_else(|| invalid("daily needs hourUTC"))?;
                (None, Some(format!("{minute} {hour} * * *")))
            }
            "weekly" => {
                let hour = whole("hourUTC").ok_or_else(|| invalid("weekly needs hourUTC"))?;
                let day = schedule
                    .get("dayOfWeek")
                    .and_then(|day| day.as_str())
                    .ok_or_else(|| invalid("weekly needs dayOfWeek"))?;
                let day = [
                    "sunday",
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                ]
                .iter()
                .position(|name| *name == day)
                .ok_or_else(|| invalid("dayOfWeek must be a day's name, like \"monday\""))?;
                (None, Some(format!("{minute} {hour} * * {day}")))
            }
            "monthly" => {
                let hour = whole("hourUTC").ok_or_else(|| invalid("monthly needs hourUTC"))?;
                let day = whole("day").ok_or_else(|| invalid("monthly needs day"))?;
                (None, Some(format!("{minute} {hour} {day} * *")))
            }
            "cron" => {
                let expression = schedule
                    .get("cron")
                    .and_then(|cron| cron.as_str())
                    .ok_or_else(|| invalid("a cron schedule needs its cron string"))?;
                (None, Some(expression.to_string()))
            }
            other => return Err(invalid(&format!("unknown schedule type {other:?}"))),
        };
        specs.insert(
            name,
            CronSpec {
                function: cron.name,
                args: cron.args.into_iter().next(),
                interval_seconds,
                cron: expression,
                timezone: None,
            },
        );
    }
    Ok(specs)
}

/// A cron as its document in `_cron_jobs` holds it.
#[derive(Debug)]
struct Installed {
    id: DocumentId,
    name: String,
    /// The declaration, as JSON text (a changed one is rescheduled).
    spec: String,
    next_run: f64,
    /// The job of its last run.
    last_job: Option<DocumentId>,
}

impl Installed {
    fn from_document(document: &crate::database::documents::Document) -> Result<Self, DbError> {
        let fields = &document.fields;
        let text = |name: &str| match fields.get(name) {
            Some(Value::String(text)) => Some(text.clone()),
            _ => None,
        };
        let malformed = || {
            DbError::Internal(anyhow::anyhow!(
                "malformed cron {} in {CRON_JOBS}",
                document.id
            ))
        };
        Ok(Installed {
            id: document.id,
            name: text("name").ok_or_else(malformed)?,
            spec: text("spec").ok_or_else(malformed)?,
            next_run: match fields.get("nextRun") {
                Some(Value::Float64(ms)) => *ms,
                _ => return Err(malformed()),
            },
            last_job: text("lastJob").and_then(|id| DocumentId::decode(&id).ok()),
        })
    }

    fn fields(&self) -> BTreeMap<String, Value> {
        let mut fields = BTreeMap::from([
            ("name".to_string(), Value::from(self.name.as_str())),
            ("spec".to_string(), Value::from(self.spec.as_str())),
            ("nextRun".to_string(), Value::Float64(self.next_run)),
        ]);
        if let Some(job) = &self.last_job {
            fields.insert("lastJob".to_string(), Value::from(job.encode()));
        }
        fields
    }
}

fn spec_text(spec: &CronSpec) -> String {
    serde_json::to_string(spec).expect("a cron spec serializes")
}

/// Makes `_cron_jobs` hold exactly `crons`: new ones are installed (first run at the
/// schedule's next time), changed ones rescheduled, the others deleted. Unchanged crons
/// keep their next run and last job. `crons` were checked by the deploy.
pub fn install(
    transaction: &mut Transaction,
    crons: &BTreeMap<String, CronSpec>,
    now: f64,
) -> Result<(), DbError> {
    let mut installed: BTreeMap<String, Installed> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = transaction.scan(
            CRON_JOBS,
            BY_NAME,
            &IndexRange::default(),
            Order::Asc,
            256,
            after.as_deref(),
        )?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (_, document) in &page {
            let cron = Installed::from_document(document)?;
            if let Some(duplicate) = installed.insert(cron.name.clone(), cron) {
                transaction.system_delete(&duplicate.id)?;
            }
        }
    }
    for (name, cron) in installed.iter() {
        if !crons.contains_key(name) {
            transaction.system_delete(&cron.id)?;
        }
    }
    for (name, spec) in crons {
        let text = spec_text(spec);
        if installed.get(name).is_some_and(|cron| cron.spec == text) {
            continue;
        }
        let schedule = spec.schedule().map_err(DbError::Forbidden)?;
        let next_run = schedule.next_run(None, now).unwrap_or(f64::MAX);
        match installed.get(name) {
            Some(existing) => {
                let updated = Installed {
                    id: existing.id,
                    name: name.clone(),
                    spec: text,
                    next_run,
                    last_job: existing.last_job,
                };
                transaction.system_replace(&existing.id, updated.fields())?;
            }
            None => {
                let new = Installed {
                    id: DocumentId::generate(0),
                    name: name.clone(),
                    spec: text,
                    next_run,
                    last_job: None,
                };
                transaction.system_insert(CRON_JOBS, new.fields())?;
            }
        }
    }
    Ok(())
}

/// [`install`] in a mutation of its own.
pub async fn install_all(
    store: &crate::database::store::DocumentStore,
    crons: &BTreeMap<String, CronSpec>,
) -> anyhow::Result<()> {
    store
        .run_mutation(|transaction| install(transaction, crons, super::jobs::now_ms()))
        .await?;
    Ok(())
}

/// The crons due at `now` (up to `limit`, soonest first) and when the next one not yet
/// due is due.
pub fn due(
    transaction: &mut Transaction,
    now: f64,
    limit: usize,
) -> Result<(Vec<DocumentId>, Option<f64>), DbError> {
    let page = transaction.scan(
        CRON_JOBS,
        BY_NEXT_RUN,
        &IndexRange::default(),
        Order::Asc,
        limit,
        None,
    )?;
    let mut due = Vec::new();
    for (_, document) in &page {
        let cron = Installed::from_document(document)?;
        if cron.next_run > now {
            return Ok((due, Some(cron.next_run)));
        }
        due.push(cron.id);
    }
    Ok((due, None))
}

/// Starts a run of the cron `id` if it is due at `now`: a job due now, unless its last run
/// is still pending or running (then this run is skipped); either way the cron's next run
/// moves on. Returns the job started, if one was.
pub fn fire(
    transaction: &mut Transaction,
    id: &DocumentId,
    now: f64,
    pending_jobs: i64,
    limits: &ScheduleLimits,
) -> Result<Option<DocumentId>, DbError> {
    let Some(document) = transaction.get(id)? else {
        return Ok(None);
    };
    let mut cron = Installed::from_document(&document)?;
    if cron.next_run > now {
        return Ok(None);
    }
    let spec: CronSpec = serde_json::from_str(&cron.spec)
        .map_err(|err| DbError::Internal(anyhow::anyhow!("cron {}: {err}", cron.name)))?;
    let schedule = spec.schedule().map_err(DbError::Forbidden)?;
    let still_running = match &cron.last_job {
        Some(job) => jobs::get(transaction, job)?
            .is_some_and(|job| matches!(job.state, JobState::Pending | JobState::InProgress)),
        None => false,
    };
    let started = if still_running {
        tracing::warn!(cron = %cron.name, "a cron's last run has not finished: this run is skipped");
        None
    } else {
        let path = FunctionPath::parse(&spec.function)
            .map_err(|err| DbError::Forbidden(format!("cron {}: {err}", cron.name)))?;
        let args = spec.args_value().map_err(DbError::Forbidden)?;
        match jobs::schedule(transaction, limits, pending_jobs, &path, args, now) {
            Ok(job) => {
                cron.last_job = Some(job);
                Some(job)
            }
            // Too many jobs pending: this run is skipped, the next one tries again.
            Err(DbError::LimitExceeded(message)) => {
                tracing::warn!(cron = %cron.name, "a cron's run is skipped: {message}");
                None
            }
            Err(err) => return Err(err),
        }
    };
    cron.next_run = schedule
        .next_run(Some(cron.next_run), now)
        .unwrap_or(f64::MAX);
    transaction.system_replace(&cron.id, cron.fields())?;
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(interval: Option<f64>, cron: Option<&str>, timezone: Option<&str>) -> CronSpec {
        CronSpec {
            function: "m:f".into(),
            args: None,
            interval_seconds: interval,
            cron: cron.map(str::to_string),
            timezone: timezone.map(str::to_string),
        }
    }

    #[test]
    fn intervals_keep_their_cadence_and_skip_missed_runs() {
        let schedule = spec(Some(10.0), None, None).schedule().unwrap();
        assert_eq!(schedule.next_run(None, 1_000.0), Some(11_000.0));
        assert_eq!(schedule.next_run(Some(11_000.0), 11_005.0), Some(21_000.0));
        // Down for a minute: the next run is an interval from now, not six runs at once.
        assert_eq!(schedule.next_run(Some(11_000.0), 80_000.0), Some(90_000.0));
    }

    #[test]
    fn cron_expressions_follow_their_time_zone() {
        // 2026-01-15 00:00:00 UTC.
        let now = 1_768_435_200_000.0;
        let utc = spec(None, Some("0 9 * * *"), None).schedule().unwrap();
        assert_eq!(utc.next_run(None, now), Some(now + 9.0 * 3_600_000.0));
        // 09:00 in Berlin in January is 08:00 UTC.
        let berlin = spec(None, Some("0 9 * * *"), Some("Europe/Berlin"))
            .schedule()
            .unwrap();
        assert_eq!(berlin.next_run(None, now), Some(now + 8.0 * 3_600_000.0));
        let seconds = spec(None, Some("*/5 * * * * *"), None).schedule().unwrap();
        assert_eq!(seconds.next_run(None, now), Some(now + 5_000.0));
    }

    #[test]
    fn bad_declarations_say_what_is_wrong() {
        for (spec, expected) in [
            (spec(None, None, None), "exactly one"),
            (spec(Some(1.0), Some("* * * * *"), None), "exactly one"),
            (spec(Some(0.5), None, None), "at least 1"),
            (
                spec(None, Some("61 * * * *"), None),
                "invalid cron expression",
            ),
            (
                spec(None, Some("* * * * *"), Some("Mars/Olympus")),
                "unknown time zone",
            ),
            (spec(Some(5.0), None, Some("UTC")), "timezone applies"),
        ] {
            let err = spec.schedule().unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
        assert!(check_name("compact messages").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("naïve").is_err());
    }

    #[test]
    fn convex_schedules_become_kiln_crons() {
        let crons = from_convex_json(
            r#"{
            "every minute": {"name": "m:a", "args": [{}], "schedule": {"type": "interval", "minutes": 1}},
            "daily": {"name": "m:b", "args": [{"x": 1}], "schedule": {"type": "daily", "hourUTC": 3, "minuteUTC": 30}},
            "weekly": {"name": "m:c", "args": [{}], "schedule": {"type": "weekly", "dayOfWeek": "tuesday", "hourUTC": 1, "minuteUTC": 0}},
            "raw": {"name": "m:d", "args": [{}], "schedule": {"type": "cron", "cron": "*/5 * * * *"}}
        }"#,
        )
        .unwrap();
        assert_eq!(crons["every minute"].interval_seconds, Some(60.0));
        assert_eq!(crons["daily"].cron.as_deref(), Some("30 3 * * *"));
        assert_eq!(crons["daily"].args, Some(serde_json::json!({"x": 1})));
        assert_eq!(crons["weekly"].cron.as_deref(), Some("0 1 * * 2"));
        assert_eq!(crons["raw"].cron.as_deref(), Some("*/5 * * * *"));
        for spec in crons.values() {
            spec.schedule().unwrap();
        }
    }
}
