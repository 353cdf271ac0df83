//! Workflow runs: storing a run with its steps, reading runs, cancelling, retrying and
//! extending them, and [`settle`], the fan-in that runs in every transaction where a step
//! finishes.
//!
//! The graph's rules are [`hopper_store::workflow_plan`]'s; this module loads and locks the
//! rows they need and writes what they answer. A run's row (`hopper.workflows`) holds its
//! counters; `hopper.job_deps` holds one row per (parent, child) edge.
//!
//! Lock order, in every transaction that touches a run: the steps the operation itself
//! changes (a finishing step is locked by its operation), then the children [`settle`] moves
//! (in id order, one level of the graph at a time), then run rows last (in id order). Cancel,
//! retry and add-steps lock the steps they need in id order and then the run row.
//!
//! Exactly-once fan-in across nodes rests on PostgreSQL's READ COMMITTED row locking: a
//! statement that waits for a row lock (`FOR UPDATE`) re-reads the row's newest committed
//! version before it goes on. Two parents of one child finishing on two nodes both lock the
//! child; the second re-reads it with the first one's decrement applied, so the child is
//! counted down exactly twice and leaves `pending` exactly once. A step added while its
//! parent finishes is either planned after the parent's transaction committed (it sees the
//! parent finished and does not wait for it) or committed before the parent's [`settle`]
//! reads the edges (its edge is found and counted down): the add locks the parent first, and
//! each statement of the finishing transaction takes a new snapshot.

use std::collections::{BTreeSet, HashMap};

use hopper_store::workflow_plan::{self, PlannedStep};
use hopper_store::{
    StepParents, StoreError, WorkflowAddSteps, WorkflowInsert, WorkflowListParams, WorkflowRecord,
    WorkflowRun,
};
use hopper_types::workflow::{Dependency, MAX_STEPS, validate_steps};
use hopper_types::workflow_run::{Workflow, WorkflowId, WorkflowState};
use hopper_types::{Job, JobId, JobState, Timestamp, lifecycle};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};
use uuid::Uuid;

use crate::error::db_error;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

/// The columns of a run, in the order [`decode_run`] reads them. This and [`UNFINISHED`] are
/// the only text formatted into this module's SQL: constants, never user input.
const RUN_COLUMNS: &str = "w.id, w.namespace, w.name, w.state, w.steps, w.open_steps, \
     w.failed_steps, w.cancel_requested, w.definition, w.logical_date, w.created_at, \
     w.finished_at";

/// Unfinished states, spelled out so the planner can use them as a plain filter.
const UNFINISHED: &str = "w_job.state NOT IN ('completed', 'dead', 'cancelled')";

fn count(v: i32, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Internal(format!("stored {what} {v} is negative")))
}

fn count_column(v: u32) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::Internal(format!("run counter {v} out of range")))
}

/// A run from a row whose columns from `at` on are [`RUN_COLUMNS`].
fn decode_run(row: &PgRow, at: usize) -> Result<Workflow, StoreError> {
    let e = db_error;
    let state: String = row.try_get(at + 3).map_err(e)?;
    Ok(Workflow {
        id: JobId(row.try_get(at).map_err(e)?),
        namespace: row.try_get(at + 1).map_err(e)?,
        name: row.try_get(at + 2).map_err(e)?,
        state: state.parse().map_err(|_| {
            StoreError::Internal(format!("stored workflow state `{state}` is invalid"))
        })?,
        steps: count(row.try_get(at + 4).map_err(e)?, "step count")?,
        open_steps: count(row.try_get(at + 5).map_err(e)?, "open step count")?,
        failed_steps: count(row.try_get(at + 6).map_err(e)?, "failed step count")?,
        cancel_requested: row.try_get(at + 7).map_err(e)?,
        definition: row.try_get(at + 8).map_err(e)?,
        logical_date: row.try_get(at + 9).map_err(e)?,
        created_at: Timestamp(row.try_get(at + 10).map_err(e)?),
        finished_at: row
            .try_get::<Option<i64>, _>(at + 11)
            .map_err(e)?
            .map(Timestamp),
    })
}

