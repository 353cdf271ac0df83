//! Operator actions on one job: cancel, retry, delete, each under the job's row lock.

use hopper_store::{JobRef, StoreError};
use hopper_types::{Job, lifecycle};
use sqlx::PgConnection;

use crate::ops::{delete_jobs, lock_job};
use crate::write_set::WriteSet;

pub(crate) async fn cancel(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    r: &JobRef,
    actor: &str,
) -> Result<Job, StoreError> {
    let mut job = lock_job(conn, &r.namespace, &r.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let change = lifecycle::cancel(&mut job, ws.now)?;
    ws.changed(&job, change, actor);
    Ok(job)
}

pub(crate) async fn retry(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    r: &JobRef,
    actor: &str,
) -> Result<Job, StoreError> {
    let mut job = lock_job(conn, &r.namespace, &r.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let change = lifecycle::retry(&mut job, ws.now)?;
    ws.changed(&job, change, actor);
    Ok(job)
}

pub(crate) async fn delete(conn: &mut PgConnection, r: &JobRef) -> Result<(), StoreError> {
    let job = lock_job(conn, &r.namespace, &r.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    lifecycle::check_deletable(&job)?;
    delete_jobs(conn, &[job.id.0]).await
}
