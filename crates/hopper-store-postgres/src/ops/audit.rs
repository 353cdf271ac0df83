//! The audit log: appended to by administrative writes inside their own transaction (so an
//! entry commits or rolls back with the change it records), read newest first.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use sqlx::{PgConnection, QueryBuilder, Row};

use crate::error::db_error;

/// Appends `entry` and answers it numbered. Writes that record a change pass their own
/// transaction, so the entry and the change commit together.
pub(crate) async fn append(
    conn: &mut PgConnection,
    entry: NewAuditEntry,
) -> Result<AuditEntry, StoreError> {
    let details = serde_json::to_string(&entry.details)
        .map_err(|e| StoreError::Internal(format!("encode audit details: {e}")))?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO hopper.audit_log (at, actor, action, namespace, target, details)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(entry.at.as_millis())
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.namespace)
    .bind(&entry.target)
    .bind(details)
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(AuditEntry {
        seq,
        at: entry.at,
        actor: entry.actor,
        action: entry.action,
        namespace: entry.namespace,
        target: entry.target,
        details: entry.details,
    })
}

/// Entries newest first, at most `limit`, of `namespaces` when given, below seq `before`
/// when given.
pub(crate) async fn list(
    conn: &mut PgConnection,
    namespaces: Option<&[String]>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    // Conditions only when given, so an unfiltered listing walks the primary key and a
    // tenant's the namespace index.
    let mut qb = QueryBuilder::new(
        "SELECT seq, at, actor, action, namespace, target, details FROM hopper.audit_log
         WHERE true",
    );
    if let Some(names) = namespaces {
        qb.push(" AND namespace = ANY(")
            .push_bind(names.to_vec())
            .push(")");
    }
    if let Some(before) = before {
        qb.push(" AND seq < ").push_bind(before);
    }
    qb.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let rows = qb.build().fetch_all(conn).await.map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.try_get(0).map_err(db_error)?;
            let details: String = r.try_get(6).map_err(db_error)?;
            Ok(AuditEntry {
                seq,
                at: Timestamp(r.try_get(1).map_err(db_error)?),
                actor: r.try_get(2).map_err(db_error)?,
                action: r.try_get(3).map_err(db_error)?,
                namespace: r.try_get(4).map_err(db_error)?,
                target: r.try_get(5).map_err(db_error)?,
                details: serde_json::from_str(&details)
                    .map_err(|e| StoreError::Internal(format!("decode audit entry {seq}: {e}")))?,
            })
        })
        .collect()
}
