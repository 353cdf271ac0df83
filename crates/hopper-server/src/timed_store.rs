//! [`TimedStore`]: a [`Store`] that delegates every call to another store and records how long
//! it took in `hopper_store_operation_duration_seconds{operation}`.
//!
//! The server wraps its store in one of these once (in [`crate::AppState`]), so every call made
//! by a handler or a maintenance service is timed, whatever the backend. The cost per call is
//! one pair of `Instant::now` and one histogram observation: the per-operation histograms are
//! created up front in an array indexed by [`StoreOp`], so the hot path neither formats nor
//! allocates a label, nor looks one up.
//!
//! A method added to the `Store` trait must be added here too (the compiler insists, unless the
//! new method has a default body: then it must be delegated by hand, or this wrapper would
//! silently answer the default instead of the real store).

use hopper_types::api_key::{ApiKey, StoredApiKey};
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use hopper_types::namespace::NamespaceSettings;
use hopper_types::webhook::Webhook;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use hopper_store::*;
use hopper_types::schedule::Schedule;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition};
use hopper_types::{Clock, Job, JobEvent, JobId, JobState, QueueConfig, Timestamp};
use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::Metrics;

macro_rules! store_ops {
    ($($op:ident => $name:literal,)*) => {
        /// Every timed operation of the `Store` trait; its name is the `operation` label.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(non_camel_case_types)]
        pub enum StoreOp {
            $(
                #[doc = concat!("`Store::", $name, "`.")]
                $op,
            )*
        }

        impl StoreOp {
            /// Every operation, in declaration order (the index of each is `op as usize`).
            pub const ALL: &'static [StoreOp] = &[$(StoreOp::$op,)*];

            /// The `operation` label value: the trait method's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(StoreOp::$op => $name,)*
                }
            }
        }
    };
}

store_ops! {
    job_insert_many => "job_insert_many",
    job_get => "job_get",
    job_list => "job_list",
    job_events => "job_events",
    events_after => "events_after",
    events_last_seq => "events_last_seq",
    job_explain => "job_explain",
    job_lease_many => "job_lease_many",
    job_heartbeat => "job_heartbeat",
    job_ack_many => "job_ack_many",
    job_cancel => "job_cancel",
    job_retry => "job_retry",
    job_delete => "job_delete",
    job_promote_due => "job_promote_due",
    job_next_due_at => "job_next_due_at",
    job_rescue_expired => "job_rescue_expired",
    job_max_outstanding_lease_ms => "job_max_outstanding_lease_ms",
    job_prune_finished => "job_prune_finished",
    idempotency_key_prune => "idempotency_key_prune",
    queue_list => "queue_list",
    queue_get => "queue_get",
    queue_set_paused => "queue_set_paused",
    queue_configure => "queue_configure",
    queue_list_custom_retention => "queue_list_custom_retention",
    queue_flow_prune => "queue_flow_prune",
    queue_retry_dead => "queue_retry_dead",
    queue_purge => "queue_purge",
    worker_running_list => "worker_running_list",
    workers_seen_record => "workers_seen_record",
    workers_seen_list => "workers_seen_list",
    workers_seen_prune => "workers_seen_prune",
    leader_acquire => "leader_acquire",
    leader_resign => "leader_resign",
    export_jobs => "export_jobs",
    export_idempotency_keys => "export_idempotency_keys",
    export_queues => "export_queues",
    export_schedules => "export_schedules",
    export_audit => "export_audit",
    import => "import",
    totals => "totals",
    ping => "ping",
    close => "close",
    schedule_create => "schedule_create",
    schedule_get => "schedule_get",
    schedule_list => "schedule_list",
    schedule_update => "schedule_update",
    schedule_delete => "schedule_delete",
    schedule_set_paused => "schedule_set_paused",
    schedule_due => "schedule_due",
    schedule_next_fire_at => "schedule_next_fire_at",
    schedule_fire => "schedule_fire",
    workflow_insert => "workflow_insert",
    workflow_get => "workflow_get",
    workflow_list => "workflow_list",
    workflow_cancel => "workflow_cancel",
    workflow_retry => "workflow_retry",
    workflow_add_steps => "workflow_add_steps",
    workflow_parents => "workflow_parents",
    export_workflows => "export_workflows",
    export_workflow_definitions => "export_workflow_definitions",
    workflow_definition_put => "workflow_definition_put",
    workflow_definition_get => "workflow_definition_get",
    workflow_definition_list => "workflow_definition_list",
    workflow_definition_delete => "workflow_definition_delete",
    workflow_definition_due => "workflow_definition_due",
    workflow_definition_advance => "workflow_definition_advance",
    backfill_create => "backfill_create",
    backfill_get => "backfill_get",
    backfill_list => "backfill_list",
    backfill_finish => "backfill_finish",
    api_key_insert => "api_key_insert",
    api_key_list => "api_key_list",
    api_key_revoke => "api_key_revoke",
    namespace_put => "namespace_put",
    namespace_list => "namespace_list",
    audit_append => "audit_append",
    audit_list => "audit_list",
    webhook_insert => "webhook_insert",
    webhook_list => "webhook_list",
    webhook_delete => "webhook_delete",
    webhook_advance => "webhook_advance",
}

