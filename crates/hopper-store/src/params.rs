//! Parameters and results of [`crate::Store`] operations.

use std::collections::BTreeMap;

use hopper_types::lifecycle::Failure;
use hopper_types::{Job, JobEvent, JobId, JobState, NewJob, QueueConfig, Timestamp};
use serde_json::value::RawValue;

use crate::StoreError;

/// Who asked for a change, recorded in the job's events (`api`, `worker:<id>`, `system:<service>`).
pub type Actor = String;

/// A job in a namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRef {
    /// Tenant.
    pub namespace: String,
    /// The job.
    pub id: JobId,
}

impl JobRef {
    /// A job in the default namespace.
    pub fn default_ns(id: JobId) -> JobRef {
        JobRef {
            namespace: hopper_types::DEFAULT_NAMESPACE.to_string(),
            id,
        }
    }
}

/// Insert jobs, all or none.
#[derive(Debug, Clone)]
pub struct JobInsertParams {
    /// Validated jobs; idempotency keys are unique within the list (the caller checks).
    pub jobs: Vec<NewJob>,
    /// Recorded on the enqueue events.
    pub actor: Actor,
}

/// What became of one job of an insert.
#[derive(Debug, Clone)]
pub struct Inserted {
    /// The stored job: the new one, or the existing one its idempotency key matched. `None` only
    /// when the key matched a job that has since been deleted or pruned (the key outlives it).
    pub job: Option<Job>,
    /// The job's id (the new one, or the existing one).
    pub id: JobId,
    /// True when the idempotency key matched an existing job and nothing was created.
    pub duplicate: bool,
}

/// Most jobs [`JobWait::ahead`] counts exactly; beyond it the count stops.
pub const MAX_AHEAD_COUNTED: u64 = 100_000;

/// What a job waits for (`GET /v1/jobs/{id}/explain`), as the store knows it.
#[derive(Debug, Clone)]
pub struct JobWait {
    /// The job.
    pub job: Job,
    /// Its queue as a lease would see it now: configuration, running jobs (in total, and of
    /// the job's own concurrency key), token buckets, fairness clocks.
    pub flow: crate::lease_plan::FlowSnapshot,
    /// Available jobs of the queue (of the job's fairness key, in a fair queue) that lease
    /// before it, counted up to [`MAX_AHEAD_COUNTED`]; 0 unless the job is available.
    pub ahead: u64,
}

/// Search and page through jobs, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobListParams {
    /// Tenant.
    pub namespace: String,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only these states (any of them); empty means all.
    pub states: Vec<JobState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only jobs carrying this tag.
    pub tag: Option<String>,
    /// Substring of kind, id or a tag.
    pub q: Option<String>,
    /// Page size, 1..=500.
    pub limit: usize,
    /// Only jobs with an id smaller than this (the previous page's cursor).
    pub before: Option<JobId>,
}

/// One page of jobs.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `before` for the next page; none on the last page.
    pub next_cursor: Option<JobId>,
}

/// Lease up to `max_jobs` available jobs from `queues`, served as one in priority order.
#[derive(Debug, Clone)]
pub struct JobLeaseParams {
    /// Tenant.
    pub namespace: String,
    /// Queues to take from; paused ones hand out nothing.
    pub queues: Vec<String>,
    /// Recorded on the job and its attempt.
    pub worker_id: String,
    /// 1..=1000.
    pub max_jobs: usize,
    /// Lease length.
    pub lease_ms: i64,
}

/// Renew a lease.
#[derive(Debug, Clone)]
pub struct JobHeartbeatParams {
    /// The job.
    pub job: JobRef,
    /// Its current lease token.
    pub lease_token: String,
    /// New lease length from now; the lease's own length when absent.
    pub lease_ms: Option<i64>,
    /// Progress to record, if any.
    pub progress: Option<Box<RawValue>>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The lease's new end.
    pub lease_expires_at: Timestamp,
    /// Whether someone asked to cancel the job.
    pub cancel_requested: bool,
}

/// A worker's outcome for one leased job.
#[derive(Debug, Clone)]
pub struct JobAck {
    /// The job.
    pub job: JobRef,
    /// The lease token it was leased with.
    pub lease_token: String,
    /// What happened.
    pub outcome: AckOutcome,
}

/// The outcomes a worker can report.
#[derive(Debug, Clone)]
pub enum AckOutcome {
    /// The handler succeeded.
    Completed {
        /// What it returned.
        result: Option<Box<RawValue>>,
    },
    /// The handler failed.
    Failed(Failure),
    /// Hand the job back uncounted.
    Released,
    /// The handler stopped because the job was cancelled.
    Cancelled,
}

/// The result of each ack, in request order.
pub type AckResults = Vec<Result<Job, StoreError>>;

/// A queue as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Paused queues hand out no leases.
    pub paused: bool,
    /// Jobs per state (every state present, zeros included).
    pub counts: BTreeMap<JobState, u64>,
    /// Age of the oldest available job, if any.
    pub oldest_available_age_ms: Option<i64>,
    /// Its configuration (`paused` included; defaults for a queue never configured).
    pub config: QueueConfig,
}

/// Remove finished jobs older than their retention.
#[derive(Debug, Clone)]
pub struct JobPruneParams {
    /// Completed jobs finished before this are removed.
    pub completed_before: Timestamp,
    /// Cancelled jobs finished before this are removed.
    pub cancelled_before: Timestamp,
    /// Dead jobs finished before this are removed.
    pub dead_before: Timestamp,
    /// At most this many jobs per call, so the hot path is never stalled for long.
    pub limit: usize,
    /// Only this queue (namespace, name); when absent, every queue except those whose
    /// configuration sets a retention of their own (they are pruned one by one).
    pub queue: Option<(String, String)>,
}

