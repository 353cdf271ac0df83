//! Dead letters: the `dead` jobs grouped by queue and last error message, so an operator sees
//! "312 jobs of `emails` died of `SMTP timeout`" rather than 312 rows, and can retry or purge
//! one group at once.
//!
//! Groups are computed on read by paging the store's job list (state `dead`, newest first), up
//! to [`MAX_SCAN`] jobs per call: the store keeps no index by error message, and a bounded
//! scan keeps one call's cost bounded too. An answer built from a cut-off scan says so.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::JobListParams;
use hopper_types::{Job, JobId, JobState, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, CanAdmin, CanRead, Principal};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::QueryPairs;
use crate::routes::audit;
use crate::routes::bulk::{BulkAction, apply_all};
use crate::state::AppState;

/// Most dead jobs one call reads.
pub const MAX_SCAN: usize = 100_000;
/// Most groups one answer lists (the newest); `total_groups` tells how many there were.
pub const MAX_GROUPS: usize = 1000;
/// Sample ids listed per group.
pub const SAMPLE_IDS: usize = 10;
/// Jobs read per store call while scanning (the store's largest page).
const PAGE: usize = crate::routes::jobs::MAX_PAGE;

/// Dead jobs of one queue that died of the same error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterGroup {
    /// The queue.
    pub queue: String,
    /// The message of the jobs' last error, exactly; empty for a job that recorded none.
    pub error: String,
    /// Dead jobs in the group (among those scanned).
    pub count: u64,
    /// When the newest of them died.
    pub latest_at: Timestamp,
    /// Up to 10 of their ids, newest first.
    pub job_ids: Vec<JobId>,
}

/// `GET /v1/dead-letters` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLettersAnswer {
    /// Newest group first (by `latest_at`), at most 1000.
    pub groups: Vec<DeadLetterGroup>,
    /// How many groups the scan found (more than `groups` lists when over 1000).
    pub total_groups: usize,
    /// Dead jobs read.
    pub scanned: usize,
    /// True when the scan stopped at 100,000 jobs: older dead jobs are not counted.
    pub truncated: bool,
}

/// Names one group: `POST /v1/dead-letters/retry` and `/purge` body.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSelector {
    /// The group's queue.
    pub queue: String,
    /// The group's error message, exactly as listed (empty for jobs without an error).
    pub error: String,
}

/// `POST /v1/dead-letters/retry` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetriedAnswer {
    /// Jobs moved back to `available`.
    pub retried: u64,
    /// True when the scan stopped at 100,000 jobs: call again for the rest.
    pub truncated: bool,
}

/// `POST /v1/dead-letters/purge` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurgedAnswer {
    /// Jobs deleted.
    pub purged: u64,
    /// True when the scan stopped at 100,000 jobs: call again for the rest.
    pub truncated: bool,
}

/// The message a dead job is grouped by: its last error's.
fn last_error(job: &Job) -> &str {
    job.errors.last().map_or("", |e| e.message.as_str())
}

/// When a dead job died; `finished_at` is always set on a dead job, the rest is a fallback.
fn died_at(job: &Job) -> Timestamp {
    job.finished_at
        .or_else(|| job.errors.last().map(|e| e.at))
        .unwrap_or(job.created_at)
}

/// Reads dead jobs newest first, at most [`MAX_SCAN`], handing each to `visit`. Returns how
/// many were read and whether the scan was cut off.
async fn scan_dead(
    st: &AppState,
    namespace: &str,
    queue: Option<&str>,
    mut visit: impl FnMut(&Job),
) -> Result<(usize, bool), ApiError> {
    let mut scanned = 0usize;
    let mut before = None;
    loop {
        let limit = PAGE.min(MAX_SCAN - scanned);
        let page = st
            .store()
            .job_list(&JobListParams {
                namespace: namespace.to_string(),
                queue: queue.map(str::to_string),
                states: vec![JobState::Dead],
                kind: None,
                tag: None,
                q: None,
                limit,
                before,
            })
            .await?;
        scanned += page.jobs.len();
        page.jobs.iter().for_each(&mut visit);
        match page.next_cursor {
            None => return Ok((scanned, false)),
            Some(_) if scanned >= MAX_SCAN => return Ok((scanned, true)),
            Some(c) => before = Some(c),
        }
    }
}

/// The `queue` query parameter, checked.
fn queue_param(query: &QueryPairs) -> Result<Option<String>, ApiError> {
    query.only(&["queue"])?;
    let queue = query
        .single("queue")?
        .filter(|q| !q.is_empty())
        .map(str::to_string);
    if let Some(q) = &queue {
        hopper_types::validate_name("queue", q)?;
    }
    Ok(queue)
}

