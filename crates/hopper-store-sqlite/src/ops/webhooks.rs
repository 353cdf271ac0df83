//! Webhook subscriptions: created and deleted with their audit entry in the same writer
//! command; their dispatch cursor moves only by compare-and-set, which the single writer makes
//! atomic.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::NewAuditEntry;
use hopper_types::webhook::Webhook;
use rusqlite::{Connection, params};

use crate::ops::audit;
use crate::rows::sql_error;
use crate::writer::WriteCtx;

pub(crate) fn insert(
    ctx: &mut WriteCtx<'_>,
    hook: Webhook,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    if !insert_row(ctx.conn, &hook)? {
        return Err(StoreError::AlreadyExists(format!("webhook {}", hook.id)));
    }
    audit::append(ctx.conn, entry)?;
    Ok(())
}

/// Copies webhooks in with the cursors given, skipping ids already present (they keep their
/// own cursor). No audit entry: the source's log, copied alongside, has the creations.
pub(crate) fn import(conn: &Connection, hooks: &[Webhook]) -> Result<(), StoreError> {
    let mut furthest = None;
    for hook in hooks {
        if insert_row(conn, hook)? {
            furthest = furthest.max(Some(hook.cursor));
        }
    }
    // A cursor names a position in this store's event log. Were it beyond the log's end (a
    // copy renumbers events, and the source may have numbered far more), the dispatcher would
    // silently skip every new event numbered up to it. So the log's next seq goes past every
    // imported cursor (AUTOINCREMENT hands out one above the larger of its counter and the
    // largest seq).
    if let Some(cursor) = furthest {
        conn.prepare_cached(
            "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'job_events' AND seq < ?1",
        )
        .and_then(|mut s| s.execute(params![cursor]))
        .map_err(sql_error)?;
        // The counter's row exists only once the table has had a row.
        conn.prepare_cached(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'job_events', ?1
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'job_events')",
        )
        .and_then(|mut s| s.execute(params![cursor]))
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Inserts a webhook's row unless its id exists; true when it was inserted.
fn insert_row(conn: &Connection, hook: &Webhook) -> Result<bool, StoreError> {
    let events = serde_json::to_string(&hook.events)
        .map_err(|e| StoreError::Internal(format!("encode webhook events: {e}")))?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO webhooks (id, namespace, url, events, secret, created_at, cursor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                hook.id,
                hook.namespace,
                hook.url,
                events,
                hook.secret,
                hook.created_at.as_millis(),
                hook.cursor,
            ])
        })
        .map_err(sql_error)?;
    Ok(inserted == 1)
}

pub(crate) fn list(conn: &Connection, namespace: Option<&str>) -> Result<Vec<Webhook>, StoreError> {
    type Raw = (String, String, String, String, String, i64, i64);
    let raws: Vec<Raw> = conn
        .prepare_cached(
            "SELECT id, namespace, url, events, secret, created_at, cursor FROM webhooks
             WHERE (?1 IS NULL OR namespace = ?1) ORDER BY id",
        )
        .and_then(|mut s| {
            s.query_map(params![namespace], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_error)?;
    raws.into_iter()
        .map(|(id, namespace, url, events, secret, created_at, cursor)| {
            let events = serde_json::from_str(&events)
                .map_err(|e| StoreError::Internal(format!("webhook {id}: decode events: {e}")))?;
            Ok(Webhook {
                id,
                namespace,
                url,
                events,
                secret,
                created_at: Timestamp(created_at),
                cursor,
            })
        })
        .collect()
}

pub(crate) fn delete(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    id: &str,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    // By namespace too: a tenant naming another tenant's webhook finds nothing to delete.
    let deleted = ctx
        .conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND namespace = ?2")
        .and_then(|mut s| s.execute(params![id, namespace]))
        .map_err(sql_error)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    audit::append(ctx.conn, entry)?;
    Ok(())
}

/// The compare-and-set: true when the cursor was `expected` and is now `next`.
pub(crate) fn advance(
    ctx: &mut WriteCtx<'_>,
    id: &str,
    expected: i64,
    next: i64,
) -> Result<bool, StoreError> {
    let moved = ctx
        .conn
        .prepare_cached("UPDATE webhooks SET cursor = ?3 WHERE id = ?1 AND cursor = ?2")
        .and_then(|mut s| s.execute(params![id, expected, next]))
        .map_err(sql_error)?;
    Ok(moved == 1)
}
