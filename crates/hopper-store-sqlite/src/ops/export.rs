//! Reading a whole store out for `hopper migrate`: jobs with their histories, idempotency
//! keys and queue settings, each in a stable order with a keyset cursor so a copy can page
//! through any amount of data, and the row counts that verify the copy (the audit log pages
//! by seq in `ops::audit`).

use std::str::FromStr;

use hopper_store::{IdempotencyKeyRecord, JobRecord, QueueRecord, StoreError, StoreTotals};
use hopper_types::{JobId, Timestamp};
use rusqlite::{Connection, Row, params};

use crate::rows::{decode_event, decode_job, sql_error};

/// A page size as SQLite's LIMIT (which takes a signed integer).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Up to `limit` jobs of every namespace after `after`, by id, each with its events.
pub(crate) fn jobs(
    conn: &Connection,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    // One read transaction: the jobs and their events come from the same snapshot, so a page
    // never shows an event whose job it does not show (or the reverse) while writes go on.
    let tx = conn.unchecked_transaction().map_err(sql_error)?;
    // Ids are lowercase hyphenated UUIDs, whose text order is their byte order (the order of
    // `JobId`); every id sorts after the empty string, so no cursor means "from the start".
    let after = after.map(|id| id.to_string()).unwrap_or_default();
    let found = {
        let mut stmt = tx
            .prepare_cached("SELECT body, lease_ms FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(sql_error)?;
        stmt.query_map(params![after, sql_limit(limit)], decode_job)
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?
    };
    let mut out = Vec::with_capacity(found.len());
    let mut stmt = tx
        .prepare_cached(
            "SELECT seq, job_id, from_state, to_state, at, actor, reason FROM job_events
             WHERE job_id = ?1 ORDER BY seq",
        )
        .map_err(sql_error)?;
    for job in found {
        let events = stmt
            .query_map(params![job.id.to_string()], decode_event)
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        out.push(JobRecord { job, events });
    }
    Ok(out)
}

fn decode_key(r: &Row<'_>) -> rusqlite::Result<IdempotencyKeyRecord> {
    let job_id: String = r.get(2)?;
    Ok(IdempotencyKeyRecord {
        namespace: r.get(0)?,
        key: r.get(1)?,
        job_id: job_id.parse().map_err(|e: <JobId as FromStr>::Err| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
        })?,
        fingerprint: r.get(3)?,
        created_at: Timestamp(r.get(4)?),
    })
}

/// Up to `limit` idempotency keys after `after`, by (namespace, key).
pub(crate) fn idempotency_keys(
    conn: &Connection,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<IdempotencyKeyRecord>, StoreError> {
    // Both columns compare with SQLite's default BINARY collation, the byte order of their
    // UTF-8 text, so the cursor and the ORDER BY agree and paging never skips or repeats.
    // Two statements rather than one with `?1 IS NULL OR ...`: the OR would make SQLite scan
    // the primary key from its start on every page instead of seeking to the cursor.
    const COLUMNS: &str =
        "SELECT namespace, key, job_id, fingerprint, created_at FROM idempotency_keys";
    let rows = match after {
        None => conn
            .prepare_cached(&format!("{COLUMNS} ORDER BY namespace, key LIMIT ?1"))
            .and_then(|mut s| {
                s.query_map(params![sql_limit(limit)], decode_key)?
                    .collect::<Result<Vec<_>, _>>()
            }),
        Some((ns, key)) => conn
            .prepare_cached(&format!(
                "{COLUMNS} WHERE (namespace, key) > (?1, ?2) ORDER BY namespace, key LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(params![ns, key, sql_limit(limit)], decode_key)?
                    .collect::<Result<Vec<_>, _>>()
            }),
    };
    rows.map_err(sql_error)
}

/// Every configured queue of every namespace, by (namespace, name).
pub(crate) fn queues(conn: &Connection) -> Result<Vec<QueueRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT namespace, name, updated_at FROM queues ORDER BY namespace, name")
        .map_err(sql_error)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    rows.into_iter()
        .map(|(namespace, name, updated_at)| {
            Ok(QueueRecord {
                config: crate::ops::flow::load_config(conn, &namespace, &name)?,
                namespace,
                name,
                updated_at: Timestamp(updated_at),
            })
        })
        .collect()
}

/// Row counts of every table a copy carries, from one snapshot (one statement).
pub(crate) fn totals(conn: &Connection) -> Result<StoreTotals, StoreError> {
    let count = |i: usize, r: &Row<'_>| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
    conn.prepare_cached(
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_events),
                (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM queues),
                (SELECT count(*) FROM schedules), (SELECT count(*) FROM workflows),
                (SELECT count(*) FROM job_deps), (SELECT count(*) FROM workflow_definitions),
                (SELECT count(*) FROM workflow_backfills), (SELECT count(*) FROM api_keys),
                (SELECT count(*) FROM namespaces), (SELECT count(*) FROM audit_log),
                (SELECT count(*) FROM webhooks)",
    )
    .and_then(|mut s| {
        s.query_row([], |r| {
            Ok(StoreTotals {
                jobs: count(0, r)?,
                events: count(1, r)?,
                idempotency_keys: count(2, r)?,
                queues: count(3, r)?,
                schedules: count(4, r)?,
                workflows: count(5, r)?,
                job_deps: count(6, r)?,
                workflow_definitions: count(7, r)?,
                backfills: count(8, r)?,
                api_keys: count(9, r)?,
                namespaces: count(10, r)?,
                audit: count(11, r)?,
                webhooks: count(12, r)?,
            })
        })
    })
    .map_err(sql_error)
}