/// Inserts a run's row; false (and nothing stored) when its definition already has a run for
/// its logical date. A concurrent insert of that date makes this wait for its commit, then
/// do nothing; one that rolls back lets this one in.
async fn insert_run(conn: &mut PgConnection, w: &Workflow) -> Result<bool, StoreError> {
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO hopper.workflows (id, namespace, name, state, steps, open_steps,
             failed_steps, cancel_requested, definition, logical_date, created_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (namespace, definition, logical_date) WHERE definition IS NOT NULL
             DO NOTHING
         RETURNING 1",
    )
    .bind(w.id.0)
    .bind(&w.namespace)
    .bind(&w.name)
    .bind(w.state.as_str())
    .bind(count_column(w.steps)?)
    .bind(count_column(w.open_steps)?)
    .bind(count_column(w.failed_steps)?)
    .bind(w.cancel_requested)
    .bind(&w.definition)
    .bind(&w.logical_date)
    .bind(w.created_at.as_millis())
    .bind(w.finished_at.map(Timestamp::as_millis))
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(inserted.is_some())
}

/// Writes back the counters and state of runs whose rows this transaction locked.
async fn save_runs(conn: &mut PgConnection, runs: &[Workflow]) -> Result<(), StoreError> {
    if runs.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(runs.len());
    let mut states = Vec::with_capacity(runs.len());
    let mut steps = Vec::with_capacity(runs.len());
    let mut open = Vec::with_capacity(runs.len());
    let mut failed = Vec::with_capacity(runs.len());
    let mut cancel = Vec::with_capacity(runs.len());
    let mut finished_at = Vec::with_capacity(runs.len());
    for w in runs {
        ids.push(w.id.0);
        states.push(w.state.as_str());
        steps.push(count_column(w.steps)?);
        open.push(count_column(w.open_steps)?);
        failed.push(count_column(w.failed_steps)?);
        cancel.push(w.cancel_requested);
        finished_at.push(w.finished_at.map(Timestamp::as_millis));
    }
    sqlx::query(
        "UPDATE hopper.workflows w SET state = u.state, steps = u.steps,
             open_steps = u.open_steps, failed_steps = u.failed_steps,
             cancel_requested = u.cancel_requested, finished_at = u.finished_at
         FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[], $6::boolean[],
             $7::bigint[]) AS u(id, state, steps, open_steps, failed_steps, cancel_requested,
             finished_at)
         WHERE w.id = u.id",
    )
    .bind(ids)
    .bind(states)
    .bind(steps)
    .bind(open)
    .bind(failed)
    .bind(cancel)
    .bind(finished_at)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A run of `namespace`, read without a lock (to answer NotFound or a refusal early).
async fn load_run(
    conn: &mut PgConnection,
    namespace: &str,
    id: &WorkflowId,
) -> Result<Option<Workflow>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM hopper.workflows w WHERE w.id = $1 AND w.namespace = $2"
    )))
    .bind(id.0)
    .bind(namespace)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    row.as_ref().map(|r| decode_run(r, 0)).transpose()
}

/// Locks run rows (in id order: two transactions settling the same runs cannot deadlock on
/// them) and answers them by id.
async fn lock_runs(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<WorkflowId, Workflow>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM hopper.workflows w WHERE w.id = ANY($1)
         ORDER BY w.id FOR UPDATE"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| decode_run(r, 0).map(|w| (w.id, w)))
        .collect()
}

/// The one run `id`, locked; NotFound when it is gone.
async fn lock_run(conn: &mut PgConnection, id: &WorkflowId) -> Result<Workflow, StoreError> {
    lock_runs(conn, &[id.0])
        .await?
        .remove(id)
        .ok_or(StoreError::NotFound)
}

/// Locks steps of run `id` (all, or only the unfinished ones) in id order.
async fn lock_steps(
    conn: &mut PgConnection,
    id: &WorkflowId,
    unfinished_only: bool,
) -> Result<Vec<Job>, StoreError> {
    let filter = if unfinished_only { UNFINISHED } else { "true" };
    // Safe to format: the filter is one of two constants, never user text.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT w_job.body, w_job.lease_ms FROM hopper.jobs w_job
         WHERE w_job.workflow_id = $1 AND {filter} ORDER BY w_job.id FOR UPDATE"
    )))
    .bind(id.0)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(decode_job).collect()
}

