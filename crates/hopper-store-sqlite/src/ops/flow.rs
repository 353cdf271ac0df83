//! Flow control on SQLite: a queue's configuration, and the reads and writes of
//! [`hopper_store::lease_plan`] (running counts, token buckets, fairness clocks, the keys with
//! work, each key's head). The single writer serializes every lease, so counts read here are
//! exact for the lease that reads them.

use std::collections::HashMap;

use hopper_store::StoreError;
use hopper_store::lease_plan::{Fetch, FlowSnapshot, FlowUpdate, Grouping};
use hopper_types::{Job, QueueConfig, QueuePolicy, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::{decode_job_at, sql_error};

/// Most keys one lease considers; beyond this the first keys (by name) are served first.
pub(crate) const MAX_GROUPS: i64 = 10_000;

/// A queue's configuration (defaults when it was never configured).
pub(crate) fn load_config(
    conn: &Connection,
    namespace: &str,
    queue: &str,
) -> Result<QueueConfig, StoreError> {
    let row: Option<(bool, String)> = conn
        .prepare_cached("SELECT paused, config FROM queues WHERE namespace = ?1 AND name = ?2")
        .and_then(|mut s| {
            s.query_row(params![namespace, queue], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(sql_error)?;
    let Some((paused, text)) = row else {
        return Ok(QueueConfig::default());
    };
    let mut config: QueueConfig = serde_json::from_str(&text)
        .map_err(|e| StoreError::Internal(format!("stored queue config: {e}")))?;
    config.paused = paused;
    Ok(config)
}

/// Stores a queue's whole configuration.
pub(crate) fn save_config(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    config: &QueueConfig,
    now: Timestamp,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(config).map_err(|e| StoreError::Internal(e.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO queues (namespace, name, paused, updated_at, config, custom_retention)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (namespace, name) DO UPDATE SET paused = excluded.paused,
             updated_at = excluded.updated_at, config = excluded.config,
             custom_retention = excluded.custom_retention",
    )
    .and_then(|mut s| {
        s.execute(params![
            namespace,
            queue,
            config.paused,
            now.as_millis(),
            text,
            !config.retention.is_default()
        ])
    })
    .map_err(sql_error)?;
    Ok(())
}

/// Running jobs of the queue, in total and per non-empty concurrency key.
fn running(
    conn: &Connection,
    namespace: &str,
    queue: &str,
) -> Result<(u64, HashMap<String, u64>), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT concurrency_key, count(*) FROM jobs
             WHERE namespace = ?1 AND queue = ?2 AND state = 'running' GROUP BY concurrency_key",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, queue], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(sql_error)?;
    let mut total = 0;
    let mut by_key = HashMap::new();
    for row in rows {
        let (key, n) = row.map_err(sql_error)?;
        let n = u64::try_from(n).unwrap_or(0);
        total += n;
        if !key.is_empty() {
            by_key.insert(key, n);
        }
    }
    Ok((total, by_key))
}

/// What a lease on `queue` needs to know, read inside the writer's transaction.
pub(crate) fn snapshot(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    config: QueueConfig,
    now: Timestamp,
) -> Result<FlowSnapshot, StoreError> {
    let (running, running_by_key) = running(conn, namespace, queue)?;
    let mut snap = FlowSnapshot {
        config,
        now,
        running,
        running_by_key,
        ..Default::default()
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, key, value, at FROM queue_flow WHERE namespace = ?1 AND queue = ?2",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, queue], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql_error)?;
    for row in rows {
        let (kind, key, value, at) = row.map_err(sql_error)?;
        snap.absorb_row(&kind, key, value, Timestamp(at));
    }
    Ok(snap)
}

fn key_column(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::FairnessKey => "fairness_key",
        _ => "concurrency_key",
    }
}

/// The distinct keys with available jobs, by a skip scan along the key's index: one probe
/// per key, however many jobs each key holds.
pub(crate) fn groups(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    grouping: Grouping,
) -> Result<Vec<String>, StoreError> {
    if grouping == Grouping::Whole {
        return Ok(Vec::new());
    }
    let col = key_column(grouping);
    let sql = format!(
        "WITH RECURSIVE k(key) AS (
             SELECT min({col}) FROM jobs
              WHERE namespace = ?1 AND queue = ?2 AND state = 'available'
             UNION ALL
             SELECT (SELECT min({col}) FROM jobs
                      WHERE namespace = ?1 AND queue = ?2 AND state = 'available' AND {col} > k.key)
               FROM k WHERE k.key IS NOT NULL
         )
         SELECT key FROM k WHERE key IS NOT NULL LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, queue, MAX_GROUPS], |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// One fetch of the plan: a group's available jobs in the queue's order, with their rows.
pub(crate) fn fetch(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    grouping: Grouping,
    policy: QueuePolicy,
    f: &Fetch,
) -> Result<Vec<(Job, i64)>, StoreError> {
    let order = if policy == QueuePolicy::ShortestFirst {
        "priority DESC, coalesce(estimated_ms, 9223372036854775807), available_at, id"
    } else {
        "priority DESC, available_at, id"
    };
    let filter = match grouping {
        Grouping::Whole => "?3 = ?3".to_string(),
        g => format!("{} = ?3", key_column(g)),
    };
    let sql = format!(
        "SELECT body, lease_ms, seq FROM jobs
         WHERE namespace = ?1 AND queue = ?2 AND state = 'available' AND {filter}
         ORDER BY {order} LIMIT ?4 OFFSET ?5"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(
            params![
                namespace,
                queue,
                f.group,
                i64::try_from(f.limit).unwrap_or(i64::MAX),
                i64::try_from(f.offset).unwrap_or(i64::MAX)
            ],
            |r| Ok((decode_job_at(r, 0)?, r.get::<_, i64>(2)?)),
        )
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// Stores the buckets and clocks a lease changed.
pub(crate) fn save_update(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    update: &FlowUpdate,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO queue_flow (namespace, queue, kind, key, value, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (namespace, queue, kind, key)
             DO UPDATE SET value = excluded.value, at = excluded.at",
        )
        .map_err(sql_error)?;
    for (kind, key, value, at) in update.rows() {
        stmt.execute(params![namespace, queue, kind, key, value, at.as_millis()])
            .map_err(sql_error)?;
    }
    Ok(())
}

/// Deletes the queue's flow rows that mean the same as no row; see `Store::queue_flow_prune`.
pub(crate) fn prune(
    conn: &Connection,
    namespace: &str,
    queue: &str,
    rate_refilled_before: Option<Timestamp>,
) -> Result<u64, StoreError> {
    let fair = conn
        .prepare_cached(
            "DELETE FROM queue_flow WHERE namespace = ?1 AND queue = ?2 AND kind = 'fair'
               AND value <= (SELECT c.value FROM queue_flow c WHERE c.namespace = ?1
                             AND c.queue = ?2 AND c.kind = 'fair_clock' AND c.key = '')",
        )
        .and_then(|mut s| s.execute(params![namespace, queue]))
        .map_err(sql_error)?;
    let rate = match rate_refilled_before {
        None => 0,
        Some(before) => conn
            .prepare_cached(
                "DELETE FROM queue_flow WHERE namespace = ?1 AND queue = ?2 AND kind = 'key_rate'
                   AND at < ?3",
            )
            .and_then(|mut s| s.execute(params![namespace, queue, before.as_millis()]))
            .map_err(sql_error)?,
    };
    Ok((fair + rate) as u64)
}
