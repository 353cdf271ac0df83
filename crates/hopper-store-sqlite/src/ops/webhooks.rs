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
    let events = serde_json::to_string(&hook.events)
        .map_err(|e| StoreError::Internal(format!("encode webhook events: {e}")))?;
    let inserted = ctx
        .conn
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
    if inserted == 0 {
        return Err(StoreError::AlreadyExists(format!("webhook {}", hook.id)));
    }
    audit::append(ctx.conn, entry)?;
    Ok(())
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
