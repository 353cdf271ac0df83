//! Reads: one job, searches, events, and the small lookups maintenance needs.

use hopper_store::{JobListParams, JobPage, JobRef, StoreError, WorkerRunning};
use hopper_types::{Job, JobEvent, Timestamp};
use sqlx::{PgConnection, QueryBuilder, Row};

use crate::error::db_error;
use crate::ops::load_job;
use crate::rows::{decode_event, decode_job};

pub(crate) async fn get(conn: &mut PgConnection, r: &JobRef) -> Result<Job, StoreError> {
    load_job(conn, &r.namespace, &r.id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Escapes `%`, `_` and `\` for a LIKE pattern (backslash is PostgreSQL's default escape).
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

pub(crate) async fn list(
    conn: &mut PgConnection,
    p: &JobListParams,
) -> Result<JobPage, StoreError> {
    let mut qb = QueryBuilder::new("SELECT body, lease_ms FROM hopper.jobs WHERE namespace = ");
    qb.push_bind(&p.namespace);
    if let Some(q) = &p.queue {
        qb.push(" AND queue = ").push_bind(q);
    }
    if !p.states.is_empty() {
        // State names are spelled out (a closed set of identifiers, never user text) so the
        // planner can match the partial indexes' conditions.
        let names: Vec<String> = p
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        qb.push(format!(" AND state IN ({})", names.join(", ")));
    }
    if let Some(k) = &p.kind {
        qb.push(" AND kind = ").push_bind(k);
    }
    if let Some(t) = &p.tag {
        qb.push(" AND ").push_bind(t).push(" = ANY(tags)");
    }
    if let Some(q) = &p.q {
        let pat = like_pattern(q);
        qb.push(" AND (kind LIKE ")
            .push_bind(pat.clone())
            .push(" OR id::text LIKE ")
            .push_bind(pat.clone())
            .push(" OR EXISTS (SELECT 1 FROM unnest(tags) AS t WHERE t LIKE ")
            .push_bind(pat)
            .push("))");
    }
    if let Some(before) = &p.before {
        qb.push(" AND id < ").push_bind(before.0);
    }
    let limit = p.limit.clamp(1, 500);
    qb.push(" ORDER BY id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows = qb.build().fetch_all(conn).await.map_err(db_error)?;
    let mut jobs = rows.iter().map(decode_job).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if jobs.len() > limit {
        jobs.truncate(limit);
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

pub(crate) async fn events(
    conn: &mut PgConnection,
    r: &JobRef,
) -> Result<Vec<JobEvent>, StoreError> {
    get(conn, r).await?;
    let rows = sqlx::query(
        "SELECT seq, job_id, from_state, to_state, at, actor, reason FROM hopper.job_events
         WHERE job_id = $1 ORDER BY seq",
    )
    .bind(r.id.0)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(decode_event).collect()
}

pub(crate) async fn next_due_at(conn: &mut PgConnection) -> Result<Option<Timestamp>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar(
        "SELECT min(available_at) FROM hopper.jobs WHERE state IN ('scheduled', 'retryable')",
    )
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    Ok(t.map(Timestamp))
}

pub(crate) async fn max_outstanding_lease_ms(conn: &mut PgConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "SELECT coalesce(max(lease_ms), 0)::bigint FROM hopper.jobs WHERE state = 'running'",
    )
    .fetch_one(conn)
    .await
    .map_err(db_error)
}

pub(crate) async fn worker_running_list(
    conn: &mut PgConnection,
    namespace: &str,
) -> Result<Vec<WorkerRunning>, StoreError> {
    let rows = sqlx::query(
        "SELECT coalesce(worker_id, ''), queue, count(*) FROM hopper.jobs
         WHERE namespace = $1 AND state = 'running'
         GROUP BY 1, queue ORDER BY 1, queue",
    )
    .bind(namespace)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    let mut grouped = Vec::with_capacity(rows.len());
    for r in &rows {
        let worker: String = r.try_get(0).map_err(db_error)?;
        let queue: String = r.try_get(1).map_err(db_error)?;
        let n: i64 = r.try_get(2).map_err(db_error)?;
        grouped.push((worker, queue, n as u64));
    }
    Ok(WorkerRunning::group(grouped))
}
