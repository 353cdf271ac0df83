//! Transactional enqueue (feature `postgres`): insert jobs inside the application's own
//! PostgreSQL transaction, on the database a Hopper cluster uses.
//!
//! ```no_run
//! # async fn signup(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
//! use hopper_worker::EnqueueRequest;
//!
//! let mut tx = pool.begin().await?;
//! sqlx::query("INSERT INTO users (email) VALUES ($1)").bind("ada@example.com").execute(&mut *tx).await?;
//! let req = EnqueueRequest::new("send_welcome", &serde_json::json!({"to": "ada@example.com"}))?;
//! hopper_worker::postgres::enqueue(&mut tx, req).await?;
//! tx.commit().await?; // the user and the job exist together, or neither does
//! # Ok(()) }
//! ```
//!
//! Guarantees:
//! - The job exists if and only if the transaction commits. Rolled back (or never committed,
//!   as when the process dies first), nothing of it remains and no worker ever sees it.
//! - Workers on every node are woken at commit: the wake-up notification is part of the
//!   transaction, so it is delivered only if the transaction commits, never before.
//! - The job is validated as `POST /v1/jobs` validates it (default limits, `default`
//!   namespace), and recorded with the actor `app`.
//! - An idempotency key behaves as over HTTP: a key held by a committed job answers that job
//!   (marked duplicate); while another transaction holding the same key is open, this call
//!   waits for it to end. Unlike over HTTP, no key is generated when none is given: the
//!   transaction itself makes the enqueue exactly-once.
//! - The schema must have been created by a `hopper server` (or `hopper migrate`) of the same
//!   version; jobs are written to the `hopper` schema of the connection's database.

use hopper_store::StoreError;
use hopper_types::{EnqueueRequest, Job, JobId, Limits, ValidationError};

pub use sqlx;

/// Why a transactional enqueue failed. The transaction is still usable after every one of
/// these except [`TxEnqueueError::Database`], which usually means it is aborted.
#[derive(Debug, thiserror::Error)]
pub enum TxEnqueueError {
    /// The request is invalid (the same checks as `POST /v1/jobs`, with the field named).
    #[error("invalid job at index {index}: {source}")]
    Invalid {
        /// Position in the batch.
        index: usize,
        /// What is wrong.
        #[source]
        source: ValidationError,
    },
    /// The idempotency key is held by a job with different content.
    #[error(
        "idempotency key of the job at index {index} is held by job {existing} with different content"
    )]
    IdempotencyConflict {
        /// Position in the batch.
        index: usize,
        /// The job holding the key.
        existing: JobId,
    },
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[source] StoreError),
}

/// Enqueues one job using `conn` (usually `&mut tx` of an open transaction).
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    req: EnqueueRequest,
) -> Result<Job, TxEnqueueError> {
    let mut jobs = enqueue_batch(conn, vec![req]).await?;
    jobs.pop()
        .ok_or_else(|| TxEnqueueError::Database(StoreError::Internal("no job returned".into())))
}

/// Enqueues jobs using `conn`; the answer is in request order. A duplicate whose job has since
/// been deleted is left out (there is no job to return).
pub async fn enqueue_batch(
    conn: &mut sqlx::PgConnection,
    reqs: Vec<EnqueueRequest>,
) -> Result<Vec<Job>, TxEnqueueError> {
    let limits = Limits::default();
    let mut jobs = Vec::with_capacity(reqs.len());
    for (index, req) in reqs.into_iter().enumerate() {
        jobs.push(
            req.validate(hopper_types::DEFAULT_NAMESPACE, &limits)
                .map_err(|source| TxEnqueueError::Invalid { index, source })?,
        );
    }
    let inserted = hopper_store_postgres::enqueue_in(conn, jobs)
        .await
        .map_err(|e| match e {
            StoreError::IdempotencyConflict { index, existing } => {
                TxEnqueueError::IdempotencyConflict { index, existing }
            }
            other => TxEnqueueError::Database(other),
        })?;
    Ok(inserted
        .into_iter()
        .filter_map(|i| {
            i.job.map(|mut j| {
                if i.duplicate {
                    j.duplicate = Some(true);
                }
                j
            })
        })
        .collect())
}