/// How many jobs of each worker are running.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRunning {
    /// The worker's id.
    pub worker_id: String,
    /// Queues it holds running jobs of.
    pub queues: Vec<String>,
    /// Jobs it holds.
    pub running: u64,
}

impl WorkerRunning {
    /// Folds (worker, queue, running jobs) rows, ordered by worker, into one entry per worker.
    pub fn group(rows: impl IntoIterator<Item = (String, String, u64)>) -> Vec<WorkerRunning> {
        let mut out: Vec<WorkerRunning> = Vec::new();
        for (worker, queue, n) in rows {
            match out.last_mut() {
                Some(w) if w.worker_id == worker => {
                    w.queues.push(queue);
                    w.running += n;
                }
                _ => out.push(WorkerRunning {
                    worker_id: worker,
                    queues: vec![queue],
                    running: n,
                }),
            }
        }
        out
    }
}

/// A job with its whole event history, as copied between stores by `hopper migrate`.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// The job as stored (its lease token included, so running jobs keep their leases).
    pub job: Job,
    /// Its events, oldest first.
    pub events: Vec<JobEvent>,
}

/// A remembered idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyKeyRecord {
    /// Tenant.
    pub namespace: String,
    /// The key.
    pub key: String,
    /// The job it created.
    pub job_id: JobId,
    /// The content fingerprint later enqueues are compared with.
    pub fingerprint: String,
    /// When it was first used (retention counts from here).
    pub created_at: Timestamp,
}

/// A queue's stored configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    /// Tenant.
    pub namespace: String,
    /// Queue name.
    pub name: String,
    /// Its configuration.
    pub config: QueueConfig,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Rows to copy into a store; rows whose key already exists there are skipped, so an
/// interrupted copy can simply run again.
#[derive(Debug, Clone, Default)]
pub struct ImportBatch {
    /// Jobs with their events (a job already present is skipped with its events).
    pub jobs: Vec<JobRecord>,
    /// Idempotency keys.
    pub idempotency_keys: Vec<IdempotencyKeyRecord>,
    /// Queue configurations.
    pub queues: Vec<QueueRecord>,
    /// Cron schedules, with their cursors and last runs.
    pub schedules: Vec<hopper_types::schedule::Schedule>,
    /// Workflow runs with their dependency edges (import them after their steps' jobs).
    pub workflows: Vec<WorkflowRecord>,
    /// Workflow definitions.
    pub workflow_definitions: Vec<hopper_types::workflow_definition::WorkflowDefinition>,
    /// Backfills.
    pub backfills: Vec<hopper_types::workflow_definition::Backfill>,
    /// API keys (their secrets' digests, never the secrets), revoked ones and all: a key
    /// already present by id is skipped.
    pub api_keys: Vec<hopper_types::api_key::StoredApiKey>,
    /// Namespace quotas: a namespace that already has quotas keeps its own.
    pub namespaces: Vec<hopper_types::namespace::NamespaceSettings>,
    /// Audit entries, each kept at its own `seq`. An entry already present at its seq is
    /// skipped; one whose seq the destination gave to a different entry is appended with a
    /// new seq instead (once: an identical entry anywhere counts as present), so merging two
    /// logs loses nothing. Entries appended later are numbered after every imported one.
    pub audit: Vec<hopper_types::audit::AuditEntry>,
    /// Webhook subscriptions, each with the cursor given (a webhook already present by id is
    /// skipped). A cursor is a position in the event log: the store makes its event log's
    /// next seq larger than every imported cursor, so new events are dispatched.
    pub webhooks: Vec<hopper_types::webhook::Webhook>,
}

/// A workflow run as exported: its row and every dependency edge among its steps, as
/// (parent job, child job).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRecord {
    /// The run, counters and all.
    pub workflow: hopper_types::workflow_run::Workflow,
    /// Its edges, ordered.
    pub edges: Vec<(JobId, JobId)>,
}

/// How many rows a store holds, to verify a copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreTotals {
    /// Jobs, all namespaces and states.
    pub jobs: u64,
    /// Job events.
    pub events: u64,
    /// Remembered idempotency keys.
    pub idempotency_keys: u64,
    /// Configured queues.
    pub queues: u64,
    /// Cron schedules.
    pub schedules: u64,
    /// Workflow runs.
    pub workflows: u64,
    /// Dependency edges between workflow steps.
    pub job_deps: u64,
    /// Workflow definitions.
    pub workflow_definitions: u64,
    /// Backfills.
    pub backfills: u64,
    /// API keys, revoked ones included.
    pub api_keys: u64,
    /// Namespaces with stored quotas.
    pub namespaces: u64,
    /// Audit log entries.
    pub audit: u64,
    /// Webhook subscriptions.
    pub webhooks: u64,
}

/// One row of the event log as [`crate::Store::events_after`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLogRow {
    /// Its position in the log.
    pub seq: i64,
    /// The event with its job's queue and kind; none when the job is gone.
    pub event: Option<hopper_types::StreamEvent>,
}

/// A worker as the nodes sharing a store last saw it (what `GET /v1/workers` lists on every
/// node).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSeen {
    /// Tenant.
    pub namespace: String,
    /// Its `worker_id`.
    pub worker_id: String,
    /// The queues of its latest lease request (empty when only its heartbeats were seen).
    pub queues: Vec<String>,
    /// When it last leased, heartbeated or acked.
    pub last_seen_at: Timestamp,
    /// The node that saw it then.
    pub node: String,
}
