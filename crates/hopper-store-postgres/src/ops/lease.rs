//! Leasing: the head of each listed queue, merged into one order (priority, then
//! available_at, then id), as if the queues were one.
//!
//! A plain queue's head is read with `FOR UPDATE SKIP LOCKED` along the partial index of
//! available jobs, so concurrent leases on any number of nodes take disjoint jobs without
//! waiting for each other, and cost stays flat however deep the queue is. A queue whose
//! configuration shapes leases (limits, fairness, shortest first) is planned by
//! [`hopper_store::lease_plan`] under its row's lock (see [`crate::ops::flow`]).

use hopper_store::lease_plan::{FlowPlanState, Grouping, LeasePlan, merge_queues};
use hopper_store::{JobLeaseParams, StoreError};
use hopper_types::{Clock, Job, QueueConfig, Timestamp, lifecycle};
use sqlx::PgConnection;

use crate::error::db_error;
use crate::ops::flow;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

/// Rate-limited queues that held jobs back, and when they can start one again.
pub(crate) type Holds = Vec<(String, Option<Timestamp>)>;

async fn plain_head(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    max_jobs: usize,
) -> Result<Vec<(Job, ())>, StoreError> {
    // One indexed range read, at most max_jobs long. Rows this call locks but does not lease
    // (a multi-queue merge) are released at commit, untouched. Paused queues and queues whose
    // configuration shapes leases are left out here.
    let rows = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs
         WHERE namespace = $1 AND queue = $2 AND state = 'available'
           AND NOT EXISTS (SELECT 1 FROM hopper.queues
                           WHERE namespace = $1 AND name = $2 AND (paused OR shapes_leases))
         ORDER BY priority DESC, available_at, id
         LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(namespace)
    .bind(queue)
    .bind(max_jobs as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(|r| Ok((decode_job(r)?, ()))).collect()
}

async fn planned_head(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    config: QueueConfig,
    now: Timestamp,
    max_jobs: usize,
) -> Result<(Vec<(Job, ())>, FlowPlanState), StoreError> {
    let policy = config.policy;
    let snap = flow::snapshot(conn, namespace, queue, config, now).await?;
    let grouping = Grouping::of(&snap.config);
    let groups = flow::groups(conn, namespace, queue, grouping).await?;
    let mut plan = LeasePlan::new(snap, max_jobs, groups);
    while let Some(fetches) = plan.next_fetches() {
        for f in fetches {
            let rows = flow::fetch(conn, namespace, queue, grouping, policy, &f).await?;
            plan.feed(&f, rows);
        }
    }
    Ok(plan.into_picked())
}

pub(crate) async fn lease_many(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: JobLeaseParams,
    clock: &dyn Clock,
) -> Result<(Vec<Job>, Holds), StoreError> {
    let mut queues = p.queues.clone();
    queues.sort();
    queues.dedup();
    let mut lists = Vec::with_capacity(queues.len());
    let mut planned = Vec::new();
    for queue in &queues {
        let head = plain_head(conn, &p.namespace, queue, p.max_jobs).await?;
        if !head.is_empty() {
            lists.push(head);
            continue;
        }
        // Nothing through the plain path: an empty queue, a paused one, or one whose
        // configuration shapes leases. Only the last needs the lock and the plan.
        if !flow::load_config(conn, &p.namespace, queue, false)
            .await?
            .shapes_leases()
        {
            continue;
        }
        let config = flow::load_config(conn, &p.namespace, queue, true).await?;
        if config.paused || !config.shapes_leases() {
            continue;
        }
        // The lock may have been waited for: stamp this lease (its buckets and the jobs'
        // start) with the time it holds the lock, not the time it began. Nothing has been
        // changed yet, so the whole transaction keeps one time.
        ws.now = ws.now.max(clock.now());
        let (picked, state) =
            planned_head(conn, &p.namespace, queue, config, ws.now, p.max_jobs).await?;
        lists.push(picked);
        planned.push((queue.clone(), state));
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
    for (mut job, ()) in candidates {
        let change = lifecycle::lease(&mut job, ws.now, &p.worker_id, p.lease_ms)?;
        ws.changed(&job, change, &actor);
        leased.push(job);
    }
    let mut holds = Vec::new();
    for (queue, state) in planned {
        let mine: Vec<&Job> = leased.iter().filter(|j| j.queue == queue).collect();
        flow::save_update(conn, &p.namespace, &queue, &state.update(&mine)).await?;
        let hold = if mine.is_empty() {
            state.next_token_at()
        } else {
            None
        };
        holds.push((queue, hold));
    }
    Ok((leased, holds))
}
