//! Producer endpoints: enqueue one or many jobs, read, list and search them, cancel, retry and
//! delete them, and read a job's transition events.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hopper_store::{Inserted, JobInsertParams, JobListParams, JobRef};
use hopper_types::{EnqueueRequest, Job, JobEvent, JobId, JobState, NewJob};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, CanAdmin, CanCancel, CanEnqueue, CanRead};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::{JobIdPath, QueryPairs};
use crate::routes::audit;
use crate::state::AppState;
use crate::trace_context::{self, TraceParentHeader, job_trace_id};

/// Recorded as the actor of changes made through these endpoints.
const ACTOR: &str = "api";

/// Most jobs in one batch enqueue.
pub const MAX_BATCH: usize = 1000;
/// Largest page of a list (`GET /v1/jobs`, `GET /v1/workflows`).
pub const MAX_PAGE: usize = 500;
/// Page size when `limit` is absent.
pub const DEFAULT_PAGE: usize = 50;

/// A body that must be empty or `{}`: the optional bodies of cancel, retry, pause, resume.
/// Any field is refused, so a client that thinks it passes an option learns it does not.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `POST /v1/jobs/batch` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1..1000 jobs, stored all or none.
    pub jobs: Vec<EnqueueRequest>,
}

/// One enqueue result: the job, or for a duplicate whose job was already deleted or pruned (its
/// key outlives it), just the id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Enqueued {
    /// The created job, or the existing one with `"duplicate": true`.
    Job(Box<Job>),
    /// The key matched a job that no longer exists.
    Forgotten {
        /// The id of the job the key created.
        id: JobId,
        /// Always true.
        duplicate: bool,
    },
}

/// `POST /v1/jobs/batch` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// In request order.
    pub jobs: Vec<Enqueued>,
}

/// `GET /v1/jobs` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPageAnswer {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/jobs/{id}/events` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventsAnswer {
    /// Oldest first.
    pub events: Vec<JobEvent>,
}

fn answer_of(st: &AppState, ins: Inserted) -> Enqueued {
    match ins.job {
        Some(mut job) => {
            if ins.duplicate {
                job.duplicate = Some(true);
            } else {
                st.metrics().job_enqueued(&job);
            }
            Enqueued::Job(Box::new(job.without_token()))
        }
        None => Enqueued::Forgotten {
            id: ins.id,
            duplicate: true,
        },
    }
}

/// The debug line of one enqueued job (a duplicate's key matched an existing job).
fn log_enqueued(answer: &Enqueued) {
    match answer {
        Enqueued::Job(job) => tracing::debug!(
            job_id = %job.id,
            trace_id = job_trace_id(job),
            queue = %job.queue,
            kind = %job.kind,
            duplicate = job.duplicate.unwrap_or(false),
            "job enqueued"
        ),
        Enqueued::Forgotten { id, .. } => {
            tracing::debug!(job_id = %id, duplicate = true, "job enqueued")
        }
    }
}