/// A store whose every call is timed into the metrics it was made with.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    // Indexed by `StoreOp as usize`; each shares its counts with the registered family.
    histograms: Box<[Histogram]>,
}

impl TimedStore {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: &Metrics) -> TimedStore {
        let histograms = StoreOp::ALL
            .iter()
            .map(|op| metrics.store_operation_histogram(op.name()))
            .collect();
        TimedStore { inner, histograms }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn observe(&self, op: StoreOp, started: Instant) {
        // `ALL` and the array are built from the same list, so the index is always in range;
        // `get` keeps a mistake from turning into a panic on a request path.
        if let Some(h) = self.histograms.get(op as usize) {
            h.observe(started.elapsed().as_secs_f64());
        }
    }
}

/// Times one delegated call: `timed!(self, op, call)` where `call` is the inner future.
macro_rules! timed {
    ($self:ident, $op:ident, $call:expr) => {{
        let started = Instant::now();
        let out = $call.await;
        $self.observe(StoreOp::$op, started);
        out
    }};
}

#[async_trait]
impl Store for TimedStore {
    async fn job_insert_many(&self, params: JobInsertParams) -> Result<Vec<Inserted>, StoreError> {
        timed!(self, job_insert_many, self.inner.job_insert_many(params))
    }

    async fn job_get(&self, job: &JobRef) -> Result<Job, StoreError> {
        timed!(self, job_get, self.inner.job_get(job))
    }

    async fn job_list(&self, params: &JobListParams) -> Result<JobPage, StoreError> {
        timed!(self, job_list, self.inner.job_list(params))
    }

    async fn job_events(&self, job: &JobRef) -> Result<Vec<JobEvent>, StoreError> {
        timed!(self, job_events, self.inner.job_events(job))
    }

    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventLogRow>, StoreError> {
        timed!(self, events_after, self.inner.events_after(after, limit))
    }

    async fn events_last_seq(&self) -> Result<i64, StoreError> {
        timed!(self, events_last_seq, self.inner.events_last_seq())
    }

    fn events_visible_in_seq_order(&self) -> bool {
        self.inner.events_visible_in_seq_order()
    }

    async fn job_explain(&self, job: &JobRef) -> Result<JobWait, StoreError> {
        timed!(self, job_explain, self.inner.job_explain(job))
    }

    async fn job_lease_many(&self, params: JobLeaseParams) -> Result<Vec<Job>, StoreError> {
        timed!(self, job_lease_many, self.inner.job_lease_many(params))
    }

    async fn job_heartbeat(&self, params: JobHeartbeatParams) -> Result<Heartbeat, StoreError> {
        timed!(self, job_heartbeat, self.inner.job_heartbeat(params))
    }

    async fn job_ack_many(&self, acks: Vec<JobAck>) -> Result<AckResults, StoreError> {
        timed!(self, job_ack_many, self.inner.job_ack_many(acks))
    }

    async fn job_cancel(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        timed!(self, job_cancel, self.inner.job_cancel(job, actor))
    }

    async fn job_retry(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        timed!(self, job_retry, self.inner.job_retry(job, actor))
    }

    async fn job_delete(&self, job: &JobRef) -> Result<(), StoreError> {
        timed!(self, job_delete, self.inner.job_delete(job))
    }

    async fn job_promote_due(&self, limit: usize) -> Result<u64, StoreError> {
        timed!(self, job_promote_due, self.inner.job_promote_due(limit))
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        timed!(self, job_next_due_at, self.inner.job_next_due_at())
    }

    async fn job_rescue_expired(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        timed!(
            self,
            job_rescue_expired,
            self.inner.job_rescue_expired(limit)
        )
    }

