//! Workflow definitions and backfills: each stored as its JSON body, with the columns their
//! lookups need (a definition's next cron fire time; a backfill's definition, dates and
//! whether it finished).
//!
//! The columns and the body never disagree: every change that moves a column rewrites the
//! body under the row's lock (`FOR UPDATE`) in the same transaction. A definition's cron
//! advance is a compare-and-set on `next_fire_at`: of two nodes firing one tick, the second
//! waits for the first's lock, re-reads the row (READ COMMITTED) and finds it moved.

use hopper_store::StoreError;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition};
use hopper_types::{JobId, Timestamp};
use sqlx::{PgConnection, QueryBuilder};

use crate::error::db_error;

fn encode<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encode {what}: {e}")))
}

fn decode_definition(body: &str) -> Result<WorkflowDefinition, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Internal(format!("decode workflow definition: {e}")))
}

fn decode_backfill(body: &str) -> Result<Backfill, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Internal(format!("decode backfill: {e}")))
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// How often a put retries when the row it saw absent was inserted (or one it saw deleted)
/// by another node meanwhile; each round waits for that node's commit, so two suffice.
const PUT_ROUNDS: usize = 4;

/// Stores the definition, replacing one of its name but keeping that one's `created_at`
/// (in the column and in the body alike); answers what is stored.
pub(crate) async fn put(
    conn: &mut PgConnection,
    mut d: WorkflowDefinition,
) -> Result<WorkflowDefinition, StoreError> {
    for _ in 0..PUT_ROUNDS {
        let created: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM hopper.workflow_definitions
             WHERE namespace = $1 AND name = $2 FOR UPDATE",
        )
        .bind(&d.namespace)
        .bind(&d.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
        if let Some(created) = created {
            d.created_at = Timestamp(created);
            let done = sqlx::query(
                "UPDATE hopper.workflow_definitions
                 SET body = $3, next_fire_at = $4, updated_at = $5
                 WHERE namespace = $1 AND name = $2",
            )
            .bind(&d.namespace)
            .bind(&d.name)
            .bind(encode(&d, "workflow definition")?)
            .bind(d.next_fire_at.map(Timestamp::as_millis))
            .bind(d.updated_at.as_millis())
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
            if done.rows_affected() == 1 {
                return Ok(d);
            }
            // Locked, so not deleted since: unreachable, but harmless to go round.
            continue;
        }
        // None yet: insert, unless another node's insert won the race (it committed before
        // ours could: the next round locks and replaces it).
        let inserted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO hopper.workflow_definitions
                 (namespace, name, body, next_fire_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (namespace, name) DO NOTHING
             RETURNING 1",
        )
        .bind(&d.namespace)
        .bind(&d.name)
        .bind(encode(&d, "workflow definition")?)
        .bind(d.next_fire_at.map(Timestamp::as_millis))
        .bind(d.created_at.as_millis())
        .bind(d.updated_at.as_millis())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?;
        if inserted.is_some() {
            return Ok(d);
        }
    }
    Err(StoreError::Unavailable(
        "the workflow definition is being changed concurrently; try again".into(),
    ))
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<WorkflowDefinition, StoreError> {
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_definitions WHERE namespace = $1 AND name = $2",
    )
    .bind(namespace)
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    body.as_deref()
        .map(decode_definition)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    namespace: &str,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    // Byte order, the same as the embedded store's.
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_definitions WHERE namespace = $1
         ORDER BY name COLLATE \"C\"",
    )
    .bind(namespace)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    bodies.iter().map(|b| decode_definition(b)).collect()
}

pub(crate) async fn delete(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let done =
        sqlx::query("DELETE FROM hopper.workflow_definitions WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(conn)
            .await
            .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn due(
    conn: &mut PgConnection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_definitions
         WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1
         ORDER BY next_fire_at, namespace, name LIMIT $2",
    )
    .bind(now.as_millis())
    .bind(limit_param(limit))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    bodies.iter().map(|b| decode_definition(b)).collect()
}

/// The compare-and-set, inside the caller's transaction: true when the fire time moved.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
    expected: Timestamp,
    next: Option<Timestamp>,
) -> Result<bool, StoreError> {
    // Locked only when it still holds `expected`: a row another node moved meanwhile is
    // re-checked against its newest version after the wait, and left alone.
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_definitions
         WHERE namespace = $1 AND name = $2 AND next_fire_at = $3 FOR UPDATE",
    )
    .bind(namespace)
    .bind(name)
    .bind(expected.as_millis())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let Some(body) = body else {
        return Ok(false);
    };
    let mut d = decode_definition(&body)?;
    d.next_fire_at = next;
    let done = sqlx::query(
        "UPDATE hopper.workflow_definitions SET next_fire_at = $4, body = $5
         WHERE namespace = $1 AND name = $2 AND next_fire_at = $3",
    )
    .bind(namespace)
    .bind(name)
    .bind(expected.as_millis())
    .bind(next.map(Timestamp::as_millis))
    .bind(encode(&d, "workflow definition")?)
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn backfill_create(
    conn: &mut PgConnection,
    b: Backfill,
) -> Result<(Backfill, bool), StoreError> {
    // A concurrent create of the same dates makes this wait for its commit, then do nothing;
    // the select below (a new snapshot) then finds its row.
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO hopper.workflow_backfills
             (id, namespace, definition, from_date, to_date, body, created_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (namespace, definition, from_date, to_date) DO NOTHING
         RETURNING 1",
    )
    .bind(b.id.0)
    .bind(&b.namespace)
    .bind(&b.definition)
    .bind(&b.from)
    .bind(&b.to)
    .bind(encode(&b, "backfill")?)
    .bind(b.created_at.as_millis())
    .bind(b.finished_at.map(Timestamp::as_millis))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    if inserted.is_some() {
        return Ok((b, false));
    }
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_backfills
         WHERE namespace = $1 AND definition = $2 AND from_date = $3 AND to_date = $4",
    )
    .bind(&b.namespace)
    .bind(&b.definition)
    .bind(&b.from)
    .bind(&b.to)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    match body {
        Some(body) => Ok((decode_backfill(&body)?, true)),
        // Backfills are never deleted, so the row that conflicted is there.
        None => Err(StoreError::Internal(
            "a backfill conflicted with one that cannot be found".into(),
        )),
    }
}

