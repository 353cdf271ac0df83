//! Leasing: the head of each listed queue, merged into one order (priority, then
//! available_at, then id), as if the queues were one.
//!
//! Each queue's head is read with `FOR UPDATE SKIP LOCKED` along the partial index of
//! available jobs, so concurrent leases on any number of nodes take disjoint jobs without
//! waiting for each other, and cost stays flat however deep the queue is.

use hopper_store::{JobLeaseParams, StoreError};
use hopper_types::{Job, lifecycle};
use sqlx::{PgConnection, Row};

use crate::error::db_error;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

pub(crate) async fn lease_many(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: JobLeaseParams,
) -> Result<Vec<Job>, StoreError> {
    let mut queues = p.queues.clone();
    queues.sort();
    queues.dedup();
    let mut candidates: Vec<(i32, i64, Job)> = Vec::new();
    for queue in &queues {
        // One indexed range read per queue, each at most max_jobs long. Rows this call locks
        // but does not lease (a multi-queue merge) are released at commit, untouched.
        let rows = sqlx::query(
            "SELECT body, lease_ms, priority, available_at FROM hopper.jobs
             WHERE namespace = $1 AND queue = $2 AND state = 'available'
               AND NOT EXISTS (SELECT 1 FROM hopper.queues
                               WHERE namespace = $1 AND name = $2 AND paused)
             ORDER BY priority DESC, available_at, id
             LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(&p.namespace)
        .bind(queue)
        .bind(p.max_jobs as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for row in &rows {
            candidates.push((
                row.try_get(2).map_err(db_error)?,
                row.try_get(3).map_err(db_error)?,
                decode_job(row)?,
            ));
        }
    }
    if queues.len() > 1 {
        candidates.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(a.1.cmp(&b.1))
                .then_with(|| a.2.id.cmp(&b.2.id))
        });
    }
    candidates.truncate(p.max_jobs);

    let actor = format!("worker:{}", p.worker_id);
    let mut leased = Vec::with_capacity(candidates.len());
    for (_, _, mut job) in candidates {
        let change = lifecycle::lease(&mut job, ws.now, &p.worker_id, p.lease_ms)?;
        ws.changed(&job, change, &actor);
        leased.push(job);
    }
    Ok(leased)
}
