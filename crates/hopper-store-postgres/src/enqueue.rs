//! Transactional enqueue: jobs inserted by the application inside its own PostgreSQL
//! transaction, on the database Hopper uses.
//!
//! The guarantee is the transaction's: the jobs exist if and only if the transaction commits,
//! together with whatever else it wrote. Workers on every node are woken at commit (the
//! notification is part of the transaction), and never see a job of a transaction that rolled
//! back. Idempotency keys behave as for `POST /v1/jobs`; while the transaction is open, an
//! enqueue of the same key elsewhere waits for it to end.

use hopper_store::{Inserted, StoreError};
use hopper_types::{Clock, NewJob, SystemClock};
use sqlx::PgConnection;

use crate::write_set::WriteSet;

/// Inserts validated jobs using `conn`, typically `&mut *transaction`; the caller commits or
/// rolls back. Recorded with the actor `app`. Nothing is visible to workers before the commit.
pub async fn enqueue_in(
    conn: &mut PgConnection,
    jobs: Vec<NewJob>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut ws = WriteSet::new(SystemClock.now());
    let out = crate::ops::insert::insert_many(conn, &mut ws, jobs, "app").await?;
    // The node name `app` is no node's, so every node's listener wakes its workers.
    ws.flush(conn, "app").await?;
    Ok(out)
}