pub(crate) async fn backfill_get(
    conn: &mut PgConnection,
    namespace: &str,
    id: &JobId,
) -> Result<Backfill, StoreError> {
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_backfills WHERE id = $1 AND namespace = $2",
    )
    .bind(id.0)
    .bind(namespace)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    body.as_deref()
        .map(decode_backfill)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn backfill_list(
    conn: &mut PgConnection,
    namespace: Option<&str>,
    unfinished_only: bool,
) -> Result<Vec<Backfill>, StoreError> {
    // Conditions only when given, so the partial index on unfinished ones can serve the
    // driver's scan of every namespace.
    let mut qb = QueryBuilder::new("SELECT body FROM hopper.workflow_backfills WHERE true");
    if let Some(ns) = namespace {
        qb.push(" AND namespace = ").push_bind(ns);
    }
    if unfinished_only {
        qb.push(" AND finished_at IS NULL");
    }
    qb.push(" ORDER BY id DESC");
    let bodies: Vec<String> = qb
        .build_query_scalar()
        .fetch_all(conn)
        .await
        .map_err(db_error)?;
    bodies.iter().map(|b| decode_backfill(b)).collect()
}

/// Inside the caller's transaction (the row is locked while its body is rewritten).
pub(crate) async fn backfill_finish(
    conn: &mut PgConnection,
    id: &JobId,
    at: Timestamp,
) -> Result<(), StoreError> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM hopper.workflow_backfills WHERE id = $1 FOR UPDATE")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?;
    let Some(body) = body else {
        return Err(StoreError::NotFound);
    };
    let mut b = decode_backfill(&body)?;
    b.finished_at = Some(at);
    sqlx::query("UPDATE hopper.workflow_backfills SET finished_at = $2, body = $3 WHERE id = $1")
        .bind(id.0)
        .bind(at.as_millis())
        .bind(encode(&b, "backfill")?)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Every definition of every namespace, by (namespace, name) in byte order.
pub(crate) async fn export(conn: &mut PgConnection) -> Result<Vec<WorkflowDefinition>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.workflow_definitions
         ORDER BY namespace COLLATE \"C\", name COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    bodies.iter().map(|b| decode_definition(b)).collect()
}

/// Copies definitions in as another store recorded them (body and columns as [`put`] writes
/// them), skipping any whose (namespace, name) is already present.
pub(crate) async fn import(
    conn: &mut PgConnection,
    defs: &[WorkflowDefinition],
) -> Result<(), StoreError> {
    if defs.is_empty() {
        return Ok(());
    }
    let bodies = defs
        .iter()
        .map(|d| encode(d, "workflow definition"))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query(
        "INSERT INTO hopper.workflow_definitions
             (namespace, name, body, next_fire_at, created_at, updated_at)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
             $6::bigint[])
         ON CONFLICT (namespace, name) DO NOTHING",
    )
    .bind(
        defs.iter()
            .map(|d| d.namespace.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>())
    .bind(bodies)
    .bind(
        defs.iter()
            .map(|d| d.next_fire_at.map(Timestamp::as_millis))
            .collect::<Vec<_>>(),
    )
    .bind(
        defs.iter()
            .map(|d| d.created_at.as_millis())
            .collect::<Vec<_>>(),
    )
    .bind(
        defs.iter()
            .map(|d| d.updated_at.as_millis())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Copies backfills in as another store recorded them (`finished_at` included), skipping any
/// whose id, or whose (namespace, definition, from, to), is already present.
pub(crate) async fn backfill_import(
    conn: &mut PgConnection,
    backfills: &[Backfill],
) -> Result<(), StoreError> {
    if backfills.is_empty() {
        return Ok(());
    }
    let bodies = backfills
        .iter()
        .map(|b| encode(b, "backfill"))
        .collect::<Result<Vec<_>, _>>()?;
    // No conflict target: a conflict on the id or on the range is skipped alike.
    sqlx::query(
        "INSERT INTO hopper.workflow_backfills
             (id, namespace, definition, from_date, to_date, body, created_at, finished_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::text[], $7::bigint[], $8::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(backfills.iter().map(|b| b.id.0).collect::<Vec<_>>())
    .bind(
        backfills
            .iter()
            .map(|b| b.namespace.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        backfills
            .iter()
            .map(|b| b.definition.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        backfills
            .iter()
            .map(|b| b.from.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(backfills.iter().map(|b| b.to.as_str()).collect::<Vec<_>>())
    .bind(bodies)
    .bind(
        backfills
            .iter()
            .map(|b| b.created_at.as_millis())
            .collect::<Vec<_>>(),
    )
    .bind(
        backfills
            .iter()
            .map(|b| b.finished_at.map(Timestamp::as_millis))
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}
