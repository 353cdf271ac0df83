//! Portable error kinds: what callers may match on, whatever the backend.

use hopper_types::lifecycle::TransitionError;
use hopper_types::{JobId, JobState};

/// Why a store operation did not happen. Every variant means nothing was changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// No such job (in this namespace).
    #[error("not found")]
    NotFound,
    /// The lease token is not the job's current one, or its lease already ended.
    #[error("the lease token is not the job's current one, or its lease already ended")]
    LeaseLost,
    /// The transition is not allowed from the job's state.
    #[error("cannot {action} a job that is {state}")]
    InvalidState {
        /// The job's state.
        state: JobState,
        /// What was asked.
        action: &'static str,
    },
    /// An idempotency key exists with different queue, kind or args.
    #[error(
        "idempotency key of job {index} is already used by job {existing} with a different queue, kind or args"
    )]
    IdempotencyConflict {
        /// Position of the offending job in the request.
        index: usize,
        /// The job that holds the key.
        existing: JobId,
    },
    /// The change does not fit the current state of what it names (e.g. retrying a workflow
    /// run that is still running); the message says why.
    #[error("{0}")]
    Conflict(String),
    /// The thing to create exists already (a schedule of that name).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A parameter the store cannot accept (e.g. purging a state that is not finished).
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The offending parameter.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Storage is unreachable, overloaded or shutting down. Safe to retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or corruption: the operation failed in a way the caller cannot fix.
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl From<TransitionError> for StoreError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::LeaseLost => StoreError::LeaseLost,
            TransitionError::InvalidState { state, action } => {
                StoreError::InvalidState { state, action }
            }
            e @ TransitionError::WorkflowStep { .. } => StoreError::Conflict(e.to_string()),
        }
    }
}
