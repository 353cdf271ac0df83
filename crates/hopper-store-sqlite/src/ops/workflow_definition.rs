//! Workflow definitions and backfills: stored as JSON bodies with the columns their lookups
//! need (a definition's next cron fire time; a backfill's definition, dates and whether it
//! finished).

use hopper_store::StoreError;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition};
use hopper_types::{JobId, Timestamp};
use rusqlite::{Connection, params};

use crate::rows::sql_error;
use crate::writer::WriteCtx;

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encode: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("decode stored row: {e}")))
}

fn definitions(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let bodies = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) fn put(
    ctx: &mut WriteCtx<'_>,
    mut d: WorkflowDefinition,
) -> Result<WorkflowDefinition, StoreError> {
    if let Some(old) = get(ctx.conn, &d.namespace, &d.name).optional_found()? {
        d.created_at = old.created_at;
    }
    ctx.conn
        .prepare_cached(
            "INSERT INTO workflow_definitions (namespace, name, body, next_fire_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (namespace, name) DO UPDATE SET body = excluded.body,
                next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                d.namespace,
                d.name,
                encode(&d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                d.next_fire_at.map(Timestamp::as_millis),
                d.created_at.as_millis(),
                d.updated_at.as_millis(),
            ])
        })
        .map_err(sql_error)?;
    Ok(d)
}

pub(crate) fn get(
    conn: &Connection,
    namespace: &str,
    name: &str,
) -> Result<WorkflowDefinition, StoreError> {
    definitions(
        conn,
        "SELECT body FROM workflow_definitions WHERE namespace = ?1 AND name = ?2",
        params![namespace, name],
    )?
    .pop()
    .ok_or(StoreError::NotFound)
}

pub(crate) fn list(
    conn: &Connection,
    namespace: &str,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    definitions(
        conn,
        "SELECT body FROM workflow_definitions WHERE namespace = ?1 ORDER BY name",
        params![namespace],
    )
}

pub(crate) fn delete(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let n = ctx
        .conn
        .prepare_cached("DELETE FROM workflow_definitions WHERE namespace = ?1 AND name = ?2")
        .and_then(|mut s| s.execute(params![namespace, name]))
        .map_err(sql_error)?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    definitions(
        conn,
        "SELECT body FROM workflow_definitions
         WHERE next_fire_at IS NOT NULL AND next_fire_at <= ?1 ORDER BY next_fire_at LIMIT ?2",
        params![now.as_millis(), limit as i64],
    )
}

pub(crate) fn advance(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    expected: Timestamp,
    next: Option<Timestamp>,
) -> Result<bool, StoreError> {
    let mut d = match get(ctx.conn, namespace, name) {
        Ok(d) => d,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if d.next_fire_at != Some(expected) {
        return Ok(false);
    }
    d.next_fire_at = next;
    ctx.conn
        .prepare_cached(
            "UPDATE workflow_definitions SET body = ?3, next_fire_at = ?4
             WHERE namespace = ?1 AND name = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                namespace,
                name,
                encode(&d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                next.map(Timestamp::as_millis),
            ])
        })
        .map_err(sql_error)?;
    Ok(true)
}

fn backfills(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Backfill>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let bodies = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) fn backfill_create(
    ctx: &mut WriteCtx<'_>,
    b: Backfill,
) -> Result<(Backfill, bool), StoreError> {
    if let Some(existing) = backfills(
        ctx.conn,
        "SELECT body FROM workflow_backfills
         WHERE namespace = ?1 AND definition = ?2 AND from_date = ?3 AND to_date = ?4",
        params![b.namespace, b.definition, b.from, b.to],
    )?
    .pop()
    {
        return Ok((existing, true));
    }
    ctx.conn
        .prepare_cached(
            "INSERT INTO workflow_backfills (id, namespace, definition, from_date, to_date, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                b.id.to_string(),
                b.namespace,
                b.definition,
                b.from,
                b.to,
                encode(&b).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                b.created_at.as_millis(),
            ])
        })
        .map_err(sql_error)?;
    Ok((b, false))
}

pub(crate) fn backfill_get(
    conn: &Connection,
    namespace: &str,
    id: &JobId,
) -> Result<Backfill, StoreError> {
    backfills(
        conn,
        "SELECT body FROM workflow_backfills WHERE id = ?1 AND namespace = ?2",
        params![id.to_string(), namespace],
    )?
    .pop()
    .ok_or(StoreError::NotFound)
}

pub(crate) fn backfill_list(
    conn: &Connection,
    namespace: Option<&str>,
    unfinished_only: bool,
) -> Result<Vec<Backfill>, StoreError> {
    backfills(
        conn,
        "SELECT body FROM workflow_backfills
         WHERE (?1 IS NULL OR namespace = ?1) AND (?2 = 0 OR finished_at IS NULL)
         ORDER BY id DESC",
        params![namespace, unfinished_only],
    )
}

pub(crate) fn backfill_finish(
    ctx: &mut WriteCtx<'_>,
    id: &JobId,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut found = backfills(
        ctx.conn,
        "SELECT body FROM workflow_backfills WHERE id = ?1",
        params![id.to_string()],
    )?;
    let Some(mut b) = found.pop() else {
        return Err(StoreError::NotFound);
    };
    b.finished_at = Some(at);
    ctx.conn
        .prepare_cached("UPDATE workflow_backfills SET body = ?2, finished_at = ?3 WHERE id = ?1")
        .and_then(|mut s| {
            s.execute(params![
                id.to_string(),
                encode(&b).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                at.as_millis()
            ])
        })
        .map_err(sql_error)?;
    Ok(())
}

/// Every definition of every namespace, by (namespace, name).
pub(crate) fn export(conn: &Connection) -> Result<Vec<WorkflowDefinition>, StoreError> {
    definitions(
        conn,
        "SELECT body FROM workflow_definitions ORDER BY namespace, name",
        [],
    )
}

/// Inserts definitions and backfills not here yet; overwrites nothing.
pub(crate) fn import(
    conn: &Connection,
    definitions: &[WorkflowDefinition],
    backfills: &[Backfill],
) -> Result<(), StoreError> {
    for d in definitions {
        conn.prepare_cached(
            "INSERT INTO workflow_definitions (namespace, name, body, next_fire_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                d.namespace,
                d.name,
                encode(d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                d.next_fire_at.map(Timestamp::as_millis),
                d.created_at.as_millis(),
                d.updated_at.as_millis(),
            ])
        })
        .map_err(sql_error)?;
    }
    for b in backfills {
        conn.prepare_cached(
            "INSERT INTO workflow_backfills (id, namespace, definition, from_date, to_date, body,
                created_at, finished_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                b.id.to_string(),
                b.namespace,
                b.definition,
                b.from,
                b.to,
                encode(b).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
                b.created_at.as_millis(),
                b.finished_at.map(Timestamp::as_millis),
            ])
        })
        .map_err(sql_error)?;
    }
    Ok(())
}

/// `Ok(None)` for not found.
trait OptionalFound<T> {
    fn optional_found(self) -> Result<Option<T>, StoreError>;
}

impl<T> OptionalFound<T> for Result<T, StoreError> {
    fn optional_found(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