/// Enqueue one job.
#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body = EnqueueRequest,
    responses(
        (status = 201, description = "Created", body = Job),
        (status = 200, description = "The idempotency key matched an existing job (`duplicate: true`)", body = Enqueued),
        (status = 400, body = ErrorBody), (status = 409, description = "idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn enqueue(
    State(st): State<AppState>,
    Authorized(p, _): CanEnqueue,
    TraceParentHeader(header): TraceParentHeader,
    JsonBody(mut req): JsonBody<EnqueueRequest>,
) -> Result<Response, ApiError> {
    trace_context::adopt(&mut req.traceparent, header.as_ref());
    let new = req.validate(&p.namespace, &st.config().limits)?;
    st.quotas().admit(&p.namespace, 1).await?;
    let mut inserted = st
        .store()
        .job_insert_many(JobInsertParams {
            jobs: vec![new],
            actor: ACTOR.to_string(),
        })
        .await?;
    let ins = inserted
        .pop()
        .ok_or_else(|| ApiError::internal("job_insert_many returned no result for one job"))?;
    let status = if ins.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let answer = answer_of(&st, ins);
    if let Enqueued::Job(job) = &answer {
        trace_context::record_job(job);
    }
    log_enqueued(&answer);
    Ok(json_response(status, &answer))
}

/// Enqueue up to 1000 jobs atomically.
#[utoipa::path(post, path = "/v1/jobs/batch", tag = "jobs",
    request_body = BatchRequest,
    responses(
        (status = 201, description = "Every job stored (duplicates marked)", body = BatchAnswer),
        (status = 400, body = ErrorBody), (status = 409, description = "idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn enqueue_batch(
    State(st): State<AppState>,
    Authorized(p, _): CanEnqueue,
    TraceParentHeader(header): TraceParentHeader,
    JsonBody(mut req): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    if let Some(tp) = &header {
        for job in &mut req.jobs {
            trace_context::adopt(&mut job.traceparent, Some(tp));
        }
    }
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "jobs",
            format!(
                "a batch holds 1 to {MAX_BATCH} jobs, not {}",
                req.jobs.len()
            ),
        ));
    }
    let limits = &st.config().limits;
    let mut jobs: Vec<NewJob> = Vec::with_capacity(req.jobs.len());
    for (i, r) in req.jobs.into_iter().enumerate() {
        jobs.push(
            r.validate(&p.namespace, limits)
                .map_err(|e| e.under(&format!("jobs[{i}]")))?,
        );
    }
    // The store needs keys unique within one insert, and a repeated key in one batch is almost
    // certainly a client bug: refuse it rather than guess which job was meant.
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        if let Some(k) = j.idempotency_key.as_deref()
            && let Some(first) = first_with_key.insert(k, i)
        {
            return Err(ApiError::invalid(
                format!("jobs[{i}].idempotency_key"),
                format!("idempotency key repeats the one of jobs[{first}] in the same batch"),
            ));
        }
    }
    let count = jobs.len();
    st.quotas().admit(&p.namespace, count).await?;
    let inserted = st
        .store()
        .job_insert_many(JobInsertParams {
            jobs,
            actor: ACTOR.to_string(),
        })
        .await
        .map_err(ApiError::from_store_in_batch)?;
    if inserted.len() != count {
        return Err(ApiError::internal(format!(
            "job_insert_many returned {} results for {count} jobs",
            inserted.len()
        )));
    }
    let jobs: Vec<Enqueued> = inserted.into_iter().map(|i| answer_of(&st, i)).collect();
    for answer in &jobs {
        log_enqueued(answer);
    }
    Ok(json_response(StatusCode::CREATED, &BatchAnswer { jobs }))
}

/// One job, with its errors, result and progress.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let job = st
        .store()
        .job_get(&JobRef {
            namespace: p.namespace.clone(),
            id,
        })
        .await?;
    Ok(json_response(StatusCode::OK, &job.without_token()))
}

