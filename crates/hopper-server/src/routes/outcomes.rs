//! What a worker reports about a leased job: heartbeats, and the outcomes `complete`, `fail`,
//! `release` and `cancelled`, one at a time or many at once through `POST /v1/acks`.
//!
//! Every outcome goes through `Store::job_ack_many`, the single-outcome endpoints with a list of
//! one, so fencing and idempotent repeats behave identically on both paths.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::{AckOutcome, JobAck, JobHeartbeatParams, JobRef};
use hopper_types::backoff::MAX_BACKOFF_MS;
use hopper_types::lifecycle::Failure;
use hopper_types::{Job, JobId, JobState, Limits, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::{Authorized, CanWork};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, ErrorDetail, json_response};
use crate::extract::JobIdPath;
use crate::routes::leases::{MAX_LEASE_MS, MIN_LEASE_MS};
use crate::state::AppState;
use crate::trace_context::{self, job_trace_id};

/// Most acks in one `POST /v1/acks`.
pub const MAX_ACKS: usize = 1000;
/// Longest error kind.
pub const MAX_ERROR_KIND_CHARS: usize = 128;

/// `POST /v1/jobs/{id}/heartbeat` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The current lease's token.
    pub lease_token: String,
    /// New lease length from now (200..3,600,000); the lease's own length when absent.
    pub lease_ms: Option<i64>,
    /// Progress to record (any JSON, at most 64 KiB).
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Box<RawValue>>,
}

/// `POST /v1/jobs/{id}/heartbeat` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeartbeatAnswer {
    /// The lease's new end.
    pub lease_expires_at: Timestamp,
    /// Someone asked to cancel the job: stop and report `cancelled`.
    pub cancel_requested: bool,
}

/// `POST /v1/jobs/{id}/complete` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The current lease's token.
    pub lease_token: String,
    /// What the handler returned (any JSON, at most 1 MiB).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<RawValue>>,
}

/// The error of a failed attempt.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailError {
    /// What went wrong; truncated to 8 KiB.
    pub message: String,
    /// Short machine-readable kind; `error` when absent.
    pub kind: Option<String>,
    /// False sends the job to `dead` at once; default true.
    pub retryable: Option<bool>,
}

/// `POST /v1/jobs/{id}/fail` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// The current lease's token.
    pub lease_token: String,
    /// The error.
    pub error: FailError,
    /// Retry after this long instead of the job's backoff.
    pub retry_in_ms: Option<i64>,
}

/// `POST /v1/jobs/{id}/release` and `/cancelled` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The current lease's token.
    pub lease_token: String,
}

/// The outcome named by one ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    /// The handler succeeded.
    Completed,
    /// The handler failed.
    Failed,
    /// Hand the job back uncounted.
    Released,
    /// The worker honoured a cancel.
    Cancelled,
}

impl OutcomeName {
    /// The wire name, for log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeName::Completed => "completed",
            OutcomeName::Failed => "failed",
            OutcomeName::Released => "released",
            OutcomeName::Cancelled => "cancelled",
        }
    }
}

/// One outcome of `POST /v1/acks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckItem {
    /// The job.
    pub id: JobId,
    /// The lease's token.
    pub lease_token: String,
    /// What happened.
    pub outcome: OutcomeName,
    /// For `completed`: what the handler returned.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<RawValue>>,
    /// For `failed` (required there).
    pub error: Option<FailError>,
    /// For `failed`: retry after this long instead of the backoff.
    pub retry_in_ms: Option<i64>,
}

/// `POST /v1/acks` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcksRequest {
    /// 1..1000 outcomes, each applied on its own.
    pub acks: Vec<AckItem>,
}

