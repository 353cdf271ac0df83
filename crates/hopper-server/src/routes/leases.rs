//! `POST /v1/leases`: workers lease jobs, waiting up to `wait_ms` for one to arrive.
//!
//! The wait is driven by the store's [`hopper_store::QueueSignals`], never by a polling
//! interval: the listener is armed *before* each attempt to lease, so an enqueue that commits
//! between "found nothing" and "wait" still wakes us, and an idle worker gets a new job within
//! milliseconds. Shutdown ends every wait at once with an empty answer.
//!
//! Each leased job keeps its `traceparent` in the answer (the worker's handler span continues
//! it), and with a trace exporter installed gets a `job.queue_wait` span in its trace.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::JobLeaseParams;
use std::collections::{BTreeMap, HashMap};

use hopper_types::{Job, JobId, JobState, validate_name};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::auth::{Authorized, CanWork};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, json_response};
use crate::state::AppState;
use crate::trace_context::{self, job_trace_id};

/// Most queues one lease request may name.
pub const MAX_QUEUES: usize = 100;
/// Most jobs one lease request may take.
pub const MAX_JOBS: i64 = 1000;
/// Shortest lease.
pub const MIN_LEASE_MS: i64 = 200;
/// Longest lease: 1 hour.
pub const MAX_LEASE_MS: i64 = 3_600_000;
/// Lease length when none is given.
pub const DEFAULT_LEASE_MS: i64 = 30_000;
/// Longest long poll.
pub const MAX_WAIT_MS: i64 = 60_000;
/// Longest worker id.
pub const MAX_WORKER_ID_CHARS: usize = 256;

/// `POST /v1/leases` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// 1..100 queue names, served as one in priority order.
    pub queues: Vec<String>,
    /// Who leases: recorded on the job and listed by `GET /v1/workers`.
    pub worker_id: String,
    /// 1..1000, default 1.
    pub max_jobs: Option<i64>,
    /// 200..3,600,000, default 30,000.
    pub lease_ms: Option<i64>,
    /// 0..60,000, default 0: how long to wait for a job when none is available.
    pub wait_ms: Option<i64>,
}

/// `POST /v1/leases` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeaseAnswer {
    /// The leased jobs, each with its `lease_token`, `lease_seq` and `lease_expires_at`, and
    /// for a workflow step with parents, what they left it.
    pub jobs: Vec<LeasedJob>,
}

/// A leased job. A workflow step with dependencies also carries `parents`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LeasedJob {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// For a workflow step: each parent's result by step name (`null` for a parent that
    /// returned none, or that failed under a policy that let this step run).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parents: Option<BTreeMap<String, Option<Box<RawValue>>>>,
    /// For a workflow step whose parents include failed ones (under `continue` or `ignore`):
    /// how each of them ended, by step name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_parents: Option<BTreeMap<String, FailedParent>>,
}

/// How a failed parent of a step ended.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FailedParent {
    /// `dead` or `cancelled`.
    pub state: JobState,
    /// Its last error, if any.
    pub error: Option<String>,
}

/// A lease request that passed validation.
#[derive(Debug, Clone)]
struct Checked {
    params: JobLeaseParams,
    wait: Duration,
}

fn check(req: LeaseRequest, namespace: &str) -> Result<Checked, ApiError> {
    if req.queues.is_empty() || req.queues.len() > MAX_QUEUES {
        return Err(ApiError::invalid(
            "queues",
            format!("give 1 to {MAX_QUEUES} queues"),
        ));
    }
    let mut queues: Vec<String> = Vec::with_capacity(req.queues.len());
    for (i, q) in req.queues.into_iter().enumerate() {
        validate_name(&format!("queues[{i}]"), &q)?;
        if !queues.contains(&q) {
            queues.push(q);
        }
    }
    if req.worker_id.trim().is_empty() || req.worker_id.chars().count() > MAX_WORKER_ID_CHARS {
        return Err(ApiError::invalid(
            "worker_id",
            format!("worker_id must be 1 to {MAX_WORKER_ID_CHARS} characters"),
        ));
    }
    let in_range = |field: &str, v: Option<i64>, default: i64, min: i64, max: i64| match v {
        None => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be between {min} and {max}"),
        )),
    };
    let max_jobs = in_range("max_jobs", req.max_jobs, 1, 1, MAX_JOBS)?;
    let lease_ms = in_range(
        "lease_ms",
        req.lease_ms,
        DEFAULT_LEASE_MS,
        MIN_LEASE_MS,
        MAX_LEASE_MS,
    )?;
    let wait_ms = in_range("wait_ms", req.wait_ms, 0, 0, MAX_WAIT_MS)?;
    Ok(Checked {
        params: JobLeaseParams {
            namespace: namespace.to_string(),
            queues,
            worker_id: req.worker_id,
            // Both within 1..=1000 / 0..=60000 after the checks above.
            max_jobs: usize::try_from(max_jobs).unwrap_or(1),
            lease_ms,
        },
        wait: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
    })
}

