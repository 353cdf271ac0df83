//! Leasing: the head of each listed queue, merged into one order (priority, then
//! available_at, then id), as if the queues were one. A queue whose configuration shapes
//! leases (limits, fairness, shortest first) is planned by [`hopper_store::lease_plan`].

use hopper_store::lease_plan::{FlowPlanState, LeasePlan, merge_queues};
use hopper_store::{JobLeaseParams, StoreError};
use hopper_types::{Job, QueueConfig, lifecycle};
use rusqlite::params;

use crate::ops::flow;
use crate::rows::{decode_job_at, sql_error, update_row};
use crate::writer::WriteCtx;

/// The head of a plain queue: one indexed range read, at most `max_jobs` long, so the merge
/// costs O(queues × max_jobs) however deep the queues are. Each job comes with its row.
fn plain_head(
    ctx: &WriteCtx<'_>,
    namespace: &str,
    queue: &str,
    max_jobs: usize,
) -> Result<Vec<(Job, i64)>, StoreError> {
    let mut stmt = ctx
        .conn
        .prepare_cached(
            "SELECT body, lease_ms, seq FROM jobs
             WHERE namespace = ?1 AND queue = ?2 AND state = 'available'
             ORDER BY priority DESC, available_at, id LIMIT ?3",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, queue, max_jobs as i64], |r| {
            Ok((decode_job_at(r, 0)?, r.get::<_, i64>(2)?))
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// The jobs the plan picks from a shaped queue, and what it needs to settle afterwards.
fn planned_head(
    ctx: &WriteCtx<'_>,
    namespace: &str,
    queue: &str,
    config: QueueConfig,
    max_jobs: usize,
) -> Result<(Vec<(Job, i64)>, FlowPlanState), StoreError> {
    let policy = config.policy;
    let snap = flow::snapshot(ctx.conn, namespace, queue, config, ctx.now)?;
    let grouping = hopper_store::lease_plan::Grouping::of(&snap.config);
    let groups = flow::groups(ctx.conn, namespace, queue, grouping)?;
    let mut plan = LeasePlan::new(snap, max_jobs, groups);
    while let Some(fetches) = plan.next_fetches() {
        for f in fetches {
            let rows = flow::fetch(ctx.conn, namespace, queue, grouping, policy, &f)?;
            plan.feed(&f, rows);
        }
    }
    Ok(plan.into_picked())
}

pub(crate) fn lease_many(
    ctx: &mut WriteCtx<'_>,
    p: JobLeaseParams,
) -> Result<Vec<Job>, StoreError> {
    let mut queues = p.queues.clone();
    queues.sort();
    queues.dedup();
    let mut lists = Vec::with_capacity(queues.len());
    let mut planned = Vec::new();
    for queue in &queues {
        let config = flow::load_config(ctx.conn, &p.namespace, queue)?;
        if config.paused {
            continue;
        }
        if config.shapes_leases() {
            let (picked, state) = planned_head(ctx, &p.namespace, queue, config, p.max_jobs)?;
            lists.push(picked);
            planned.push((queue.clone(), state));
        } else {
            lists.push(plain_head(ctx, &p.namespace, queue, p.max_jobs)?);
        }
    }
    let candidates = if lists.len() == 1 {
        let mut only = lists.pop().unwrap_or_default();
        only.truncate(p.max_jobs);
        only
    } else {
        merge_queues(lists, p.max_jobs)
    };

    let actor = format!("worker:{}", p.worker_id);
    let mut leased = Vec::with_capacity(candidates.len());
    for (mut job, seq) in candidates {
        let change = lifecycle::lease(&mut job, ctx.now, &p.worker_id, p.lease_ms)?;
        update_row(ctx.conn, seq, &job)?;
        ctx.record(&job, change, &actor)?;
        leased.push(job);
    }
    for (queue, state) in planned {
        let mine: Vec<&Job> = leased.iter().filter(|j| j.queue == queue).collect();
        flow::save_update(ctx.conn, &p.namespace, &queue, &state.update(&mine))?;
        let hold = if mine.is_empty() {
            state.next_token_at()
        } else {
            None
        };
        ctx.effects.hold.push((p.namespace.clone(), queue, hold));
    }
    Ok(leased)
}
