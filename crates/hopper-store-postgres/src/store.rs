//! [`PgStore`]: the [`Store`] implementation over a connection pool.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hopper_store::*;
use hopper_types::api_key::{ApiKey, StoredApiKey};
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use hopper_types::namespace::NamespaceSettings;
use hopper_types::webhook::Webhook;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition};
use hopper_types::workflow_run::{Workflow, WorkflowId};
use hopper_types::{Clock, Job, JobEvent, JobId, JobState, QueueConfig, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::PgConfig;
use crate::error::db_error;
use crate::ops;
use crate::write_set::WriteSet;

/// How long a call waits for a pooled connection before answering `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store of one node. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct PgStore {
    pool: PgPool,
    signals: Arc<QueueSignals>,
    clock: Arc<dyn Clock>,
    // This node's name on the notification channel, so it skips its own notifications.
    node: String,
    stop: CancellationToken,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Parses a `postgres://` URL into connect options with Hopper's session settings.
pub(crate) fn connect_options(config: &PgConfig) -> Result<PgConnectOptions, StoreError> {
    let opts =
        PgConnectOptions::from_str(&config.url).map_err(|e| StoreError::InvalidArgument {
            field: "database_url".into(),
            message: format!("not a valid PostgreSQL URL: {e}"),
        })?;
    Ok(opts.application_name("hopper").options([(
        "statement_timeout",
        config.statement_timeout.as_millis().to_string(),
    )]))
}

/// Runs a step of a transaction; when it fails, rolls the transaction back *now* and returns
/// the error. Merely dropping a failed transaction would leave its rollback queued on the
/// connection (and its row locks held) until that connection is next used, so a following call
/// could find the rows still locked and `SKIP LOCKED` would pass them over.
macro_rules! or_abort {
    ($tx:ident, $step:expr) => {
        match $step {
            Ok(v) => v,
            Err(e) => {
                let _ = $tx.rollback().await;
                return Err(e);
            }
        }
    };
}

impl PgStore {
    /// Connects, applies migrations (once, however many nodes start together) and starts
    /// listening for other nodes' wake-ups.
    pub async fn connect(config: PgConfig) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect_options(&config)?)
            .await
            .map_err(db_error)?;
        crate::schema::migrate(&pool).await?;
        let signals = Arc::new(QueueSignals::new());
        let node = uuid::Uuid::now_v7().to_string();
        let stop = CancellationToken::new();
        let listener = tokio::spawn(crate::notify::listen(
            pool.clone(),
            node.clone(),
            signals.clone(),
            config.fallback_poll,
            stop.clone(),
        ));
        Ok(PgStore {
            pool,
            signals,
            clock: config.clock,
            node,
            stop,
            listener: Mutex::new(Some(listener)),
        })
    }

    async fn begin(&self) -> Result<(Transaction<'static, Postgres>, WriteSet), StoreError> {
        let tx = self.pool.begin().await.map_err(db_error)?;
        Ok((tx, WriteSet::new(self.clock.now())))
    }

    /// Settles the workflow steps that finished in the transaction (their children and runs
    /// change in it too), writes its changes, commits, then wakes this node's waiting workers.
    /// Every write path ends here, so no finished step escapes its fan-in.
    async fn commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        mut ws: WriteSet,
    ) -> Result<(), StoreError> {
        or_abort!(tx, ops::workflow::settle(&mut tx, &mut ws).await);
        let wake = or_abort!(tx, ws.flush(&mut tx, &self.node).await);
        tx.commit().await.map_err(db_error)?;
        for (ns, q) in wake {
            self.signals.notify(&ns, &q);
        }
        Ok(())
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, StoreError> {
        self.pool.acquire().await.map_err(db_error)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn job_insert_many(&self, params: JobInsertParams) -> Result<Vec<Inserted>, StoreError> {
        // Most enqueues carry new keys (or none): one statement, one round trip. A key already
        // held sends the call down the transactional path, which answers duplicates and
        // conflicts.
        let now = self.clock.now();
        if let Some((out, wake)) = ops::insert::insert_fast(
            &self.pool,
            params.jobs.clone(),
            now,
            &params.actor,
            &self.node,
        )
        .await?
        {
            for (ns, q) in wake {
                self.signals.notify(&ns, &q);
            }
            return Ok(out);
        }
        let (mut tx, mut ws) = self.begin().await?;
        let out = or_abort!(
            tx,
            ops::insert::insert_many(&mut tx, &mut ws, params.jobs, &params.actor).await
        );
        self.commit(tx, ws).await?;
        Ok(out)
    }

    async fn job_get(&self, job: &JobRef) -> Result<Job, StoreError> {
        ops::read::get(&mut *self.conn().await?, job).await
    }

    async fn job_list(&self, params: &JobListParams) -> Result<JobPage, StoreError> {
        ops::read::list(&mut *self.conn().await?, params).await
    }

    async fn job_events(&self, job: &JobRef) -> Result<Vec<JobEvent>, StoreError> {
        ops::read::events(&mut *self.conn().await?, job).await
    }

    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventLogRow>, StoreError> {
        ops::feed::events_after(&mut *self.conn().await?, after, limit).await
    }

    async fn events_last_seq(&self) -> Result<i64, StoreError> {
        ops::feed::last_seq(&mut *self.conn().await?).await
    }

    fn events_visible_in_seq_order(&self) -> bool {
        false
    }

    async fn job_explain(&self, job: &JobRef) -> Result<JobWait, StoreError> {
        let now = self.clock.now();
        ops::explain::explain(&mut *self.conn().await?, job, now).await
    }

    async fn job_lease_many(&self, params: JobLeaseParams) -> Result<Vec<Job>, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let namespace = params.namespace.clone();
        let (jobs, holds) = or_abort!(
            tx,
            ops::lease::lease_many(&mut tx, &mut ws, params, &*self.clock).await
        );
        for (queue, at) in holds {
            self.signals.hold_until(&namespace, &queue, at);
        }
        if jobs.is_empty() {
            // Nothing to write: end the read-only transaction without a commit record.
            tx.rollback().await.map_err(db_error)?;
            return Ok(jobs);
        }
        self.commit(tx, ws).await?;
        Ok(jobs)
    }

    async fn job_heartbeat(&self, params: JobHeartbeatParams) -> Result<Heartbeat, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let hb = or_abort!(tx, ops::outcome::heartbeat(&mut tx, &mut ws, params).await);
        self.commit(tx, ws).await?;
        Ok(hb)
    }

    async fn job_ack_many(&self, acks: Vec<JobAck>) -> Result<AckResults, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let results = or_abort!(tx, ops::outcome::ack_many(&mut tx, &mut ws, acks).await);
        self.commit(tx, ws).await?;
        Ok(results)
    }

    async fn job_cancel(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let out = or_abort!(tx, ops::admin::cancel(&mut tx, &mut ws, job, actor).await);
        self.commit(tx, ws).await?;
        Ok(out)
    }

    async fn job_retry(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let out = or_abort!(tx, ops::admin::retry(&mut tx, &mut ws, job, actor).await);
        self.commit(tx, ws).await?;
        Ok(out)
    }

    async fn job_delete(&self, job: &JobRef) -> Result<(), StoreError> {
        let (mut tx, ws) = self.begin().await?;
        or_abort!(tx, ops::admin::delete(&mut tx, job).await);
        self.commit(tx, ws).await
    }

    async fn job_promote_due(&self, limit: usize) -> Result<u64, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let n = or_abort!(
            tx,
            ops::maintenance::promote_due(&mut tx, &mut ws, limit).await
        );
        self.commit(tx, ws).await?;
        Ok(n)
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        ops::read::next_due_at(&mut *self.conn().await?).await
    }

    async fn job_rescue_expired(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let jobs = or_abort!(
            tx,
            ops::maintenance::rescue_expired(&mut tx, &mut ws, limit).await
        );
        self.commit(tx, ws).await?;
        Ok(jobs)
    }

    async fn job_max_outstanding_lease_ms(&self) -> Result<i64, StoreError> {
        ops::read::max_outstanding_lease_ms(&mut *self.conn().await?).await
    }

    async fn job_prune_finished(&self, params: JobPruneParams) -> Result<u64, StoreError> {
        let (mut tx, ws) = self.begin().await?;
        let n = or_abort!(tx, ops::maintenance::prune_finished(&mut tx, &params).await);
        self.commit(tx, ws).await?;
        Ok(n)
    }

    async fn idempotency_key_prune(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError> {
        ops::maintenance::idempotency_key_prune(&mut *self.conn().await?, before, limit).await
    }

    async fn queue_list(&self, namespace: &str) -> Result<Vec<QueueInfo>, StoreError> {
        let now = self.clock.now();
        ops::queue::infos(&mut *self.conn().await?, namespace, None, now).await
    }

    async fn queue_get(&self, namespace: &str, name: &str) -> Result<QueueInfo, StoreError> {
        let now = self.clock.now();
        let mut infos =
            ops::queue::infos(&mut *self.conn().await?, namespace, Some(name), now).await?;
        infos
            .pop()
            .ok_or_else(|| StoreError::Internal("queue info missing".into()))
    }

    async fn queue_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<QueueInfo, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        or_abort!(
            tx,
            ops::queue::set_paused(&mut tx, &mut ws, namespace, name, paused).await
        );
        self.commit(tx, ws).await?;
        self.queue_get(namespace, name).await
    }

    async fn queue_configure(
        &self,
        namespace: &str,
        name: &str,
        config: QueueConfig,
    ) -> Result<QueueInfo, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        or_abort!(
            tx,
            ops::queue::configure(&mut tx, &mut ws, namespace, name, config).await
        );
        self.commit(tx, ws).await?;
        self.signals.hold_until(namespace, name, None);
        self.queue_get(namespace, name).await
    }

    async fn queue_flow_prune(
        &self,
        namespace: &str,
        name: &str,
        rate_refilled_before: Option<Timestamp>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let n = or_abort!(
            tx,
            ops::flow::prune(&mut tx, namespace, name, rate_refilled_before).await
        );
        tx.commit().await.map_err(db_error)?;
        Ok(n)
    }

    async fn queue_list_custom_retention(&self) -> Result<Vec<QueueRecord>, StoreError> {
        ops::flow::records(&mut *self.conn().await?, true).await
    }

    async fn queue_retry_dead(
        &self,
        namespace: &str,
        name: &str,
        actor: &str,
    ) -> Result<u64, StoreError> {
        // In chunks, each its own transaction, so a huge dead-letter queue never holds
        // thousands of row locks for long.
        let mut total = 0;
        loop {
            let (mut tx, mut ws) = self.begin().await?;
            let n = or_abort!(
                tx,
                ops::queue::retry_dead_chunk(&mut tx, &mut ws, namespace, name, actor).await
            );
            self.commit(tx, ws).await?;
            total += n;
            if (n as usize) < ops::queue::BULK_CHUNK {
                return Ok(total);
            }
        }
    }

    async fn queue_purge(
        &self,
        namespace: &str,
        name: &str,
        state: JobState,
    ) -> Result<u64, StoreError> {
        if !state.is_finished() {
            return Err(StoreError::InvalidArgument {
                field: "state".into(),
                message: "only completed, dead or cancelled jobs can be purged".into(),
            });
        }
        let mut total = 0;
        loop {
            let (mut tx, ws) = self.begin().await?;
            let n = or_abort!(
                tx,
                ops::queue::purge_chunk(&mut tx, namespace, name, state).await
            );
            self.commit(tx, ws).await?;
            total += n;
            if (n as usize) < ops::queue::BULK_CHUNK {
                return Ok(total);
            }
        }
    }

    async fn worker_running_list(&self, namespace: &str) -> Result<Vec<WorkerRunning>, StoreError> {
        ops::read::worker_running_list(&mut *self.conn().await?, namespace).await
    }

    async fn leader_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        ops::leader::acquire(&mut *self.conn().await?, now, name, holder, ttl_ms).await
    }

    async fn workers_seen_record(&self, seen: Vec<WorkerSeen>) -> Result<(), StoreError> {
        ops::workers_seen::record(&mut *self.conn().await?, &seen).await
    }

    async fn workers_seen_list(
        &self,
        namespace: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<WorkerSeen>, StoreError> {
        ops::workers_seen::list(&mut *self.conn().await?, namespace, since).await
    }

    async fn workers_seen_prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        ops::workers_seen::prune(&mut *self.conn().await?, before).await
    }

    async fn leader_resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        ops::leader::resign(&mut *self.conn().await?, name, holder).await
    }

    async fn export_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        ops::export::export_jobs(&mut *self.conn().await?, after, limit).await
    }

    async fn export_idempotency_keys(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<IdempotencyKeyRecord>, StoreError> {
        ops::export::export_idempotency_keys(&mut *self.conn().await?, after, limit).await
    }

    async fn export_queues(&self) -> Result<Vec<QueueRecord>, StoreError> {
        ops::export::export_queues(&mut *self.conn().await?).await
    }

    async fn export_workflows(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        ops::export::export_workflows(&mut *self.conn().await?, after, limit).await
    }

    async fn export_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError> {
        ops::export::export_workflow_definitions(&mut *self.conn().await?).await
    }

    async fn export_schedules(&self) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        ops::schedule::export(&mut *self.conn().await?).await
    }

    async fn export_audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        ops::audit::export(&mut *self.conn().await?, after, limit).await
    }

    async fn import(&self, batch: ImportBatch) -> Result<u64, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let n = or_abort!(tx, ops::export::import(&mut tx, &mut ws, batch).await);
        self.commit(tx, ws).await?;
        Ok(n)
    }

    async fn totals(&self) -> Result<StoreTotals, StoreError> {
        ops::export::totals(&mut *self.conn().await?).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every answered change is already committed (PostgreSQL's own durability applies);
        // closing only stops the listener and the pool.
        self.stop.cancel();
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = listener {
            let _ = h.await;
        }
        self.pool.close().await;
        Ok(())
    }

    fn signals(&self) -> &QueueSignals {
        &self.signals
    }

    fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    // Schedules.

    async fn schedule_create(
        &self,
        params: ScheduleCreate,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        let now = self.clock.now();
        ops::schedule::create(&mut *self.conn().await?, now, params).await
    }

    async fn schedule_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        ops::schedule::get(&mut *self.conn().await?, namespace, name).await
    }

    async fn schedule_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        ops::schedule::list(&mut *self.conn().await?, namespace).await
    }

    async fn schedule_update(
        &self,
        params: ScheduleUpdate,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let s = or_abort!(
            tx,
            ops::schedule::update(&mut tx, self.clock.now(), params).await
        );
        tx.commit().await.map_err(db_error)?;
        Ok(s)
    }

    async fn schedule_delete(&self, namespace: &str, name: &str) -> Result<(), StoreError> {
        ops::schedule::delete(&mut *self.conn().await?, namespace, name).await
    }

    async fn schedule_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let s = or_abort!(
            tx,
            ops::schedule::set_paused(&mut tx, self.clock.now(), namespace, name, paused).await
        );
        tx.commit().await.map_err(db_error)?;
        Ok(s)
    }

    async fn schedule_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        ops::schedule::due(&mut *self.conn().await?, now, limit).await
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>, StoreError> {
        ops::schedule::next_fire_at(&mut *self.conn().await?).await
    }

    async fn schedule_fire(&self, params: ScheduleFire) -> Result<ScheduleFireOutcome, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let out = or_abort!(tx, ops::schedule::fire(&mut tx, &mut ws, params).await);
        if matches!(out, ScheduleFireOutcome::Stale) {
            tx.rollback().await.map_err(db_error)?;
            return Ok(out);
        }
        self.commit(tx, ws).await?;
        Ok(out)
    }

    // Workflows.

    async fn workflow_insert(&self, params: WorkflowInsert) -> Result<WorkflowRun, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let run = or_abort!(tx, ops::workflow::insert(&mut tx, &mut ws, params).await);
        if run.duplicate {
            // Nothing was written.
            tx.rollback().await.map_err(db_error)?;
            return Ok(run);
        }
        self.commit(tx, ws).await?;
        Ok(run)
    }

    async fn workflow_get(
        &self,
        namespace: &str,
        id: &WorkflowId,
    ) -> Result<WorkflowRun, StoreError> {
        ops::workflow::get(&mut *self.conn().await?, namespace, id).await
    }

    async fn workflow_list(
        &self,
        params: &WorkflowListParams,
    ) -> Result<Vec<Workflow>, StoreError> {
        ops::workflow::list(&mut *self.conn().await?, params).await
    }

    async fn workflow_cancel(
        &self,
        namespace: &str,
        id: &WorkflowId,
        actor: &str,
    ) -> Result<Workflow, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let run = or_abort!(
            tx,
            ops::workflow::cancel(&mut tx, &mut ws, namespace, id, actor).await
        );
        self.commit(tx, ws).await?;
        Ok(run)
    }

    async fn workflow_retry(
        &self,
        namespace: &str,
        id: &WorkflowId,
        actor: &str,
    ) -> Result<Workflow, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let run = or_abort!(
            tx,
            ops::workflow::retry(&mut tx, &mut ws, namespace, id, actor).await
        );
        self.commit(tx, ws).await?;
        Ok(run)
    }

    async fn workflow_add_steps(&self, params: WorkflowAddSteps) -> Result<Vec<Job>, StoreError> {
        let (mut tx, mut ws) = self.begin().await?;
        let jobs = or_abort!(tx, ops::workflow::add_steps(&mut tx, &mut ws, params).await);
        self.commit(tx, ws).await?;
        Ok(jobs)
    }

    async fn workflow_parents(
        &self,
        namespace: &str,
        steps: &[JobId],
    ) -> Result<StepParents, StoreError> {
        ops::workflow::parents(&mut *self.conn().await?, namespace, steps).await
    }

    // Workflow definitions and backfills.

    async fn workflow_definition_put(
        &self,
        definition: WorkflowDefinition,
    ) -> Result<WorkflowDefinition, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let d = or_abort!(tx, ops::workflow_definition::put(&mut tx, definition).await);
        tx.commit().await.map_err(db_error)?;
        Ok(d)
    }

    async fn workflow_definition_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError> {
        ops::workflow_definition::get(&mut *self.conn().await?, namespace, name).await
    }

    async fn workflow_definition_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        ops::workflow_definition::list(&mut *self.conn().await?, namespace).await
    }

    async fn workflow_definition_delete(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        ops::workflow_definition::delete(&mut *self.conn().await?, namespace, name).await
    }

    async fn workflow_definition_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        ops::workflow_definition::due(&mut *self.conn().await?, now, limit).await
    }

    async fn workflow_definition_advance(
        &self,
        namespace: &str,
        name: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let moved = or_abort!(
            tx,
            ops::workflow_definition::advance(&mut tx, namespace, name, expected, next).await
        );
        tx.commit().await.map_err(db_error)?;
        Ok(moved)
    }

    async fn backfill_create(&self, backfill: Backfill) -> Result<(Backfill, bool), StoreError> {
        ops::workflow_definition::backfill_create(&mut *self.conn().await?, backfill).await
    }

    async fn backfill_get(&self, namespace: &str, id: &JobId) -> Result<Backfill, StoreError> {
        ops::workflow_definition::backfill_get(&mut *self.conn().await?, namespace, id).await
    }

    async fn backfill_list(
        &self,
        namespace: Option<&str>,
        unfinished_only: bool,
    ) -> Result<Vec<Backfill>, StoreError> {
        ops::workflow_definition::backfill_list(
            &mut *self.conn().await?,
            namespace,
            unfinished_only,
        )
        .await
    }

    async fn backfill_finish(&self, id: &JobId, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        or_abort!(
            tx,
            ops::workflow_definition::backfill_finish(&mut tx, id, at).await
        );
        tx.commit().await.map_err(db_error)
    }

    // Security: API keys, namespace quotas, the audit log, webhooks. Every write that records
    // an audit entry appends it in its own transaction, so both commit or neither.

    async fn api_key_insert(
        &self,
        key: StoredApiKey,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        or_abort!(tx, ops::api_keys::insert(&mut tx, key, audit).await);
        tx.commit().await.map_err(db_error)
    }

    async fn api_key_list(&self) -> Result<Vec<StoredApiKey>, StoreError> {
        ops::api_keys::list(&mut *self.conn().await?).await
    }

    async fn api_key_revoke(
        &self,
        id: &str,
        at: Timestamp,
        audit: NewAuditEntry,
    ) -> Result<ApiKey, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let key = or_abort!(tx, ops::api_keys::revoke(&mut tx, id, at, audit).await);
        tx.commit().await.map_err(db_error)?;
        Ok(key)
    }

    async fn namespace_put(
        &self,
        settings: NamespaceSettings,
        audit: NewAuditEntry,
    ) -> Result<NamespaceSettings, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let stored = or_abort!(tx, ops::namespaces::put(&mut tx, settings, audit).await);
        tx.commit().await.map_err(db_error)?;
        Ok(stored)
    }

    async fn namespace_list(&self) -> Result<Vec<NamespaceSettings>, StoreError> {
        ops::namespaces::list(&mut *self.conn().await?).await
    }

    async fn audit_append(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        ops::audit::append(&mut *self.conn().await?, entry).await
    }

    async fn audit_list(
        &self,
        namespaces: Option<&[String]>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        ops::audit::list(&mut *self.conn().await?, namespaces, before, limit).await
    }

    async fn webhook_insert(&self, hook: Webhook, audit: NewAuditEntry) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        or_abort!(tx, ops::webhooks::insert(&mut tx, hook, audit).await);
        tx.commit().await.map_err(db_error)
    }

    async fn webhook_list(&self, namespace: Option<&str>) -> Result<Vec<Webhook>, StoreError> {
        ops::webhooks::list(&mut *self.conn().await?, namespace).await
    }

    async fn webhook_delete(
        &self,
        namespace: &str,
        id: &str,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        or_abort!(
            tx,
            ops::webhooks::delete(&mut tx, namespace, id, audit).await
        );
        tx.commit().await.map_err(db_error)
    }

    async fn webhook_advance(
        &self,
        id: &str,
        expected: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        // One statement: its own transaction, and the row lock makes it a compare-and-set.
        ops::webhooks::advance(&mut *self.conn().await?, id, expected, next).await
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
