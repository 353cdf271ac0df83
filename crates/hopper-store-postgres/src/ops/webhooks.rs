//! Webhook subscriptions: created and deleted with their audit entry in the caller's
//! transaction. Their dispatch cursor moves only by compare-and-set: one `UPDATE ... WHERE
//! cursor = expected`, so of two nodes advancing from the same value the second waits for the
//! first's row lock, re-reads the row (READ COMMITTED) and finds it moved.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::NewAuditEntry;
use hopper_types::webhook::Webhook;
use sqlx::{PgConnection, QueryBuilder, Row};

use crate::error::db_error;
use crate::ops::audit;

/// Inside the caller's transaction, which the audit entry joins.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    hook: Webhook,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    if !insert_row(conn, &hook).await? {
        return Err(StoreError::AlreadyExists(format!("webhook {}", hook.id)));
    }
    audit::append(conn, entry).await?;
    Ok(())
}

/// Copies webhooks in with the cursors given, skipping ids already present (they keep their
/// own cursor). No audit entry: the source's log, copied alongside, has the creations.
pub(crate) async fn import(conn: &mut PgConnection, hooks: &[Webhook]) -> Result<(), StoreError> {
    let mut furthest = None;
    for hook in hooks {
        if insert_row(conn, hook).await? {
            furthest = furthest.max(Some(hook.cursor));
        }
    }
    // A cursor names a position in this store's event log. Were it beyond the log's end (a
    // copy renumbers events, and the source may have numbered far more), the dispatcher would
    // silently skip every new event numbered up to it. So the log's next seq goes past every
    // imported cursor.
    if let Some(cursor) = furthest {
        crate::ops::export::move_identity_past(conn, "hopper.job_events", cursor).await?;
    }
    Ok(())
}

/// Inserts a webhook's row unless its id exists; true when it was inserted.
async fn insert_row(conn: &mut PgConnection, hook: &Webhook) -> Result<bool, StoreError> {
    let events = serde_json::to_string(&hook.events)
        .map_err(|e| StoreError::Internal(format!("encode webhook events: {e}")))?;
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO hopper.webhooks (id, namespace, url, events, secret, created_at, cursor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO NOTHING
         RETURNING 1",
    )
    .bind(&hook.id)
    .bind(&hook.namespace)
    .bind(&hook.url)
    .bind(events)
    .bind(&hook.secret)
    .bind(hook.created_at.as_millis())
    .bind(hook.cursor)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(inserted.is_some())
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    namespace: Option<&str>,
) -> Result<Vec<Webhook>, StoreError> {
    let mut qb = QueryBuilder::new(
        "SELECT id, namespace, url, events, secret, created_at, cursor FROM hopper.webhooks
         WHERE true",
    );
    if let Some(ns) = namespace {
        qb.push(" AND namespace = ").push_bind(ns);
    }
    // Byte order, the same as the embedded store's.
    qb.push(" ORDER BY id COLLATE \"C\"");
    let rows = qb.build().fetch_all(conn).await.map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(0).map_err(db_error)?;
            let events: String = r.try_get(3).map_err(db_error)?;
            Ok(Webhook {
                namespace: r.try_get(1).map_err(db_error)?,
                url: r.try_get(2).map_err(db_error)?,
                events: serde_json::from_str(&events).map_err(|e| {
                    StoreError::Internal(format!("webhook {id}: decode events: {e}"))
                })?,
                secret: r.try_get(4).map_err(db_error)?,
                created_at: Timestamp(r.try_get(5).map_err(db_error)?),
                cursor: r.try_get(6).map_err(db_error)?,
                id,
            })
        })
        .collect()
}

/// Inside the caller's transaction, which the audit entry joins.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    namespace: &str,
    id: &str,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    // By namespace too: a tenant naming another tenant's webhook finds nothing to delete.
    let done = sqlx::query("DELETE FROM hopper.webhooks WHERE id = $1 AND namespace = $2")
        .bind(id)
        .bind(namespace)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    audit::append(conn, entry).await?;
    Ok(())
}

/// The compare-and-set: true when the cursor was `expected` and is now `next`.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    id: &str,
    expected: i64,
    next: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE hopper.webhooks SET cursor = $3 WHERE id = $1 AND cursor = $2")
        .bind(id)
        .bind(expected)
        .bind(next)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}