    async fn job_max_outstanding_lease_ms(&self) -> Result<i64, StoreError> {
        timed!(
            self,
            job_max_outstanding_lease_ms,
            self.inner.job_max_outstanding_lease_ms()
        )
    }

    async fn job_prune_finished(&self, params: JobPruneParams) -> Result<u64, StoreError> {
        timed!(
            self,
            job_prune_finished,
            self.inner.job_prune_finished(params)
        )
    }

    async fn idempotency_key_prune(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            idempotency_key_prune,
            self.inner.idempotency_key_prune(before, limit)
        )
    }

    async fn queue_list(&self, namespace: &str) -> Result<Vec<QueueInfo>, StoreError> {
        timed!(self, queue_list, self.inner.queue_list(namespace))
    }

    async fn queue_get(&self, namespace: &str, name: &str) -> Result<QueueInfo, StoreError> {
        timed!(self, queue_get, self.inner.queue_get(namespace, name))
    }

    async fn queue_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<QueueInfo, StoreError> {
        timed!(
            self,
            queue_set_paused,
            self.inner.queue_set_paused(namespace, name, paused)
        )
    }

    async fn queue_configure(
        &self,
        namespace: &str,
        name: &str,
        config: QueueConfig,
    ) -> Result<QueueInfo, StoreError> {
        timed!(
            self,
            queue_configure,
            self.inner.queue_configure(namespace, name, config)
        )
    }

    async fn queue_list_custom_retention(&self) -> Result<Vec<QueueRecord>, StoreError> {
        timed!(
            self,
            queue_list_custom_retention,
            self.inner.queue_list_custom_retention()
        )
    }

    async fn queue_flow_prune(
        &self,
        namespace: &str,
        name: &str,
        rate_refilled_before: Option<Timestamp>,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            queue_flow_prune,
            self.inner
                .queue_flow_prune(namespace, name, rate_refilled_before)
        )
    }

    async fn queue_retry_dead(
        &self,
        namespace: &str,
        name: &str,
        actor: &str,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            queue_retry_dead,
            self.inner.queue_retry_dead(namespace, name, actor)
        )
    }

    async fn queue_purge(
        &self,
        namespace: &str,
        name: &str,
        state: JobState,
    ) -> Result<u64, StoreError> {
        timed!(
            self,
            queue_purge,
            self.inner.queue_purge(namespace, name, state)
        )
    }

    async fn worker_running_list(&self, namespace: &str) -> Result<Vec<WorkerRunning>, StoreError> {
        timed!(
            self,
            worker_running_list,
            self.inner.worker_running_list(namespace)
        )
    }

    async fn leader_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            leader_acquire,
            self.inner.leader_acquire(name, holder, ttl_ms)
        )
    }

    async fn workers_seen_record(&self, seen: Vec<WorkerSeen>) -> Result<(), StoreError> {
        timed!(
            self,
            workers_seen_record,
            self.inner.workers_seen_record(seen)
        )
    }

    async fn workers_seen_list(
        &self,
        namespace: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<WorkerSeen>, StoreError> {
        timed!(
            self,
            workers_seen_list,
            self.inner.workers_seen_list(namespace, since)
        )
    }

    async fn workers_seen_prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        timed!(
            self,
            workers_seen_prune,
            self.inner.workers_seen_prune(before)
        )
    }

    async fn leader_resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        timed!(self, leader_resign, self.inner.leader_resign(name, holder))
    }

    async fn export_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        timed!(self, export_jobs, self.inner.export_jobs(after, limit))
    }

    async fn export_idempotency_keys(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<IdempotencyKeyRecord>, StoreError> {
        timed!(
            self,
            export_idempotency_keys,
            self.inner.export_idempotency_keys(after, limit)
        )
    }

    async fn export_queues(&self) -> Result<Vec<QueueRecord>, StoreError> {
        timed!(self, export_queues, self.inner.export_queues())
    }

    async fn export_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        timed!(self, export_schedules, self.inner.export_schedules())
    }

    async fn export_audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        timed!(self, export_audit, self.inner.export_audit(after, limit))
    }

    async fn import(&self, batch: ImportBatch) -> Result<u64, StoreError> {
        timed!(self, import, self.inner.import(batch))
    }

    async fn totals(&self) -> Result<StoreTotals, StoreError> {
        timed!(self, totals, self.inner.totals())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        timed!(self, ping, self.inner.ping())
    }

    async fn close(&self) -> Result<(), StoreError> {
        timed!(self, close, self.inner.close())
    }

    fn signals(&self) -> &QueueSignals {
        self.inner.signals()
    }

    fn clock(&self) -> &dyn Clock {
        self.inner.clock()
    }

    async fn schedule_create(&self, params: ScheduleCreate) -> Result<Schedule, StoreError> {
        timed!(self, schedule_create, self.inner.schedule_create(params))
    }

    async fn schedule_get(&self, namespace: &str, name: &str) -> Result<Schedule, StoreError> {
        timed!(self, schedule_get, self.inner.schedule_get(namespace, name))
    }

    async fn schedule_list(&self, namespace: &str) -> Result<Vec<Schedule>, StoreError> {
        timed!(self, schedule_list, self.inner.schedule_list(namespace))
    }

    async fn schedule_update(&self, params: ScheduleUpdate) -> Result<Schedule, StoreError> {
        timed!(self, schedule_update, self.inner.schedule_update(params))
    }

    async fn schedule_delete(&self, namespace: &str, name: &str) -> Result<(), StoreError> {
        timed!(
            self,
            schedule_delete,
            self.inner.schedule_delete(namespace, name)
        )
    }

    async fn schedule_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<Schedule, StoreError> {
        timed!(
            self,
            schedule_set_paused,
            self.inner.schedule_set_paused(namespace, name, paused)
        )
    }

    async fn schedule_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<Schedule>, StoreError> {
        timed!(self, schedule_due, self.inner.schedule_due(now, limit))
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>, StoreError> {
        timed!(
            self,
            schedule_next_fire_at,
            self.inner.schedule_next_fire_at()
        )
    }

    async fn schedule_fire(&self, params: ScheduleFire) -> Result<ScheduleFireOutcome, StoreError> {
        timed!(self, schedule_fire, self.inner.schedule_fire(params))
    }

    async fn workflow_insert(&self, params: WorkflowInsert) -> Result<WorkflowRun, StoreError> {
        timed!(self, workflow_insert, self.inner.workflow_insert(params))
    }

    async fn workflow_get(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
    ) -> Result<WorkflowRun, StoreError> {
        timed!(self, workflow_get, self.inner.workflow_get(namespace, id))
    }

    async fn workflow_list(
        &self,
        params: &WorkflowListParams,
    ) -> Result<Vec<hopper_types::workflow_run::Workflow>, StoreError> {
        timed!(self, workflow_list, self.inner.workflow_list(params))
    }

    async fn workflow_cancel(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError> {
        timed!(
            self,
            workflow_cancel,
            self.inner.workflow_cancel(namespace, id, actor)
        )
    }

    async fn workflow_retry(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError> {
        timed!(
            self,
            workflow_retry,
            self.inner.workflow_retry(namespace, id, actor)
        )
    }

    async fn workflow_add_steps(&self, params: WorkflowAddSteps) -> Result<Vec<Job>, StoreError> {
        timed!(
            self,
            workflow_add_steps,
            self.inner.workflow_add_steps(params)
        )
    }

    async fn workflow_parents(
        &self,
        namespace: &str,
        steps: &[JobId],
    ) -> Result<StepParents, StoreError> {
        timed!(
            self,
            workflow_parents,
            self.inner.workflow_parents(namespace, steps)
        )
    }

    async fn workflow_definition_put(
        &self,
        definition: WorkflowDefinition,
    ) -> Result<WorkflowDefinition, StoreError> {
        timed!(
            self,
            workflow_definition_put,
            self.inner.workflow_definition_put(definition)
        )
    }

    async fn workflow_definition_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError> {
        timed!(
            self,
            workflow_definition_get,
            self.inner.workflow_definition_get(namespace, name)
        )
    }

    async fn workflow_definition_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        timed!(
            self,
            workflow_definition_list,
            self.inner.workflow_definition_list(namespace)
        )
    }

    async fn workflow_definition_delete(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            workflow_definition_delete,
            self.inner.workflow_definition_delete(namespace, name)
        )
    }

    async fn workflow_definition_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        timed!(
            self,
            workflow_definition_due,
            self.inner.workflow_definition_due(now, limit)
        )
    }

    async fn workflow_definition_advance(
        &self,
        namespace: &str,
        name: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            workflow_definition_advance,
            self.inner
                .workflow_definition_advance(namespace, name, expected, next)
        )
    }

    async fn backfill_create(&self, backfill: Backfill) -> Result<(Backfill, bool), StoreError> {
        timed!(self, backfill_create, self.inner.backfill_create(backfill))
    }

    async fn backfill_get(&self, namespace: &str, id: &JobId) -> Result<Backfill, StoreError> {
        timed!(self, backfill_get, self.inner.backfill_get(namespace, id))
    }

    async fn backfill_list(
        &self,
        namespace: Option<&str>,
        unfinished_only: bool,
    ) -> Result<Vec<Backfill>, StoreError> {
        timed!(
            self,
            backfill_list,
            self.inner.backfill_list(namespace, unfinished_only)
        )
    }

    async fn backfill_finish(&self, id: &JobId, at: Timestamp) -> Result<(), StoreError> {
        timed!(self, backfill_finish, self.inner.backfill_finish(id, at))
    }

    async fn api_key_insert(
        &self,
        key: StoredApiKey,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        timed!(self, api_key_insert, self.inner.api_key_insert(key, audit))
    }

    async fn api_key_list(&self) -> Result<Vec<StoredApiKey>, StoreError> {
        timed!(self, api_key_list, self.inner.api_key_list())
    }

    async fn api_key_revoke(
        &self,
        id: &str,
        at: Timestamp,
        audit: NewAuditEntry,
    ) -> Result<ApiKey, StoreError> {
        timed!(
            self,
            api_key_revoke,
            self.inner.api_key_revoke(id, at, audit)
        )
    }

    async fn namespace_put(
        &self,
        settings: NamespaceSettings,
        audit: NewAuditEntry,
    ) -> Result<NamespaceSettings, StoreError> {
        timed!(
            self,
            namespace_put,
            self.inner.namespace_put(settings, audit)
        )
    }

    async fn namespace_list(&self) -> Result<Vec<NamespaceSettings>, StoreError> {
        timed!(self, namespace_list, self.inner.namespace_list())
    }

    async fn audit_append(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        timed!(self, audit_append, self.inner.audit_append(entry))
    }

    async fn audit_list(
        &self,
        namespaces: Option<&[String]>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        timed!(
            self,
            audit_list,
            self.inner.audit_list(namespaces, before, limit)
        )
    }

    async fn webhook_insert(&self, hook: Webhook, audit: NewAuditEntry) -> Result<(), StoreError> {
        timed!(self, webhook_insert, self.inner.webhook_insert(hook, audit))
    }

    async fn webhook_list(&self, namespace: Option<&str>) -> Result<Vec<Webhook>, StoreError> {
        timed!(self, webhook_list, self.inner.webhook_list(namespace))
    }

    async fn webhook_delete(
        &self,
        namespace: &str,
        id: &str,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        timed!(
            self,
            webhook_delete,
            self.inner.webhook_delete(namespace, id, audit)
        )
    }

    async fn webhook_advance(
        &self,
        id: &str,
        expected: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        timed!(
            self,
            webhook_advance,
            self.inner.webhook_advance(id, expected, next)
        )
    }

    async fn export_workflows(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        timed!(
            self,
            export_workflows,
            self.inner.export_workflows(after, limit)
        )
    }

    async fn export_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError> {
        timed!(
            self,
            export_workflow_definitions,
            self.inner.export_workflow_definitions()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_histogram_in_order() {
        let names: Vec<&str> = StoreOp::ALL.iter().map(|op| op.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "operation names are unique");
        for (i, op) in StoreOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?} indexes its own histogram");
        }
    }

    #[tokio::test]
    async fn calls_are_delegated_and_timed_per_operation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let inner = hopper_store_sqlite::SqliteStore::open(hopper_store_sqlite::SqliteConfig::new(
            dir.path(),
        ))
        .expect("open store");
        let metrics = Metrics::new();
        let store = TimedStore::new(Arc::new(inner), &metrics);
        store.ping().await.expect("ping");
        store.ping().await.expect("ping");
        let queues = store.queue_list("default").await.expect("queues");
        assert!(queues.is_empty());
        let text = metrics.render(&[], &Default::default());
        let count = |op: &str| {
            let line =
                format!("hopper_store_operation_duration_seconds_count{{operation=\"{op}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no {line} in {text}"))
                .to_string()
        };
        assert_eq!(count("ping"), "2");
        assert_eq!(count("queue_list"), "1");
        // Every operation is exported from the start, so dashboards see zeros, not gaps.
        for op in StoreOp::ALL {
            if !matches!(op, StoreOp::ping | StoreOp::queue_list) {
                assert_eq!(count(op.name()), "0", "{op:?}");
            }
        }
        store.close().await.expect("close");
    }
}