/// One `job_deps` row per (parent, child) of the planned steps, in one statement.
async fn insert_edges(conn: &mut PgConnection, planned: &[PlannedStep]) -> Result<(), StoreError> {
    let mut parents = Vec::new();
    let mut children = Vec::new();
    for p in planned {
        for parent in &p.parents {
            parents.push(parent.0);
            children.push(p.job.id.0);
        }
    }
    if parents.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO hopper.job_deps (parent, child)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[])",
    )
    .bind(parents)
    .bind(children)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: WorkflowInsert,
) -> Result<WorkflowRun, StoreError> {
    let mut run = Workflow::new(p.id, p.namespace, p.name, 0, ws.now);
    if let Some((definition, date)) = p.definition {
        run.definition = Some(definition);
        run.logical_date = Some(date);
    }
    // Planned in memory; the run's row is written first, before any step or edge, so a
    // duplicate stores nothing.
    let planned = workflow_plan::plan_steps(&mut run, p.steps, &HashMap::new(), ws.now);
    if !insert_run(conn, &run).await? {
        return duplicate(conn, &run).await;
    }
    insert_edges(conn, &planned).await?;
    let mut steps = Vec::with_capacity(planned.len());
    for s in planned {
        // The jobs are written at the flush, with the wake-ups of the steps that start
        // available.
        ws.inserted(&s.job, s.change, &p.actor);
        steps.push(s.job);
    }
    Ok(WorkflowRun {
        workflow: run,
        steps,
        duplicate: false,
    })
}

/// The run `run`'s definition already has for its logical date, with its steps.
async fn duplicate(conn: &mut PgConnection, run: &Workflow) -> Result<WorkflowRun, StoreError> {
    // A new statement, so a new snapshot: it sees the run whose commit the insert waited for.
    let id: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM hopper.workflows
         WHERE namespace = $1 AND definition = $2 AND logical_date = $3",
    )
    .bind(&run.namespace)
    .bind(&run.definition)
    .bind(&run.logical_date)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(id) = id else {
        // Runs are never deleted, so the one that conflicted is there.
        return Err(StoreError::Internal(
            "a workflow run conflicted with one that cannot be found".into(),
        ));
    };
    let mut existing = get(conn, &run.namespace, &JobId(id)).await?;
    existing.duplicate = true;
    Ok(existing)
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    namespace: &str,
    id: &WorkflowId,
) -> Result<WorkflowRun, StoreError> {
    // One statement, so the run's counters and its steps come from one snapshot.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT j.body, j.lease_ms, {RUN_COLUMNS} FROM hopper.workflows w
         LEFT JOIN hopper.jobs j ON j.workflow_id = w.id
         WHERE w.id = $1 AND w.namespace = $2
         ORDER BY j.id"
    )))
    .bind(id.0)
    .bind(namespace)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    let Some(first) = rows.first() else {
        return Err(StoreError::NotFound);
    };
    let workflow = decode_run(first, 2)?;
    let mut steps = Vec::with_capacity(rows.len());
    for row in &rows {
        // A run whose steps were all deleted (pruned) joins no job.
        let body: Option<&str> = row.try_get(0).map_err(db_error)?;
        if body.is_some() {
            steps.push(decode_job(row)?);
        }
    }
    Ok(WorkflowRun {
        workflow,
        steps,
        duplicate: false,
    })
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    p: &WorkflowListParams,
) -> Result<Vec<Workflow>, StoreError> {
    // Conditions only when given (not `$n IS NULL OR ...`), so the keyset bound is an index
    // condition even in a generic plan and deep pages cost what the first does.
    let mut qb = QueryBuilder::new(format!(
        "SELECT {RUN_COLUMNS} FROM hopper.workflows w WHERE w.namespace = "
    ));
    qb.push_bind(&p.namespace);
    if let Some(state) = p.state {
        qb.push(" AND w.state = ").push_bind(state.as_str());
    }
    if let Some(definition) = &p.definition {
        qb.push(" AND w.definition = ").push_bind(definition);
    }
    if let Some(before) = &p.before {
        qb.push(" AND w.id < ").push_bind(before.0);
    }
    qb.push(" ORDER BY w.id DESC LIMIT ")
        .push_bind(i64::try_from(p.limit).unwrap_or(i64::MAX));
    let rows = qb.build().fetch_all(conn).await.map_err(db_error)?;
    rows.iter().map(|r| decode_run(r, 0)).collect()
}

