//! The audit log: appended to by administrative writes inside their own writer command (so an
//! entry commits or rolls back with the change it records), read newest first.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use rusqlite::{Connection, params};

use crate::rows::sql_error;

/// Appends `entry` on `conn` and answers it numbered. Callers pass the connection of the
/// writer command that made the change, never a connection of their own.
pub(crate) fn append(conn: &Connection, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
    let details = serde_json::to_string(&entry.details)
        .map_err(|e| StoreError::Internal(format!("encode audit details: {e}")))?;
    let seq: i64 = conn
        .prepare_cached(
            "INSERT INTO audit_log (at, actor, action, namespace, target, details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    entry.at.as_millis(),
                    entry.actor,
                    entry.action,
                    entry.namespace,
                    entry.target,
                    details,
                ],
                |r| r.get(0),
            )
        })
        .map_err(sql_error)?;
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

/// One row as selected, before its details are parsed.
type Raw = (i64, i64, String, String, String, String, String);

/// Entries newest first, at most `limit`, of `namespaces` when given, below seq `before`
/// when given.
pub(crate) fn list(
    conn: &Connection,
    namespaces: Option<&[String]>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let before = before.unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Raw> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    };
    // Two statements rather than one with `?1 IS NULL OR ...`: an OR keeps the planner off
    // the namespace index, and a tenant's listing should not walk the whole log.
    let raws = match namespaces {
        None => conn
            .prepare_cached(
                "SELECT seq, at, actor, action, namespace, target, details FROM audit_log
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![before, limit], row)?
                    .collect::<Result<Vec<_>, _>>()
            }),
        Some(names) => {
            let names = serde_json::to_string(names)
                .map_err(|e| StoreError::Internal(format!("encode namespaces: {e}")))?;
            conn.prepare_cached(
                "SELECT seq, at, actor, action, namespace, target, details FROM audit_log
                 WHERE namespace IN (SELECT value FROM json_each(?1)) AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![names, before, limit], row)?
                    .collect::<Result<Vec<_>, _>>()
            })
        }
    }
    .map_err(sql_error)?;
    raws.into_iter()
        .map(|(seq, at, actor, action, namespace, target, details)| {
            Ok(AuditEntry {
                seq,
                at: Timestamp(at),
                actor,
                action,
                namespace,
                target,
                details: serde_json::from_str(&details)
                    .map_err(|e| StoreError::Internal(format!("decode audit entry {seq}: {e}")))?,
            })
        })
        .collect()
}
