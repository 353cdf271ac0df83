//! What the maintenance services ask of the store: promotion of due jobs, rescue of expired
//! leases and timed-out attempts, retention pruning. Each call does a bounded amount of work.
//!
//! Every one is safe to run on two nodes at once (a leader change is never instantaneous):
//! rows are taken with `FOR UPDATE SKIP LOCKED`, and the lifecycle rule is applied to the row
//! as locked, so a job already promoted, rescued or deleted by the other node is left alone.

use hopper_store::{JobPruneParams, StoreError};
use hopper_types::{Job, JobState, Timestamp, lifecycle};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::db_error;
use crate::ops::delete_jobs;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

async fn lock_jobs(
    conn: &mut PgConnection,
    sql: &'static str,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(sql)
        .bind(now.as_millis())
        .bind(limit as i64)
        .fetch_all(conn)
        .await
        .map_err(db_error)?;
    rows.iter().map(decode_job).collect()
}

pub(crate) async fn promote_due(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    limit: usize,
) -> Result<u64, StoreError> {
    let due = lock_jobs(
        conn,
        "SELECT body, lease_ms FROM hopper.jobs
             WHERE state IN ('scheduled', 'retryable') AND available_at <= $1
             ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        ws.now,
        limit,
    )
    .await?;
    let mut n = 0;
    for mut job in due {
        if let Ok(change) = lifecycle::promote(&mut job, ws.now) {
            ws.changed(&job, change, "system:promoter");
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) async fn rescue_expired(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    limit: usize,
) -> Result<Vec<Job>, StoreError> {
    let expired = lock_jobs(
        conn,
        "SELECT body, lease_ms FROM hopper.jobs
             WHERE state = 'running' AND rescue_at <= $1
             ORDER BY rescue_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        ws.now,
        limit,
    )
    .await?;
    let mut rng = rand::rng();
    let mut rescued = Vec::new();
    for mut job in expired {
        if let Ok(change) = lifecycle::rescue(&mut job, ws.now, &mut rng) {
            ws.changed(&job, change, "system:rescuer");
            rescued.push(job);
        }
    }
    Ok(rescued)
}

pub(crate) async fn prune_finished(
    conn: &mut PgConnection,
    p: &JobPruneParams,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for (state, before) in [
        (JobState::Completed, p.completed_before),
        (JobState::Cancelled, p.cancelled_before),
        (JobState::Dead, p.dead_before),
    ] {
        let left = p.limit.saturating_sub(n as usize);
        if left == 0 {
            break;
        }
        // The state is spelled out (a closed set, never user text) so the partial index applies.
        let ids: Vec<Uuid> = // Safe to format: the state is one of a closed set of identifiers, never user text.
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM hopper.jobs j WHERE state = '{}' AND finished_at < $1
               AND CASE WHEN $3::text IS NULL
                   THEN NOT EXISTS (SELECT 1 FROM hopper.queues q WHERE q.namespace = j.namespace
                                    AND q.name = j.queue AND q.custom_retention)
                   ELSE j.namespace = $3 AND j.queue = $4 END
             ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            state.as_str()
        )))
        .bind(before.as_millis())
        .bind(left as i64)
        .bind(p.queue.as_ref().map(|q| q.0.as_str()))
        .bind(p.queue.as_ref().map(|q| q.1.as_str()))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        delete_jobs(conn, &ids).await?;
        n += ids.len() as u64;
    }
    Ok(n)
}

pub(crate) async fn idempotency_key_prune(
    conn: &mut PgConnection,
    before: Timestamp,
    limit: usize,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM hopper.idempotency_keys WHERE (namespace, key) IN (
             SELECT namespace, key FROM hopper.idempotency_keys WHERE created_at < $1
             LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(before.as_millis())
    .bind(limit as i64)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}