/// List and search jobs, newest first, keyset-paged by id.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(
        ("queue" = Option<String>, Query, description = "Only this queue"),
        ("state" = Option<Vec<JobState>>, Query, description = "Only these states (repeatable, or comma-separated)"),
        ("kind" = Option<String>, Query, description = "Only this kind"),
        ("tag" = Option<String>, Query, description = "Only jobs with this tag"),
        ("q" = Option<String>, Query, description = "Substring of kind, id or a tag"),
        ("limit" = Option<usize>, Query, description = "1..500, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = JobPageAnswer), (status = 400, body = ErrorBody)))]
pub async fn list_jobs(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let params = list_params(&query, &p.namespace)?;
    let page = st.store().job_list(&params).await?;
    let answer = JobPageAnswer {
        jobs: page.jobs.into_iter().map(Job::without_token).collect(),
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// Turns the query of `GET /v1/jobs` into store parameters, naming any bad parameter.
fn list_params(query: &QueryPairs, namespace: &str) -> Result<JobListParams, ApiError> {
    query.only(&["queue", "state", "kind", "tag", "q", "limit", "cursor"])?;
    let queue = query.single("queue")?.map(str::to_string);
    if let Some(q) = &queue {
        hopper_types::validate_name("queue", q)?;
    }
    let kind = query.single("kind")?.map(str::to_string);
    if let Some(k) = &kind {
        hopper_types::validate_name("kind", k)?;
    }
    let mut states = Vec::new();
    for s in query.all("state").flat_map(|v| v.split(',')) {
        let st: JobState = s
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("state", format!("`{s}` is not a job state")))?;
        if !states.contains(&st) {
            states.push(st);
        }
    }
    let (limit, before) = query.page(DEFAULT_PAGE, MAX_PAGE)?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        Ok(query
            .single(key)?
            .filter(|v| !v.is_empty())
            .map(str::to_string))
    };
    Ok(JobListParams {
        namespace: namespace.to_string(),
        queue,
        states,
        kind,
        tag: text("tag")?,
        q: text("q")?,
        limit,
        before,
    })
}

/// Cancel a waiting job at once, or flag a running one.
#[utoipa::path(post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)))]
pub async fn cancel_job(
    State(st): State<AppState>,
    Authorized(p, _): CanCancel,
    JobIdPath(id): JobIdPath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let job = st
        .store()
        .job_cancel(
            &JobRef {
                namespace: p.namespace.clone(),
                id,
            },
            ACTOR,
        )
        .await?;
    if job.state == JobState::Cancelled {
        st.metrics().job_cancelled(&job);
    }
    let details = serde_json::json!({"state": job.state});
    audit::record(&st, &p, "job.cancel", &id.to_string(), details).await;
    Ok(json_response(StatusCode::OK, &job.without_token()))
}

/// Retry a finished job from scratch, or run a waiting one now.
#[utoipa::path(post, path = "/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)))]
pub async fn retry_job(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JobIdPath(id): JobIdPath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let job = st
        .store()
        .job_retry(
            &JobRef {
                namespace: p.namespace.clone(),
                id,
            },
            ACTOR,
        )
        .await?;
    let details = serde_json::json!({"state": job.state});
    audit::record(&st, &p, "job.retry", &id.to_string(), details).await;
    Ok(json_response(StatusCode::OK, &job.without_token()))
}

/// Delete a finished job.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody), (status = 409, description = "invalid_state", body = ErrorBody)))]
pub async fn delete_job(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    st.store()
        .job_delete(&JobRef {
            namespace: p.namespace.clone(),
            id,
        })
        .await?;
    audit::record(
        &st,
        &p,
        "job.delete",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Why a job is not running (yet): every reason that holds it back, in plain words and with
/// the figures behind it, or where it stands in line.
#[utoipa::path(get, path = "/v1/jobs/{id}/explain", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = crate::explain::Explanation), (status = 404, body = ErrorBody)))]
pub async fn explain_job(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let wait = st
        .store()
        .job_explain(&JobRef {
            namespace: p.namespace.clone(),
            id,
        })
        .await?;
    let now = st.store().clock().now();
    let last_poll = st
        .workers()
        .last_poll(&wait.job.namespace, &wait.job.queue, now);
    let answer = crate::explain::explain(&wait, now, last_poll);
    Ok(json_response(StatusCode::OK, &answer))
}

/// A job's recorded transitions, oldest first.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = EventsAnswer), (status = 404, body = ErrorBody)))]
pub async fn job_events(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    trace_context::record_job_id(id);
    let events = st
        .store()
        .job_events(&JobRef {
            namespace: p.namespace.clone(),
            id,
        })
        .await?;
    Ok(json_response(StatusCode::OK, &EventsAnswer { events }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> QueryPairs {
        QueryPairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn bad(pairs: &[(&str, &str)]) -> String {
        list_params(&q(pairs), "default")
            .unwrap_err()
            .detail
            .field
            .unwrap_or_default()
    }

    #[test]
    fn list_query_is_checked() {
        let p = list_params(
            &q(&[
                ("state", "dead"),
                ("state", "retryable,dead"),
                ("limit", "7"),
            ]),
            "default",
        )
        .unwrap();
        assert_eq!(p.states, vec![JobState::Dead, JobState::Retryable]);
        assert_eq!(p.limit, 7);
        assert_eq!(list_params(&q(&[]), "default").unwrap().limit, DEFAULT_PAGE);
        assert_eq!(bad(&[("cursor", "nope")]), "cursor");
        assert_eq!(bad(&[("limit", "0")]), "limit");
        assert_eq!(bad(&[("limit", "501")]), "limit");
        assert_eq!(bad(&[("state", "done")]), "state");
        assert_eq!(bad(&[("queue", "a b")]), "queue");
        assert_eq!(bad(&[("limt", "5")]), "limt");
        assert_eq!(bad(&[("limit", "5"), ("limit", "6")]), "limit");
    }
}
