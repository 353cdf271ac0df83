//! Reads: one job, searches, events, and the small lookups maintenance needs.

use hopper_store::{JobListParams, JobPage, JobRef, StoreError, WorkerRunning};
use hopper_types::{Job, JobEvent, Timestamp};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::rows::{decode_event, decode_job, load_job, sql_error};

pub(crate) fn get(conn: &Connection, r: &JobRef) -> Result<Job, StoreError> {
    load_job(conn, &r.namespace, &r.id)?.ok_or(StoreError::NotFound)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

pub(crate) fn list(conn: &Connection, p: &JobListParams) -> Result<JobPage, StoreError> {
    let mut sql = String::from("SELECT body, lease_ms FROM jobs WHERE namespace = ?");
    let mut args: Vec<Value> = vec![Value::Text(p.namespace.clone())];
    if let Some(q) = &p.queue {
        sql.push_str(" AND queue = ?");
        args.push(Value::Text(q.clone()));
    }
    if !p.states.is_empty() {
        // State names are spelled out (they are a closed set of identifiers, never user
        // text) so SQLite can match the partial indexes' conditions.
        let names: Vec<String> = p
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        sql.push_str(&format!(" AND state IN ({})", names.join(", ")));
    }
    if let Some(k) = &p.kind {
        sql.push_str(" AND kind = ?");
        args.push(Value::Text(k.clone()));
    }
    if let Some(t) = &p.tag {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE value = ?)");
        args.push(Value::Text(t.clone()));
    }
    if let Some(q) = &p.q {
        sql.push_str(
            " AND (kind LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' OR tags LIKE ? ESCAPE '\\')",
        );
        let pat = like_pattern(q);
        args.extend([
            Value::Text(pat.clone()),
            Value::Text(pat.clone()),
            Value::Text(pat),
        ]);
    }
    if let Some(before) = &p.before {
        sql.push_str(" AND id < ?");
        args.push(Value::Text(before.to_string()));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    let limit = p.limit.clamp(1, 500);
    args.push(Value::Integer(limit as i64 + 1));

    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let mut jobs = stmt
        .query_map(params_from_iter(args), decode_job)
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let next_cursor = if jobs.len() > limit {
        jobs.truncate(limit);
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

pub(crate) fn events(conn: &Connection, r: &JobRef) -> Result<Vec<JobEvent>, StoreError> {
    get(conn, r)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, job_id, from_state, to_state, at, actor, reason FROM job_events
             WHERE job_id = ?1 ORDER BY seq",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![r.id.to_string()], decode_event)
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

pub(crate) fn next_due_at(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached(
        "SELECT min(available_at) FROM jobs WHERE state IN ('scheduled', 'retryable')",
    )
    .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
    .map(|v| v.map(Timestamp))
    .map_err(sql_error)
}

pub(crate) fn max_outstanding_lease_ms(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT coalesce(max(lease_ms), 0) FROM jobs WHERE state = 'running'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sql_error)
}

pub(crate) fn worker_running_list(
    conn: &Connection,
    namespace: &str,
) -> Result<Vec<WorkerRunning>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT worker_id, queue, count(*) FROM jobs WHERE namespace = ?1 AND state = 'running'
             GROUP BY worker_id, queue ORDER BY worker_id, queue",
        )
        .map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(sql_error)?;
    let mut grouped = Vec::new();
    for row in rows {
        let (worker, queue, n) = row.map_err(sql_error)?;
        grouped.push((worker.unwrap_or_default(), queue, n as u64));
    }
    Ok(WorkerRunning::group(grouped))
}