/// Dead jobs grouped by queue and last error message, newest group first.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead-letters",
    params(("queue" = Option<String>, Query, description = "Only this queue")),
    responses((status = 200, body = DeadLettersAnswer), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn list_dead_letters(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let queue = queue_param(&query)?;
    // By queue, then by message: looked up by `&str`, so a job of a known group allocates
    // nothing (a scan may read 100,000 of them).
    let mut groups: HashMap<String, HashMap<String, DeadLetterGroup>> = HashMap::new();
    let (scanned, truncated) = scan_dead(&st, &p.namespace, queue.as_deref(), |job| {
        let error = last_error(job);
        let at = died_at(job);
        if !groups.contains_key(job.queue.as_str()) {
            groups.insert(job.queue.clone(), HashMap::new());
        }
        let Some(by_error) = groups.get_mut(job.queue.as_str()) else {
            return;
        };
        if !by_error.contains_key(error) {
            let group = DeadLetterGroup {
                queue: job.queue.clone(),
                error: error.to_string(),
                count: 0,
                latest_at: at,
                job_ids: Vec::new(),
            };
            by_error.insert(error.to_string(), group);
        }
        let Some(group) = by_error.get_mut(error) else {
            return;
        };
        group.count += 1;
        group.latest_at = group.latest_at.max(at);
        // The scan runs newest id first, so the first ids seen are the newest.
        if group.job_ids.len() < SAMPLE_IDS {
            group.job_ids.push(job.id);
        }
    })
    .await?;
    let mut groups: Vec<DeadLetterGroup> = groups
        .into_values()
        .flat_map(HashMap::into_values)
        .collect();
    groups.sort_by(|a, b| {
        b.latest_at
            .cmp(&a.latest_at)
            .then(b.count.cmp(&a.count))
            .then_with(|| a.queue.cmp(&b.queue))
            .then_with(|| a.error.cmp(&b.error))
    });
    let total_groups = groups.len();
    groups.truncate(MAX_GROUPS);
    let answer = DeadLettersAnswer {
        groups,
        total_groups,
        scanned,
        truncated,
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// The ids of the dead jobs of one group (within the bounded scan), and whether it was cut off.
async fn group_ids(
    st: &AppState,
    p: &Principal,
    sel: &DeadLetterSelector,
) -> Result<(Vec<JobId>, bool), ApiError> {
    hopper_types::validate_name("queue", &sel.queue)?;
    let mut ids = Vec::new();
    let (_, truncated) = scan_dead(st, &p.namespace, Some(&sel.queue), |job| {
        if last_error(job) == sel.error {
            ids.push(job.id);
        }
    })
    .await?;
    Ok((ids, truncated))
}

/// Applies `action` to a group's jobs and counts the ones it was applied to. A job that left
/// the group between the scan and its turn (retried or deleted meanwhile) is refused by the
/// store and simply not counted; any other failure fails the call.
async fn act_on_group(
    st: &AppState,
    p: &Principal,
    sel: &DeadLetterSelector,
    action: BulkAction,
) -> Result<(u64, bool), ApiError> {
    let (ids, truncated) = group_ids(st, p, sel).await?;
    let mut done = 0u64;
    for outcome in apply_all(st, p, action, ids).await {
        match outcome {
            Ok(()) => done += 1,
            Err(e) if e.status() == StatusCode::NOT_FOUND || e.status() == StatusCode::CONFLICT => {
            }
            Err(e) => return Err(e),
        }
    }
    Ok((done, truncated))
}

/// Retry every dead job of one group: back to `available` with `attempt` reset.
#[utoipa::path(post, path = "/v1/dead-letters/retry", tag = "dead-letters",
    request_body = DeadLetterSelector,
    responses((status = 200, body = RetriedAnswer), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn retry_dead_letters(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(sel): JsonBody<DeadLetterSelector>,
) -> Result<Response, ApiError> {
    let (retried, truncated) = act_on_group(&st, &p, &sel, BulkAction::Retry).await?;
    let details = serde_json::json!({"selector": sel, "retried": retried});
    audit::record(&st, &p, "dead_letters.retry", &sel.queue, details).await;
    Ok(json_response(
        StatusCode::OK,
        &RetriedAnswer { retried, truncated },
    ))
}

/// Delete every dead job of one group.
#[utoipa::path(post, path = "/v1/dead-letters/purge", tag = "dead-letters",
    request_body = DeadLetterSelector,
    responses((status = 200, body = PurgedAnswer), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn purge_dead_letters(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(sel): JsonBody<DeadLetterSelector>,
) -> Result<Response, ApiError> {
    let (purged, truncated) = act_on_group(&st, &p, &sel, BulkAction::Delete).await?;
    let details = serde_json::json!({"selector": sel, "purged": purged});
    audit::record(&st, &p, "dead_letters.purge", &sel.queue, details).await;
    Ok(json_response(
        StatusCode::OK,
        &PurgedAnswer { purged, truncated },
    ))
}
