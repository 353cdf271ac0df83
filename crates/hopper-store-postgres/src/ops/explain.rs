//! The facts behind `GET /v1/jobs/{id}/explain`: the job, its queue as a lease would see it,
//! and how many available jobs lease before it. Read-only, no locks.

use hopper_store::{JobRef, JobWait, MAX_AHEAD_COUNTED, StoreError};
use hopper_types::{Job, JobState, QueuePolicy, Timestamp};
use sqlx::PgConnection;

use crate::error::db_error;
use crate::ops::{flow, read};

pub(crate) async fn explain(
    conn: &mut PgConnection,
    r: &JobRef,
    now: Timestamp,
) -> Result<JobWait, StoreError> {
    let job = read::get(conn, r).await?;
    let config = flow::load_config(conn, &job.namespace, &job.queue, false).await?;
    let mut snap = flow::snapshot(conn, &job.namespace, &job.queue, config, now).await?;
    // Only the job's own key matters to it.
    let key = job.concurrency_key.clone().unwrap_or_default();
    snap.running_by_key.retain(|k, _| *k == key);
    snap.key_buckets.retain(|k, _| *k == key);
    let ahead = if job.state == JobState::Available {
        ahead(conn, &job, snap.config.policy).await?
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
async fn ahead(conn: &mut PgConnection, job: &Job, policy: QueuePolicy) -> Result<u64, StoreError> {
    let est = "coalesce(estimated_ms, 9223372036854775807)";
    let tail = "(available_at < $5 OR (available_at = $5 AND id < $6))";
    let after_priority = if policy == QueuePolicy::ShortestFirst {
        format!("({est} < $7 OR ({est} = $7 AND {tail}))")
    } else {
        format!("($7::bigint IS NOT NULL AND {tail})")
    };
    let key_filter = if policy == QueuePolicy::Fair {
        "AND fairness_key = $8"
    } else {
        "AND $8::text IS NOT NULL"
    };
    // Safe to format: every piece is a fixed text chosen above.
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM (SELECT 1 FROM hopper.jobs
          WHERE namespace = $1 AND queue = $2 AND state = 'available' {key_filter}
            AND (priority > $4 OR (priority = $4 AND {after_priority}))
          LIMIT $3) t"
    )))
    .bind(&job.namespace)
    .bind(&job.queue)
    .bind(MAX_AHEAD_COUNTED as i64)
    .bind(job.priority)
    .bind(job.available_at.as_millis())
    .bind(job.id.0)
    .bind(job.estimated_ms.unwrap_or(i64::MAX))
    .bind(job.fairness_key.clone().unwrap_or_default())
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
