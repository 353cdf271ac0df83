//! Flow control on PostgreSQL: a queue's configuration, and the reads and writes of
//! [`hopper_store::lease_plan`]. A lease on a queue whose configuration shapes leases first
//! locks the queue's row, so leases of that queue are serialized across every node: running
//! counts, token buckets and fairness clocks read under the lock are exact for the lease.
//! Leases of plain queues never take that lock.

use std::collections::HashMap;

use hopper_store::lease_plan::{Fetch, FlowSnapshot, FlowUpdate, Grouping};
use hopper_store::{QueueRecord, StoreError};
use hopper_types::{Job, QueueConfig, QueuePolicy, Timestamp};
use sqlx::{PgConnection, Row};

use crate::error::db_error;
use crate::rows::decode_job;

/// Most keys one lease considers; beyond this the first keys (by name) are served first.
const MAX_GROUPS: i64 = 10_000;

fn parse(paused: bool, text: &str) -> Result<QueueConfig, StoreError> {
    let mut config: QueueConfig = serde_json::from_str(text)
        .map_err(|e| StoreError::Internal(format!("stored queue config: {e}")))?;
    config.paused = paused;
    Ok(config)
}

/// A queue's configuration (defaults when never configured); `lock` takes the queue row's
/// lock for the rest of the transaction.
pub(crate) async fn load_config(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    lock: bool,
) -> Result<QueueConfig, StoreError> {
    let sql = if lock {
        "SELECT paused, config FROM hopper.queues WHERE namespace = $1 AND name = $2 FOR UPDATE"
    } else {
        "SELECT paused, config FROM hopper.queues WHERE namespace = $1 AND name = $2"
    };
    let row = sqlx::query(sql)
        .bind(namespace)
        .bind(queue)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
    match row {
        None => Ok(QueueConfig::default()),
        Some(r) => parse(
            r.try_get(0).map_err(db_error)?,
            r.try_get(1).map_err(db_error)?,
        ),
    }
}

/// Stores a queue's whole configuration.
pub(crate) async fn save_config(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    config: &QueueConfig,
    now: Timestamp,
    overwrite: bool,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(config).map_err(|e| StoreError::Internal(e.to_string()))?;
    let conflict = if overwrite {
        "DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at,
             config = excluded.config, custom_retention = excluded.custom_retention,
             shapes_leases = excluded.shapes_leases"
    } else {
        "DO NOTHING"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO hopper.queues (namespace, name, paused, updated_at, config, custom_retention,
             shapes_leases)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (namespace, name) {conflict}"
    )))
    .bind(namespace)
    .bind(queue)
    .bind(config.paused)
    .bind(now.as_millis())
    .bind(text)
    .bind(!config.retention.is_default())
    .bind(config.shapes_leases())
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Every queue's configuration, optionally only those with a retention of their own.
pub(crate) async fn records(
    conn: &mut PgConnection,
    only_custom_retention: bool,
) -> Result<Vec<QueueRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT namespace, name, paused, config, updated_at FROM hopper.queues
         WHERE custom_retention OR NOT $1 ORDER BY namespace, name",
    )
    .bind(only_custom_retention)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let text: String = r.try_get(3).map_err(db_error)?;
            Ok(QueueRecord {
                namespace: r.try_get(0).map_err(db_error)?,
                name: r.try_get(1).map_err(db_error)?,
                config: parse(r.try_get(2).map_err(db_error)?, &text)?,
                updated_at: Timestamp(r.try_get(4).map_err(db_error)?),
            })
        })
        .collect()
}

/// What a lease on `queue` needs to know, read under the queue row's lock.
pub(crate) async fn snapshot(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    config: QueueConfig,
    now: Timestamp,
) -> Result<FlowSnapshot, StoreError> {
    let rows = sqlx::query(
        "SELECT concurrency_key, count(*) FROM hopper.jobs
         WHERE namespace = $1 AND queue = $2 AND state = 'running' GROUP BY concurrency_key",
    )
    .bind(namespace)
    .bind(queue)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut running = 0;
    let mut running_by_key = HashMap::new();
    for r in &rows {
        let key: String = r.try_get(0).map_err(db_error)?;
        let n = u64::try_from(r.try_get::<i64, _>(1).map_err(db_error)?).unwrap_or(0);
        running += n;
        if !key.is_empty() {
            running_by_key.insert(key, n);
        }
    }
    let mut snap = FlowSnapshot {
        config,
        now,
        running,
        running_by_key,
        ..Default::default()
    };
    let rows = sqlx::query(
        "SELECT kind, key, value, at FROM hopper.queue_flow WHERE namespace = $1 AND queue = $2",
    )
    .bind(namespace)
    .bind(queue)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for r in &rows {
        let kind: &str = r.try_get(0).map_err(db_error)?;
        let key: String = r.try_get(1).map_err(db_error)?;
        let value: f64 = r.try_get(2).map_err(db_error)?;
        let at = Timestamp(r.try_get(3).map_err(db_error)?);
        snap.absorb_row(kind, key, value, at);
    }
    Ok(snap)
}

