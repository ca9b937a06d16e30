//! `GET /api/jobs?state=S&limit=N`: the scheduler's jobs and the deployment's cron jobs,
//! for an admin to see what ran, what waits and what failed (`kiln jobs`). Needs the admin
//! key. Jobs come newest first, or, with `state` (`pending`, `inProgress`, `success`,
//! `failed`, `canceled`), soonest due first.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use kiln_values::Value;
use serde_json::{Value as Json, json};

use super::router::json_response;
use super::{ApiError, AppState, query_string};
use crate::database::indexes::{BY_CREATION_TIME, IndexRange};
use crate::database::persistence::Order;
use crate::database::system_tables::{BY_NAME, CRON_JOBS, SCHEDULED_FUNCTIONS};
use crate::database::transaction::DbError;
use crate::scheduler::jobs::{self, Job, JobState};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Most crons listed.
const MAX_CRONS: usize = 1_000;

const STATES: [&str; 5] = ["pending", "inProgress", "success", "failed", "canceled"];

pub async fn list(
    state: &AppState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    state.admin_key.require_admin(request.headers())?;
    let limit = query_string::limit(&request, DEFAULT_LIMIT, MAX_LIMIT)?;
    let filter = match query_string::parameter(&request, "state") {
        None => None,
        Some(kind) => Some(state_of(kind).ok_or_else(|| {
            ApiError::bad_request(
                "BadState",
                format!(
                    "unknown job state {kind:?}: use one of {}",
                    STATES.join(", ")
                ),
            )
        })?),
    };
    let store = state.store.clone();
    let (jobs, crons) = tokio::task::spawn_blocking(move || {
        let mut transaction = store.begin_admin_read()?;
        let jobs: Vec<Job> = match &filter {
            Some(state) => jobs::in_state(&mut transaction, state, limit, None)?
                .into_iter()
                .map(|(_, job)| job)
                .collect(),
            None => transaction
                .scan(
                    SCHEDULED_FUNCTIONS,
                    BY_CREATION_TIME,
                    &IndexRange::default(),
                    Order::Desc,
                    limit,
                    None,
                )?
                .iter()
                .map(|(_, document)| Job::from_document(document))
                .collect::<Result<_, _>>()?,
        };
        let crons: Vec<Json> = transaction
            .scan(
                CRON_JOBS,
                BY_NAME,
                &IndexRange::default(),
                Order::Asc,
                MAX_CRONS,
                None,
            )?
            .iter()
            .map(|(_, document)| cron_json(&document.fields))
            .collect();
        Ok::<_, DbError>((jobs, crons))
    })
    .await
    .map_err(|err| ApiError::internal(&anyhow::anyhow!("jobs read panicked: {err}")))?
    .map_err(|err| ApiError::internal(&anyhow::Error::new(err)))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "jobs": jobs.iter().map(job_json).collect::<Vec<_>>(),
            "crons": crons,
        }),
    ))
}

fn state_of(kind: &str) -> Option<JobState> {
    Some(match kind {
        "pending" => JobState::Pending,
        "inProgress" => JobState::InProgress,
        "success" => JobState::Success,
        "failed" => JobState::Failed(String::new()),
        "canceled" => JobState::Canceled,
        _ => return None,
    })
}

fn job_json(job: &Job) -> Json {
    let mut entry = json!({
        "id": job.id.encode(),
        "name": job.name,
        "args": job.args.to_convex_json(),
        "state": job.state.kind(),
        "scheduledTime": job.scheduled_time,
        "creationTime": job.creation_time,
    });
    if let JobState::Failed(error) = &job.state {
        entry["error"] = json!(error);
    }
    if let Some(started) = job.started_time {
        entry["startedTime"] = json!(started);
    }
    if let Some(completed) = job.completed_time {
        entry["completedTime"] = json!(completed);
        if let Some(started) = job.started_time {
            entry["durationMs"] = json!(completed - started);
        }
    }
    entry
}

fn cron_json(fields: &std::collections::BTreeMap<String, Value>) -> Json {
    let text = |name: &str| match fields.get(name) {
        Some(Value::String(text)) => Json::String(text.clone()),
        _ => Json::Null,
    };
    let spec = match fields.get("spec") {
        Some(Value::String(spec)) => serde_json::from_str(spec).unwrap_or(Json::Null),
        _ => Json::Null,
    };
    json!({
        "name": text("name"),
        "spec": spec,
        "nextRun": fields.get("nextRun").and_then(Value::as_f64),
        "lastJob": text("lastJob"),
    })
}
