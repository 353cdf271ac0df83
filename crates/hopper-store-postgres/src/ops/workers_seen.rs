//! Workers seen by the nodes: one row per (namespace, worker id), the latest sighting wins, so
//! every node lists the workers polling any node. Written in batches by each node every few
//! seconds, not per request.

use hopper_store::{StoreError, WorkerSeen};
use hopper_types::Timestamp;
use sqlx::{PgConnection, Row};

use crate::error::db_error;

pub(crate) async fn record(conn: &mut PgConnection, seen: &[WorkerSeen]) -> Result<(), StoreError> {
    if seen.is_empty() {
        return Ok(());
    }
    let mut namespaces = Vec::with_capacity(seen.len());
    let mut ids = Vec::with_capacity(seen.len());
    let mut queues = Vec::with_capacity(seen.len());
    let mut ats = Vec::with_capacity(seen.len());
    let mut nodes = Vec::with_capacity(seen.len());
    for w in seen {
        namespaces.push(w.namespace.clone());
        ids.push(w.worker_id.clone());
        queues.push(
            serde_json::to_string(&w.queues).map_err(|e| StoreError::Internal(e.to_string()))?,
        );
        ats.push(w.last_seen_at.as_millis());
        nodes.push(w.node.clone());
    }
    // One statement for the batch. A batch names each worker once (the server's registry
    // is keyed by id), so ON CONFLICT never meets the same row twice.
    sqlx::query(
        "INSERT INTO hopper.workers_seen (namespace, worker_id, queues, last_seen_at, node)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
         ON CONFLICT (namespace, worker_id) DO UPDATE SET
             queues = excluded.queues, last_seen_at = excluded.last_seen_at, node = excluded.node
         WHERE excluded.last_seen_at >= hopper.workers_seen.last_seen_at",
    )
    .bind(namespaces)
    .bind(ids)
    .bind(queues)
    .bind(ats)
    .bind(nodes)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    namespace: Option<&str>,
    since: Timestamp,
) -> Result<Vec<WorkerSeen>, StoreError> {
    let rows = sqlx::query(
        "SELECT namespace, worker_id, queues, last_seen_at, node FROM hopper.workers_seen
         WHERE ($1::text IS NULL OR namespace = $1) AND last_seen_at >= $2
         ORDER BY namespace COLLATE \"C\", worker_id COLLATE \"C\"",
    )
    .bind(namespace)
    .bind(since.as_millis())
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let queues: String = r.try_get(2).map_err(db_error)?;
            Ok(WorkerSeen {
                namespace: r.try_get(0).map_err(db_error)?,
                worker_id: r.try_get(1).map_err(db_error)?,
                queues: serde_json::from_str(&queues)
                    .map_err(|e| StoreError::Internal(format!("stored worker queues: {e}")))?,
                last_seen_at: Timestamp(r.try_get(3).map_err(db_error)?),
                node: r.try_get(4).map_err(db_error)?,
            })
        })
        .collect()
}

pub(crate) async fn prune(conn: &mut PgConnection, before: Timestamp) -> Result<u64, StoreError> {
    sqlx::query("DELETE FROM hopper.workers_seen WHERE last_seen_at < $1")
        .bind(before.as_millis())
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_error)
}
