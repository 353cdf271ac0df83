//! The stored job, as the API shows it, and the records kept with it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Backoff, JobId, JobState, LeaseToken, Timestamp};

/// How many failed-attempt errors a job keeps (the newest).
pub const MAX_ERRORS_KEPT: usize = 50;

/// A job as stored and as the API returns it. Field meanings are in the semantics document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// UUIDv7, assigned at enqueue.
    pub id: JobId,
    /// Tenant; always `default` until tenancy arrives.
    pub namespace: String,
    /// Queue name.
    pub queue: String,
    /// Handler name.
    pub kind: String,
    /// Handler arguments, kept as the exact JSON text given.
    #[schema(value_type = Object)]
    pub args: Box<RawValue>,
    /// Higher runs first.
    pub priority: i32,
    /// Current state.
    pub state: JobState,
    /// Counted attempts started so far.
    pub attempt: i32,
    /// Counted attempts allowed before the job is dead.
    pub max_attempts: i32,
    /// Retry delay policy.
    pub backoff: Backoff,
    /// Limit on one attempt's run time.
    pub timeout_ms: i64,
    /// Deduplication key, if given at enqueue.
    pub idempotency_key: Option<String>,
    /// Free labels for filtering and search.
    pub tags: Vec<String>,
    /// Free-form object, returned as given.
    #[schema(value_type = Object)]
    pub meta: Box<RawValue>,
    /// W3C trace context of the producer.
    pub traceparent: Option<String>,
    /// Groups jobs for the queue's per-key concurrency and rate limits (e.g. a customer id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// Groups jobs for a `fair` queue's round robin (e.g. a tenant id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_key: Option<String>,
    /// The producer's estimate of the run time, for a `shortest_first` queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_ms: Option<i64>,
    /// Grows by one at every lease; a fencing number for the handler's own writes.
    pub lease_seq: i64,
    /// The error of each failed attempt, newest last, at most [`MAX_ERRORS_KEPT`].
    pub errors: Vec<ErrorRecord>,
    /// One entry per lease.
    pub attempts: Vec<Attempt>,
    /// What the handler returned on completion.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Box<RawValue>>,
    /// The last progress a worker reported.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Box<RawValue>>,
    /// When the job was enqueued.
    pub created_at: Timestamp,
    /// When the job becomes (or became) leasable.
    pub available_at: Timestamp,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When the job reached a finished state.
    pub finished_at: Option<Timestamp>,
    /// When the current lease ends unless renewed.
    pub lease_expires_at: Option<Timestamp>,
    /// The worker holding the current lease.
    pub worker_id: Option<String>,
    /// A cancel was asked for while the job ran.
    pub cancel_requested: bool,
    /// The current lease's token: shown only to the worker that leased the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<LeaseToken>,
    /// Set on an answer that repeated a change already made, which changed nothing: an enqueue
    /// whose idempotency key matched an existing job, or a worker outcome its lease token had
    /// already recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Set when the job is a step of a workflow run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<crate::workflow_run::StepInfo>,
    /// The lease length the current lease was granted with (kept for restart grace).
    #[serde(skip)]
    pub lease_ms: i64,
}

impl Job {
    /// The job without its lease token, for everyone but the worker holding the lease.
    pub fn without_token(mut self) -> Job {
        self.lease_token = None;
        self
    }

    /// The moment the current attempt runs out of time (`started_at + timeout_ms`).
    pub fn attempt_deadline(&self) -> Option<Timestamp> {
        self.started_at.map(|s| s.plus_ms(self.timeout_ms))
    }

    /// When the rescuer must look at this running job: the earlier of lease expiry and deadline.
    pub fn rescue_at(&self) -> Option<Timestamp> {
        match (self.lease_expires_at, self.attempt_deadline()) {
            (Some(l), Some(d)) => Some(l.min(d)),
            (l, d) => l.or(d),
        }
    }
}

/// The error of one failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorRecord {
    /// The attempt that failed (1-based).
    pub attempt: i32,
    /// When it failed.
    pub at: Timestamp,
    /// A short machine-readable kind: the worker's, or `lease_expired` / `timeout`.
    pub kind: String,
    /// What went wrong, at most 8 KiB.
    pub message: String,
}

/// How one lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The worker completed the job.
    Completed,
    /// The worker reported a failure.
    Failed,
    /// The worker handed the job back uncounted.
    Released,
    /// The worker honoured a cancel.
    Cancelled,
    /// The lease ran out (worker crashed or hung).
    LeaseExpired,
    /// The attempt ran past `timeout_ms`.
    Timeout,
}

impl AttemptOutcome {
    /// Outcomes a worker reports with its token (as opposed to ones the server decides).
    pub fn is_reported_by_worker(self) -> bool {
        matches!(
            self,
            AttemptOutcome::Completed
                | AttemptOutcome::Failed
                | AttemptOutcome::Released
                | AttemptOutcome::Cancelled
        )
    }
}

/// One lease of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The job's `lease_seq` for this lease.
    pub lease_seq: i64,
    /// Who held it.
    pub worker_id: String,
    /// When it was leased.
    pub started_at: Timestamp,
    /// When it ended, if it has.
    pub finished_at: Option<Timestamp>,
    /// How it ended, if it has.
    pub outcome: Option<AttemptOutcome>,
}

/// One recorded transition of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// Position in the store's event log (grows over time).
    pub seq: i64,
    /// The job.
    pub job_id: JobId,
    /// The state before; none at enqueue.
    pub from: Option<JobState>,
    /// The state after.
    pub to: JobState,
    /// When.
    pub at: Timestamp,
    /// Who: `api`, `worker:<id>`, or `system:<service>`.
    pub actor: String,
    /// What happened, in a word or two (`lease`, `complete`, `cancel_requested`, ...).
    pub reason: String,
}
