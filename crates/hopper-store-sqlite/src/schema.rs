//! Versioned migrations, applied in order at open inside one transaction each.
//!
//! A job row keeps the columns that indexes and filters need, plus the whole job as JSON in
//! `body`, so decoding a job is one parse and every backend shares the job's JSON shape.

use rusqlite::Connection;

/// (version, SQL). Append only: never edit a migration that has shipped.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    namespace    TEXT NOT NULL,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    rescue_at    INTEGER,
    finished_at  INTEGER,
    created_at   INTEGER NOT NULL,
    lease_ms     INTEGER NOT NULL DEFAULT 0,
    worker_id    TEXT,
    tags         TEXT NOT NULL,
    body         TEXT NOT NULL
);
-- The lease path: the head of each queue, in lease order. Partial, so cost stays flat however
-- many jobs are scheduled, running or finished.
CREATE INDEX jobs_available ON jobs (namespace, queue, priority DESC, available_at, id)
    WHERE state = 'available';
-- The promoter: waiting jobs by due time.
CREATE INDEX jobs_due ON jobs (available_at) WHERE state IN ('scheduled', 'retryable');
-- The rescuer: running jobs by the moment their lease or attempt runs out.
CREATE INDEX jobs_rescue ON jobs (rescue_at) WHERE state = 'running';
-- Retention: finished jobs by state and finish time.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE state IN ('completed', 'dead', 'cancelled');
-- Listing, purging and retrying finished jobs by queue, newest first. Partial, like the
-- others, so a lease or a heartbeat touches none of it: only finishing does.
CREATE INDEX jobs_finished_by_queue ON jobs (namespace, state, queue, id)
    WHERE state IN ('completed', 'dead', 'cancelled');

CREATE TABLE job_events (
    seq        INTEGER PRIMARY KEY,
    job_id     TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, seq);

