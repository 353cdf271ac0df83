//! Schedule endpoints: create, list, read, replace and delete cron schedules, pause and resume
//! them, and trigger one by hand. A schedule is answered as a [`ScheduleView`]: the stored
//! schedule with its next fire times computed at read time in its zone. Unknown names answer
//! 404 `not_found`; the firing itself is the scheduler's (`maintenance::scheduler`).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hopper_store::{JobInsertParams, ScheduleCreate, ScheduleUpdate, StoreError};
use hopper_types::schedule::{Schedule, ScheduleRequest, ScheduleView};
use hopper_types::{Job, validate_name};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, CanRead, Principal};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::routes::audit;
use crate::routes::jobs::EmptyBody;
use crate::state::AppState;

/// Recorded as the actor of jobs triggered through these endpoints.
const ACTOR: &str = "api";

/// `GET /v1/schedules` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SchedulesAnswer {
    /// By name.
    pub schedules: Vec<ScheduleView>,
}

/// The `{name}` of a schedule route, checked like a queue name.
#[derive(Debug, Clone)]
pub struct ScheduleNamePath(pub String);

impl FromRequestParts<AppState> for ScheduleNamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("name", e.body_text()))?;
        validate_name("name", &raw)?;
        Ok(ScheduleNamePath(raw))
    }
}

/// A store error of the schedule `name`: not found names the schedule.
fn schedule_error(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(format!("no schedule named `{name}`")),
        StoreError::AlreadyExists(_) => ApiError::from(e).with_field("name"),
        other => ApiError::from(other),
    }
}

fn view(st: &AppState, s: Schedule) -> ScheduleView {
    s.view(st.store().clock().now())
}

fn answer(st: &AppState, status: StatusCode, s: Schedule) -> Response {
    json_response(status, &view(st, s))
}

/// Create a schedule. Its first tick is the first one after its creation.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules",
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 400, body = ErrorBody),
        (status = 409, description = "invalid_state: a schedule of that name exists", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(req): JsonBody<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let (name, definition) = req.validate(None, &p.namespace, &st.config().limits)?;
    let s = st
        .store()
        .schedule_create(ScheduleCreate {
            namespace: p.namespace.clone(),
            name: name.clone(),
            definition,
        })
        .await
        .map_err(|e| schedule_error(e, &name))?;
    st.store().signals().notify_schedules();
    audit::record(&st, &p, "schedule.create", &name, serde_json::json!({})).await;
    Ok(answer(&st, StatusCode::CREATED, s))
}

/// Every schedule, by name.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, body = SchedulesAnswer), (status = 503, body = ErrorBody)))]
pub async fn list_schedules(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
) -> Result<Response, ApiError> {
    let schedules = st.store().schedule_list(&p.namespace).await?;
    let answer = SchedulesAnswer {
        schedules: schedules.into_iter().map(|s| view(&st, s)).collect(),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// One schedule, with its next fire times and last runs.
#[utoipa::path(get, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    ScheduleNamePath(name): ScheduleNamePath,
) -> Result<Response, ApiError> {
    let s = st
        .store()
        .schedule_get(&p.namespace, &name)
        .await
        .map_err(|e| schedule_error(e, &name))?;
    Ok(answer(&st, StatusCode::OK, s))
}

/// Replace a schedule's definition: fields left out take their defaults (so `paused` left out
/// resumes it). The cursor and the runs stay; a new expression or zone counts from now.
#[utoipa::path(put, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    request_body = ScheduleRequest,
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn replace_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    ScheduleNamePath(name): ScheduleNamePath,
    JsonBody(req): JsonBody<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let (name, definition) = req.validate(Some(&name), &p.namespace, &st.config().limits)?;
    let s = st
        .store()
        .schedule_update(ScheduleUpdate {
            namespace: p.namespace.clone(),
            name: name.clone(),
            definition,
        })
        .await
        .map_err(|e| schedule_error(e, &name))?;
    st.store().signals().notify_schedules();
    audit::record(&st, &p, "schedule.update", &name, serde_json::json!({})).await;
    Ok(answer(&st, StatusCode::OK, s))
}

/// Delete a schedule; the jobs it enqueued stay.
#[utoipa::path(delete, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    ScheduleNamePath(name): ScheduleNamePath,
) -> Result<Response, ApiError> {
    st.store()
        .schedule_delete(&p.namespace, &name)
        .await
        .map_err(|e| schedule_error(e, &name))?;
    audit::record(&st, &p, "schedule.delete", &name, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_paused(
    st: &AppState,
    p: &Principal,
    name: &str,
    paused: bool,
) -> Result<Response, ApiError> {
    let s = st
        .store()
        .schedule_set_paused(&p.namespace, name, paused)
        .await
        .map_err(|e| schedule_error(e, name))?;
    st.store().signals().notify_schedules();
    let action = if paused {
        "schedule.pause"
    } else {
        "schedule.resume"
    };
    audit::record(st, p, action, name, serde_json::json!({})).await;
    Ok(answer(st, StatusCode::OK, s))
}

/// Stop firing. Jobs already enqueued are not affected.
#[utoipa::path(post, path = "/v1/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn pause_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    ScheduleNamePath(name): ScheduleNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    set_paused(&st, &p, &name, true).await
}

/// Fire again. The ticks missed while paused are handled by the misfire policy.
#[utoipa::path(post, path = "/v1/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn resume_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    ScheduleNamePath(name): ScheduleNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    set_paused(&st, &p, &name, false).await
}

/// Enqueue one job from the schedule's template now (paused or not), with the idempotency key
/// `schedule:<name>:manual:<uuid>`. The schedule's own ticks are not affected.
#[utoipa::path(post, path = "/v1/schedules/{name}/trigger", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 201, description = "The job enqueued", body = Job),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn trigger_schedule(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    ScheduleNamePath(name): ScheduleNamePath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    let s = st
        .store()
        .schedule_get(&p.namespace, &name)
        .await
        .map_err(|e| schedule_error(e, &name))?;
    let job = s
        .manual_job(&st.config().limits)
        .map_err(|e| ApiError::from(e.under("job")))?;
    let mut inserted = st
        .store()
        .job_insert_many(JobInsertParams {
            jobs: vec![job],
            actor: ACTOR.to_string(),
        })
        .await?;
    let job = inserted
        .pop()
        .and_then(|ins| ins.job)
        .ok_or_else(|| ApiError::internal("job_insert_many returned no job for a fresh key"))?;
    st.metrics().job_enqueued(&job);
    Ok(json_response(StatusCode::CREATED, &job.without_token()))
}
