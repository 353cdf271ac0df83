//! The facts behind `GET /v1/jobs/{id}/explain`: the job, its queue as a lease would see it,
//! and how many available jobs lease before it. Read-only, on a reader connection.

use hopper_store::lease_plan::FlowSnapshot;
use hopper_store::{JobRef, JobWait, MAX_AHEAD_COUNTED, StoreError};
use hopper_types::{JobState, QueuePolicy, Timestamp};
use rusqlite::{Connection, params};

use crate::ops::flow;
use crate::ops::read;
use crate::rows::sql_error;

pub(crate) fn explain(
    conn: &Connection,
    r: &JobRef,
    now: Timestamp,
) -> Result<JobWait, StoreError> {
    let job = read::get(conn, r)?;
    let config = flow::load_config(conn, &job.namespace, &job.queue)?;
    let mut snap: FlowSnapshot = flow::snapshot(conn, &job.namespace, &job.queue, config, now)?;
    // Only the job's own key matters to it.
    let key = job.concurrency_key.clone().unwrap_or_default();
    snap.running_by_key.retain(|k, _| *k == key);
    snap.key_buckets.retain(|k, _| *k == key);
    let ahead = if job.state == JobState::Available {
        ahead(conn, &job, snap.config.policy)?
    } else {
        0
    };
    Ok(JobWait {
        job,
        flow: snap,
        ahead,
    })
}

/// Available jobs that lease before `job` in its queue's order (within its fairness key in
/// a fair queue), counted up to [`MAX_AHEAD_COUNTED`].
fn ahead(
    conn: &Connection,
    job: &hopper_types::Job,
    policy: QueuePolicy,
) -> Result<u64, StoreError> {
    let fair = policy == QueuePolicy::Fair;
    let est = "coalesce(estimated_ms, 9223372036854775807)";
    // The lease order as one condition: priority, then (shortest first) the estimate, then
    // age, then id.
    let tail = "(available_at < ?5 OR (available_at = ?5 AND id < ?6))";
    let after_priority = if policy == QueuePolicy::ShortestFirst {
        format!("({est} < ?7 OR ({est} = ?7 AND {tail}))")
    } else {
        format!("(?7 = ?7 AND {tail})")
    };
    let key_filter = if fair {
        "AND fairness_key = ?8"
    } else {
        "AND ?8 = ?8"
    };
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM jobs
          WHERE namespace = ?1 AND queue = ?2 AND state = 'available' {key_filter}
            AND (priority > ?4 OR (priority = ?4 AND {after_priority}))
          LIMIT ?3)"
    );
    let n: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(
                params![
                    job.namespace,
                    job.queue,
                    MAX_AHEAD_COUNTED as i64,
                    job.priority,
                    job.available_at.as_millis(),
                    job.id.to_string(),
                    job.estimated_ms.unwrap_or(i64::MAX),
                    job.fairness_key.clone().unwrap_or_default(),
                ],
                |r| r.get(0),
            )
        })
        .map_err(sql_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