fn key_column(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::FairnessKey => "fairness_key",
        _ => "concurrency_key",
    }
}

/// The distinct keys with available jobs, by a skip scan along the key's index.
pub(crate) async fn groups(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    grouping: Grouping,
) -> Result<Vec<String>, StoreError> {
    if grouping == Grouping::Whole {
        return Ok(Vec::new());
    }
    let col = key_column(grouping);
    // Safe to format: the column is one of two fixed identifiers.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE k(key) AS (
             SELECT min({col}) FROM hopper.jobs
              WHERE namespace = $1 AND queue = $2 AND state = 'available'
             UNION ALL
             SELECT (SELECT min({col}) FROM hopper.jobs
                      WHERE namespace = $1 AND queue = $2 AND state = 'available'
                        AND {col} > k.key)
               FROM k WHERE k.key IS NOT NULL
         )
         SELECT key FROM k WHERE key IS NOT NULL LIMIT $3"
    )))
    .bind(namespace)
    .bind(queue)
    .bind(MAX_GROUPS)
    .fetch_all(conn)
    .await
    .map_err(db_error)
}

/// One fetch of the plan: a group's available jobs in the queue's order, locked.
pub(crate) async fn fetch(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    grouping: Grouping,
    policy: QueuePolicy,
    f: &Fetch,
) -> Result<Vec<(Job, ())>, StoreError> {
    let order = if policy == QueuePolicy::ShortestFirst {
        "priority DESC, coalesce(estimated_ms, 9223372036854775807), available_at, id"
    } else {
        "priority DESC, available_at, id"
    };
    let filter = match grouping {
        Grouping::Whole => "$3::text IS NOT NULL".to_string(),
        g => format!("{} = $3", key_column(g)),
    };
    // Safe to format: the order and filter are fixed texts chosen above.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT body, lease_ms FROM hopper.jobs
         WHERE namespace = $1 AND queue = $2 AND state = 'available' AND {filter}
         ORDER BY {order} LIMIT $4 OFFSET $5 FOR UPDATE SKIP LOCKED"
    )))
    .bind(namespace)
    .bind(queue)
    .bind(&f.group)
    .bind(i64::try_from(f.limit).unwrap_or(i64::MAX))
    .bind(i64::try_from(f.offset).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(|r| Ok((decode_job(r)?, ()))).collect()
}

/// Stores the buckets and clocks a lease changed, in one statement.
pub(crate) async fn save_update(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    update: &FlowUpdate,
) -> Result<(), StoreError> {
    let rows = update.rows();
    if rows.is_empty() {
        return Ok(());
    }
    let kinds: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let values: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let ats: Vec<i64> = rows.iter().map(|r| r.3.as_millis()).collect();
    sqlx::query(
        "INSERT INTO hopper.queue_flow (namespace, queue, kind, key, value, at)
         SELECT $1, $2, u.kind, u.key, u.value, u.at
         FROM UNNEST($3::text[], $4::text[], $5::float8[], $6::bigint[]) AS u(kind, key, value, at)
         ON CONFLICT (namespace, queue, kind, key)
         DO UPDATE SET value = excluded.value, at = excluded.at",
    )
    .bind(namespace)
    .bind(queue)
    .bind(kinds)
    .bind(keys)
    .bind(values)
    .bind(ats)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Deletes the queue's flow rows that mean the same as no row; see `Store::queue_flow_prune`.
/// Under the queue row's lock, like the leases that write them.
pub(crate) async fn prune(
    conn: &mut PgConnection,
    namespace: &str,
    queue: &str,
    rate_refilled_before: Option<Timestamp>,
) -> Result<u64, StoreError> {
    sqlx::query("SELECT 1 FROM hopper.queues WHERE namespace = $1 AND name = $2 FOR UPDATE")
        .bind(namespace)
        .bind(queue)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let done = sqlx::query(
        "DELETE FROM hopper.queue_flow f WHERE namespace = $1 AND queue = $2
           AND ((kind = 'fair' AND value <= (SELECT c.value FROM hopper.queue_flow c
                    WHERE c.namespace = $1 AND c.queue = $2 AND c.kind = 'fair_clock'
                      AND c.key = ''))
             OR (kind = 'key_rate' AND at < $3))",
    )
    .bind(namespace)
    .bind(queue)
    .bind(rate_refilled_before.map(Timestamp::as_millis))
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected())
}
