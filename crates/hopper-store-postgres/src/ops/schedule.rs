//! Cron schedules: one row per (namespace, name) holding the whole schedule as JSON, with the
//! columns the scheduler selects on (`paused`, `next_fire_at`) and the cursor it compares.
//!
//! Changes are computed by `hopper_types::schedule` under the row's lock (`FOR UPDATE`). A fire
//! locks the schedule row, checks the cursor (compare-and-set), inserts the tick jobs through
//! the ordinary insert path in the same transaction, and advances the cursor: of two nodes
//! firing one tick, the second waits for the first's lock, then finds the cursor moved and
//! changes nothing. The tick's idempotency key backs that up.

use hopper_store::{ScheduleCreate, ScheduleFire, ScheduleFireOutcome, ScheduleUpdate, StoreError};
use hopper_types::Timestamp;
use hopper_types::cron::CronError;
use hopper_types::schedule::{Schedule, ScheduleRun};
use sqlx::PgConnection;

use crate::error::db_error;
use crate::ops::insert;
use crate::write_set::WriteSet;

/// An expression or zone the cron parser refuses (the server validates definitions first).
fn cron_error(e: CronError) -> StoreError {
    StoreError::InvalidArgument {
        field: e.field().to_string(),
        message: e.to_string(),
    }
}

fn decode(body: &str) -> Result<Schedule, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Internal(format!("decode schedule: {e}")))
}

fn encode(s: &Schedule) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Internal(format!("encode schedule: {e}")))
}

/// Loads the schedule and locks its row until the transaction ends.
async fn lock(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<Schedule, StoreError> {
    let body: Option<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.schedules WHERE namespace = $1 AND name = $2 FOR UPDATE",
    )
    .bind(namespace)
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    body.as_deref()
        .map(decode)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

/// Writes an existing (locked) schedule back.
async fn save(conn: &mut PgConnection, s: &Schedule) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE hopper.schedules SET paused = $3, next_fire_at = $4, cursor_at = $5, body = $6
         WHERE namespace = $1 AND name = $2",
    )
    .bind(&s.namespace)
    .bind(&s.name)
    .bind(s.paused)
    .bind(s.next_fire_at.map(Timestamp::as_millis))
    .bind(s.cursor.as_millis())
    .bind(encode(s)?)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn create(
    conn: &mut PgConnection,
    now: Timestamp,
    p: ScheduleCreate,
) -> Result<Schedule, StoreError> {
    let s = Schedule::create(&p.namespace, &p.name, p.definition, now).map_err(cron_error)?;
    if insert_if_absent(conn, &s).await? {
        Ok(s)
    } else {
        Err(StoreError::AlreadyExists(format!("schedule {}", p.name)))
    }
}

/// Inserts the schedule's row unless one of its name exists; true when it was inserted.
async fn insert_if_absent(conn: &mut PgConnection, s: &Schedule) -> Result<bool, StoreError> {
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO hopper.schedules (namespace, name, paused, next_fire_at, cursor_at, body)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (namespace, name) DO NOTHING
         RETURNING 1",
    )
    .bind(&s.namespace)
    .bind(&s.name)
    .bind(s.paused)
    .bind(s.next_fire_at.map(Timestamp::as_millis))
    .bind(s.cursor.as_millis())
    .bind(encode(s)?)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(inserted.is_some())
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<Schedule, StoreError> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM hopper.schedules WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .fetch_optional(conn)
            .await
            .map_err(db_error)?;
    body.as_deref()
        .map(decode)
        .transpose()?
        .ok_or(StoreError::NotFound)
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    namespace: &str,
) -> Result<Vec<Schedule>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.schedules WHERE namespace = $1 ORDER BY name COLLATE \"C\"",
    )
    .bind(namespace)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) async fn update(
    conn: &mut PgConnection,
    now: Timestamp,
    p: ScheduleUpdate,
) -> Result<Schedule, StoreError> {
    let mut s = lock(conn, &p.namespace, &p.name).await?;
    s.redefine(p.definition, now).map_err(cron_error)?;
    save(conn, &s).await?;
    Ok(s)
}

pub(crate) async fn delete(
    conn: &mut PgConnection,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM hopper.schedules WHERE namespace = $1 AND name = $2")
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

pub(crate) async fn set_paused(
    conn: &mut PgConnection,
    now: Timestamp,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<Schedule, StoreError> {
    let mut s = lock(conn, namespace, name).await?;
    s.set_paused(paused, now).map_err(cron_error)?;
    save(conn, &s).await?;
    Ok(s)
}

pub(crate) async fn due(
    conn: &mut PgConnection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Schedule>, StoreError> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM hopper.schedules
         WHERE NOT paused AND next_fire_at IS NOT NULL AND next_fire_at <= $1
         ORDER BY next_fire_at LIMIT $2",
    )
    .bind(now.as_millis())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) async fn next_fire_at(conn: &mut PgConnection) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar(
        "SELECT min(next_fire_at) FROM hopper.schedules WHERE NOT paused AND next_fire_at IS NOT NULL",
    )
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(t.map(Timestamp))
}

/// The fire, inside the caller's transaction; the caller commits only a `Fired` outcome.
pub(crate) async fn fire(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: ScheduleFire,
) -> Result<ScheduleFireOutcome, StoreError> {
    if p.jobs.len() != p.runs.len() {
        return Err(StoreError::InvalidArgument {
            field: "runs".into(),
            message: "one tick per job".into(),
        });
    }
    let mut s = lock(conn, &p.namespace, &p.name).await?;
    if s.paused || s.cursor != p.expected_cursor {
        return Ok(ScheduleFireOutcome::Stale);
    }
    let inserted = insert::insert_many(conn, ws, p.jobs, &p.actor).await?;
    let runs = inserted
        .iter()
        .zip(&p.runs)
        .map(|(ins, &tick_at)| ScheduleRun {
            tick_at,
            job_id: ins.id,
            enqueued_at: ws.now,
        })
        .collect();
    s.record_fire(p.cursor, p.next_fire_at, runs);
    save(conn, &s).await?;
    Ok(ScheduleFireOutcome::Fired {
        jobs: inserted,
        schedule: Box::new(s),
    })
}

/// Every schedule of every namespace, by (namespace, name), for `hopper migrate`.
pub(crate) async fn export(conn: &mut PgConnection) -> Result<Vec<Schedule>, StoreError> {
    let bodies: Vec<String> =
        sqlx::query_scalar("SELECT body FROM hopper.schedules ORDER BY namespace, name")
            .fetch_all(conn)
            .await
            .map_err(db_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

/// Copies a schedule in as another store recorded it, unless one of its name exists.
pub(crate) async fn import(conn: &mut PgConnection, s: &Schedule) -> Result<(), StoreError> {
    insert_if_absent(conn, s).await.map(|_| ())
}
