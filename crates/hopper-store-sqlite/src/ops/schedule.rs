//! Cron schedules: one row per (namespace, name) holding the whole schedule as JSON, with the
//! columns the scheduler selects on (`paused`, `next_fire_at`) and the cursor it compares.
//!
//! Changes are computed by `hopper_types::schedule`; writes run on the single writer, which
//! makes the scheduler's compare-and-set on the cursor (and the tick jobs inserted with it)
//! one atomic step without locks.

use hopper_store::{
    JobInsertParams, ScheduleCreate, ScheduleFire, ScheduleFireOutcome, ScheduleUpdate, StoreError,
};
use hopper_types::Timestamp;
use hopper_types::cron::CronError;
use hopper_types::schedule::{Schedule, ScheduleRun};
use rusqlite::{Connection, OptionalExtension, params};

use crate::ops::insert;
use crate::rows::sql_error;
use crate::writer::WriteCtx;

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

fn not_found() -> StoreError {
    StoreError::NotFound
}

/// The schedule, if it exists.
fn load(conn: &Connection, namespace: &str, name: &str) -> Result<Option<Schedule>, StoreError> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM schedules WHERE namespace = ?1 AND name = ?2")
        .and_then(|mut s| {
            s.query_row(params![namespace, name], |r| r.get(0))
                .optional()
        })
        .map_err(sql_error)?;
    body.as_deref().map(decode).transpose()
}

/// Writes an existing schedule back.
fn save(conn: &Connection, s: &Schedule) -> Result<(), StoreError> {
    let body = encode(s)?;
    conn.prepare_cached(
        "UPDATE schedules SET paused = ?3, next_fire_at = ?4, cursor_at = ?5, body = ?6
         WHERE namespace = ?1 AND name = ?2",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.namespace,
            s.name,
            s.paused,
            s.next_fire_at.map(Timestamp::as_millis),
            s.cursor.as_millis(),
            body,
        ])
    })
    .map_err(sql_error)?;
    Ok(())
}

pub(crate) fn create(ctx: &mut WriteCtx<'_>, p: ScheduleCreate) -> Result<Schedule, StoreError> {
    let s = Schedule::create(&p.namespace, &p.name, p.definition, ctx.now).map_err(cron_error)?;
    if !insert_if_absent(ctx.conn, &s)? {
        return Err(StoreError::AlreadyExists(format!("schedule {}", p.name)));
    }
    Ok(s)
}

/// Inserts the schedule's row unless one of its name exists; true when it was inserted.
fn insert_if_absent(conn: &Connection, s: &Schedule) -> Result<bool, StoreError> {
    let body = encode(s)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO schedules (namespace, name, paused, next_fire_at, cursor_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (namespace, name) DO NOTHING",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.namespace,
                s.name,
                s.paused,
                s.next_fire_at.map(Timestamp::as_millis),
                s.cursor.as_millis(),
                body,
            ])
        })
        .map_err(sql_error)?;
    Ok(inserted == 1)
}

pub(crate) fn get(conn: &Connection, namespace: &str, name: &str) -> Result<Schedule, StoreError> {
    load(conn, namespace, name)?.ok_or_else(not_found)
}

pub(crate) fn list(conn: &Connection, namespace: &str) -> Result<Vec<Schedule>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT body FROM schedules WHERE namespace = ?1 ORDER BY name")
        .map_err(sql_error)?;
    let bodies = st
        .query_map(params![namespace], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) fn update(ctx: &mut WriteCtx<'_>, p: ScheduleUpdate) -> Result<Schedule, StoreError> {
    let mut s = load(ctx.conn, &p.namespace, &p.name)?.ok_or_else(not_found)?;
    s.redefine(p.definition, ctx.now).map_err(cron_error)?;
    save(ctx.conn, &s)?;
    Ok(s)
}

pub(crate) fn delete(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
) -> Result<(), StoreError> {
    let n = ctx
        .conn
        .prepare_cached("DELETE FROM schedules WHERE namespace = ?1 AND name = ?2")
        .and_then(|mut st| st.execute(params![namespace, name]))
        .map_err(sql_error)?;
    if n == 0 {
        return Err(not_found());
    }
    Ok(())
}

pub(crate) fn set_paused(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<Schedule, StoreError> {
    let mut s = load(ctx.conn, namespace, name)?.ok_or_else(not_found)?;
    s.set_paused(paused, ctx.now).map_err(cron_error)?;
    save(ctx.conn, &s)?;
    Ok(s)
}

pub(crate) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Schedule>, StoreError> {
    let mut st = conn
        .prepare_cached(
            "SELECT body FROM schedules
             WHERE paused = 0 AND next_fire_at IS NOT NULL AND next_fire_at <= ?1
             ORDER BY next_fire_at LIMIT ?2",
        )
        .map_err(sql_error)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let bodies = st
        .query_map(params![now.as_millis(), limit], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sql_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

pub(crate) fn next_fire_at(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = conn
        .prepare_cached(
            "SELECT min(next_fire_at) FROM schedules WHERE paused = 0 AND next_fire_at IS NOT NULL",
        )
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(sql_error)?;
    Ok(t.map(Timestamp))
}

pub(crate) fn fire(
    ctx: &mut WriteCtx<'_>,
    p: ScheduleFire,
) -> Result<ScheduleFireOutcome, StoreError> {
    if p.jobs.len() != p.runs.len() {
        return Err(StoreError::InvalidArgument {
            field: "runs".into(),
            message: "one tick per job".into(),
        });
    }
    let mut s = load(ctx.conn, &p.namespace, &p.name)?.ok_or_else(not_found)?;
    if s.paused || s.cursor != p.expected_cursor {
        return Ok(ScheduleFireOutcome::Stale);
    }
    let inserted = insert::insert_many(
        ctx,
        JobInsertParams {
            jobs: p.jobs,
            actor: p.actor,
        },
    )?;
    let runs = inserted
        .iter()
        .zip(&p.runs)
        .map(|(ins, &tick_at)| ScheduleRun {
            tick_at,
            job_id: ins.id,
            enqueued_at: ctx.now,
        })
        .collect();
    s.record_fire(p.cursor, p.next_fire_at, runs);
    save(ctx.conn, &s)?;
    Ok(ScheduleFireOutcome::Fired {
        jobs: inserted,
        schedule: Box::new(s),
    })
}

/// Every schedule of every namespace, by (namespace, name), for `hopper migrate`.
pub(crate) fn export(conn: &Connection) -> Result<Vec<Schedule>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body FROM schedules ORDER BY namespace, name")
        .map_err(sql_error)?;
    let bodies = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    bodies.iter().map(|b| decode(b)).collect()
}

/// Copies a schedule in as another store recorded it, unless one of its name exists.
pub(crate) fn import(conn: &Connection, s: &Schedule) -> Result<(), StoreError> {
    insert_if_absent(conn, s).map(|_| ())
}
