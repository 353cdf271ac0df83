//! The mapping between a [`Job`] and its row: indexed columns plus the whole job as JSON in
//! `body` (the same shape as the embedded store), written in batches with `UNNEST`.

use hopper_store::StoreError;
use hopper_types::{Job, JobEvent, JobId, JobState, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

// Every job query selects `body, lease_ms` first: see [`decode_job`].

/// A job from a row whose first columns are `body, lease_ms`.
pub(crate) fn decode_job(row: &PgRow) -> Result<Job, StoreError> {
    let body: &str = row.try_get(0).map_err(crate::error::db_error)?;
    let lease_ms: i64 = row.try_get(1).map_err(crate::error::db_error)?;
    let mut job: Job = serde_json::from_str(body)
        .map_err(|e| StoreError::Internal(format!("decode stored job: {e}")))?;
    job.lease_ms = lease_ms;
    Ok(job)
}

/// The job's JSON body as stored (never with the per-answer `duplicate` mark).
pub(crate) fn encode_body(job: &Job) -> Result<String, StoreError> {
    let encode = |j: &Job| {
        serde_json::to_string(j).map_err(|e| StoreError::Internal(format!("encode job: {e}")))
    };
    if job.duplicate.is_some() {
        let mut clean = job.clone();
        clean.duplicate = None;
        return encode(&clean);
    }
    encode(job)
}

/// When the rescuer should look at a running job; none in other states.
fn rescue_at(job: &Job) -> Option<i64> {
    (job.state == JobState::Running)
        .then(|| job.rescue_at().map(Timestamp::as_millis))
        .flatten()
}

/// Jobs as column arrays, for one multi-row `INSERT` or `UPDATE ... FROM UNNEST(...)`.
#[derive(Default)]
pub(crate) struct JobColumns {
    id: Vec<Uuid>,
    namespace: Vec<String>,
    queue: Vec<String>,
    kind: Vec<String>,
    state: Vec<&'static str>,
    priority: Vec<i32>,
    available_at: Vec<i64>,
    rescue_at: Vec<Option<i64>>,
    finished_at: Vec<Option<i64>>,
    created_at: Vec<i64>,
    lease_ms: Vec<i64>,
    worker_id: Vec<Option<String>>,
    // Tags travel as one JSON array text per job: PostgreSQL has no array of arrays of
    // varying length, and the insert unpacks them with a cheap jsonb function.
    tags: Vec<String>,
    body: Vec<String>,
    concurrency_key: Vec<String>,
    fairness_key: Vec<String>,
    estimated_ms: Vec<Option<i64>>,
    // The run and step name of a workflow step (none for ordinary jobs). Written at insert
    // only: a job never joins or leaves a run.
    workflow_id: Vec<Option<Uuid>>,
    step: Vec<Option<String>>,
}

impl JobColumns {
    pub(crate) fn push(&mut self, job: &Job) -> Result<(), StoreError> {
        self.id.push(job.id.0);
        self.namespace.push(job.namespace.clone());
        self.queue.push(job.queue.clone());
        self.kind.push(job.kind.clone());
        self.state.push(job.state.as_str());
        self.priority.push(job.priority);
        self.available_at.push(job.available_at.as_millis());
        self.rescue_at.push(rescue_at(job));
        self.finished_at
            .push(job.finished_at.map(Timestamp::as_millis));
        self.created_at.push(job.created_at.as_millis());
        self.lease_ms.push(job.lease_ms);
        self.worker_id.push(job.worker_id.clone());
        self.tags.push(
            serde_json::to_string(&job.tags).map_err(|e| StoreError::Internal(e.to_string()))?,
        );
        self.body.push(encode_body(job)?);
        self.concurrency_key
            .push(job.concurrency_key.clone().unwrap_or_default());
        self.fairness_key
            .push(job.fairness_key.clone().unwrap_or_default());
        self.estimated_ms.push(job.estimated_ms);
        self.workflow_id
            .push(job.workflow.as_ref().map(|w| w.workflow_id.0));
        self.step
            .push(job.workflow.as_ref().map(|w| w.step.clone()));
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Inserts the jobs, skipping ids already present; returns the ids inserted.
    pub(crate) async fn insert(
        self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<Vec<Uuid>, StoreError> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "INSERT INTO hopper.jobs (id, namespace, queue, kind, state, priority, available_at,
                 rescue_at, finished_at, created_at, lease_ms, worker_id, tags, body,
                 concurrency_key, fairness_key, estimated_ms, workflow_id, step)
             SELECT u.id, u.namespace, u.queue, u.kind, u.state, u.priority, u.available_at,
                 u.rescue_at, u.finished_at, u.created_at, u.lease_ms, u.worker_id,
                 ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)), u.body,
                 u.concurrency_key, u.fairness_key, u.estimated_ms, u.workflow_id, u.step
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                 $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                 $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bigint[],
                 $18::uuid[], $19::text[])
                 AS u(id, namespace, queue, kind, state, priority, available_at, rescue_at,
                      finished_at, created_at, lease_ms, worker_id, tags, body,
                      concurrency_key, fairness_key, estimated_ms, workflow_id, step)
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        )
        .bind(self.id)
        .bind(self.namespace)
        .bind(self.queue)
        .bind(self.kind)
        .bind(self.state)
        .bind(self.priority)
        .bind(self.available_at)
        .bind(self.rescue_at)
        .bind(self.finished_at)
        .bind(self.created_at)
        .bind(self.lease_ms)
        .bind(self.worker_id)
        .bind(self.tags)
        .bind(self.body)
        .bind(self.concurrency_key)
        .bind(self.fairness_key)
        .bind(self.estimated_ms)
        .bind(self.workflow_id)
        .bind(self.step)
        .fetch_all(&mut *conn)
        .await
        .map_err(crate::error::db_error)
    }
}

