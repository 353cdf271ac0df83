//! Workers seen by the server: one row per (namespace, worker id), the latest sighting wins.
//! Written in batches by the server every few seconds, not per request.

use hopper_store::{StoreError, WorkerSeen};
use hopper_types::Timestamp;
use rusqlite::{Connection, params};

use crate::rows::sql_error;
use crate::writer::WriteCtx;

pub(crate) fn record(ctx: &mut WriteCtx<'_>, seen: &[WorkerSeen]) -> Result<(), StoreError> {
    let mut stmt = ctx
        .conn
        .prepare_cached(
            "INSERT INTO workers_seen (namespace, worker_id, queues, last_seen_at, node)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (namespace, worker_id) DO UPDATE SET
                 queues = excluded.queues, last_seen_at = excluded.last_seen_at,
                 node = excluded.node
             WHERE excluded.last_seen_at >= workers_seen.last_seen_at",
        )
        .map_err(sql_error)?;
    for w in seen {
        let queues =
            serde_json::to_string(&w.queues).map_err(|e| StoreError::Internal(e.to_string()))?;
        stmt.execute(params![
            w.namespace,
            w.worker_id,
            queues,
            w.last_seen_at.as_millis(),
            w.node
        ])
        .map_err(sql_error)?;
    }
    Ok(())
}

pub(crate) fn list(
    conn: &Connection,
    namespace: Option<&str>,
    since: Timestamp,
) -> Result<Vec<WorkerSeen>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT namespace, worker_id, queues, last_seen_at, node FROM workers_seen
             WHERE (?1 IS NULL OR namespace = ?1) AND last_seen_at >= ?2
             ORDER BY namespace, worker_id",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, since.as_millis()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(sql_error)?;
    let mut out = Vec::new();
    for row in rows {
        let (namespace, worker_id, queues, at, node) = row.map_err(sql_error)?;
        out.push(WorkerSeen {
            namespace,
            worker_id,
            queues: serde_json::from_str(&queues)
                .map_err(|e| StoreError::Internal(format!("stored worker queues: {e}")))?,
            last_seen_at: Timestamp(at),
            node,
        });
    }
    Ok(out)
}

pub(crate) fn prune(ctx: &mut WriteCtx<'_>, before: Timestamp) -> Result<u64, StoreError> {
    ctx.conn
        .prepare_cached("DELETE FROM workers_seen WHERE last_seen_at < ?1")
        .and_then(|mut s| s.execute(params![before.as_millis()]))
        .map(|n| n as u64)
        .map_err(sql_error)
}
