//! Versioned migrations, applied at connect under an advisory lock so that nodes starting
//! together migrate once: the first takes the lock and migrates, the others wait for it and
//! then find nothing left to do.
//!
//! Everything lives in the `hopper` schema, so Hopper can share a database with the
//! application that enqueues inside its own transactions (see [`crate::enqueue_in`]).
//! Timestamps are milliseconds since the epoch as `bigint`, stamped by the store's clock, the
//! same as the embedded store, so every backend computes time identically.

use sqlx::PgPool;

use crate::error::db_error;
use hopper_store::StoreError;

/// Key of the advisory lock held while migrating ("hopper" in ASCII).
const MIGRATION_LOCK: i64 = 0x68_6f_70_70_65_72;

/// (version, SQL). Append only: never edit a migration that has shipped.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE hopper.jobs (
    id           uuid PRIMARY KEY,
    namespace    text NOT NULL,
    queue        text NOT NULL,
    kind         text NOT NULL,
    state        text NOT NULL,
    priority     integer NOT NULL,
    available_at bigint NOT NULL,
    rescue_at    bigint,
    finished_at  bigint,
    created_at   bigint NOT NULL,
    lease_ms     bigint NOT NULL DEFAULT 0,
    worker_id    text,
    tags         text[] NOT NULL,
    body         text NOT NULL
);
-- The lease path: the head of each queue, in lease order. Partial, so leasing cost stays flat
-- however many jobs are scheduled, running or finished.
CREATE INDEX jobs_available ON hopper.jobs (namespace, queue, priority DESC, available_at, id)
    WHERE state = 'available';
-- The promoter: waiting jobs by due time.
CREATE INDEX jobs_due ON hopper.jobs (available_at) WHERE state IN ('scheduled', 'retryable');
-- The rescuer (and the running-job listings): running jobs by when their lease runs out.
CREATE INDEX jobs_rescue ON hopper.jobs (rescue_at) WHERE state = 'running';
-- Retention: finished jobs by state and finish time.
CREATE INDEX jobs_finished ON hopper.jobs (state, finished_at)
    WHERE state IN ('completed', 'dead', 'cancelled');
-- Listing, purging and retrying finished jobs by queue, newest first.
CREATE INDEX jobs_finished_by_queue ON hopper.jobs (namespace, state, queue, id)
    WHERE state IN ('completed', 'dead', 'cancelled');

CREATE TABLE hopper.job_events (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     uuid NOT NULL,
    namespace  text NOT NULL,
    from_state text,
    to_state   text NOT NULL,
    at         bigint NOT NULL,
    actor      text NOT NULL,
    reason     text NOT NULL
);
CREATE INDEX job_events_job ON hopper.job_events (job_id, seq);