pub(crate) async fn parents(
    conn: &mut PgConnection,
    namespace: &str,
    steps: &[JobId],
) -> Result<StepParents, StoreError> {
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = steps.iter().map(|s| s.0).collect();
    let rows = sqlx::query(
        "SELECT j.body, j.lease_ms, d.child FROM hopper.job_deps d
         JOIN hopper.jobs j ON j.id = d.parent
         WHERE d.child = ANY($1) AND j.namespace = $2
         ORDER BY d.child, d.parent",
    )
    .bind(ids)
    .bind(namespace)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| Ok((JobId(r.try_get(2).map_err(db_error)?), decode_job(r)?)))
        .collect()
}

pub(crate) async fn cancel(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    namespace: &str,
    id: &WorkflowId,
    actor: &str,
) -> Result<Workflow, StoreError> {
    let run = load_run(conn, namespace, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    if run.state.is_finished() {
        return Err(nothing_to_cancel(run.state));
    }
    let steps = lock_steps(conn, id, true).await?;
    let mut locked = Vec::with_capacity(steps.len());
    for step in steps {
        locked.push(step.id.0);
        let mut job = ws.get(&step.id).cloned().unwrap_or(step);
        // Waiting steps end now (settle() counts them and cancels what waits for them);
        // running ones are flagged and end when their workers report.
        if let Ok(change) = lifecycle::cancel(&mut job, ws.now) {
            ws.changed(&job, change, actor);
        }
    }
    let mut run = lock_run(conn, id).await?;
    if run.state.is_finished() {
        // Its last steps finished while we waited for their locks.
        return Err(nothing_to_cancel(run.state));
    }
    // Steps added after the locking read above committed before we got the run's lock: they
    // escaped the cancel. Rare (an add racing the cancel); the call is safe to repeat.
    let escaped: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM hopper.jobs w_job WHERE w_job.workflow_id = $1
             AND {UNFINISHED} AND w_job.id <> ALL($2))"
    )))
    .bind(id.0)
    .bind(&locked)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_error)?;
    if escaped {
        return Err(StoreError::Unavailable(
            "steps were added to the workflow run during its cancel; try again".into(),
        ));
    }
    run.cancel_requested(ws.now);
    // Written now so that settle() below sees the flag: children of the steps cancelled here
    // are cancelled too, whatever those steps' failure policy.
    save_runs(conn, std::slice::from_ref(&run)).await?;
    let settled = settle(conn, ws).await?;
    Ok(settled.into_iter().find(|w| w.id == run.id).unwrap_or(run))
}

fn nothing_to_cancel(state: WorkflowState) -> StoreError {
    StoreError::Conflict(format!(
        "the workflow run is {}: nothing to cancel",
        state.as_str()
    ))
}

