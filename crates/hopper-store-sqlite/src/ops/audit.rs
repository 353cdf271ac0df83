//! The audit log: appended to by administrative writes inside their own writer command (so an
//! entry commits or rolls back with the change it records), read newest first; exported oldest
//! first and imported at its own seqs by `hopper migrate`.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::sql_error;

/// Appends `entry` on `conn` and answers it numbered. Callers pass the connection of the
/// writer command that made the change, never a connection of their own.
pub(crate) fn append(conn: &Connection, entry: NewAuditEntry) -> Result<AuditEntry, StoreError> {
    let details = encode_details(&entry.details)?;
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

/// The stored text of an entry's details.
fn encode_details(details: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(details)
        .map_err(|e| StoreError::Internal(format!("encode audit details: {e}")))
}

/// One row as selected, before its details are parsed.
type Raw = (i64, i64, String, String, String, String, String);

/// Reads the columns `seq, at, actor, action, namespace, target, details`.
fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode(
    (seq, at, actor, action, namespace, target, details): Raw,
) -> Result<AuditEntry, StoreError> {
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
}

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
    // Two statements rather than one with `?1 IS NULL OR ...`: an OR keeps the planner off
    // the namespace index, and a tenant's listing should not walk the whole log.
    let raws = match namespaces {
        None => conn
            .prepare_cached(
                "SELECT seq, at, actor, action, namespace, target, details FROM audit_log
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![before, limit], raw)?
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
                s.query_map(params![names, before, limit], raw)?
                    .collect::<Result<Vec<_>, _>>()
            })
        }
    }
    .map_err(sql_error)?;
    raws.into_iter().map(decode).collect()
}

/// Up to `limit` entries after seq `after`, oldest first: what `hopper migrate` pages through.
pub(crate) fn export(
    conn: &Connection,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    // Every seq is above i64::MIN, so no cursor means "from the start" (imported entries may
    // carry any seq, so 0 would not do).
    let after = after.unwrap_or(i64::MIN);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let raws = conn
        .prepare_cached(
            "SELECT seq, at, actor, action, namespace, target, details FROM audit_log
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![after, limit], raw)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_error)?;
    raws.into_iter().map(decode).collect()
}

/// Copies `entries` in at their own seqs, inside the caller's writer command (see
/// `ImportBatch::audit`): an entry already present at its seq is skipped, one whose seq holds
/// a different entry is appended with a fresh seq unless an identical entry is already here.
pub(crate) fn import(conn: &Connection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    let mut displaced = Vec::new();
    for e in entries {
        let present = conn
            .prepare_cached(
                "SELECT seq, at, actor, action, namespace, target, details FROM audit_log
                 WHERE seq = ?1",
            )
            .and_then(|mut s| s.query_row(params![e.seq], raw).optional())
            .map_err(sql_error)?;
        match present {
            // An explicit seq above the AUTOINCREMENT counter raises the counter with it, so
            // entries appended later still number after every imported one.
            None => {
                let details = encode_details(&e.details)?;
                conn.prepare_cached(
                    "INSERT INTO audit_log (seq, at, actor, action, namespace, target, details)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        e.seq,
                        e.at.as_millis(),
                        e.actor,
                        e.action,
                        e.namespace,
                        e.target,
                        details,
                    ])
                })
                .map_err(sql_error)?;
            }
            Some(row) => {
                if decode(row)? != *e {
                    displaced.push(e);
                }
            }
        }
    }
    // After every entry that keeps its seq, so a fresh seq cannot take one of theirs.
    for e in displaced {
        let details = encode_details(&e.details)?;
        // An earlier run of the same copy appended it already: only its seq differs.
        let copied = conn
            .prepare_cached(
                "SELECT 1 FROM audit_log WHERE namespace = ?1 AND at = ?2 AND actor = ?3
                 AND action = ?4 AND target = ?5 AND details = ?6",
            )
            .and_then(|mut s| {
                s.exists(params![
                    e.namespace,
                    e.at.as_millis(),
                    e.actor,
                    e.action,
                    e.target,
                    details
                ])
            })
            .map_err(sql_error)?;
        if !copied {
            append(
                conn,
                NewAuditEntry {
                    at: e.at,
                    actor: e.actor.clone(),
                    action: e.action.clone(),
                    namespace: e.namespace.clone(),
                    target: e.target.clone(),
                    details: e.details.clone(),
                },
            )?;
        }
    }
    Ok(())
}
