//! `POST /v1/jobs/bulk`: one action (retry, cancel or delete) on up to 500 jobs named by id,
//! each id standing alone, and [`apply_all`], the bounded-concurrency loop it shares with the
//! dead-letter endpoints.
//!
//! The store has no multi-job form of these transitions, so each job is one store call. They
//! run a few at a time rather than one after another: on SQLite concurrent calls share one
//! group commit (one fsync for many jobs), on PostgreSQL they use the pool's connections.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::JobRef;
use hopper_types::{JobId, JobState};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::auth::{Authorized, CanAdmin, Principal};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, ErrorDetail, json_response};
use crate::routes::audit;
use crate::state::AppState;

/// Recorded as the actor of changes made through these endpoints.
const ACTOR: &str = "api";

/// Most ids in one bulk call.
pub const MAX_BULK_IDS: usize = 500;

/// Store calls in flight at once for one request: enough to fill a group commit or a
/// connection pool, few enough that one bulk call cannot starve every other request.
const IN_FLIGHT: usize = 16;

/// What to do to every job of a bulk call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// `POST /v1/jobs/{id}/retry` for each job.
    Retry,
    /// `POST /v1/jobs/{id}/cancel` for each job.
    Cancel,
    /// `DELETE /v1/jobs/{id}` for each job (finished jobs only).
    Delete,
}

/// `POST /v1/jobs/bulk` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// `retry`, `cancel` or `delete`.
    pub action: BulkAction,
    /// 1..500 job ids; each is acted on alone, in this order.
    pub ids: Vec<JobId>,
}

/// The outcome for one id of a bulk call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    /// The job id, as given.
    pub id: JobId,
    /// Whether the action was applied to this job.
    pub ok: bool,
    /// Why not (`not_found`, `invalid_state`, ...); null when `ok`.
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/jobs/bulk` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkAnswer {
    /// One per id, in request order.
    pub results: Vec<BulkResult>,
}

/// Retry, cancel or delete up to 500 jobs; each id stands alone.
#[utoipa::path(post, path = "/v1/jobs/bulk", tag = "jobs",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "One result per id, in request order", body = BulkAnswer),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn bulk_jobs(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(req): JsonBody<BulkRequest>,
) -> Result<Response, ApiError> {
    if req.ids.is_empty() || req.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid(
            "ids",
            format!(
                "a bulk call names 1 to {MAX_BULK_IDS} job ids, not {}",
                req.ids.len()
            ),
        ));
    }
    let outcomes = apply_all(&st, &p, req.action, req.ids.clone()).await;
    let done = outcomes.iter().filter(|o| o.is_ok()).count();
    let details = serde_json::json!({"action": req.action, "ids": req.ids.len(), "done": done});
    audit::record(&st, &p, "jobs.bulk", "", details).await;
    let results = req
        .ids
        .into_iter()
        .zip(outcomes)
        .map(|(id, r)| match r {
            Ok(()) => BulkResult {
                id,
                ok: true,
                error: None,
            },
            Err(e) => BulkResult {
                id,
                ok: false,
                error: Some(e.detail),
            },
        })
        .collect();
    Ok(json_response(StatusCode::OK, &BulkAnswer { results }))
}

/// Applies `action` to every job of `ids`, at most [`IN_FLIGHT`] at once, and returns one
/// outcome per id in the order given.
pub(crate) async fn apply_all(
    st: &AppState,
    p: &Principal,
    action: BulkAction,
    ids: Vec<JobId>,
) -> Vec<Result<(), ApiError>> {
    let mut outcomes: Vec<Option<Result<(), ApiError>>> = vec![None; ids.len()];
    // An id named twice must see its actions in request order (delete, then not found), which
    // only one at a time guarantees; such requests are rare, so they simply go one by one.
    let distinct = ids.iter().collect::<HashSet<_>>().len() == ids.len();
    let in_flight = if distinct { IN_FLIGHT } else { 1 };
    let mut pending = ids.into_iter().enumerate();
    // Dropping the set (the client went away) aborts what is still queued; calls already
    // committed stay committed, as they would have for single calls.
    let mut running = JoinSet::new();
    loop {
        while running.len() < in_flight {
            let Some((i, id)) = pending.next() else {
                break;
            };
            let st = st.clone();
            let p = p.clone();
            running.spawn(async move { (i, apply_one(&st, &p, action, id).await) });
        }
        match running.join_next().await {
            None => break,
            Some(Ok((i, outcome))) => outcomes[i] = Some(outcome),
            // A panicking store call is a bug; its slot stays empty and answers 500 below.
            Some(Err(e)) => tracing::error!(error = %e, "a bulk job action failed to finish"),
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(ApiError::internal("a bulk job action did not finish"))))
        .collect()
}

async fn apply_one(
    st: &AppState,
    p: &Principal,
    action: BulkAction,
    id: JobId,
) -> Result<(), ApiError> {
    let job = JobRef {
        namespace: p.namespace.clone(),
        id,
    };
    match action {
        BulkAction::Retry => {
            st.store().job_retry(&job, ACTOR).await?;
        }
        BulkAction::Cancel => {
            let job = st.store().job_cancel(&job, ACTOR).await?;
            // Counted like a single cancel: only when the job actually ended here.
            if job.state == JobState::Cancelled {
                st.metrics().job_cancelled(&job);
            }
        }
        BulkAction::Delete => st.store().job_delete(&job).await?,
    }
    Ok(())
}