pub(crate) async fn retry(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    namespace: &str,
    id: &WorkflowId,
    actor: &str,
) -> Result<Workflow, StoreError> {
    let run = load_run(conn, namespace, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !run.state.is_finished() {
        return Err(still_running());
    }
    let steps = lock_steps(conn, id, false).await?;
    let plan = workflow_plan::plan_retry(&steps);
    if plan.is_empty() {
        return Err(StoreError::Conflict(
            "no step of the workflow run is dead or cancelled: nothing to retry".into(),
        ));
    }
    let mut run = lock_run(conn, id).await?;
    if !run.state.is_finished() {
        // Another retry reopened it while we waited for the steps' locks.
        return Err(still_running());
    }
    let mut by_id: HashMap<JobId, Job> = steps.into_iter().map(|j| (j.id, j)).collect();
    let mut reopened = 0u32;
    for r in &plan {
        let Some(job) = by_id.get_mut(&r.id) else {
            continue;
        };
        let change = lifecycle::reopen_step(job, r.waiting_on, ws.now)?;
        ws.changed(job, change, actor);
        reopened += 1;
    }
    run.reopened(reopened);
    save_runs(conn, std::slice::from_ref(&run)).await?;
    Ok(run)
}

fn still_running() -> StoreError {
    StoreError::Conflict("the workflow run is still running".into())
}

pub(crate) async fn add_steps(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: WorkflowAddSteps,
) -> Result<Vec<Job>, StoreError> {
    let run = load_run(conn, &p.namespace, &p.workflow_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    check_can_add(&run)?;
    // Names only: validation needs no more, and a run can hold thousands of steps.
    let rows = sqlx::query("SELECT step, id FROM hopper.jobs WHERE workflow_id = $1")
        .bind(p.workflow_id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
    let mut existing: HashMap<String, Uuid> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let step: Option<String> = r.try_get(0).map_err(db_error)?;
        if let Some(step) = step {
            existing.insert(step, r.try_get(1).map_err(db_error)?);
        }
    }
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

    // Lock the existing parents and plan against them as they are now: a parent that
    // finished meanwhile is seen finished; one that finishes after our commit finds our edge.
    let parent_ids: BTreeSet<Uuid> = validated
        .iter()
        .flat_map(|s| &s.depends_on)
        .filter_map(|d| match d {
            Dependency::Existing(name) => existing.get(name).copied(),
            Dependency::New(_) => None,
        })
        .collect();
    let parent_ids: Vec<Uuid> = parent_ids.into_iter().collect();
    let rows = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&parent_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut parents: HashMap<String, Job> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let job = decode_job(row)?;
        if let Some(step) = job.workflow.as_ref().map(|w| w.step.clone()) {
            parents.insert(step, job);
        }
    }
    if parents.len() != parent_ids.len() {
        // Only finished steps can be deleted; without the parent we cannot tell how it ended.
        return Err(StoreError::Conflict(
            "a step the new steps depend on was deleted".into(),
        ));
    }

    let mut run = lock_run(conn, &p.workflow_id).await?;
    check_can_add(&run)?;
    // Adds to one run are serialized by its row's lock, but ours validated names and size
    // before taking it: check what a concurrent add committed since.
    let names: Vec<&str> = validated.iter().map(|s| s.step.as_str()).collect();
    let taken: Option<String> = sqlx::query_scalar(
        "SELECT step FROM hopper.jobs WHERE workflow_id = $1 AND step = ANY($2) LIMIT 1",
    )
    .bind(p.workflow_id.0)
    .bind(&names)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    if let Some(step) = taken {
        return Err(StoreError::InvalidArgument {
            field: "steps".into(),
            message: format!("the run already has a step `{step}`"),
        });
    }
    if run.steps as usize + validated.len() > MAX_STEPS {
        return Err(StoreError::InvalidArgument {
            field: "steps".into(),
            message: format!(
                "a workflow run has at most {MAX_STEPS} steps ({} already, {} more asked)",
                run.steps,
                validated.len()
            ),
        });
    }

    let planned = workflow_plan::plan_steps(&mut run, validated, &parents, ws.now);
    insert_edges(conn, &planned).await?;
    save_runs(conn, std::slice::from_ref(&run)).await?;
    let mut jobs = Vec::with_capacity(planned.len());
    for s in planned {
        ws.inserted(&s.job, s.change, &p.actor);
        jobs.push(s.job);
    }
    Ok(jobs)
}

/// Steps are added only to a run that is running and not being cancelled (a step added to a
/// cancelling run would start while everything around it is being cancelled).
fn check_can_add(run: &Workflow) -> Result<(), StoreError> {
    if run.state.is_finished() {
        return Err(StoreError::Conflict(format!(
            "the workflow run is {}: no steps can be added",
            run.state.as_str()
        )));
    }
    if run.cancel_requested {
        return Err(StoreError::Conflict(
            "the workflow run is being cancelled: no steps can be added".into(),
        ));
    }
    Ok(())
}

/// Locks the children of `parents` (in id order) and answers each with its parents among
/// them, as stored when locked.
async fn lock_children(
    conn: &mut PgConnection,
    parents: &[Uuid],
) -> Result<Vec<(Job, Vec<Uuid>)>, StoreError> {
    // Sorted below the lock, so rows are locked in id order. A row we had to wait for is
    // re-read in its newest committed version (READ COMMITTED): what makes fan-in exact.
    let rows = sqlx::query(
        "SELECT j.body, j.lease_ms, e.parents FROM hopper.jobs j
         JOIN (SELECT child, array_agg(parent ORDER BY parent) AS parents
               FROM hopper.job_deps WHERE parent = ANY($1) GROUP BY child) e
             ON e.child = j.id
         ORDER BY j.id FOR UPDATE OF j",
    )
    .bind(parents)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| Ok((decode_job(r)?, r.try_get(2).map_err(db_error)?)))
        .collect()
}