CREATE TABLE idempotency_keys (
    namespace   TEXT NOT NULL,
    key         TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE queues (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
"#,
    ),
    (
        2,
        r#"
-- Named leases for singleton roles (`maintenance`): one holder at a time, until expires_at
-- (store clock, ms); an expired lease is anyone's to take.
CREATE TABLE leader_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#,
    ),
    (
        3,
        r#"
-- Flow control: the keys limits and fairness group jobs by ('' for none), and the estimate
-- shortest-job-first orders by. Set at enqueue, never changed.
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN fairness_key TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN estimated_ms INTEGER;
-- The heads of each key's jobs, for queues that limit keys or are fair; a skip scan over
-- them lists the keys with work in O(keys), whatever the backlog of one key.
CREATE INDEX jobs_available_by_concurrency_key
    ON jobs (namespace, queue, concurrency_key, priority DESC, available_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_available_by_fairness_key
    ON jobs (namespace, queue, fairness_key, priority DESC, available_at, id)
    WHERE state = 'available';
CREATE INDEX jobs_available_shortest
    ON jobs (namespace, queue, priority DESC, coalesce(estimated_ms, 9223372036854775807), available_at, id)
    WHERE state = 'available';
-- Running jobs per queue and key: what concurrency limits count.
CREATE INDEX jobs_running ON jobs (namespace, queue, concurrency_key) WHERE state = 'running';

-- A queue's configuration beyond `paused` (JSON of QueueConfig; `paused` is the column).
ALTER TABLE queues ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE queues ADD COLUMN custom_retention INTEGER NOT NULL DEFAULT 0;

-- Lease-time state of flow control: token buckets (kind 'rate' with key '', 'key_rate' per
-- concurrency key: value = tokens at `at`) and fair-queuing virtual times (kind 'fair_clock'
-- with key '', 'fair' per fairness key: value = the key's virtual time).
CREATE TABLE queue_flow (
    namespace TEXT NOT NULL,
    queue     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     REAL NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue, kind, key)
);
"#,
    ),
    (
        4,
        r#"
-- Cron schedules: the whole schedule as JSON in `body` (hopper_types::schedule::Schedule),
-- plus the columns the scheduler selects on. `cursor_at` is the last tick considered, the
-- value the scheduler's compare-and-set checks.
CREATE TABLE schedules (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    paused       INTEGER NOT NULL,
    next_fire_at INTEGER,
    cursor_at    INTEGER NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
-- The scheduler: unpaused schedules by next fire time.
CREATE INDEX schedules_due ON schedules (next_fire_at)
    WHERE paused = 0 AND next_fire_at IS NOT NULL;
"#,
    ),
    (
        5,
        r#"
-- The live event stream tails job_events by seq. A plain INTEGER PRIMARY KEY hands out
-- max(seq) + 1, so deleting the newest event (its job deleted) would let the next event reuse
-- a seq a subscriber already saw; AUTOINCREMENT never reuses one.
CREATE TABLE job_events_v5 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL
);
INSERT INTO job_events_v5 (seq, job_id, namespace, from_state, to_state, at, actor, reason)
    SELECT seq, job_id, namespace, from_state, to_state, at, actor, reason FROM job_events;
DROP TABLE job_events;
ALTER TABLE job_events_v5 RENAME TO job_events;
CREATE INDEX job_events_job ON job_events (job_id, seq);
"#,
    ),
    (
        6,
        r#"
-- Workers the server saw lately (GET /v1/workers), written in batches every few seconds.
CREATE TABLE workers_seen (
    namespace    TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    queues       TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    node         TEXT NOT NULL,
    PRIMARY KEY (namespace, worker_id)
);
"#,
    ),
    (
        7,
        r#"
-- Workflow runs: the run's counters, kept in step with its steps' transitions.
CREATE TABLE workflows (
    id               TEXT PRIMARY KEY,
    namespace        TEXT NOT NULL,
    name             TEXT,
    state            TEXT NOT NULL,
    steps            INTEGER NOT NULL,
    open_steps       INTEGER NOT NULL,
    failed_steps     INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    definition       TEXT,
    logical_date     TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX workflows_by_namespace ON workflows (namespace, id);
-- One run per definition and logical date: what makes a backfill idempotent.
CREATE UNIQUE INDEX workflows_logical_date ON workflows (namespace, definition, logical_date)
    WHERE definition IS NOT NULL;

-- A step is a job with its run and name (unique in the run).
ALTER TABLE jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE jobs ADD COLUMN step TEXT;
CREATE UNIQUE INDEX jobs_workflow_step ON jobs (workflow_id, step) WHERE workflow_id IS NOT NULL;

-- The graph: one row per dependency. A finishing step finds its children by `parent`; a
-- leased step its parents by `child`.
CREATE TABLE job_deps (
    parent TEXT NOT NULL,
    child  TEXT NOT NULL,
    PRIMARY KEY (parent, child)
) WITHOUT ROWID;
CREATE INDEX job_deps_child ON job_deps (child, parent);
-- A deleted step takes its edges with it; ordinary jobs pay nothing.
CREATE TRIGGER jobs_delete_step_edges AFTER DELETE ON jobs WHEN old.workflow_id IS NOT NULL
BEGIN
    DELETE FROM job_deps WHERE parent = old.id;
    DELETE FROM job_deps WHERE child = old.id;
END;
"#,
    ),
    (
        8,
        r#"
-- Named workflow definitions (the whole definition as JSON in `body`), and when the cron
-- expression of those that have one next fires.
CREATE TABLE workflow_definitions (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    body         TEXT NOT NULL,
    next_fire_at INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX workflow_definitions_due ON workflow_definitions (next_fire_at)
    WHERE next_fire_at IS NOT NULL;

-- Backfills: one per definition and date range.
CREATE TABLE workflow_backfills (
    id          TEXT PRIMARY KEY,
    namespace   TEXT NOT NULL,
    definition  TEXT NOT NULL,
    from_date   TEXT NOT NULL,
    to_date     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER,
    UNIQUE (namespace, definition, from_date, to_date)
);
CREATE INDEX workflow_backfills_unfinished ON workflow_backfills (id) WHERE finished_at IS NULL;
"#,
    ),
    (
        9,
        r#"
-- API keys. Never the secret: only its SHA-256 (`secret_hash`, 32 bytes), so a copy of the
-- database hands out no usable key. `namespaces` is a JSON array of names (`["*"]` for all).
CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    namespaces       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    created_by       TEXT NOT NULL,
    expires_at       INTEGER,
    revoked_at       INTEGER,
    rate_limit_per_s INTEGER,
    secret_hash      BLOB NOT NULL CHECK (length(secret_hash) = 32)
);

-- Namespaces with quotas (others exist implicitly, without limits).
CREATE TABLE namespaces (
    name             TEXT PRIMARY KEY,
    max_waiting_jobs INTEGER,
    enqueue_per_s    INTEGER,
    updated_at       INTEGER NOT NULL
);

-- The audit log, read newest first. AUTOINCREMENT, as for job_events: a seq handed out is
-- never handed out again, so a client paging with `before` never sees an entry twice.
-- `namespace` is '' for actions outside any; `details` is JSON.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    namespace TEXT NOT NULL,
    target    TEXT NOT NULL,
    details   TEXT NOT NULL
);
-- Listing one tenant's entries newest first (the whole log walks the rowid backwards).
CREATE INDEX audit_log_by_namespace ON audit_log (namespace, seq DESC);

-- Webhook subscriptions. `events` is a JSON array of job states; `cursor` is the last
-- event-log seq dispatched, moved only by compare-and-set.
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    namespace  TEXT NOT NULL,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    cursor     INTEGER NOT NULL
);
CREATE INDEX webhooks_by_namespace ON webhooks (namespace, id);
"#,
    ),
];

/// Applies every migration newer than the database's version.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, datetime('now'))",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}

/// The newest schema version this build knows.
#[cfg(test)]
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map(|(v, _)| *v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, latest_version());
    }

    #[test]
    fn a_version_1_database_gains_leader_leases_and_keeps_its_rows() {
        let mut c = Connection::open_in_memory().unwrap();
        // A database as the first release left it: version 1 only, with a queue setting.
        c.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .unwrap();
        c.execute_batch(MIGRATIONS[0].1).unwrap();
        c.execute_batch(
            "INSERT INTO schema_migrations VALUES (1, 'then');
             INSERT INTO queues (namespace, name, paused, updated_at) VALUES ('default', 'q', 1, 5);",
        )
        .unwrap();
        migrate(&mut c).unwrap();
        let leases: i64 = c
            .query_row("SELECT count(*) FROM leader_leases", [], |r| r.get(0))
            .unwrap();
        let queues: i64 = c
            .query_row("SELECT count(*) FROM queues", [], |r| r.get(0))
            .unwrap();
        assert_eq!((leases, queues), (0, 1));
        assert_eq!(latest_version(), 9);
    }
}
