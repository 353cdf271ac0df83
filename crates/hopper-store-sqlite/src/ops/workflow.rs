//! Workflow runs: storing a run with its steps, the run's cancel and retry, steps added while
//! it runs, and the follow-up of every finished step (its children and its run's counters).
//!
//! The single writer makes each of these atomic without locks: a step's finish, the countdown
//! of its children and the run's counters commit together or not at all, so a fan-in fires
//! exactly once whatever order its parents finish in.

use std::collections::{HashMap, VecDeque};

use hopper_store::workflow_plan::{self, PlannedStep};
use hopper_store::{
    StepParents, StoreError, WorkflowAddSteps, WorkflowInsert, WorkflowListParams, WorkflowRecord,
    WorkflowRun,
};
use hopper_types::lifecycle;
use hopper_types::workflow::validate_steps;
use hopper_types::workflow_run::{Workflow, WorkflowId};
use hopper_types::{Job, JobId, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::rows::{decode_job, decode_job_at, insert_job, sql_error, update_row};
use crate::writer::WriteCtx;

const RUN_COLUMNS: &str = "id, namespace, name, state, steps, open_steps, failed_steps, \
    cancel_requested, definition, logical_date, created_at, finished_at";

fn decode_run(r: &Row<'_>) -> rusqlite::Result<Workflow> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let id: String = r.get(0)?;
    let state: String = r.get(3)?;
    Ok(Workflow {
        id: id
            .parse::<WorkflowId>()
            .map_err(|e| bad(0, e.to_string()))?,
        namespace: r.get(1)?,
        name: r.get(2)?,
        state: state
            .parse()
            .map_err(|e: hopper_types::state::UnknownState| bad(3, e.0))?,
        steps: r.get(4)?,
        open_steps: r.get(5)?,
        failed_steps: r.get(6)?,
        cancel_requested: r.get(7)?,
        definition: r.get(8)?,
        logical_date: r.get(9)?,
        created_at: Timestamp(r.get(10)?),
        finished_at: r.get::<_, Option<i64>>(11)?.map(Timestamp),
    })
}

/// One run of `namespace`, if it exists.
pub(crate) fn load_run(
    conn: &Connection,
    namespace: &str,
    id: &WorkflowId,
) -> Result<Option<Workflow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM workflows WHERE id = ?1 AND namespace = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![id.to_string(), namespace], decode_run)
            .optional()
    })
    .map_err(sql_error)
}

fn save_run(conn: &Connection, run: &Workflow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO workflows (id, namespace, name, state, steps, open_steps, failed_steps,
            cancel_requested, definition, logical_date, created_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, steps = excluded.steps,
            open_steps = excluded.open_steps, failed_steps = excluded.failed_steps,
            cancel_requested = excluded.cancel_requested, finished_at = excluded.finished_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            run.id.to_string(),
            run.namespace,
            run.name,
            run.state.as_str(),
            run.steps,
            run.open_steps,
            run.failed_steps,
            run.cancel_requested,
            run.definition,
            run.logical_date,
            run.created_at.as_millis(),
            run.finished_at.map(Timestamp::as_millis),
        ])
    })
    .map_err(sql_error)?;
    Ok(())
}

/// The steps of a run, oldest first, with their row numbers.
fn step_rows(conn: &Connection, id: &WorkflowId) -> Result<Vec<(i64, Job)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body, lease_ms, seq FROM jobs WHERE workflow_id = ?1 ORDER BY id")
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![id.to_string()], |r| Ok((r.get(2)?, decode_job(r)?)))
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

