//! The audit log: appended to by administrative writes inside their own transaction (so an
//! entry commits or rolls back with the change it records), read newest first; exported oldest
//! first and imported at its own seqs by `hopper migrate`.

use std::collections::{HashMap, HashSet};

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};

use crate::error::db_error;

/// The stored text of an entry's details.
fn encode_details(details: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(details)
        .map_err(|e| StoreError::Internal(format!("encode audit details: {e}")))
}

/// An entry from the columns `seq, at, actor, action, namespace, target, details`.
fn decode(r: &PgRow) -> Result<AuditEntry, StoreError> {
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
}

/// Appends `entry` and answers it numbered. Writes that record a change pass their own
/// transaction, so the entry and the change commit together.
pub(crate) async fn append(
    conn: &mut PgConnection,
    entry: NewAuditEntry,
) -> Result<AuditEntry, StoreError> {
    let details = encode_details(&entry.details)?;
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
    rows.iter().map(decode).collect()
}

/// Up to `limit` entries after seq `after`, oldest first: what `hopper migrate` pages through.
pub(crate) async fn export(
    conn: &mut PgConnection,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    // Every seq is above i64::MIN, so no cursor means "from the start" (imported entries may
    // carry any seq, so 0 would not do).
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, namespace, target, details FROM hopper.audit_log
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after.unwrap_or(i64::MIN))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(decode).collect()
}

/// Copies `entries` in at their own seqs, inside the caller's transaction (see
/// `ImportBatch::audit`): an entry already present at its seq is skipped, one whose seq holds a
/// different entry is appended with a fresh seq unless an identical entry is already here.
pub(crate) async fn import(
    conn: &mut PgConnection,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let details = entries
        .iter()
        .map(|e| encode_details(&e.details))
        .collect::<Result<Vec<_>, _>>()?;
    // `seq` is GENERATED ALWAYS: only OVERRIDING SYSTEM VALUE lets a row keep the number it
    // had in the source.
    let inserted: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO hopper.audit_log (seq, at, actor, action, namespace, target, details)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::text[])
         ON CONFLICT (seq) DO NOTHING
         RETURNING seq",
    )
    .bind(entries.iter().map(|e| e.seq).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.at.as_millis()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.action.clone()).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.namespace.clone())
            .collect::<Vec<_>>(),
    )
    .bind(entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>())
    .bind(&details)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    // Numbers given explicitly do not move the identity: move it past them, or the next
    // append would collide with an imported seq.
    if let Some(&furthest) = inserted.iter().max() {
        crate::ops::export::move_identity_past(conn, "hopper.audit_log", furthest).await?;
    }

    let inserted: HashSet<i64> = inserted.into_iter().collect();
    let skipped: Vec<i64> = entries
        .iter()
        .map(|e| e.seq)
        .filter(|seq| !inserted.contains(seq))
        .collect();
    if skipped.is_empty() {
        return Ok(());
    }
    let present: HashMap<i64, AuditEntry> = sqlx::query(
        "SELECT seq, at, actor, action, namespace, target, details FROM hopper.audit_log
         WHERE seq = ANY($1)",
    )
    .bind(&skipped)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| decode(r).map(|e| (e.seq, e)))
    .collect::<Result<_, _>>()?;
    // After every entry that keeps its seq (and the identity moved), so a fresh seq cannot
    // take one of theirs.
    for (e, details) in entries.iter().zip(&details) {
        if inserted.contains(&e.seq) || present.get(&e.seq) == Some(e) {
            continue;
        }
        // Its seq holds another entry. An earlier run of the same copy may have appended it
        // already: then only its seq differs.
        let copied: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM hopper.audit_log WHERE namespace = $1 AND at = $2
                 AND actor = $3 AND action = $4 AND target = $5 AND details = $6)",
        )
        .bind(&e.namespace)
        .bind(e.at.as_millis())
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.target)
        .bind(details)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_error)?;
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
            )
            .await?;
        }
    }
    Ok(())
}
