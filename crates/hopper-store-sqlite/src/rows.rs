//! The mapping between a [`Job`] and its row, and between SQLite errors and [`StoreError`].

use hopper_store::StoreError;
use hopper_types::{Job, JobEvent, JobId, JobState, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A row selected as `body, lease_ms` as a job.
pub(crate) fn decode_job(row: &Row<'_>) -> rusqlite::Result<Job> {
    decode_job_at(row, 0)
}

/// A job from the columns `body, lease_ms` starting at column `at`.
pub(crate) fn decode_job_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Job> {
    let body: String = row.get(at)?;
    let lease_ms: i64 = row.get(at + 1)?;
    let mut job: Job = serde_json::from_str(&body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    job.lease_ms = lease_ms;
    Ok(job)
}

/// The job's JSON body as stored (never carries the per-answer `duplicate` mark).
pub(crate) fn encode_body(job: &Job) -> Result<String, StoreError> {
    let mut text =
        serde_json::to_string(job).map_err(|e| StoreError::Internal(format!("encode job: {e}")))?;
    if job.duplicate.is_some() {
        // Cheap path stays allocation-free; this one is rare.
        let mut clean = job.clone();
        clean.duplicate = None;
        text = serde_json::to_string(&clean)
            .map_err(|e| StoreError::Internal(format!("encode job: {e}")))?;
    }
    Ok(text)
}

fn opt_ms(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_millis)
}

/// Inserts a new job row.
pub(crate) fn insert_job(conn: &Connection, job: &Job) -> Result<(), StoreError> {
    let tags = serde_json::to_string(&job.tags).map_err(|e| StoreError::Internal(e.to_string()))?;
    let body = encode_body(job)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO jobs (id, namespace, queue, kind, state, priority, available_at, rescue_at,
                finished_at, created_at, lease_ms, worker_id, tags, body, concurrency_key,
                fairness_key, estimated_ms, workflow_id, step)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19)",
        )
        .map_err(sql_error)?;
    stmt.execute(params![
        job.id.to_string(),
        job.namespace,
        job.queue,
        job.kind,
        job.state.as_str(),
        job.priority,
        job.available_at.as_millis(),
        rescue_at(job),
        opt_ms(job.finished_at),
        job.created_at.as_millis(),
        job.lease_ms,
        job.worker_id,
        tags,
        body,
        job.concurrency_key.as_deref().unwrap_or(""),
        job.fairness_key.as_deref().unwrap_or(""),
        job.estimated_ms,
        job.workflow.as_ref().map(|w| w.workflow_id.to_string()),
        job.workflow.as_ref().map(|w| w.step.as_str()),
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// Writes back every mutable column of an existing job, found by id.
pub(crate) fn update_job(conn: &Connection, job: &Job) -> Result<(), StoreError> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM jobs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row(params![job.id.to_string()], |r| r.get(0))
                .optional()
        })
        .map_err(sql_error)?;
    update_row(conn, seq.ok_or(StoreError::NotFound)?, job)
}

/// Writes back every mutable column of the job stored in row `seq`. The hot paths (lease,
/// outcomes, heartbeats) know the row already, which saves a lookup through the id index.
pub(crate) fn update_row(conn: &Connection, seq: i64, job: &Job) -> Result<(), StoreError> {
    let body = encode_body(job)?;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE jobs SET state = ?2, priority = ?3, available_at = ?4, rescue_at = ?5,
                finished_at = ?6, lease_ms = ?7, worker_id = ?8, body = ?9
             WHERE seq = ?1",
        )
        .map_err(sql_error)?;
    let n = stmt
        .execute(params![
            seq,
            job.state.as_str(),
            job.priority,
            job.available_at.as_millis(),
            rescue_at(job),
            opt_ms(job.finished_at),
            job.lease_ms,
            job.worker_id,
            body,
        ])
        .map_err(sql_error)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

fn rescue_at(job: &Job) -> Option<i64> {
    if job.state == JobState::Running {
        opt_ms(job.rescue_at())
    } else {
        None
    }
}

/// Loads one job by id with its row number, if it exists in `namespace`.
pub(crate) fn load_row(
    conn: &Connection,
    namespace: &str,
    id: &JobId,
) -> Result<Option<(i64, Job)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body, lease_ms, seq FROM jobs WHERE id = ?1 AND namespace = ?2")
        .map_err(sql_error)?;
    stmt.query_row(params![id.to_string(), namespace], |r| {
        Ok((r.get(2)?, decode_job(r)?))
    })
    .optional()
    .map_err(sql_error)
}

/// Loads one job by id, if it exists in `namespace`.
pub(crate) fn load_job(
    conn: &Connection,
    namespace: &str,
    id: &JobId,
) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body, lease_ms FROM jobs WHERE id = ?1 AND namespace = ?2")
        .map_err(sql_error)?;
    stmt.query_row(params![id.to_string(), namespace], decode_job)
        .optional()
        .map_err(sql_error)
}

/// Loads one job by id, whatever its namespace (for maintenance, which spans tenants).
pub(crate) fn load_job_any_ns(conn: &Connection, id: &str) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body, lease_ms FROM jobs WHERE id = ?1")
        .map_err(sql_error)?;
    stmt.query_row(params![id], decode_job)
        .optional()
        .map_err(sql_error)
}

/// Records one transition.
pub(crate) fn insert_event(
    conn: &Connection,
    job: &Job,
    from: Option<JobState>,
    to: JobState,
    at: Timestamp,
    actor: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO job_events (job_id, namespace, from_state, to_state, at, actor, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql_error)?;
    stmt.execute(params![
        job.id.to_string(),
        job.namespace,
        from.map(JobState::as_str),
        to.as_str(),
        at.as_millis(),
        actor,
        reason
    ])
    .map_err(sql_error)?;
    Ok(())
}

/// An event row (seq, job_id, from_state, to_state, at, actor, reason).
pub(crate) fn decode_event(row: &Row<'_>) -> rusqlite::Result<JobEvent> {
    let conv = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let job_id: String = row.get(1)?;
    let from: Option<String> = row.get(2)?;
    let to: String = row.get(3)?;
    Ok(JobEvent {
        seq: row.get(0)?,
        job_id: job_id
            .parse()
            .map_err(|e: uuid_error::Error| conv(1, e.to_string()))?,
        from: from
            .map(|f| f.parse::<JobState>())
            .transpose()
            .map_err(|e| conv(2, e.to_string()))?,
        to: to
            .parse()
            .map_err(|e: hopper_types::state::UnknownState| conv(3, e.to_string()))?,
        at: Timestamp(row.get(4)?),
        actor: row.get(5)?,
        reason: row.get(6)?,
    })
}

mod uuid_error {
    pub(crate) type Error = <hopper_types::JobId as std::str::FromStr>::Err;
}

/// Maps a SQLite error to a portable kind: contention and I/O trouble are `Unavailable`
/// (nothing was changed, retry is safe); anything else is a bug.
pub(crate) fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                C::DatabaseBusy
                    | C::DatabaseLocked
                    | C::SystemIoFailure
                    | C::DiskFull
                    | C::CannotOpen
                    | C::OutOfMemory
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Internal(e.to_string()),
    }
}