// Writes planned steps and their edges.
fn insert_planned(
    ctx: &mut WriteCtx<'_>,
    planned: &[PlannedStep],
    actor: &str,
) -> Result<(), StoreError> {
    for p in planned {
        insert_job(ctx.conn, &p.job)?;
        ctx.record_transition(&p.job, p.change, actor)?;
        let child = p.job.id.to_string();
        for parent in &p.parents {
            ctx.conn
                .prepare_cached("INSERT INTO job_deps (parent, child) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![parent.to_string(), child]))
                .map_err(sql_error)?;
        }
    }
    Ok(())
}

pub(crate) fn insert(ctx: &mut WriteCtx<'_>, p: WorkflowInsert) -> Result<WorkflowRun, StoreError> {
    if let Some((definition, date)) = &p.definition
        && let Some(existing) = run_of_date(ctx.conn, &p.namespace, definition, date)?
    {
        let mut run = get(ctx.conn, &p.namespace, &existing)?;
        run.duplicate = true;
        return Ok(run);
    }
    let mut run = Workflow::new(p.id, p.namespace, p.name, 0, ctx.now);
    if let Some((definition, date)) = p.definition {
        run.definition = Some(definition);
        run.logical_date = Some(date);
    }
    let planned = workflow_plan::plan_steps(&mut run, p.steps, &HashMap::new(), ctx.now);
    save_run(ctx.conn, &run)?;
    insert_planned(ctx, &planned, &p.actor)?;
    Ok(WorkflowRun {
        workflow: run,
        steps: planned.into_iter().map(|p| p.job).collect(),
        duplicate: false,
    })
}

// The run a definition already has for a logical date.
fn run_of_date(
    conn: &Connection,
    namespace: &str,
    definition: &str,
    date: &str,
) -> Result<Option<WorkflowId>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM workflows WHERE namespace = ?1 AND definition = ?2 AND logical_date = ?3",
        )
        .and_then(|mut s| s.query_row(params![namespace, definition, date], |r| r.get(0)).optional())
        .map_err(sql_error)?;
    id.map(|i| {
        i.parse()
            .map_err(|_| StoreError::Internal(format!("bad workflow id `{i}`")))
    })
    .transpose()
}

pub(crate) fn add_steps(
    ctx: &mut WriteCtx<'_>,
    p: WorkflowAddSteps,
) -> Result<Vec<Job>, StoreError> {
    let mut run = load_run(ctx.conn, &p.namespace, &p.workflow_id)?.ok_or(StoreError::NotFound)?;
    if run.state.is_finished() || run.cancel_requested {
        return Err(StoreError::Conflict(format!(
            "the workflow run is {}: steps can only be added while it runs",
            if run.cancel_requested && !run.state.is_finished() {
                "being cancelled"
            } else {
                run.state.as_str()
            }
        )));
    }
    let existing: HashMap<String, Job> = step_rows(ctx.conn, &run.id)?
        .into_iter()
        .filter_map(|(_, j)| j.workflow.as_ref().map(|w| w.step.clone()).map(|n| (n, j)))
        .collect();
    let validated = validate_steps(
        p.steps,
        &|n| existing.contains_key(n),
        existing.len(),
        &p.namespace,
        &p.limits,
    )
    .map_err(|e| StoreError::InvalidArgument {
        field: e.field,
        message: e.message,
    })?;
    let planned = workflow_plan::plan_steps(&mut run, validated, &existing, ctx.now);
    save_run(ctx.conn, &run)?;
    insert_planned(ctx, &planned, &p.actor)?;
    Ok(planned.into_iter().map(|p| p.job).collect())
}

/// The follow-up of `job`, a step that just finished: each pending child counts it down (and
/// may become runnable) or is cancelled with it, children cancelled that way are followed up
/// in turn, and the run's counters move once per finished step. Iterative: a chain of
/// cancellations can be as long as the run.
pub(crate) fn step_finished(
    ctx: &mut WriteCtx<'_>,
    job: &Job,
    actor: &str,
) -> Result<(), StoreError> {
    let Some(info) = &job.workflow else {
        return Ok(());
    };
    let Some(mut run) = load_run(ctx.conn, &job.namespace, &info.workflow_id)? else {
        return Ok(()); // the run's row is gone: nothing to move on
    };
    let mut finished: VecDeque<Job> = VecDeque::from([job.clone()]);
    while let Some(parent) = finished.pop_front() {
        if let Some(info) = &parent.workflow {
            run.step_finished(info, parent.state, ctx.now);
        }
        for (seq, mut child) in children(ctx.conn, &parent.id)? {
            if child.state != hopper_types::JobState::Pending {
                continue;
            }
            let change = workflow_plan::child_after_parent(
                &mut child,
                &parent,
                run.cancel_requested,
                ctx.now,
            );
            update_row(ctx.conn, seq, &child)?;
            if let Some(change) = change {
                ctx.record_transition(&child, change, actor)?;
                if change.to.is_finished() {
                    finished.push_back(child);
                }
            }
        }
    }
    save_run(ctx.conn, &run)
}

