//! Queue-wide operations: pause and resume, retry of the dead-letter queue, purges, listing.

use std::collections::BTreeMap;

use hopper_store::{QueueInfo, StoreError};
use hopper_types::{JobState, QueueConfig, Timestamp, lifecycle};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::db_error;
use crate::ops::delete_jobs;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

/// Largest number of jobs one retry or purge call touches per transaction.
pub(crate) const BULK_CHUNK: usize = 5000;

pub(crate) async fn set_paused(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<(), StoreError> {
    // Under the row's lock, so a concurrent configure is not undone.
    let mut config = crate::ops::flow::load_config(conn, namespace, name, true).await?;
    config.paused = paused;
    configure(conn, ws, namespace, name, config).await
}

/// Replaces a queue's configuration.
pub(crate) async fn configure(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    namespace: &str,
    name: &str,
    config: QueueConfig,
) -> Result<(), StoreError> {
    let paused = config.paused;
    crate::ops::flow::save_config(conn, namespace, name, &config, ws.now, true).await?;
    if !paused {
        // Resuming, or loosening a limit, can make available jobs leasable: every node's
        // workers look again.
        ws.wake(namespace, name);
    }
    Ok(())
}

/// Retries up to [`BULK_CHUNK`] dead jobs; returns how many. Workflow steps are left out: a
/// finished step starts over only with its run (`lifecycle::retry` refuses it).
pub(crate) async fn retry_dead_chunk(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    namespace: &str,
    name: &str,
    actor: &str,
) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs
         WHERE namespace = $1 AND state = 'dead' AND queue = $2 AND workflow_id IS NULL
         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(namespace)
    .bind(name)
    .bind(BULK_CHUNK as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut n = 0;
    for row in &rows {
        let mut job = decode_job(row)?;
        let change = lifecycle::retry(&mut job, ws.now)?;
        ws.changed(&job, change, actor);
        n += 1;
    }
    Ok(n)
}

/// Deletes up to [`BULK_CHUNK`] jobs of one finished state; returns how many.
pub(crate) async fn purge_chunk(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
    state: JobState,
) -> Result<u64, StoreError> {
    // The state is spelled out (a closed set, never user text) so the partial index applies.
    let ids: Vec<Uuid> = // Safe to format: the state is one of a closed set of identifiers, never user text.
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM hopper.jobs WHERE namespace = $1 AND state = '{}' AND queue = $2
         ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        state.as_str()
    )))
    .bind(namespace)
    .bind(name)
    .bind(BULK_CHUNK as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    delete_jobs(conn, &ids).await?;
    Ok(ids.len() as u64)
}

/// Queues of `namespace` (all, or only `only`) with their counts, pause flags and oldest
/// available job, by name.
pub(crate) async fn infos(
    conn: &mut PgConnection,
    namespace: &str,
    only: Option<&str>,
    now: Timestamp,
) -> Result<Vec<QueueInfo>, StoreError> {
    let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
    let empty = |name: &str| QueueInfo {
        name: name.to_string(),
        paused: false,
        counts: JobState::ALL.iter().map(|s| (*s, 0)).collect(),
        oldest_available_age_ms: None,
        config: QueueConfig::default(),
    };
    if let Some(name) = only {
        queues.insert(name.to_string(), empty(name));
    }
    // Counting scans the namespace's (or queue's) jobs: an operator's view, not a hot path.
    let rows = sqlx::query(
        "SELECT queue, state, count(*),
                min(available_at) FILTER (WHERE state = 'available')
         FROM hopper.jobs WHERE namespace = $1 AND ($2::text IS NULL OR queue = $2)
         GROUP BY queue, state",
    )
    .bind(namespace)
    .bind(only)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for r in &rows {
        let queue: String = r.try_get(0).map_err(db_error)?;
        let state: String = r.try_get(1).map_err(db_error)?;
        let count: i64 = r.try_get(2).map_err(db_error)?;
        let oldest: Option<i64> = r.try_get(3).map_err(db_error)?;
        let state: JobState = state
            .parse()
            .map_err(|_| StoreError::Internal(format!("stored state `{state}` is invalid")))?;
        let q = queues.entry(queue.clone()).or_insert_with(|| empty(&queue));
        q.counts.insert(state, count as u64);
        if let Some(t) = oldest {
            q.oldest_available_age_ms = Some(now.millis_since(Timestamp(t)).max(0));
        }
    }
    let configured = sqlx::query(
        "SELECT name, paused, config FROM hopper.queues
         WHERE namespace = $1 AND ($2::text IS NULL OR name = $2)",
    )
    .bind(namespace)
    .bind(only)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for r in &configured {
        let name: String = r.try_get(0).map_err(db_error)?;
        let paused: bool = r.try_get(1).map_err(db_error)?;
        let text: &str = r.try_get(2).map_err(db_error)?;
        let mut config: QueueConfig = serde_json::from_str(text)
            .map_err(|e| StoreError::Internal(format!("stored queue config: {e}")))?;
        config.paused = paused;
        let q = queues.entry(name.clone()).or_insert_with(|| empty(&name));
        q.paused = paused;
        q.config = config;
    }
    Ok(queues.into_values().collect())
}
