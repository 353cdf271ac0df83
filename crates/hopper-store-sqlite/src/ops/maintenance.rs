//! What the maintenance services ask of the store: promotion of due jobs, rescue of expired
//! leases and timed-out attempts, retention pruning. Each call does a bounded amount of work
//! so it never holds the writer for long; the services call again while there is more.

use hopper_store::{JobPruneParams, StoreError};
use hopper_types::{Job, JobState, Timestamp, lifecycle};
use rusqlite::params;

use crate::ops::admin::delete_rows;
use crate::rows::{load_job_any_ns, sql_error, update_job};
use crate::writer::WriteCtx;

fn ids(ctx: &WriteCtx<'_>, sql: &str, p: impl rusqlite::Params) -> Result<Vec<String>, StoreError> {
    let mut stmt = ctx.conn.prepare_cached(sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(p, |r| r.get::<_, String>(0))
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub(crate) fn promote_due(ctx: &mut WriteCtx<'_>, limit: usize) -> Result<u64, StoreError> {
    let due = ids(
        ctx,
        "SELECT id FROM jobs WHERE state IN ('scheduled', 'retryable') AND available_at <= ?1
         ORDER BY available_at LIMIT ?2",
        params![ctx.now.as_millis(), limit as i64],
    )?;
    let mut n = 0;
    for id in due {
        let Some(mut job) = load_job_any_ns(ctx.conn, &id)? else {
            continue;
        };
        if let Ok(change) = lifecycle::promote(&mut job, ctx.now) {
            update_job(ctx.conn, &job)?;
            ctx.record(&job, change, "system:promoter")?;
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) fn rescue_expired(ctx: &mut WriteCtx<'_>, limit: usize) -> Result<Vec<Job>, StoreError> {
    let expired = ids(
        ctx,
        "SELECT id FROM jobs WHERE state = 'running' AND rescue_at <= ?1 ORDER BY rescue_at LIMIT ?2",
        params![ctx.now.as_millis(), limit as i64],
    )?;
    let mut rescued = Vec::new();
    for id in expired {
        let Some(mut job) = load_job_any_ns(ctx.conn, &id)? else {
            continue;
        };
        if let Ok(change) = lifecycle::rescue(&mut job, ctx.now, ctx.rng) {
            update_job(ctx.conn, &job)?;
            ctx.record(&job, change, "system:rescuer")?;
            rescued.push(job);
        }
    }
    Ok(rescued)
}

pub(crate) fn prune_finished(
    ctx: &mut WriteCtx<'_>,
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
        // The state is spelled out in the SQL (not bound) so the partial index applies.
        // Queues with a retention of their own are pruned one by one, with their own cutoffs.
        let scope = match &p.queue {
            Some(_) => "AND namespace = ?3 AND queue = ?4",
            None => {
                "AND ?3 IS NULL AND ?4 IS NULL AND NOT EXISTS (SELECT 1 FROM queues q
                 WHERE q.namespace = jobs.namespace AND q.name = jobs.queue AND q.custom_retention)"
            }
        };
        let sql = format!(
            "SELECT id, namespace, queue FROM jobs WHERE state = '{}' AND finished_at < ?1 {scope}
             ORDER BY finished_at LIMIT ?2",
            state.as_str()
        );
        let (ns, queue) = match &p.queue {
            Some((ns, q)) => (Some(ns.as_str()), Some(q.as_str())),
            None => (None, None),
        };
        let mut stmt = ctx.conn.prepare_cached(&sql).map_err(sql_error)?;
        let victims = stmt
            .query_map(params![before.as_millis(), left as i64, ns, queue], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        for (id, ns, queue) in victims {
            delete_rows(ctx, &id)?;
            ctx.record_delete(&ns, &queue, state);
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) fn idempotency_key_prune(
    ctx: &mut WriteCtx<'_>,
    before: Timestamp,
    limit: usize,
) -> Result<u64, StoreError> {
    let n = ctx
        .conn
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE rowid IN
                (SELECT rowid FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![before.as_millis(), limit as i64]))
        .map_err(sql_error)?;
    Ok(n as u64)
}