CREATE TABLE hopper.idempotency_keys (
    namespace   text NOT NULL,
    key         text NOT NULL,
    job_id      uuid NOT NULL,
    fingerprint text NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX idempotency_keys_created ON hopper.idempotency_keys (created_at);

CREATE TABLE hopper.queues (
    namespace  text NOT NULL,
    name       text NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    updated_at bigint NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Named leases that elect one node to run each singleton service.
CREATE TABLE hopper.leader_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at bigint NOT NULL
);
"#,
    ),
    (
        2,
        r#"
-- Aborts the statement that calls it unless `ok`: lets one multi-part statement be
-- all-or-nothing without a transaction block around it (see ops/insert.rs).
CREATE FUNCTION hopper.require(ok boolean, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION USING ERRCODE = 'HP001', MESSAGE = message;
    END IF;
    RETURN true;
END
$$;
"#,
    ),
    (
        3,
        r#"
-- Flow control: the keys limits and fairness group jobs by ('' for none), and the estimate
-- shortest-job-first orders by. Set at enqueue, never changed.
ALTER TABLE hopper.jobs
    ADD COLUMN concurrency_key text NOT NULL DEFAULT '',
    ADD COLUMN fairness_key text NOT NULL DEFAULT '',
    ADD COLUMN estimated_ms bigint;
-- The heads of each key's jobs, for queues that limit keys or are fair; a skip scan over
-- them lists the keys with work in O(keys), whatever the backlog of one key.
CREATE INDEX jobs_available_by_concurrency_key
    ON hopper.jobs (namespace, queue, concurrency_key, priority DESC, available_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_available_by_fairness_key
    ON hopper.jobs (namespace, queue, fairness_key, priority DESC, available_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_available_shortest
    ON hopper.jobs (namespace, queue, priority DESC, coalesce(estimated_ms, 9223372036854775807),
                    available_at, id)
    WHERE state = 'available';
-- Running jobs per queue and key: what concurrency limits count.
CREATE INDEX jobs_running ON hopper.jobs (namespace, queue, concurrency_key)
    WHERE state = 'running';

-- A queue's configuration beyond `paused` (JSON of QueueConfig; `paused` is the column), and
-- two flags the hot paths filter on without parsing it.
ALTER TABLE hopper.queues
    ADD COLUMN config text NOT NULL DEFAULT '{}',
    ADD COLUMN custom_retention boolean NOT NULL DEFAULT false,
    ADD COLUMN shapes_leases boolean NOT NULL DEFAULT false;

-- Lease-time state of flow control: token buckets (kind 'rate' with key '', 'key_rate' per
-- concurrency key: value = tokens at `at`) and fair-queuing virtual times (kind 'fair_clock'
-- with key '', 'fair' per fairness key). Written only under the queue row's lock.
CREATE TABLE hopper.queue_flow (
    namespace text NOT NULL,
    queue     text NOT NULL,
    kind      text NOT NULL,
    key       text NOT NULL,
    value     double precision NOT NULL,
    at        bigint NOT NULL,
    PRIMARY KEY (namespace, queue, kind, key)
);
"#,
    ),
    (
        4,
        r#"
-- Cron schedules: the whole schedule as JSON in `body` (hopper_types::schedule::Schedule),
-- plus the columns the scheduler selects on. `cursor_at` is the last tick considered; a fire
-- locks the row and checks it (compare-and-set) before inserting the tick jobs.
CREATE TABLE hopper.schedules (
    namespace    text NOT NULL,
    name         text NOT NULL,
    paused       boolean NOT NULL,
    next_fire_at bigint,
    cursor_at    bigint NOT NULL,
    body         text NOT NULL,
    PRIMARY KEY (namespace, name)
);
-- The scheduler: unpaused schedules by next fire time.
CREATE INDEX schedules_due ON hopper.schedules (next_fire_at)
    WHERE NOT paused AND next_fire_at IS NOT NULL;
"#,
    ),
    (
        5,
        r#"
-- Workers the nodes saw lately (GET /v1/workers on any node), written in batches.
CREATE TABLE hopper.workers_seen (
    namespace    text NOT NULL,
    worker_id    text NOT NULL,
    queues       text NOT NULL,
    last_seen_at bigint NOT NULL,
    node         text NOT NULL,
    PRIMARY KEY (namespace, worker_id)
);
"#,
    ),
    (
        6,
        r#"
-- Workflow runs: the counters and state of hopper_types::workflow_run::Workflow. A run's row
-- is changed only under its lock (FOR UPDATE), always taken after the locks of the steps the
-- same transaction changes, in the transaction that moves its steps.
CREATE TABLE hopper.workflows (
    id               uuid PRIMARY KEY,
    namespace        text NOT NULL,
    name             text,
    state            text NOT NULL,
    steps            integer NOT NULL,
    open_steps       integer NOT NULL,
    failed_steps     integer NOT NULL,
    cancel_requested boolean NOT NULL,
    definition       text,
    logical_date     text,
    created_at       bigint NOT NULL,
    finished_at      bigint
);
-- Listing a namespace's runs, newest first.
CREATE INDEX workflows_by_namespace ON hopper.workflows (namespace, id);
-- One run per definition and logical date (backfills).
CREATE UNIQUE INDEX workflows_definition_date
    ON hopper.workflows (namespace, definition, logical_date) WHERE definition IS NOT NULL;

-- The run and step name of a workflow step (NULL for ordinary jobs: adding nullable columns
-- without a default rewrites nothing). Set at insert, never changed.
ALTER TABLE hopper.jobs
    ADD COLUMN workflow_id uuid,
    ADD COLUMN step text;
-- Step names are unique in their run; also how a run's steps are found.
CREATE UNIQUE INDEX jobs_workflow_step ON hopper.jobs (workflow_id, step)
    WHERE workflow_id IS NOT NULL;

-- The graph: one row per (parent, child) edge between steps of one run. The primary key finds
-- a finishing step's children; the second index a step's parents.
CREATE TABLE hopper.job_deps (
    parent uuid NOT NULL,
    child  uuid NOT NULL,
    PRIMARY KEY (parent, child)
);
CREATE INDEX job_deps_child ON hopper.job_deps (child, parent);

-- Edges go with their steps. A trigger rather than code in every delete path (delete, purge,
-- prune), and conditional so deleting ordinary jobs pays nothing.
CREATE FUNCTION hopper.job_deps_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM hopper.job_deps WHERE parent = OLD.id OR child = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_forget_deps AFTER DELETE ON hopper.jobs
    FOR EACH ROW WHEN (OLD.workflow_id IS NOT NULL)
    EXECUTE FUNCTION hopper.job_deps_forget();
"#,
    ),
    (
        7,
        r#"
-- Workflow definitions: the whole definition as JSON in `body`
-- (hopper_types::workflow_definition::WorkflowDefinition), plus the columns the cron driver
-- selects on. `next_fire_at` is moved by compare-and-set (see ops/workflow_definition.rs).
CREATE TABLE hopper.workflow_definitions (
    namespace    text NOT NULL,
    name         text NOT NULL,
    body         text NOT NULL,
    next_fire_at bigint,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    PRIMARY KEY (namespace, name)
);
-- The cron driver: definitions with a cron expression, by next fire time.
CREATE INDEX workflow_definitions_due ON hopper.workflow_definitions (next_fire_at)
    WHERE next_fire_at IS NOT NULL;

-- Backfills: the whole backfill as JSON in `body` (Backfill), one per definition and range.
CREATE TABLE hopper.workflow_backfills (
    id          uuid PRIMARY KEY,
    namespace   text NOT NULL,
    definition  text NOT NULL,
    from_date   text NOT NULL,
    to_date     text NOT NULL,
    body        text NOT NULL,
    created_at  bigint NOT NULL,
    finished_at bigint
);
-- A second backfill of the same dates answers the first.
CREATE UNIQUE INDEX workflow_backfills_range
    ON hopper.workflow_backfills (namespace, definition, from_date, to_date);
-- The backfill driver: the unfinished ones, newest first.
CREATE INDEX workflow_backfills_unfinished ON hopper.workflow_backfills (id)
    WHERE finished_at IS NULL;
"#,
    ),
    (
        8,
        r#"
-- JSON columns are `text`, as the job bodies are, not `jsonb`: jsonb refuses strings holding
-- U+0000, so an audit entry whose details carry one would fail here and pass on the embedded
-- store; and nothing queries inside them.

-- API keys. Never the secret: only its SHA-256 (`secret_hash`, 32 bytes), so a copy of the
-- database hands out no usable key. `namespaces` is a JSON array of names (`["*"]` for all).
CREATE TABLE hopper.api_keys (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    role             text NOT NULL,
    namespaces       text NOT NULL,
    created_at       bigint NOT NULL,
    created_by       text NOT NULL,
    expires_at       bigint,
    revoked_at       bigint,
    rate_limit_per_s bigint,
    secret_hash      bytea NOT NULL CHECK (octet_length(secret_hash) = 32)
);

-- Namespaces with quotas (others exist implicitly, without limits).
CREATE TABLE hopper.namespaces (
    name             text PRIMARY KEY,
    max_waiting_jobs bigint,
    enqueue_per_s    bigint,
    updated_at       bigint NOT NULL
);

-- The audit log, read newest first. `namespace` is '' for actions outside any; `details` is
-- JSON. An identity hands out increasing numbers; like job_events, concurrent transactions
-- may commit them out of order, which a newest-first listing tolerates.
CREATE TABLE hopper.audit_log (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        bigint NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    namespace text NOT NULL,
    target    text NOT NULL,
    details   text NOT NULL
);
-- Listing one tenant's entries newest first (the whole log walks the primary key backwards).
CREATE INDEX audit_log_by_namespace ON hopper.audit_log (namespace, seq DESC);

-- Webhook subscriptions. `events` is a JSON array of job states; `cursor` is the last
-- event-log seq dispatched, moved only by compare-and-set (see ops/webhooks.rs).
CREATE TABLE hopper.webhooks (
    id         text PRIMARY KEY,
    namespace  text NOT NULL,
    url        text NOT NULL,
    events     text NOT NULL,
    secret     text NOT NULL,
    created_at bigint NOT NULL,
    cursor     bigint NOT NULL
);
CREATE INDEX webhooks_by_namespace ON hopper.webhooks (namespace, id COLLATE "C");
"#,
    ),
];

/// The newest schema version this build knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}

/// Applies every migration newer than the database's version in one transaction (PostgreSQL's
/// DDL is transactional: a failed migration leaves nothing half done), under an advisory lock.
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    sqlx::raw_sql(
        "CREATE SCHEMA IF NOT EXISTS hopper;
         CREATE TABLE IF NOT EXISTS hopper.schema_migrations (
             version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let current: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM hopper.schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
    if current > latest_version() {
        return Err(StoreError::Unavailable(format!(
            "the database's schema (version {current}) is newer than this Hopper knows ({}): upgrade Hopper",
            latest_version()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("INSERT INTO hopper.schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tracing::info!(version, "applied migration");
    }
    tx.commit().await.map_err(db_error)
}
