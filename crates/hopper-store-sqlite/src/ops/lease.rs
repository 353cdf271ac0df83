//! Leasing: the head of each listed queue, merged into one order (priority, then
//! available_at, then id), as if the queues were one.

use hopper_store::{JobLeaseParams, StoreError};
use hopper_types::{Job, lifecycle};
use rusqlite::{OptionalExtension, params};

use crate::rows::{decode_job_at, sql_error, update_row};
use crate::writer::WriteCtx;

/// A lease candidate: its ordering key and the job itself (read in the same index walk, so
/// leasing needs no second lookup per job).
struct Candidate {
    priority: i64,
    available_at: i64,
    id: String,
    job: Job,
    seq: i64,
}

pub(crate) fn queue_paused(
    conn: &rusqlite::Connection,
    namespace: &str,
    queue: &str,
) -> Result<bool, StoreError> {
    let paused: Option<bool> = conn
        .prepare_cached("SELECT paused FROM queues WHERE namespace = ?1 AND name = ?2")
        .and_then(|mut s| {
            s.query_row(params![namespace, queue], |r| r.get(0))
                .optional()
        })
        .map_err(sql_error)?;
    Ok(paused.unwrap_or(false))
}

pub(crate) fn lease_many(
    ctx: &mut WriteCtx<'_>,
    p: JobLeaseParams,
) -> Result<Vec<Job>, StoreError> {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut queues = p.queues.clone();
    queues.sort();
    queues.dedup();
    for queue in &queues {
        if queue_paused(ctx.conn, &p.namespace, queue)? {
            continue;
        }
        // One indexed range read per queue, each at most max_jobs long: the merge below then
        // costs O(queues × max_jobs) however deep the queues are.
        let mut stmt = ctx
            .conn
            .prepare_cached(
                "SELECT priority, available_at, id, body, lease_ms, seq FROM jobs
                 WHERE namespace = ?1 AND queue = ?2 AND state = 'available'
                 ORDER BY priority DESC, available_at, id LIMIT ?3",
            )
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(params![p.namespace, queue, p.max_jobs as i64], |r| {
                Ok(Candidate {
                    priority: r.get(0)?,
                    available_at: r.get(1)?,
                    id: r.get(2)?,
                    job: decode_job_at(r, 3)?,
                    seq: r.get(5)?,
                })
            })
            .map_err(sql_error)?;
        for row in rows {
            candidates.push(row.map_err(sql_error)?);
        }
    }
    if queues.len() > 1 {
        candidates.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.available_at.cmp(&b.available_at))
                .then_with(|| a.id.cmp(&b.id))
        });
    }
    candidates.truncate(p.max_jobs);

    let actor = format!("worker:{}", p.worker_id);
    let mut leased = Vec::with_capacity(candidates.len());
    for c in candidates {
        let mut job = c.job;
        let change = lifecycle::lease(&mut job, ctx.now, &p.worker_id, p.lease_ms)?;
        update_row(ctx.conn, c.seq, &job)?;
        ctx.record(&job, change, &actor)?;
        leased.push(job);
    }
    Ok(leased)
}
