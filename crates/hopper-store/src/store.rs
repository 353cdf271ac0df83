//! The [`Store`] trait.

use async_trait::async_trait;
use hopper_types::{Clock, Job, JobEvent, JobId, JobState, QueueConfig, Timestamp};

use crate::params::*;
use crate::{QueueSignals, StoreError};

/// Everything Hopper asks of its storage. Each method is atomic: it happens entirely or, when it
/// returns an error, not at all. A successful return of a method that changes state means the
/// change is durable under the store's durability setting.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts jobs atomically, honouring idempotency keys: a key already remembered in the
    /// namespace yields the existing job (`duplicate`) when queue, kind and args match, and
    /// fails the whole call with [`StoreError::IdempotencyConflict`] when they do not.
    async fn job_insert_many(&self, params: JobInsertParams) -> Result<Vec<Inserted>, StoreError>;

    /// One job; [`StoreError::NotFound`] when unknown.
    async fn job_get(&self, job: &JobRef) -> Result<Job, StoreError>;

    /// Jobs matching the filters, newest first, keyset-paged by id.
    async fn job_list(&self, params: &JobListParams) -> Result<JobPage, StoreError>;

    /// Every recorded transition of a job, oldest first.
    async fn job_events(&self, job: &JobRef) -> Result<Vec<JobEvent>, StoreError>;

    /// The event log of every namespace after `after`, up to `limit` rows in `seq` order, each
    /// with its job's queue and kind (`event` is none when the job was deleted since; its
    /// events are on their way out). What the live event stream tails.
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventLogRow>, StoreError>;

    /// The newest event's `seq` (0 when there is none).
    async fn events_last_seq(&self) -> Result<i64, StoreError>;

    /// True when events become visible strictly in `seq` order, so a gap in the log is final
    /// (deleted rows). False when a transaction can commit a smaller `seq` after a larger one
    /// is visible (PostgreSQL identities are taken at insert): readers then wait a little for
    /// gaps to fill.
    fn events_visible_in_seq_order(&self) -> bool;

    /// A job with the facts that decide when it can start: its queue's configuration, running
    /// counts and token buckets, and how many available jobs lease before it.
    async fn job_explain(&self, job: &JobRef) -> Result<JobWait, StoreError>;

    /// Leases available jobs; returns them with their lease tokens (possibly none).
    async fn job_lease_many(&self, params: JobLeaseParams) -> Result<Vec<Job>, StoreError>;

    /// Renews a live lease and records progress.
    async fn job_heartbeat(&self, params: JobHeartbeatParams) -> Result<Heartbeat, StoreError>;

    /// Applies worker outcomes, each standing alone; the outer error means none was applied.
    async fn job_ack_many(&self, acks: Vec<JobAck>) -> Result<AckResults, StoreError>;

    /// Cancels a waiting job, or flags a running one.
    async fn job_cancel(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError>;

    /// Makes a finished job run again from scratch, or a waiting one run now.
    async fn job_retry(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError>;

    /// Deletes a finished job and its events.
    async fn job_delete(&self, job: &JobRef) -> Result<(), StoreError>;

    /// Moves `scheduled` and `retryable` jobs whose time has come to `available` (at most
    /// `limit`); returns how many.
    async fn job_promote_due(&self, limit: usize) -> Result<u64, StoreError>;

    /// When the next `scheduled` or `retryable` job falls due, if any.
    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Ends running jobs whose lease expired or whose attempt timed out (at most `limit`);
    /// returns them as they are after the rescue (retryable, dead or cancelled), so callers
    /// can count and publish what happened per queue.
    async fn job_rescue_expired(&self, limit: usize) -> Result<Vec<Job>, StoreError>;

    /// The longest `lease_ms` among running jobs (0 when none): how long a starting server
    /// waits before it rescues anything.
    async fn job_max_outstanding_lease_ms(&self) -> Result<i64, StoreError>;

    /// Removes finished jobs past their retention, with their events; returns how many.
    async fn job_prune_finished(&self, params: JobPruneParams) -> Result<u64, StoreError>;

    /// Forgets idempotency keys created before `before` (at most `limit`); returns how many.
    async fn idempotency_key_prune(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError>;

    /// Every queue of the namespace that has jobs or configuration, by name.
    async fn queue_list(&self, namespace: &str) -> Result<Vec<QueueInfo>, StoreError>;

    /// One queue (queues exist implicitly: an unknown one is empty and not paused).
    async fn queue_get(&self, namespace: &str, name: &str) -> Result<QueueInfo, StoreError>;

    /// Pauses or resumes a queue; returns it.
    async fn queue_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<QueueInfo, StoreError>;

    /// Replaces a queue's whole configuration (pause, retention, limits, policy); returns
    /// the queue. In force for the next lease on every node.
    async fn queue_configure(
        &self,
        namespace: &str,
        name: &str,
        config: QueueConfig,
    ) -> Result<QueueInfo, StoreError>;

    /// Every queue (any namespace) whose configuration sets its own retention.
    async fn queue_list_custom_retention(&self) -> Result<Vec<QueueRecord>, StoreError>;

    /// Forgets a queue's flow-control state that is the same as none: fairness times at or
    /// behind the queue's fair clock, and per-key rate buckets last used before
    /// `rate_refilled_before` (full again by then). Keeps that state as small as the keys
    /// active lately; returns how many rows went.
    async fn queue_flow_prune(
        &self,
        namespace: &str,
        name: &str,
        rate_refilled_before: Option<Timestamp>,
    ) -> Result<u64, StoreError>;

    /// Retries every `dead` job of a queue; returns how many.
    async fn queue_retry_dead(
        &self,
        namespace: &str,
        name: &str,
        actor: &str,
    ) -> Result<u64, StoreError>;

    /// Deletes every job of a queue in one finished `state`; returns how many.
    async fn queue_purge(
        &self,
        namespace: &str,
        name: &str,
        state: JobState,
    ) -> Result<u64, StoreError>;

    /// Workers holding running jobs, with how many.
    async fn worker_running_list(&self, namespace: &str) -> Result<Vec<WorkerRunning>, StoreError>;

    /// Records that workers were seen: one row per (namespace, worker id), replaced by a row
    /// seen later (an older sighting from a slower node changes nothing).
    async fn workers_seen_record(&self, seen: Vec<WorkerSeen>) -> Result<(), StoreError>;

    /// Workers of `namespace` (of every namespace when none) seen at or after `since`, by
    /// namespace then id.
    async fn workers_seen_list(
        &self,
        namespace: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<WorkerSeen>, StoreError>;

    /// Forgets workers last seen before `before`; returns how many.
    async fn workers_seen_prune(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Takes or renews the lease named `name` for `holder` until `ttl_ms` from now, unless
    /// another holder's lease on it is still live; true when `holder` holds it afterwards.
    /// Nodes sharing a store run the singleton services only while they hold `maintenance`.
    async fn leader_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Gives up the lease `name` if `holder` holds it, so another node takes over at once.
    async fn leader_resign(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Up to `limit` jobs of every namespace with their events, by id, after `after`.
    async fn export_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError>;

    /// Up to `limit` idempotency keys ordered by (namespace, key), after `after`.
    async fn export_idempotency_keys(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<IdempotencyKeyRecord>, StoreError>;

    /// Every configured queue.
    async fn export_queues(&self) -> Result<Vec<QueueRecord>, StoreError>;

    /// Up to `limit` workflow runs of every namespace with their edges, by id, after `after`.
    async fn export_workflows(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// Every workflow definition of every namespace, by (namespace, name).
    async fn export_workflow_definitions(
        &self,
    ) -> Result<Vec<hopper_types::workflow_definition::WorkflowDefinition>, StoreError>;

    /// Every schedule of every namespace, by (namespace, name).
    async fn export_schedules(&self) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError>;

    /// Up to `limit` audit entries of every namespace after seq `after`, oldest first (by
    /// `seq`). API keys, namespace quotas and webhooks are few: `api_key_list`,
    /// `namespace_list` and `webhook_list(None)` export them whole.
    async fn export_audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<hopper_types::audit::AuditEntry>, StoreError>;

    /// Copies rows in, atomically, skipping those whose key is already present; returns how
    /// many jobs were new.
    async fn import(&self, batch: ImportBatch) -> Result<u64, StoreError>;

    /// Row counts, to verify a copy.
    async fn totals(&self) -> Result<StoreTotals, StoreError>;

    /// Succeeds when storage answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Flushes everything to stable storage and stops accepting changes.
    async fn close(&self) -> Result<(), StoreError>;

    /// Wake-ups for long-polling workers; fired after commits that make jobs available.
    fn signals(&self) -> &QueueSignals;

    /// The clock the store stamps every change with.
    fn clock(&self) -> &dyn Clock;

    // Schedules.

    /// Creates a schedule (cursor = now, next fire time from there);
    /// [`StoreError::AlreadyExists`] when the namespace already has one of that name.
    async fn schedule_create(
        &self,
        params: crate::ScheduleCreate,
    ) -> Result<hopper_types::schedule::Schedule, StoreError>;

    /// One schedule; [`StoreError::NotFound`] when unknown.
    async fn schedule_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<hopper_types::schedule::Schedule, StoreError>;

    /// Every schedule of the namespace, by name.
    async fn schedule_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError>;

    /// Replaces a schedule's definition, keeping its cursor and runs, and recomputes its next
    /// fire time (see `Schedule::redefine`); [`StoreError::NotFound`] when unknown.
    async fn schedule_update(
        &self,
        params: crate::ScheduleUpdate,
    ) -> Result<hopper_types::schedule::Schedule, StoreError>;

    /// Deletes a schedule (the jobs it enqueued stay); [`StoreError::NotFound`] when unknown.
    async fn schedule_delete(&self, namespace: &str, name: &str) -> Result<(), StoreError>;

    /// Pauses or resumes a schedule and returns it; on resume its next fire time is the first
    /// tick after its cursor, so the ticks missed meanwhile are due and its misfire policy
    /// decides which fire. [`StoreError::NotFound`] when unknown.
    async fn schedule_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<hopper_types::schedule::Schedule, StoreError>;

    /// Unpaused schedules of every namespace whose next fire time is at or before `now`,
    /// earliest first, at most `limit`.
    async fn schedule_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError>;

    /// The earliest next fire time of any unpaused schedule, if any: how long the scheduler
    /// may sleep.
    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Inserts the jobs of fired ticks (idempotency keys honoured exactly as by
    /// `job_insert_many`) and advances the schedule, atomically, if and only if its stored
    /// cursor still equals `expected_cursor` and it is not paused; otherwise changes nothing
    /// and answers [`crate::ScheduleFireOutcome::Stale`]. [`StoreError::NotFound`] when the
    /// schedule is gone.
    async fn schedule_fire(
        &self,
        params: crate::ScheduleFire,
    ) -> Result<crate::ScheduleFireOutcome, StoreError>;

    // Workflows.

    /// Stores a run and all its steps atomically (planned by
    /// [`crate::workflow_plan::plan_steps`]); answers the run with its steps.
    async fn workflow_insert(
        &self,
        params: crate::WorkflowInsert,
    ) -> Result<crate::WorkflowRun, StoreError>;

    /// A run with its steps; [`StoreError::NotFound`] when unknown.
    async fn workflow_get(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
    ) -> Result<crate::WorkflowRun, StoreError>;

    /// Runs of a namespace, newest first.
    async fn workflow_list(
        &self,
        params: &crate::WorkflowListParams,
    ) -> Result<Vec<hopper_types::workflow_run::Workflow>, StoreError>;

    /// Cancels every unfinished step of a running run (running ones are flagged, as a job
    /// cancel does); the run settles `cancelled` when its last step finishes.
    /// [`StoreError::Conflict`] when the run has finished.
    async fn workflow_cancel(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError>;

    /// Starts the failed and cancelled steps of a finished run over (planned by
    /// [`crate::workflow_plan::plan_retry`]), keeping completed ones.
    /// [`StoreError::Conflict`] while the run is running or when nothing failed.
    async fn workflow_retry(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError>;

    /// Adds steps to a running run ([`StoreError::Conflict`] once it finished or while it is
    /// being cancelled), validated against its steps in the same transaction
    /// (errors as [`StoreError::InvalidArgument`] naming the field); answers the new steps.
    /// A parent that finishes concurrently is either seen finished or counts the new child
    /// down itself: never both, never neither.
    async fn workflow_add_steps(
        &self,
        params: crate::WorkflowAddSteps,
    ) -> Result<Vec<Job>, StoreError>;

    /// The parents of each of `steps`, as (child id, parent job) pairs.
    async fn workflow_parents(
        &self,
        namespace: &str,
        steps: &[JobId],
    ) -> Result<crate::StepParents, StoreError>;

    /// Stores a definition, replacing one of the same name (keeping its `created_at`).
    async fn workflow_definition_put(
        &self,
        definition: hopper_types::workflow_definition::WorkflowDefinition,
    ) -> Result<hopper_types::workflow_definition::WorkflowDefinition, StoreError>;

    /// One definition; [`StoreError::NotFound`] when unknown.
    async fn workflow_definition_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<hopper_types::workflow_definition::WorkflowDefinition, StoreError>;

    /// Every definition of the namespace, by name.
    async fn workflow_definition_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<hopper_types::workflow_definition::WorkflowDefinition>, StoreError>;

    /// Deletes a definition (its runs stay); [`StoreError::NotFound`] when unknown.
    async fn workflow_definition_delete(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), StoreError>;

    /// Definitions of every namespace whose cron expression fires at or before `now`,
    /// earliest first, at most `limit`.
    async fn workflow_definition_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<hopper_types::workflow_definition::WorkflowDefinition>, StoreError>;

    /// Moves a definition's next fire time from `expected` to `next`, if it is still
    /// `expected` (another node may have moved it); true when it moved.
    async fn workflow_definition_advance(
        &self,
        namespace: &str,
        name: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool, StoreError>;

    /// Stores a backfill, unless the namespace has one of the same definition and dates:
    /// then answers that one, with `true` (nothing stored).
    async fn backfill_create(
        &self,
        backfill: hopper_types::workflow_definition::Backfill,
    ) -> Result<(hopper_types::workflow_definition::Backfill, bool), StoreError>;

    /// One backfill; [`StoreError::NotFound`] when unknown.
    async fn backfill_get(
        &self,
        namespace: &str,
        id: &JobId,
    ) -> Result<hopper_types::workflow_definition::Backfill, StoreError>;

    /// Backfills of `namespace` (of every namespace when none), newest first; only unfinished
    /// ones when `unfinished_only`.
    async fn backfill_list(
        &self,
        namespace: Option<&str>,
        unfinished_only: bool,
    ) -> Result<Vec<hopper_types::workflow_definition::Backfill>, StoreError>;

    /// Marks a backfill finished at `at` (every date has its run).
    async fn backfill_finish(&self, id: &JobId, at: Timestamp) -> Result<(), StoreError>;

    // Security: API keys, namespace quotas, the audit log, webhooks.

    /// Stores a new key (only its digest) and appends `audit`, atomically;
    /// [`StoreError::AlreadyExists`] when a key of that id exists.
    async fn api_key_insert(
        &self,
        key: hopper_types::api_key::StoredApiKey,
        audit: hopper_types::audit::NewAuditEntry,
    ) -> Result<(), StoreError>;

    /// Every key ever created, revoked ones included, by creation time then id.
    async fn api_key_list(&self) -> Result<Vec<hopper_types::api_key::StoredApiKey>, StoreError>;

    /// Revokes a key at `at` (a key already revoked keeps its first time) and appends `audit`,
    /// atomically; answers the key. [`StoreError::NotFound`] when unknown.
    async fn api_key_revoke(
        &self,
        id: &str,
        at: Timestamp,
        audit: hopper_types::audit::NewAuditEntry,
    ) -> Result<hopper_types::api_key::ApiKey, StoreError>;

    /// Creates or replaces a namespace's quotas and appends `audit`, atomically.
    async fn namespace_put(
        &self,
        settings: hopper_types::namespace::NamespaceSettings,
        audit: hopper_types::audit::NewAuditEntry,
    ) -> Result<hopper_types::namespace::NamespaceSettings, StoreError>;

    /// Every namespace with stored quotas, by name.
    async fn namespace_list(
        &self,
    ) -> Result<Vec<hopper_types::namespace::NamespaceSettings>, StoreError>;

    /// Appends an entry to the audit log; answers it numbered.
    async fn audit_append(
        &self,
        entry: hopper_types::audit::NewAuditEntry,
    ) -> Result<hopper_types::audit::AuditEntry, StoreError>;

    /// Audit entries newest first (by `seq`), at most `limit`, only of `namespaces` when given
    /// (entries outside any namespace only when that list contains `""`), only before seq
    /// `before` when given.
    async fn audit_list(
        &self,
        namespaces: Option<&[String]>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<hopper_types::audit::AuditEntry>, StoreError>;

    /// Stores a webhook subscription and appends `audit`, atomically;
    /// [`StoreError::AlreadyExists`] when its id exists.
    async fn webhook_insert(
        &self,
        hook: hopper_types::webhook::Webhook,
        audit: hopper_types::audit::NewAuditEntry,
    ) -> Result<(), StoreError>;

    /// Webhooks of `namespace` (of every namespace when none), by id.
    async fn webhook_list(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<hopper_types::webhook::Webhook>, StoreError>;

    /// Deletes a webhook of `namespace` and appends `audit`, atomically;
    /// [`StoreError::NotFound`] when the namespace has no webhook of that id.
    async fn webhook_delete(
        &self,
        namespace: &str,
        id: &str,
        audit: hopper_types::audit::NewAuditEntry,
    ) -> Result<(), StoreError>;

    /// Moves a webhook's cursor from `expected` to `next` if it is still `expected`; answers
    /// whether it moved (false also when the webhook is gone).
    async fn webhook_advance(&self, id: &str, expected: i64, next: i64)
    -> Result<bool, StoreError>;
}