fn children(conn: &Connection, parent: &JobId) -> Result<Vec<(i64, Job)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT j.body, j.lease_ms, j.seq FROM job_deps d JOIN jobs j ON j.id = d.child
             WHERE d.parent = ?1 ORDER BY j.id",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![parent.to_string()], |r| {
            Ok((r.get(2)?, decode_job(r)?))
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub(crate) fn cancel(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    id: &WorkflowId,
    actor: &str,
) -> Result<Workflow, StoreError> {
    let mut run = load_run(ctx.conn, namespace, id)?.ok_or(StoreError::NotFound)?;
    if run.state.is_finished() {
        return Err(StoreError::Conflict(format!(
            "the workflow run is {}: nothing to cancel",
            run.state.as_str()
        )));
    }
    // Saved first: each step's follow-up below reads the run and must see it cancelling.
    run.cancel_requested(ctx.now);
    save_run(ctx.conn, &run)?;
    for (seq, _) in step_rows(ctx.conn, id)? {
        // Reloaded: an earlier step's follow-up may have cancelled this one already.
        let Some(mut job) = load_seq(ctx.conn, seq)? else {
            continue;
        };
        if job.state.is_finished() || job.cancel_requested {
            continue;
        }
        let change = lifecycle::cancel(&mut job, ctx.now)?;
        update_row(ctx.conn, seq, &job)?;
        ctx.record(&job, change, actor)?;
    }
    load_run(ctx.conn, namespace, id)?.ok_or(StoreError::NotFound)
}

fn load_seq(conn: &Connection, seq: i64) -> Result<Option<Job>, StoreError> {
    conn.prepare_cached("SELECT body, lease_ms FROM jobs WHERE seq = ?1")
        .and_then(|mut s| s.query_row(params![seq], decode_job).optional())
        .map_err(sql_error)
}

pub(crate) fn retry(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    id: &WorkflowId,
    actor: &str,
) -> Result<Workflow, StoreError> {
    let mut run = load_run(ctx.conn, namespace, id)?.ok_or(StoreError::NotFound)?;
    if !run.state.is_finished() {
        return Err(StoreError::Conflict(
            "the workflow run is still running: retry it once it has finished (or cancel it)"
                .into(),
        ));
    }
    let rows = step_rows(ctx.conn, id)?;
    let steps: Vec<Job> = rows.iter().map(|(_, j)| j.clone()).collect();
    let plan = workflow_plan::plan_retry(&steps);
    if plan.is_empty() {
        return Err(StoreError::Conflict(
            "no step of the workflow run failed or was cancelled: nothing to retry".into(),
        ));
    }
    let by_id: HashMap<JobId, &(i64, Job)> = rows.iter().map(|r| (r.1.id, r)).collect();
    for reopen in &plan {
        let Some((seq, job)) = by_id.get(&reopen.id) else {
            continue;
        };
        let mut job = job.clone();
        let change = lifecycle::reopen_step(&mut job, reopen.waiting_on, ctx.now)?;
        update_row(ctx.conn, *seq, &job)?;
        ctx.record(&job, change, actor)?;
    }
    run.reopened(u32::try_from(plan.len()).unwrap_or(u32::MAX));
    save_run(ctx.conn, &run)?;
    Ok(run)
}

// Reads.

