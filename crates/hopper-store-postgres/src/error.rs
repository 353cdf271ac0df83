//! The mapping from driver errors to the portable [`StoreError`] kinds.

use hopper_store::StoreError;

/// SQLSTATEs after which nothing was changed and the same call may simply be tried again:
/// serialization failure, deadlock, statement timeout or cancel, too many connections,
/// server shutting down, cannot connect now, read-only transaction (a failover in progress).
const RETRYABLE_SQLSTATES: &[&str] = &[
    "40001", "40P01", "57014", "53300", "57P01", "57P02", "57P03", "25006",
];

/// Contention, timeouts and a lost or unreachable server are `Unavailable` (retry is safe);
/// anything else is a bug in this crate's SQL and is `Internal`.
pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d)
            if d.code()
                .is_some_and(|c| RETRYABLE_SQLSTATES.contains(&c.as_ref())) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        // A step name taken twice in one run. Adds check names under the run's lock, so this
        // is a backstop: the unique index on (workflow_id, step) has the last word.
        sqlx::Error::Database(d) if d.constraint() == Some("jobs_workflow_step") => {
            StoreError::InvalidArgument {
                field: "steps".into(),
                message: "the workflow run already has a step of that name".into(),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Internal(e.to_string()),
    }
}
