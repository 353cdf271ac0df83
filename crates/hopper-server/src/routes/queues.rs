//! Queue endpoints: list queues with their counts and configuration, read and replace one
//! queue's configuration (pause, retention, limits, lease policy), pause and resume, retry
//! every dead job of a queue, purge a queue's finished jobs of one state. Queues exist
//! implicitly, so a name never answers 404.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::QueueInfo;
use hopper_types::{JobState, QueueConfig};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, CanRead, Principal};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::{QueryPairs, QueueNamePath};
use crate::routes::audit;
use crate::routes::jobs::EmptyBody;
use crate::state::AppState;

/// Recorded as the actor of changes made through these endpoints.
const ACTOR: &str = "api";

/// A queue as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Its name.
    pub name: String,
    /// Paused queues hand out no leases.
    pub paused: bool,
    /// Jobs per state, every state present.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub counts: BTreeMap<JobState, u64>,
    /// Age of the oldest available job; null when none is available.
    pub oldest_available_age_ms: Option<i64>,
    /// Its configuration (defaults for a queue never configured).
    pub config: QueueConfig,
}

impl From<QueueInfo> for QueueView {
    fn from(q: QueueInfo) -> Self {
        let mut counts = q.counts;
        // The contract lists every state, so clients need not special-case a missing one.
        for s in JobState::ALL {
            counts.entry(s).or_insert(0);
        }
        QueueView {
            name: q.name,
            paused: q.paused,
            counts,
            oldest_available_age_ms: q.oldest_available_age_ms,
            config: q.config,
        }
    }
}

/// `GET /v1/queues` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuesAnswer {
    /// By name.
    pub queues: Vec<QueueView>,
}

/// How many jobs a bulk call touched.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CountAnswer {
    /// The number of jobs.
    pub count: u64,
}

/// Every queue that has jobs or configuration.
#[utoipa::path(get, path = "/v1/queues", tag = "queues",
    responses((status = 200, body = QueuesAnswer), (status = 503, body = ErrorBody)))]
pub async fn list_queues(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
) -> Result<Response, ApiError> {
    let queues = st.store().queue_list(&p.namespace).await?;
    let answer = QueuesAnswer {
        queues: queues.into_iter().map(QueueView::from).collect(),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// One queue with its counts and configuration.
#[utoipa::path(get, path = "/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueView), (status = 400, body = ErrorBody)))]
pub async fn get_queue(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    QueueNamePath(name): QueueNamePath,
) -> Result<Response, ApiError> {
    let q = st.store().queue_get(&p.namespace, &name).await?;
    Ok(json_response(StatusCode::OK, &QueueView::from(q)))
}

/// Replace a queue's whole configuration: fields left out take their defaults (so `paused`
/// left out resumes the queue). In force for the next lease on every node.
#[utoipa::path(put, path = "/v1/queues/{name}", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body = QueueConfig,
    responses((status = 200, body = QueueView), (status = 400, body = ErrorBody)))]
pub async fn configure(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    QueueNamePath(name): QueueNamePath,
    JsonBody(config): JsonBody<QueueConfig>,
) -> Result<Response, ApiError> {
    config.validate()?;
    let q = st
        .store()
        .queue_configure(&p.namespace, &name, config.clone())
        .await?;
    let details = serde_json::to_value(&config).unwrap_or_default();
    audit::record(&st, &p, "queue.configure", &name, details).await;
    Ok(json_response(StatusCode::OK, &QueueView::from(q)))
}

async fn set_paused(
    st: &AppState,
    p: &Principal,
    name: &str,
    paused: bool,
) -> Result<Response, ApiError> {
    let q = st
        .store()
        .queue_set_paused(&p.namespace, name, paused)
        .await?;
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    audit::record(st, p, action, name, serde_json::json!({})).await;
    Ok(json_response(StatusCode::OK, &QueueView::from(q)))
}

/// Stop handing out leases from a queue; running jobs keep theirs.
#[utoipa::path(post, path = "/v1/queues/{name}/pause", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = QueueView), (status = 400, body = ErrorBody)))]
pub async fn pause(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    QueueNamePath(name): QueueNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    set_paused(&st, &p, &name, true).await
}

/// Hand out leases from a queue again.
#[utoipa::path(post, path = "/v1/queues/{name}/resume", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = QueueView), (status = 400, body = ErrorBody)))]
pub async fn resume(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    QueueNamePath(name): QueueNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    set_paused(&st, &p, &name, false).await
}

/// Retry every dead job of a queue.
#[utoipa::path(post, path = "/v1/queues/{name}/retry", tag = "queues",
    params(("name" = String, Path, description = "Queue name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = CountAnswer), (status = 400, body = ErrorBody)))]
pub async fn retry_dead(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    QueueNamePath(name): QueueNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    let count = st
        .store()
        .queue_retry_dead(&p.namespace, &name, ACTOR)
        .await?;
    audit::record(
        &st,
        &p,
        "queue.retry_dead",
        &name,
        serde_json::json!({"retried": count}),
    )
    .await;
    Ok(json_response(StatusCode::OK, &CountAnswer { count }))
}

/// Delete every job of a queue in one finished state.
#[utoipa::path(delete, path = "/v1/queues/{name}/jobs", tag = "queues",
    params(("name" = String, Path, description = "Queue name"),
        ("state" = JobState, Query, description = "completed, dead or cancelled")),
    responses((status = 200, body = CountAnswer), (status = 400, body = ErrorBody)))]
pub async fn purge(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    QueueNamePath(name): QueueNamePath,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    query.only(&["state"])?;
    let state = match query.single("state")? {
        None => {
            return Err(ApiError::invalid(
                "state",
                "state is required: completed, dead or cancelled",
            ));
        }
        Some(s) => s
            .parse::<JobState>()
            .ok()
            .filter(|s| s.is_finished())
            .ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!("state must be completed, dead or cancelled, not `{s}`"),
                )
            })?,
    };
    let count = st.store().queue_purge(&p.namespace, &name, state).await?;
    let details = serde_json::json!({"state": state, "purged": count});
    audit::record(&st, &p, "queue.purge", &name, details).await;
    Ok(json_response(StatusCode::OK, &CountAnswer { count }))
}