/// The fan-in of one transaction, run before its flush: every workflow step that finished in
/// it (and has not been settled yet) moves its pending children on, cascading through the
/// children that are cancelled as a result, and is counted in its run. Answers the runs it
/// changed, as written.
///
/// Breadth-first with an explicit worklist (the WriteSet's list of finished steps, which
/// grows as children are cancelled), one statement per level of the graph: a chain of
/// thousands of steps cancels without recursion.
pub(crate) async fn settle(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
) -> Result<Vec<Workflow>, StoreError> {
    if ws.unsettled_steps().is_empty() {
        return Ok(Vec::new());
    }
    let mut finished: Vec<JobId> = Vec::new();
    // Whether each run is being cancelled, read without the run's lock (taken last, below).
    // The flag cannot change under us: a cancel of the run locks every unfinished step first,
    // including the ones finishing here, which this transaction holds.
    let mut cancelling: HashMap<WorkflowId, bool> = HashMap::new();
    loop {
        let level: Vec<(JobId, String)> = ws.unsettled_steps().to_vec();
        if level.is_empty() {
            break;
        }
        ws.mark_settled(level.len());
        // Each parent as it finished, with who finished it: the changes it causes downstream
        // are recorded as that actor's (a worker's ack moves the steps waiting for it).
        let parents: HashMap<Uuid, (Job, String)> = level
            .iter()
            .filter_map(|(id, actor)| ws.get(id).map(|j| (id.0, (j.clone(), actor.clone()))))
            .collect();
        let unknown: Vec<Uuid> = parents
            .values()
            .filter_map(|(j, _)| j.workflow.as_ref().map(|w| w.workflow_id))
            .filter(|w| !cancelling.contains_key(w))
            .map(|w| w.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            let rows =
                sqlx::query("SELECT id, cancel_requested FROM hopper.workflows WHERE id = ANY($1)")
                    .bind(&unknown)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_error)?;
            for r in &rows {
                cancelling.insert(
                    JobId(r.try_get(0).map_err(db_error)?),
                    r.try_get(1).map_err(db_error)?,
                );
            }
        }
        let ids: Vec<Uuid> = level.iter().map(|(id, _)| id.0).collect();
        finished.extend(level.into_iter().map(|(id, _)| id));
        for (stored, parent_ids) in lock_children(conn, &ids).await? {
            // This transaction's own version when it changed the child already (e.g. a cancel
            // of the run, or a parent of an earlier level).
            let mut child = ws.get(&stored.id).cloned().unwrap_or(stored);
            let run_cancelling = child
                .workflow
                .as_ref()
                .and_then(|w| cancelling.get(&w.workflow_id))
                .copied()
                .unwrap_or(false);
            // This transaction's time was read when it began, and it may have waited for the
            // lock of a child another node added since (with that node's later time): a step
            // cannot become runnable before it existed, or it would be `scheduled` for the gap.
            let now = ws.now.max(child.created_at);
            for pid in parent_ids {
                if child.state != JobState::Pending {
                    break;
                }
                let Some((parent, actor)) = parents.get(&pid) else {
                    continue;
                };
                match workflow_plan::child_after_parent(&mut child, parent, run_cancelling, now) {
                    // A child cancelled here is a finished step: the WriteSet lists it for the
                    // next level.
                    Some(change) => ws.changed(&child, change, actor),
                    // Still pending, one parent fewer to wait for.
                    None => ws.updated(&child),
                }
            }
        }
    }

    // The runs, locked last, each counting its steps that finished here.
    let run_ids: Vec<Uuid> = finished
        .iter()
        .filter_map(|id| ws.get(id))
        .filter_map(|j| j.workflow.as_ref().map(|w| w.workflow_id.0))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut runs = lock_runs(conn, &run_ids).await?;
    for id in &finished {
        let Some(job) = ws.get(id) else {
            continue;
        };
        let Some(info) = job.workflow.as_ref() else {
            continue;
        };
        match runs.get_mut(&info.workflow_id) {
            Some(run) => run.step_finished(info, job.state, ws.now),
            // Never for a run stored here (runs are not deleted); a step copied in without
            // its run must still be able to finish.
            None => tracing::warn!(
                step = %job.id.0,
                workflow = %info.workflow_id.0,
                "a workflow step finished but its run is missing"
            ),
        }
    }
    let mut runs: Vec<Workflow> = runs.into_values().collect();
    runs.sort_by_key(|w| w.id);
    save_runs(conn, &runs).await?;
    Ok(runs)
}