/// Events as column arrays, for one multi-row insert.
#[derive(Default)]
pub(crate) struct EventColumns {
    job_id: Vec<Uuid>,
    namespace: Vec<String>,
    from: Vec<Option<&'static str>>,
    to: Vec<&'static str>,
    at: Vec<i64>,
    actor: Vec<String>,
    reason: Vec<String>,
}

impl EventColumns {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push(
        &mut self,
        job_id: JobId,
        namespace: &str,
        from: Option<JobState>,
        to: JobState,
        at: Timestamp,
        actor: &str,
        reason: &str,
    ) {
        self.job_id.push(job_id.0);
        self.namespace.push(namespace.to_string());
        self.from.push(from.map(JobState::as_str));
        self.to.push(to.as_str());
        self.at.push(at.as_millis());
        self.actor.push(actor.to_string());
        self.reason.push(reason.to_string());
    }

    pub(crate) async fn insert(self, conn: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        if self.job_id.is_empty() {
            return Ok(());
        }
        // WITH ORDINALITY keeps the events of one batch in the order they happened.
        sqlx::query(
            "INSERT INTO hopper.job_events (job_id, namespace, from_state, to_state, at, actor, reason)
             SELECT job_id, namespace, from_state, to_state, at, actor, reason
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                 $7::text[]) WITH ORDINALITY
                 AS u(job_id, namespace, from_state, to_state, at, actor, reason, n)
             ORDER BY n",
        )
        .bind(self.job_id)
        .bind(self.namespace)
        .bind(self.from)
        .bind(self.to)
        .bind(self.at)
        .bind(self.actor)
        .bind(self.reason)
        .execute(&mut *conn)
        .await
        .map_err(crate::error::db_error)?;
        Ok(())
    }
}

