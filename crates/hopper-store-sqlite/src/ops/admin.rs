//! Operator actions on one job: cancel, retry, delete.

use hopper_store::{JobRef, StoreError};
use hopper_types::{Job, lifecycle};
use rusqlite::params;

use crate::rows::{load_job, sql_error, update_job};
use crate::writer::WriteCtx;

pub(crate) fn cancel(ctx: &mut WriteCtx<'_>, r: &JobRef, actor: &str) -> Result<Job, StoreError> {
    let mut job = load_job(ctx.conn, &r.namespace, &r.id)?.ok_or(StoreError::NotFound)?;
    let change = lifecycle::cancel(&mut job, ctx.now)?;
    update_job(ctx.conn, &job)?;
    ctx.record(&job, change, actor)?;
    Ok(job)
}

pub(crate) fn retry(ctx: &mut WriteCtx<'_>, r: &JobRef, actor: &str) -> Result<Job, StoreError> {
    let mut job = load_job(ctx.conn, &r.namespace, &r.id)?.ok_or(StoreError::NotFound)?;
    let change = lifecycle::retry(&mut job, ctx.now)?;
    update_job(ctx.conn, &job)?;
    ctx.record(&job, change, actor)?;
    Ok(job)
}

pub(crate) fn delete(ctx: &mut WriteCtx<'_>, r: &JobRef) -> Result<(), StoreError> {
    let job = load_job(ctx.conn, &r.namespace, &r.id)?.ok_or(StoreError::NotFound)?;
    lifecycle::check_deletable(&job)?;
    delete_rows(ctx, &job.id.to_string())?;
    ctx.record_delete(&job.namespace, &job.queue, job.state);
    Ok(())
}

/// Removes a job's row and its events.
pub(crate) fn delete_rows(ctx: &WriteCtx<'_>, id: &str) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(sql_error)?;
    ctx.conn
        .prepare_cached("DELETE FROM job_events WHERE job_id = ?1")
        .and_then(|mut s| s.execute(params![id]))
        .map_err(sql_error)?;
    Ok(())
}
