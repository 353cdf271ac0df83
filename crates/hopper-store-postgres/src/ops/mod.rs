//! The SQL of each store operation. Writes run inside a transaction the caller opened, lock
//! the rows they change (`FOR UPDATE`, or `FOR UPDATE SKIP LOCKED` where any row will do),
//! compute new states with `hopper_types::lifecycle`, and leave the writing to
//! [`crate::write_set::WriteSet`].
//!
//! Lock order: statements that lock several jobs lock them in id order, so two of them can
//! never deadlock on each other. Transactions that finish workflow steps then lock the steps'
//! children and, last, the runs' rows (see [`workflow`]).

pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod explain;
pub(crate) mod export;
pub(crate) mod feed;
pub(crate) mod flow;
pub(crate) mod insert;
pub(crate) mod leader;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod namespaces;
pub(crate) mod outcome;
pub(crate) mod queue;
pub(crate) mod read;
pub(crate) mod schedule;
pub(crate) mod webhooks;
pub(crate) mod workers_seen;
pub(crate) mod workflow;
pub(crate) mod workflow_definition;

use hopper_store::StoreError;
use hopper_types::{Job, JobId};
use sqlx::PgConnection;

use crate::error::db_error;
use crate::rows::decode_job;

/// Loads one job of `namespace` and locks it until the transaction ends.
pub(crate) async fn lock_job(
    conn: &mut PgConnection,
    namespace: &str,
    id: &JobId,
) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs WHERE id = $1 AND namespace = $2 FOR UPDATE",
    )
    .bind(id.0)
    .bind(namespace)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    row.as_ref().map(decode_job).transpose()
}

/// Loads one job of `namespace` without locking it.
pub(crate) async fn load_job(
    conn: &mut PgConnection,
    namespace: &str,
    id: &JobId,
) -> Result<Option<Job>, StoreError> {
    let row =
        sqlx::query("SELECT body, lease_ms FROM hopper.jobs WHERE id = $1 AND namespace = $2")
            .bind(id.0)
            .bind(namespace)
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
    row.as_ref().map(decode_job).transpose()
}

/// Deletes jobs and their events.
pub(crate) async fn delete_jobs(
    conn: &mut PgConnection,
    ids: &[uuid::Uuid],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM hopper.jobs WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    sqlx::query("DELETE FROM hopper.job_events WHERE job_id = ANY($1)")
        .bind(ids)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