/// Lease jobs, long-polling up to `wait_ms` when none is available.
#[utoipa::path(post, path = "/v1/leases", tag = "workers",
    request_body = LeaseRequest,
    responses(
        (status = 200, description = "Leased jobs (possibly none after wait_ms)", body = LeaseAnswer),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn lease(
    State(st): State<AppState>,
    Authorized(p, _): CanWork,
    JsonBody(req): JsonBody<LeaseRequest>,
) -> Result<Response, ApiError> {
    let Checked { params, wait } = check(req, &p.namespace)?;
    let jobs = lease_or_wait(&st, &params, wait).await?;
    let now = st.store().clock().now();
    st.workers().leased(
        &params.namespace,
        &params.worker_id,
        &params.queues,
        &jobs,
        now,
    );
    for j in &jobs {
        st.metrics().job_leased(j);
    }
    for j in &jobs {
        tracing::debug!(
            job_id = %j.id,
            trace_id = job_trace_id(j),
            queue = %j.queue,
            kind = %j.kind,
            attempt = j.attempt,
            worker_id = %params.worker_id,
            "job leased"
        );
        trace_context::record_queue_wait(j);
    }
    let jobs = with_parents(&st, &params.namespace, jobs).await?;
    Ok(json_response(StatusCode::OK, &LeaseAnswer { jobs }))
}

/// Attaches to each leased workflow step what its parents left it. Ordinary jobs cost nothing;
/// a batch with steps costs one store read.
async fn with_parents(
    st: &AppState,
    namespace: &str,
    jobs: Vec<Job>,
) -> Result<Vec<LeasedJob>, ApiError> {
    let steps: Vec<JobId> = jobs
        .iter()
        .filter(|j| {
            j.workflow
                .as_ref()
                .is_some_and(|w| !w.depends_on.is_empty())
        })
        .map(|j| j.id)
        .collect();
    let mut by_child: HashMap<JobId, Vec<Job>> = HashMap::new();
    if !steps.is_empty() {
        for (child, parent) in st.store().workflow_parents(namespace, &steps).await? {
            by_child.entry(child).or_default().push(parent);
        }
    }
    Ok(jobs
        .into_iter()
        .map(|job| {
            let Some(parents) = by_child.remove(&job.id) else {
                return LeasedJob {
                    job,
                    parents: None,
                    failed_parents: None,
                };
            };
            let mut results = BTreeMap::new();
            let mut failed = BTreeMap::new();
            for p in parents {
                let Some(step) = p.workflow.as_ref().map(|w| w.step.clone()) else {
                    continue;
                };
                if p.state != JobState::Completed {
                    failed.insert(
                        step.clone(),
                        FailedParent {
                            state: p.state,
                            error: p.errors.last().map(|e| e.message.clone()),
                        },
                    );
                }
                results.insert(step, p.result);
            }
            LeasedJob {
                job,
                parents: Some(results),
                failed_parents: (!failed.is_empty()).then_some(failed),
            }
        })
        .collect())
}

/// Tries to lease; while nothing is found, waits for a wake-up of one of the queues, the
/// deadline, or shutdown, whichever comes first.
async fn lease_or_wait(
    st: &AppState,
    params: &JobLeaseParams,
    wait: Duration,
) -> Result<Vec<Job>, ApiError> {
    let store = st.store();
    let deadline = tokio::time::Instant::now() + wait;
    let listener = store.signals().listen(&params.namespace, &params.queues);
    loop {
        let (found, woken) = listener
            .wait_after(|| store.job_lease_many(params.clone()))
            .await;
        let jobs = found?;
        if !jobs.is_empty() || wait.is_zero() || st.shutdown().is_shutting_down() {
            return Ok(jobs);
        }
        // A rate-limited queue says when its next token comes: look again then, as well as
        // on any wake-up (no polling in between).
        let token = store
            .signals()
            .held_until(&params.namespace, &params.queues)
            .map(|at| {
                let ms = at.millis_since(store.clock().now()).max(1);
                tokio::time::Instant::now() + Duration::from_millis(ms.unsigned_abs())
            })
            .filter(|at| *at < deadline);
        tokio::select! {
            _ = woken => {}
            _ = sleep_until_some(token) => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            _ = st.shutdown().wait() => return Ok(Vec::new()),
        }
    }
}

/// Sleeps until `at`, or forever when there is no such time.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<Checked, ApiError> {
        check(crate::body::parse_json(json.as_bytes())?, "default")
    }

    fn field(json: &str) -> String {
        req(json).unwrap_err().detail.field.unwrap_or_default()
    }

    #[test]
    fn defaults_and_ranges() {
        let c = req(r#"{"queues":["a","a","b"],"worker_id":"w"}"#).unwrap();
        assert_eq!(c.params.queues, vec!["a", "b"]);
        assert_eq!(
            (c.params.max_jobs, c.params.lease_ms),
            (1, DEFAULT_LEASE_MS)
        );
        assert!(c.wait.is_zero());
        assert_eq!(field(r#"{"queues":[],"worker_id":"w"}"#), "queues");
        assert_eq!(
            field(r#"{"queues":["ok","b d"],"worker_id":"w"}"#),
            "queues[1]"
        );
        assert_eq!(field(r#"{"queues":["a"],"worker_id":""}"#), "worker_id");
        assert_eq!(field(r#"{"queues":["a"]}"#), "worker_id");
        assert_eq!(
            field(r#"{"queues":["a"],"worker_id":"w","max_jobs":0}"#),
            "max_jobs"
        );
        assert_eq!(
            field(r#"{"queues":["a"],"worker_id":"w","max_jobs":1001}"#),
            "max_jobs"
        );
        assert_eq!(
            field(r#"{"queues":["a"],"worker_id":"w","lease_ms":199}"#),
            "lease_ms"
        );
        assert_eq!(
            field(r#"{"queues":["a"],"worker_id":"w","wait_ms":60001}"#),
            "wait_ms"
        );
        assert_eq!(
            field(r#"{"queues":["a"],"worker_id":"w","wait":5}"#),
            "wait"
        );
        let many: Vec<String> = (0..101).map(|i| format!("\"q{i}\"")).collect();
        assert_eq!(
            field(&format!(
                r#"{{"queues":[{}],"worker_id":"w"}}"#,
                many.join(",")
            )),
            "queues"
        );
    }
}