/// An event row selected as (seq, job_id, from_state, to_state, at, actor, reason).
pub(crate) fn decode_event(row: &PgRow) -> Result<JobEvent, StoreError> {
    let e = crate::error::db_error;
    let bad = |what: &str, v: &str| StoreError::Internal(format!("stored {what} `{v}` is invalid"));
    let from: Option<String> = row.try_get(2).map_err(e)?;
    let to: String = row.try_get(3).map_err(e)?;
    Ok(JobEvent {
        seq: row.try_get(0).map_err(e)?,
        job_id: JobId(row.try_get(1).map_err(e)?),
        from: from
            .map(|f| f.parse::<JobState>().map_err(|_| bad("state", &f)))
            .transpose()?,
        to: to.parse().map_err(|_| bad("state", &to))?,
        at: Timestamp(row.try_get(4).map_err(e)?),
        actor: row.try_get(5).map_err(e)?,
        reason: row.try_get(6).map_err(e)?,
    })
}

/// Writes back changed jobs, records their events and sends wake-up notifications, in one
/// statement (one round trip, whatever the batch size). Empty inputs write nothing.
pub(crate) async fn write_changes(
    conn: &mut sqlx::PgConnection,
    jobs: JobColumns,
    events: EventColumns,
    notifications: Vec<String>,
    freed_notifications: Vec<String>,
    freed_namespaces: Vec<String>,
    freed_queues: Vec<String>,
) -> Result<(), StoreError> {
    if jobs.is_empty()
        && events.job_id.is_empty()
        && notifications.is_empty()
        && freed_notifications.is_empty()
    {
        return Ok(());
    }
    sqlx::query(
        "WITH updated AS (
             UPDATE hopper.jobs j SET state = u.state, priority = u.priority,
                 available_at = u.available_at, rescue_at = u.rescue_at,
                 finished_at = u.finished_at, lease_ms = u.lease_ms, worker_id = u.worker_id,
                 body = u.body
             FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::bigint[],
                 $6::bigint[], $7::bigint[], $8::text[], $9::text[])
                 AS u(id, state, priority, available_at, rescue_at, finished_at, lease_ms,
                      worker_id, body)
             WHERE j.id = u.id
             RETURNING 1
         ),
         recorded AS (
             INSERT INTO hopper.job_events (job_id, namespace, from_state, to_state, at, actor, reason)
             SELECT job_id, namespace, from_state, to_state, at, actor, reason
             FROM UNNEST($10::uuid[], $11::text[], $12::text[], $13::text[], $14::bigint[],
                 $15::text[], $16::text[]) WITH ORDINALITY
                 AS e(job_id, namespace, from_state, to_state, at, actor, reason, n)
             ORDER BY n
             RETURNING 1
         ),
         woken AS (
             SELECT pg_notify('hopper_jobs', p) FROM UNNEST($17::text[]) AS p
             UNION ALL
             SELECT pg_notify('hopper_jobs', f.p)
             FROM UNNEST($18::text[], $19::text[], $20::text[]) AS f(p, ns, q)
             WHERE EXISTS (SELECT 1 FROM hopper.queues x
                           WHERE x.namespace = f.ns AND x.name = f.q AND x.shapes_leases)
         )
         SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM recorded),
                (SELECT count(*) FROM woken)",
    )
    .bind(jobs.id)
    .bind(jobs.state)
    .bind(jobs.priority)
    .bind(jobs.available_at)
    .bind(jobs.rescue_at)
    .bind(jobs.finished_at)
    .bind(jobs.lease_ms)
    .bind(jobs.worker_id)
    .bind(jobs.body)
    .bind(events.job_id)
    .bind(events.namespace)
    .bind(events.from)
    .bind(events.to)
    .bind(events.at)
    .bind(events.actor)
    .bind(events.reason)
    .bind(notifications)
    .bind(freed_notifications)
    .bind(freed_namespaces)
    .bind(freed_queues)
    .execute(conn)
    .await
    .map_err(crate::error::db_error)?;
    Ok(())
}