pub(crate) fn get(
    conn: &Connection,
    namespace: &str,
    id: &WorkflowId,
) -> Result<WorkflowRun, StoreError> {
    let workflow = load_run(conn, namespace, id)?.ok_or(StoreError::NotFound)?;
    let steps = step_rows(conn, id)?.into_iter().map(|(_, j)| j).collect();
    Ok(WorkflowRun {
        workflow,
        steps,
        duplicate: false,
    })
}

pub(crate) fn list(conn: &Connection, p: &WorkflowListParams) -> Result<Vec<Workflow>, StoreError> {
    let before = p.before.map(|b| b.to_string());
    let state = p.state.map(|s| s.as_str());
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM workflows
             WHERE namespace = ?1 AND (?2 IS NULL OR id < ?2) AND (?3 IS NULL OR state = ?3)
                AND (?5 IS NULL OR definition = ?5)
             ORDER BY id DESC LIMIT ?4"
        ))
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![p.namespace, before, state, p.limit as i64, p.definition],
            decode_run,
        )
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub(crate) fn parents(
    conn: &Connection,
    namespace: &str,
    steps: &[JobId],
) -> Result<StepParents, StoreError> {
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.child, j.body, j.lease_ms FROM job_deps d JOIN jobs j ON j.id = d.parent
             WHERE d.child = ?1 AND j.namespace = ?2 ORDER BY j.id",
        )
        .map_err(sql_error)?;
    for step in steps {
        let rows = stmt
            .query_map(params![step.to_string(), namespace], |r| {
                decode_job_at(r, 1)
            })
            .map_err(sql_error)?;
        for parent in rows {
            out.push((*step, parent.map_err(sql_error)?));
        }
    }
    Ok(out)
}

// Copying (`hopper migrate`).

/// Up to `limit` runs of every namespace after `after`, by id, each with its edges.
pub(crate) fn export(
    conn: &Connection,
    after: Option<WorkflowId>,
    limit: usize,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let tx = conn.unchecked_transaction().map_err(sql_error)?;
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let runs = {
        let mut stmt = tx
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM workflows WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(sql_error)?;
        let rows = stmt
            .query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                decode_run,
            )
            .map_err(sql_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)?
    };
    let mut out = Vec::with_capacity(runs.len());
    for workflow in runs {
        let mut stmt = tx
            .prepare_cached(
                "SELECT d.parent, d.child FROM job_deps d JOIN jobs j ON j.id = d.child
                 WHERE j.workflow_id = ?1 ORDER BY d.parent, d.child",
            )
            .map_err(sql_error)?;
        let edges = stmt
            .query_map(params![workflow.id.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql_error)?
            .map(|e| {
                let (p, c) = e.map_err(sql_error)?;
                let id = |t: &str| {
                    t.parse::<JobId>()
                        .map_err(|_| StoreError::Internal(format!("bad job id `{t}` in job_deps")))
                };
                Ok((id(&p)?, id(&c)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.push(WorkflowRecord { workflow, edges });
    }
    Ok(out)
}

/// Inserts runs and edges that are not here yet (a run whose id, or whose definition and
/// logical date, is taken is skipped; nothing is overwritten).
pub(crate) fn import(conn: &Connection, records: &[WorkflowRecord]) -> Result<(), StoreError> {
    for r in records {
        let w = &r.workflow;
        conn.prepare_cached(
            "INSERT INTO workflows (id, namespace, name, state, steps, open_steps, failed_steps,
                cancel_requested, definition, logical_date, created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                w.id.to_string(),
                w.namespace,
                w.name,
                w.state.as_str(),
                w.steps,
                w.open_steps,
                w.failed_steps,
                w.cancel_requested,
                w.definition,
                w.logical_date,
                w.created_at.as_millis(),
                w.finished_at.map(Timestamp::as_millis),
            ])
        })
        .map_err(sql_error)?;
        for (parent, child) in &r.edges {
            conn.prepare_cached(
                "INSERT INTO job_deps (parent, child) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![parent.to_string(), child.to_string()]))
            .map_err(sql_error)?;
        }
    }
    Ok(())
}