/// The result of one ack.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckResult {
    /// The job.
    pub id: JobId,
    /// Whether the outcome was applied (or was already recorded for this token).
    pub ok: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/acks` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcksAnswer {
    /// In request order.
    pub results: Vec<AckResult>,
}

/// Cuts `s` to at most `max` bytes without splitting a character.
pub fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Builds the lifecycle failure, checking the worker's fields (`prefix` places them in an ack).
fn failure(
    error: FailError,
    retry_in_ms: Option<i64>,
    limits: &Limits,
    prefix: &str,
) -> Result<Failure, ApiError> {
    let kind = error.kind.unwrap_or_else(|| "error".to_string());
    if kind.is_empty() || kind.chars().count() > MAX_ERROR_KIND_CHARS {
        return Err(ApiError::invalid(
            format!("{prefix}error.kind"),
            format!("error.kind must be 1 to {MAX_ERROR_KIND_CHARS} characters"),
        ));
    }
    if let Some(ms) = retry_in_ms
        && !(0..=MAX_BACKOFF_MS).contains(&ms)
    {
        return Err(ApiError::invalid(
            format!("{prefix}retry_in_ms"),
            format!("retry_in_ms must be between 0 and {MAX_BACKOFF_MS}"),
        ));
    }
    Ok(Failure {
        kind,
        // Longer messages (a whole stack trace) are cut, not refused: the failure must be
        // recorded whatever the worker sends.
        message: truncate_utf8(error.message, limits.max_error_message_bytes),
        retryable: error.retryable.unwrap_or(true),
        retry_in_ms,
    })
}

fn check_result(
    result: Option<Box<RawValue>>,
    limits: &Limits,
    field: &str,
) -> Result<Option<Box<RawValue>>, ApiError> {
    if let Some(r) = &result {
        hopper_types::new_job::check_json_numbers(field, r)?;
    }
    if let Some(r) = &result
        && r.get().len() > limits.max_args_bytes
    {
        return Err(ApiError::too_large(
            field,
            format!(
                "{field} is {} bytes, over the limit of {}",
                r.get().len(),
                limits.max_args_bytes
            ),
        ));
    }
    Ok(result)
}

/// Updates metrics and the worker registry after an outcome was applied.
fn record(st: &AppState, job: &Job, outcome: OutcomeName) {
    let now = st.store().clock().now();
    st.workers().acked(job, now);
    if job.duplicate == Some(true) {
        // A repeat (a worker retrying after a lost answer) changed nothing: count it once.
        return;
    }
    match outcome {
        OutcomeName::Completed => st.metrics().job_completed(job, now),
        OutcomeName::Failed => st.metrics().job_failed(job, now),
        OutcomeName::Cancelled => st.metrics().job_cancelled(job),
        // A release hands the job back, unless a cancel was asked for: then it ends here.
        OutcomeName::Released if job.state == JobState::Cancelled => {
            st.metrics().job_cancelled(job)
        }
        OutcomeName::Released => {}
    }
}

/// The debug line of an outcome the store recorded.
fn log_outcome(job: &Job, name: OutcomeName) {
    tracing::debug!(
        job_id = %job.id,
        trace_id = job_trace_id(job),
        outcome = name.as_str(),
        state = %job.state,
        "job outcome recorded"
    );
}

/// Applies one outcome and answers the job.
async fn apply_one(
    st: &AppState,
    namespace: &str,
    id: JobId,
    lease_token: String,
    name: OutcomeName,
    outcome: AckOutcome,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let ack = JobAck {
        job: JobRef {
            namespace: namespace.to_string(),
            id,
        },
        lease_token,
        outcome,
    };
    let mut results = st.store().job_ack_many(vec![ack]).await?;
    let job = results
        .pop()
        .ok_or_else(|| ApiError::internal("job_ack_many returned no result for one ack"))??;
    record(st, &job, name);
    trace_context::record_job(&job);
    log_outcome(&job, name);
    Ok(json_response(StatusCode::OK, &job.without_token()))
}

/// Extend a lease and report progress.
#[utoipa::path(post, path = "/v1/jobs/{id}/heartbeat", tag = "workers",
    params(("id" = String, Path, description = "Job id")),
    request_body = HeartbeatRequest,
    responses((status = 200, body = HeartbeatAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "lease_lost", body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn heartbeat(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let limits = &st.config().limits;
    if let Some(ms) = req.lease_ms
        && !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&ms)
    {
        return Err(ApiError::invalid(
            "lease_ms",
            format!("lease_ms must be between {MIN_LEASE_MS} and {MAX_LEASE_MS}"),
        ));
    }
    if let Some(p) = &req.progress {
        hopper_types::new_job::check_json_numbers("progress", p)?;
    }
    if let Some(p) = &req.progress
        && p.get().len() > limits.max_progress_bytes
    {
        return Err(ApiError::too_large(
            "progress",
            format!(
                "progress is over the limit of {} bytes",
                limits.max_progress_bytes
            ),
        ));
    }
    let hb = st
        .store()
        .job_heartbeat(JobHeartbeatParams {
            job: JobRef {
                namespace: p.namespace.clone(),
                id,
            },
            lease_token: req.lease_token,
            lease_ms: req.lease_ms,
            progress: req.progress,
        })
        .await?;
    st.workers()
        .heartbeat(id, hb.lease_expires_at, st.store().clock().now());
    Ok(json_response(
        StatusCode::OK,
        &HeartbeatAnswer {
            lease_expires_at: hb.lease_expires_at,
            cancel_requested: hb.cancel_requested,
        },
    ))
}

/// Report success.
#[utoipa::path(post, path = "/v1/jobs/{id}/complete", tag = "workers",
    params(("id" = String, Path, description = "Job id")),
    request_body = CompleteRequest,
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "lease_lost or invalid_state", body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn complete(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Response, ApiError> {
    let result = check_result(req.result, &st.config().limits, "result")?;
    apply_one(
        &st,
        &p.namespace,
        id,
        req.lease_token,
        OutcomeName::Completed,
        AckOutcome::Completed { result },
    )
    .await
}

/// Report a failed attempt.
#[utoipa::path(post, path = "/v1/jobs/{id}/fail", tag = "workers",
    params(("id" = String, Path, description = "Job id")),
    request_body = FailRequest,
    responses((status = 200, description = "The job, now retryable, dead or cancelled", body = Job), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "lease_lost or invalid_state", body = ErrorBody)))]
pub async fn fail(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<FailRequest>,
) -> Result<Response, ApiError> {
    let f = failure(req.error, req.retry_in_ms, &st.config().limits, "")?;
    apply_one(
        &st,
        &p.namespace,
        id,
        req.lease_token,
        OutcomeName::Failed,
        AckOutcome::Failed(f),
    )
    .await
}

/// Hand the job back, uncounted.
#[utoipa::path(post, path = "/v1/jobs/{id}/release", tag = "workers",
    params(("id" = String, Path, description = "Job id")),
    request_body = TokenRequest,
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "lease_lost or invalid_state", body = ErrorBody)))]
pub async fn release(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    apply_one(
        &st,
        &p.namespace,
        id,
        req.lease_token,
        OutcomeName::Released,
        AckOutcome::Released,
    )
    .await
}

/// Report that the worker honoured a cancel request.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancelled", tag = "workers",
    params(("id" = String, Path, description = "Job id")),
    request_body = TokenRequest,
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "lease_lost or invalid_state", body = ErrorBody)))]
pub async fn cancelled(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    apply_one(
        &st,
        &p.namespace,
        id,
        req.lease_token,
        OutcomeName::Cancelled,
        AckOutcome::Cancelled,
    )
    .await
}

/// Turns one wire ack into a store ack; any malformed field rejects the whole request.
fn check_ack(
    i: usize,
    item: AckItem,
    limits: &Limits,
    namespace: &str,
) -> Result<(JobAck, OutcomeName), ApiError> {
    let at = |f: &str| format!("acks[{i}].{f}");
    let only_for = |f: &str, what: &str| {
        ApiError::invalid(at(f), format!("{f} is only allowed with outcome {what}"))
    };
    if item.outcome != OutcomeName::Completed && item.result.is_some() {
        return Err(only_for("result", "completed"));
    }
    if item.outcome != OutcomeName::Failed {
        if item.error.is_some() {
            return Err(only_for("error", "failed"));
        }
        if item.retry_in_ms.is_some() {
            return Err(only_for("retry_in_ms", "failed"));
        }
    }
    let outcome = match item.outcome {
        OutcomeName::Completed => AckOutcome::Completed {
            result: check_result(item.result, limits, &at("result"))?,
        },
        OutcomeName::Failed => {
            let error = item
                .error
                .ok_or_else(|| ApiError::invalid(at("error"), "a failed ack needs an error"))?;
            AckOutcome::Failed(failure(
                error,
                item.retry_in_ms,
                limits,
                &format!("acks[{i}]."),
            )?)
        }
        OutcomeName::Released => AckOutcome::Released,
        OutcomeName::Cancelled => AckOutcome::Cancelled,
    };
    Ok((
        JobAck {
            job: JobRef {
                namespace: namespace.to_string(),
                id: item.id,
            },
            lease_token: item.lease_token,
            outcome,
        },
        item.outcome,
    ))
}

/// Report many outcomes at once; each stands alone.
#[utoipa::path(post, path = "/v1/acks", tag = "workers",
    request_body = AcksRequest,
    responses((status = 200, description = "One result per ack, in request order", body = AcksAnswer),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn acks(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JsonBody(req): JsonBody<AcksRequest>,
) -> Result<Response, ApiError> {
    if req.acks.is_empty() || req.acks.len() > MAX_ACKS {
        return Err(ApiError::invalid(
            "acks",
            format!("give 1 to {MAX_ACKS} acks, not {}", req.acks.len()),
        ));
    }
    let limits = &st.config().limits;
    let mut acks = Vec::with_capacity(req.acks.len());
    let mut names = Vec::with_capacity(req.acks.len());
    for (i, item) in req.acks.into_iter().enumerate() {
        let (ack, name) = check_ack(i, item, limits, &p.namespace)?;
        acks.push(ack);
        names.push(name);
    }
    let ids: Vec<JobId> = acks.iter().map(|a| a.job.id).collect();
    let results = st.store().job_ack_many(acks).await?;
    if results.len() != ids.len() {
        return Err(ApiError::internal(format!(
            "job_ack_many returned {} results for {} acks",
            results.len(),
            ids.len()
        )));
    }
    let results = results
        .into_iter()
        .zip(ids)
        .zip(names)
        .map(|((r, id), name)| match r {
            Ok(job) => {
                record(&st, &job, name);
                log_outcome(&job, name);
                AckResult {
                    id,
                    ok: true,
                    error: None,
                }
            }
            Err(e) => AckResult {
                id,
                ok: false,
                error: Some(ApiError::from(e).detail),
            },
        })
        .collect();
    Ok(json_response(StatusCode::OK, &AcksAnswer { results }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo".into(), 2), "h");
        assert_eq!(truncate_utf8("héllo".into(), 3), "hé");
        assert_eq!(truncate_utf8("abc".into(), 10), "abc");
    }

    fn ack_field(json: &str) -> String {
        let req: Result<AcksRequest, _> = crate::body::parse_json(json.as_bytes());
        let err = match req {
            Err(e) => e,
            Ok(r) => {
                let limits = Limits::default();
                let mut err = None;
                for (i, item) in r.acks.into_iter().enumerate() {
                    if let Err(e) = check_ack(i, item, &limits, "default") {
                        err = Some(e);
                        break;
                    }
                }
                err.expect("an error")
            }
        };
        err.detail.field.unwrap_or_default()
    }

    #[test]
    fn malformed_acks_name_the_field() {
        let id = JobId::new();
        let ok = format!(r#"{{"id":"{id}","lease_token":"t","outcome":"completed"}}"#);
        assert_eq!(
            ack_field(&format!(
                r#"{{"acks":[{ok},{{"id":"{id}","lease_token":"t","outcome":"done"}}]}}"#
            )),
            "acks[1].outcome"
        );
        assert_eq!(
            ack_field(&format!(
                r#"{{"acks":[{{"id":"{id}","outcome":"released"}}]}}"#
            )),
            "acks[0].lease_token"
        );
        assert_eq!(
            ack_field(&format!(
                r#"{{"acks":[{ok},{{"id":"{id}","lease_token":"t","outcome":"failed"}}]}}"#
            )),
            "acks[1].error"
        );
        assert_eq!(
            ack_field(&format!(
                r#"{{"acks":[{{"id":"{id}","lease_token":"t","outcome":"released","result":1}}]}}"#
            )),
            "acks[0].result"
        );
        assert_eq!(
            ack_field(r#"{"acks":[{"id":"x","lease_token":"t","outcome":"released"}]}"#),
            "acks[0].id"
        );
    }
}
