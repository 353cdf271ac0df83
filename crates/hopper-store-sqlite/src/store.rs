//! [`SqliteStore`]: the [`Store`] implementation.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hopper_store::*;
use hopper_types::api_key::{ApiKey, StoredApiKey};
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use hopper_types::namespace::NamespaceSettings;
use hopper_types::webhook::Webhook;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition};
use hopper_types::{Clock, Job, JobEvent, JobId, JobState, QueueConfig, Timestamp};
use rusqlite::Connection;

use crate::config::{Durability, SqliteConfig};
use crate::counts::Counts;
use crate::ops;
use crate::readers::Readers;
use crate::rows::sql_error;
use crate::schema::migrate;
use crate::writer::{WriteCtx, Writer, WriterParts};

/// The embedded store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    // Maintained by the writer after each commit; read by queue listings.
    counts: Arc<RwLock<Counts>>,
    signals: Arc<QueueSignals>,
    clock: Arc<dyn Clock>,
    // Held for the store's lifetime: an exclusive lock on `hopper.lock` in the data
    // directory, so a second server on the same directory is refused instead of sharing it.
    // The kernel drops it when the process dies, so a crash never leaves it behind.
    _dir_lock: std::fs::File,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn io_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// Takes the data directory's exclusive lock, or says who holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join("hopper.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("open the data directory's lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "another Hopper server is using {}",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(io_error("lock the data directory", e)),
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the database in `config.data_dir`, applies migrations and
    /// starts the writer.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| io_error("create data directory", e))?;
        let dir_lock = lock_data_dir(&config.data_dir)?;
        let path = config.db_path();
        let mut conn = Connection::open(&path).map_err(sql_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql_error)?;
        let sync = match config.durability {
            Durability::Full => "FULL",
            Durability::Relaxed => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             -- A small writer cache is faster, not slower: SQLite scans the page cache at the
             -- end of every transaction, and the OS page cache serves what falls out of it.
             PRAGMA cache_size = -4000;
             PRAGMA wal_autocheckpoint = 10000;
             PRAGMA temp_store = MEMORY;
             PRAGMA foreign_keys = OFF;"
        ))
        .map_err(sql_error)?;
        migrate(&mut conn).map_err(sql_error)?;
        let counts = Arc::new(RwLock::new(Counts::load(&conn)?));
        let signals = Arc::new(QueueSignals::new());
        let mut wal_path = path.clone().into_os_string();
        wal_path.push("-wal");
        let writer = Writer::start(
            conn,
            WriterParts {
                clock: config.clock.clone(),
                durability: config.durability,
                wal_path: wal_path.into(),
                counts: counts.clone(),
                signals: signals.clone(),
            },
        )?;
        Ok(SqliteStore {
            writer,
            readers: Readers::new(path),
            counts,
            signals,
            clock: config.clock,
            _dir_lock: dir_lock,
        })
    }

    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.writer.run(f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn job_insert_many(&self, params: JobInsertParams) -> Result<Vec<Inserted>, StoreError> {
        self.write(move |ctx| ops::insert::insert_many(ctx, params))
            .await
    }

    async fn job_get(&self, job: &JobRef) -> Result<Job, StoreError> {
        let r = job.clone();
        self.readers.run(move |c| ops::read::get(c, &r)).await
    }

    async fn job_list(&self, params: &JobListParams) -> Result<JobPage, StoreError> {
        let p = params.clone();
        self.readers.run(move |c| ops::read::list(c, &p)).await
    }

    async fn job_events(&self, job: &JobRef) -> Result<Vec<JobEvent>, StoreError> {
        let r = job.clone();
        self.readers.run(move |c| ops::read::events(c, &r)).await
    }

    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventLogRow>, StoreError> {
        self.readers
            .run(move |c| ops::feed::events_after(c, after, limit))
            .await
    }

    async fn events_last_seq(&self) -> Result<i64, StoreError> {
        self.readers.run(ops::feed::last_seq).await
    }

    fn events_visible_in_seq_order(&self) -> bool {
        true
    }

    async fn job_explain(&self, job: &JobRef) -> Result<JobWait, StoreError> {
        let r = job.clone();
        let now = self.clock.now();
        self.readers
            .run(move |c| ops::explain::explain(c, &r, now))
            .await
    }

    async fn job_lease_many(&self, params: JobLeaseParams) -> Result<Vec<Job>, StoreError> {
        // Idle workers ask often (every long-poll wake-up). The counts are published after each
        // commit and before its wake-ups fire, so when they show nothing available there is
        // nothing to lease, and a write transaction would be wasted on the single writer.
        let any = self
            .counts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .any_available(&params.namespace, &params.queues);
        if !any {
            return Ok(Vec::new());
        }
        self.write(move |ctx| ops::lease::lease_many(ctx, params))
            .await
    }

    async fn job_heartbeat(&self, params: JobHeartbeatParams) -> Result<Heartbeat, StoreError> {
        self.write(move |ctx| ops::outcome::heartbeat(ctx, params))
            .await
    }

    async fn job_ack_many(&self, acks: Vec<JobAck>) -> Result<AckResults, StoreError> {
        self.write(move |ctx| ops::outcome::ack_many(ctx, acks))
            .await
    }

    async fn job_cancel(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        let (r, actor) = (job.clone(), actor.to_string());
        self.write(move |ctx| ops::admin::cancel(ctx, &r, &actor))
            .await
    }

    async fn job_retry(&self, job: &JobRef, actor: &str) -> Result<Job, StoreError> {
        let (r, actor) = (job.clone(), actor.to_string());
        self.write(move |ctx| ops::admin::retry(ctx, &r, &actor))
            .await
    }

    async fn job_delete(&self, job: &JobRef) -> Result<(), StoreError> {
        let r = job.clone();
        self.write(move |ctx| ops::admin::delete(ctx, &r)).await
    }

    async fn job_promote_due(&self, limit: usize) -> Result<u64, StoreError> {
        self.write(move |ctx| ops::maintenance::promote_due(ctx, limit))
            .await
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.readers.run(ops::read::next_due_at).await
    }

    async fn job_rescue_expired(&self, limit: usize) -> Result<Vec<Job>, StoreError> {
        self.write(move |ctx| ops::maintenance::rescue_expired(ctx, limit))
            .await
    }

    async fn job_max_outstanding_lease_ms(&self) -> Result<i64, StoreError> {
        self.readers.run(ops::read::max_outstanding_lease_ms).await
    }

    async fn job_prune_finished(&self, params: JobPruneParams) -> Result<u64, StoreError> {
        self.write(move |ctx| ops::maintenance::prune_finished(ctx, &params))
            .await
    }

    async fn idempotency_key_prune(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<u64, StoreError> {
        self.write(move |ctx| ops::maintenance::idempotency_key_prune(ctx, before, limit))
            .await
    }

    async fn queue_list(&self, namespace: &str) -> Result<Vec<QueueInfo>, StoreError> {
        let (ns, counts, now) = (namespace.to_string(), self.counts.clone(), self.clock.now());
        self.readers
            .run(move |c| ops::queue::list(c, &counts, &ns, now))
            .await
    }

    async fn queue_get(&self, namespace: &str, name: &str) -> Result<QueueInfo, StoreError> {
        let (ns, name, counts, now) = (
            namespace.to_string(),
            name.to_string(),
            self.counts.clone(),
            self.clock.now(),
        );
        self.readers
            .run(move |c| ops::queue::get(c, &counts, &ns, &name, now))
            .await
    }

    async fn queue_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<QueueInfo, StoreError> {
        let (ns, q) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::queue::set_paused(ctx, &ns, &q, paused))
            .await?;
        self.queue_get(namespace, name).await
    }

    async fn queue_configure(
        &self,
        namespace: &str,
        name: &str,
        config: QueueConfig,
    ) -> Result<QueueInfo, StoreError> {
        let (ns, q) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::queue::configure(ctx, &ns, &q, config))
            .await?;
        self.queue_get(namespace, name).await
    }

    async fn queue_flow_prune(
        &self,
        namespace: &str,
        name: &str,
        rate_refilled_before: Option<Timestamp>,
    ) -> Result<u64, StoreError> {
        let (ns, q) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::flow::prune(ctx.conn, &ns, &q, rate_refilled_before))
            .await
    }

    async fn queue_list_custom_retention(&self) -> Result<Vec<QueueRecord>, StoreError> {
        self.readers.run(ops::queue::custom_retention).await
    }

    async fn queue_retry_dead(
        &self,
        namespace: &str,
        name: &str,
        actor: &str,
    ) -> Result<u64, StoreError> {
        // In chunks, each its own transaction, so a huge dead-letter queue never stalls others.
        let mut total = 0;
        loop {
            let (ns, q, a) = (namespace.to_string(), name.to_string(), actor.to_string());
            let n = self
                .write(move |ctx| ops::queue::retry_dead_chunk(ctx, &ns, &q, &a))
                .await?;
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
            let (ns, q) = (namespace.to_string(), name.to_string());
            let n = self
                .write(move |ctx| ops::queue::purge_chunk(ctx, &ns, &q, state))
                .await?;
            total += n;
            if (n as usize) < ops::queue::BULK_CHUNK {
                return Ok(total);
            }
        }
    }

    async fn worker_running_list(&self, namespace: &str) -> Result<Vec<WorkerRunning>, StoreError> {
        let ns = namespace.to_string();
        self.readers
            .run(move |c| ops::read::worker_running_list(c, &ns))
            .await
    }

    async fn leader_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |ctx| ops::leader::acquire(ctx, &name, &holder, ttl_ms))
            .await
    }

    async fn workers_seen_record(&self, seen: Vec<WorkerSeen>) -> Result<(), StoreError> {
        self.write(move |ctx| ops::workers_seen::record(ctx, &seen))
            .await
    }

    async fn workers_seen_list(
        &self,
        namespace: Option<&str>,
        since: Timestamp,
    ) -> Result<Vec<WorkerSeen>, StoreError> {
        let namespace = namespace.map(str::to_string);
        self.readers
            .run(move |c| ops::workers_seen::list(c, namespace.as_deref(), since))
            .await
    }

    async fn workers_seen_prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.write(move |ctx| ops::workers_seen::prune(ctx, before))
            .await
    }

    async fn leader_resign(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |ctx| ops::leader::resign(ctx, &name, &holder))
            .await
    }

    async fn export_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.readers
            .run(move |c| ops::export::jobs(c, after, limit))
            .await
    }

    async fn export_idempotency_keys(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<IdempotencyKeyRecord>, StoreError> {
        self.readers
            .run(move |c| ops::export::idempotency_keys(c, after, limit))
            .await
    }

    async fn export_queues(&self) -> Result<Vec<QueueRecord>, StoreError> {
        self.readers.run(ops::export::queues).await
    }

    async fn export_workflows(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<WorkflowRecord>, StoreError> {
        self.readers
            .run(move |c| ops::workflow::export(c, after, limit))
            .await
    }

    async fn export_workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, StoreError> {
        self.readers.run(ops::workflow_definition::export).await
    }

    async fn export_schedules(&self) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        self.readers.run(ops::schedule::export).await
    }

    async fn export_audit(
        &self,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.readers
            .run(move |c| ops::audit::export(c, after, limit))
            .await
    }

    async fn import(&self, batch: ImportBatch) -> Result<u64, StoreError> {
        self.write(move |ctx| ops::import::import(ctx, batch)).await
    }

    async fn totals(&self) -> Result<StoreTotals, StoreError> {
        self.readers.run(ops::export::totals).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .run(|c| {
                c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map(|_| ())
                    .map_err(sql_error)
            })
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.writer.close().await
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
        self.write(move |ctx| ops::schedule::create(ctx, params))
            .await
    }

    async fn schedule_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.readers
            .run(move |c| ops::schedule::get(c, &ns, &name))
            .await
    }

    async fn schedule_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        let ns = namespace.to_string();
        self.readers.run(move |c| ops::schedule::list(c, &ns)).await
    }

    async fn schedule_update(
        &self,
        params: ScheduleUpdate,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        self.write(move |ctx| ops::schedule::update(ctx, params))
            .await
    }

    async fn schedule_delete(&self, namespace: &str, name: &str) -> Result<(), StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::schedule::delete(ctx, &ns, &name))
            .await
    }

    async fn schedule_set_paused(
        &self,
        namespace: &str,
        name: &str,
        paused: bool,
    ) -> Result<hopper_types::schedule::Schedule, StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::schedule::set_paused(ctx, &ns, &name, paused))
            .await
    }

    async fn schedule_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<hopper_types::schedule::Schedule>, StoreError> {
        self.readers
            .run(move |c| ops::schedule::due(c, now, limit))
            .await
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.readers.run(ops::schedule::next_fire_at).await
    }

    async fn schedule_fire(&self, params: ScheduleFire) -> Result<ScheduleFireOutcome, StoreError> {
        self.write(move |ctx| ops::schedule::fire(ctx, params))
            .await
    }

    async fn workflow_insert(&self, params: WorkflowInsert) -> Result<WorkflowRun, StoreError> {
        self.write(move |ctx| ops::workflow::insert(ctx, params))
            .await
    }

    async fn workflow_get(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
    ) -> Result<WorkflowRun, StoreError> {
        let (ns, id) = (namespace.to_string(), *id);
        self.readers
            .run(move |c| ops::workflow::get(c, &ns, &id))
            .await
    }

    async fn workflow_list(
        &self,
        params: &WorkflowListParams,
    ) -> Result<Vec<hopper_types::workflow_run::Workflow>, StoreError> {
        let p = params.clone();
        self.readers.run(move |c| ops::workflow::list(c, &p)).await
    }

    async fn workflow_cancel(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError> {
        let (ns, id, actor) = (namespace.to_string(), *id, actor.to_string());
        self.write(move |ctx| ops::workflow::cancel(ctx, &ns, &id, &actor))
            .await
    }

    async fn workflow_retry(
        &self,
        namespace: &str,
        id: &hopper_types::workflow_run::WorkflowId,
        actor: &str,
    ) -> Result<hopper_types::workflow_run::Workflow, StoreError> {
        let (ns, id, actor) = (namespace.to_string(), *id, actor.to_string());
        self.write(move |ctx| ops::workflow::retry(ctx, &ns, &id, &actor))
            .await
    }

    async fn workflow_add_steps(&self, params: WorkflowAddSteps) -> Result<Vec<Job>, StoreError> {
        self.write(move |ctx| ops::workflow::add_steps(ctx, params))
            .await
    }

    async fn workflow_parents(
        &self,
        namespace: &str,
        steps: &[JobId],
    ) -> Result<StepParents, StoreError> {
        let (ns, steps) = (namespace.to_string(), steps.to_vec());
        self.readers
            .run(move |c| ops::workflow::parents(c, &ns, &steps))
            .await
    }

    async fn workflow_definition_put(
        &self,
        definition: WorkflowDefinition,
    ) -> Result<WorkflowDefinition, StoreError> {
        self.write(move |ctx| ops::workflow_definition::put(ctx, definition))
            .await
    }

    async fn workflow_definition_get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<WorkflowDefinition, StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.readers
            .run(move |c| ops::workflow_definition::get(c, &ns, &name))
            .await
    }

    async fn workflow_definition_list(
        &self,
        namespace: &str,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        let ns = namespace.to_string();
        self.readers
            .run(move |c| ops::workflow_definition::list(c, &ns))
            .await
    }

    async fn workflow_definition_delete(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::workflow_definition::delete(ctx, &ns, &name))
            .await
    }

    async fn workflow_definition_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<WorkflowDefinition>, StoreError> {
        self.readers
            .run(move |c| ops::workflow_definition::due(c, now, limit))
            .await
    }

    async fn workflow_definition_advance(
        &self,
        namespace: &str,
        name: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool, StoreError> {
        let (ns, name) = (namespace.to_string(), name.to_string());
        self.write(move |ctx| ops::workflow_definition::advance(ctx, &ns, &name, expected, next))
            .await
    }

    async fn backfill_create(&self, backfill: Backfill) -> Result<(Backfill, bool), StoreError> {
        self.write(move |ctx| ops::workflow_definition::backfill_create(ctx, backfill))
            .await
    }

    async fn backfill_get(&self, namespace: &str, id: &JobId) -> Result<Backfill, StoreError> {
        let (ns, id) = (namespace.to_string(), *id);
        self.readers
            .run(move |c| ops::workflow_definition::backfill_get(c, &ns, &id))
            .await
    }

    async fn backfill_list(
        &self,
        namespace: Option<&str>,
        unfinished_only: bool,
    ) -> Result<Vec<Backfill>, StoreError> {
        let ns = namespace.map(str::to_string);
        self.readers
            .run(move |c| {
                ops::workflow_definition::backfill_list(c, ns.as_deref(), unfinished_only)
            })
            .await
    }

    async fn backfill_finish(&self, id: &JobId, at: Timestamp) -> Result<(), StoreError> {
        let id = *id;
        self.write(move |ctx| ops::workflow_definition::backfill_finish(ctx, &id, at))
            .await
    }

    // Security: API keys, namespace quotas, the audit log, webhooks. Every write that records
    // an audit entry appends it inside its own writer command, so both commit or neither.

    async fn api_key_insert(
        &self,
        key: StoredApiKey,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| ops::api_keys::insert(ctx, key, audit))
            .await
    }

    async fn api_key_list(&self) -> Result<Vec<StoredApiKey>, StoreError> {
        self.readers.run(ops::api_keys::list).await
    }

    async fn api_key_revoke(
        &self,
        id: &str,
        at: Timestamp,
        audit: NewAuditEntry,
    ) -> Result<ApiKey, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ops::api_keys::revoke(ctx, &id, at, audit))
            .await
    }

    async fn namespace_put(
        &self,
        settings: NamespaceSettings,
        audit: NewAuditEntry,
    ) -> Result<NamespaceSettings, StoreError> {
        self.write(move |ctx| ops::namespaces::put(ctx, settings, audit))
            .await
    }

    async fn namespace_list(&self) -> Result<Vec<NamespaceSettings>, StoreError> {
        self.readers.run(ops::namespaces::list).await
    }

    async fn audit_append(&self, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
        self.write(move |ctx| ops::audit::append(ctx.conn, entry))
            .await
    }

    async fn audit_list(
        &self,
        namespaces: Option<&[String]>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let namespaces = namespaces.map(<[String]>::to_vec);
        self.readers
            .run(move |c| ops::audit::list(c, namespaces.as_deref(), before, limit))
            .await
    }

    async fn webhook_insert(&self, hook: Webhook, audit: NewAuditEntry) -> Result<(), StoreError> {
        self.write(move |ctx| ops::webhooks::insert(ctx, hook, audit))
            .await
    }

    async fn webhook_list(&self, namespace: Option<&str>) -> Result<Vec<Webhook>, StoreError> {
        let ns = namespace.map(str::to_string);
        self.readers
            .run(move |c| ops::webhooks::list(c, ns.as_deref()))
            .await
    }

    async fn webhook_delete(
        &self,
        namespace: &str,
        id: &str,
        audit: NewAuditEntry,
    ) -> Result<(), StoreError> {
        let (ns, id) = (namespace.to_string(), id.to_string());
        self.write(move |ctx| ops::webhooks::delete(ctx, &ns, &id, audit))
            .await
    }

    async fn webhook_advance(
        &self,
        id: &str,
        expected: i64,
        next: i64,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |ctx| ops::webhooks::advance(ctx, &id, expected, next))
            .await
    }
}