/// Up to `limit` runs of every namespace by id, after `after`, each with every edge whose
/// child is one of its steps, ordered by (parent, child). Runs and edges are read from one
/// snapshot, so a run's step count and its edges agree even while steps are being added.
pub(crate) async fn export(
    conn: &mut PgConnection,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let mut tx = sqlx::Connection::begin(conn).await.map_err(db_error)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    let records = export_in(&mut tx, after, limit).await;
    // Read only: ending it either way changes nothing.
    tx.rollback().await.map_err(db_error)?;
    records
}

async fn export_in(
    conn: &mut PgConnection,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM hopper.workflows w WHERE ($1::uuid IS NULL OR w.id > $1)
         ORDER BY w.id LIMIT $2"
    )))
    .bind(after.map(|a| a.0))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut records = Vec::with_capacity(rows.len());
    let mut at: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let workflow = decode_run(row, 0)?;
        at.insert(workflow.id.0, records.len());
        records.push(WorkflowRecord {
            workflow,
            edges: Vec::new(),
        });
    }
    if records.is_empty() {
        return Ok(records);
    }
    let ids: Vec<Uuid> = records.iter().map(|r| r.workflow.id.0).collect();
    let edges = sqlx::query(
        "SELECT j.workflow_id, d.parent, d.child FROM hopper.job_deps d
         JOIN hopper.jobs j ON j.id = d.child
         WHERE j.workflow_id = ANY($1)
         ORDER BY d.parent, d.child",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for row in &edges {
        let run: Uuid = row.try_get(0).map_err(db_error)?;
        if let Some(&i) = at.get(&run) {
            records[i].edges.push((
                JobId(row.try_get(1).map_err(db_error)?),
                JobId(row.try_get(2).map_err(db_error)?),
            ));
        }
    }
    Ok(records)
}

/// Copies runs and their edges in as another store recorded them: a run whose id, or whose
/// definition and logical date, is already present is skipped, and so is an edge already
/// present. Nothing is settled or recounted.
pub(crate) async fn import(
    conn: &mut PgConnection,
    records: &[WorkflowRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let mut ids = Vec::with_capacity(n);
    let mut namespaces = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut steps = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    let mut failed = Vec::with_capacity(n);
    let mut cancel = Vec::with_capacity(n);
    let mut definitions = Vec::with_capacity(n);
    let mut dates = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut finished_at = Vec::with_capacity(n);
    let mut parents = Vec::new();
    let mut children = Vec::new();
    for r in records {
        let w = &r.workflow;
        ids.push(w.id.0);
        namespaces.push(w.namespace.as_str());
        names.push(w.name.as_deref());
        states.push(w.state.as_str());
        steps.push(count_column(w.steps)?);
        open.push(count_column(w.open_steps)?);
        failed.push(count_column(w.failed_steps)?);
        cancel.push(w.cancel_requested);
        definitions.push(w.definition.as_deref());
        dates.push(w.logical_date.as_deref());
        created_at.push(w.created_at.as_millis());
        finished_at.push(w.finished_at.map(Timestamp::as_millis));
        for (parent, child) in &r.edges {
            parents.push(parent.0);
            children.push(child.0);
        }
    }
    // No conflict target: a row conflicting on the id or on (namespace, definition,
    // logical_date) is skipped alike.
    sqlx::query(
        "INSERT INTO hopper.workflows (id, namespace, name, state, steps, open_steps,
             failed_steps, cancel_requested, definition, logical_date, created_at, finished_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
             $6::int[], $7::int[], $8::boolean[], $9::text[], $10::text[], $11::bigint[],
             $12::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .bind(namespaces)
    .bind(names)
    .bind(states)
    .bind(steps)
    .bind(open)
    .bind(failed)
    .bind(cancel)
    .bind(definitions)
    .bind(dates)
    .bind(created_at)
    .bind(finished_at)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    if !parents.is_empty() {
        sqlx::query(
            "INSERT INTO hopper.job_deps (parent, child)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(parents)
        .bind(children)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}
