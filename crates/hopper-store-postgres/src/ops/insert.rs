//! Enqueue: all jobs of a call or none, with idempotency keys claimed atomically across nodes.
//!
//! Keys are claimed with `INSERT ... ON CONFLICT DO NOTHING` on the `(namespace, key)` primary
//! key: of two transactions enqueuing one key through different nodes, the second waits on the
//! first's uncommitted row, then finds the key taken and answers the first's job. No lock is
//! held beyond the unique index, and no read-then-write race is possible.

use std::collections::HashMap;

use hopper_store::{Inserted, StoreError};
use hopper_types::{JobId, NewJob, lifecycle};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::db_error;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

/// A key already held by another job: its id and content fingerprint.
struct HeldKey {
    job_id: JobId,
    fingerprint: String,
}

pub(crate) async fn insert_many(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    jobs: Vec<NewJob>,
    actor: &str,
) -> Result<Vec<Inserted>, StoreError> {
    let held = claim_keys(conn, &jobs, ws.now).await?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut duplicates = Vec::new();
    for (index, new) in jobs.into_iter().enumerate() {
        if let Some(h) = new
            .idempotency_key
            .as_ref()
            .and_then(|k| held.get(&(new.namespace.clone(), k.clone())))
        {
            if h.fingerprint != new.fingerprint() {
                return Err(StoreError::IdempotencyConflict {
                    index,
                    existing: h.job_id,
                });
            }
            duplicates.push((out.len(), new.namespace.clone()));
            out.push(Inserted {
                job: None,
                id: h.job_id,
                duplicate: true,
            });
            continue;
        }
        let (job, change) = lifecycle::insert(new, ws.now);
        ws.inserted(&job, change, actor);
        out.push(Inserted {
            id: job.id,
            job: Some(job),
            duplicate: false,
        });
    }
    if !duplicates.is_empty() {
        let ids: Vec<Uuid> = duplicates.iter().map(|(i, _)| out[*i].id.0).collect();
        let rows =
            sqlx::query("SELECT body, lease_ms, namespace FROM hopper.jobs WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(db_error)?;
        let mut found = HashMap::new();
        for row in &rows {
            let job = decode_job(row)?;
            found.insert(job.id, job);
        }
        for (i, ns) in duplicates {
            // The key outlives its job: a deleted or pruned job answers with its id only.
            out[i].job = found.remove(&out[i].id).filter(|j| j.namespace == ns);
        }
    }
    Ok(out)
}

/// Claims the idempotency keys of `jobs` for them; returns the keys other jobs already held.
async fn claim_keys(
    conn: &mut PgConnection,
    jobs: &[NewJob],
    now: hopper_types::Timestamp,
) -> Result<HashMap<(String, String), HeldKey>, StoreError> {
    let mut namespaces = Vec::new();
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    let mut fingerprints = Vec::new();
    for j in jobs {
        if let Some(k) = &j.idempotency_key {
            namespaces.push(j.namespace.clone());
            keys.push(k.clone());
            ids.push(j.id.0);
            fingerprints.push(j.fingerprint());
        }
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let claimed: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO hopper.idempotency_keys (namespace, key, job_id, fingerprint, created_at)
         SELECT ns, k, id, fp, $5 FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[])
             AS u(ns, k, id, fp)
         ON CONFLICT (namespace, key) DO NOTHING
         RETURNING job_id",
    )
    .bind(&namespaces)
    .bind(&keys)
    .bind(&ids)
    .bind(&fingerprints)
    .bind(now.as_millis())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    if claimed.len() == keys.len() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT k.namespace, k.key, k.job_id, k.fingerprint FROM hopper.idempotency_keys k
         JOIN UNNEST($1::text[], $2::text[], $3::uuid[]) AS u(ns, key, id)
             ON k.namespace = u.ns AND k.key = u.key AND k.job_id <> u.id",
    )
    .bind(&namespaces)
    .bind(&keys)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut held = HashMap::new();
    for r in rows {
        let e = db_error;
        held.insert(
            (r.try_get(0).map_err(e)?, r.try_get(1).map_err(e)?),
            HeldKey {
                job_id: JobId(r.try_get(2).map_err(e)?),
                fingerprint: r.try_get(3).map_err(e)?,
            },
        );
    }
    if held.len() + claimed.len() != keys.len() {
        // A key was taken and then pruned between the two statements: rare, and safe to retry.
        return Err(StoreError::Unavailable(
            "an idempotency key changed hands during the enqueue; try again".into(),
        ));
    }
    Ok(held)
}

/// The SQLSTATE `hopper.require` raises: the fast path could not claim every key.
pub(crate) const KEY_HELD: &str = "HP001";

/// Enqueue in one statement, committed on its own (no transaction block: one round trip).
///
/// Claims the keys, inserts the jobs and their events and sends the wake-ups, all in one
/// statement, which `hopper.require` aborts entirely when any key was already held (the
/// statement then changed nothing, and the caller takes [`insert_many`] in a transaction,
/// which sorts out duplicates and conflicts). Returns the jobs and the queues to wake, or
/// `None` when a key was held.
pub(crate) async fn insert_fast(
    pool: &sqlx::PgPool,
    jobs: Vec<NewJob>,
    now: hopper_types::Timestamp,
    actor: &str,
    node: &str,
) -> Result<Option<(Vec<Inserted>, Vec<(String, String)>)>, StoreError> {
    let n = jobs.len();
    let mut ids = Vec::with_capacity(n);
    let mut namespaces = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut available_ats = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut fingerprints = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut ckeys = Vec::with_capacity(n);
    let mut fkeys = Vec::with_capacity(n);
    let mut estimates: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut wake: Vec<(String, String)> = Vec::new();
    for new in jobs {
        let key = new.idempotency_key.clone();
        let fingerprint = key.as_ref().map(|_| new.fingerprint());
        let (job, change) = lifecycle::insert(new, now);
        ids.push(job.id.0);
        namespaces.push(job.namespace.clone());
        queues.push(job.queue.clone());
        kinds.push(job.kind.clone());
        states.push(job.state.as_str());
        priorities.push(job.priority);
        available_ats.push(job.available_at.as_millis());
        tags.push(
            serde_json::to_string(&job.tags).map_err(|e| StoreError::Internal(e.to_string()))?,
        );
        bodies.push(crate::rows::encode_body(&job)?);
        keys.push(key);
        fingerprints.push(fingerprint);
        reasons.push(change.reason);
        ckeys.push(job.concurrency_key.clone().unwrap_or_default());
        fkeys.push(job.fairness_key.clone().unwrap_or_default());
        estimates.push(job.estimated_ms);
        if job.state == hopper_types::JobState::Available
            && !wake
                .iter()
                .any(|(ns, q)| *ns == job.namespace && *q == job.queue)
        {
            wake.push((job.namespace.clone(), job.queue.clone()));
        }
        out.push(Inserted {
            id: job.id,
            job: Some(job),
            duplicate: false,
        });
    }
    let done = sqlx::query(
        "WITH input AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::int[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[],
                 $12::text[], $16::text[], $17::text[], $18::bigint[]) WITH ORDINALITY
                 AS u(id, namespace, queue, kind, state, priority, available_at, tags, body,
                      ikey, fp, reason, ckey, fkey, est, n)
         ),
         claimed AS (
             INSERT INTO hopper.idempotency_keys (namespace, key, job_id, fingerprint, created_at)
             SELECT namespace, ikey, id, fp, $13 FROM input WHERE ikey IS NOT NULL
             ON CONFLICT (namespace, key) DO NOTHING
             RETURNING job_id
         ),
         guard AS (
             SELECT hopper.require(
                 (SELECT count(*) FROM claimed) = (SELECT count(*) FROM input WHERE ikey IS NOT NULL),
                 'an idempotency key is already held')
         ),
         -- No workflow_id or step: lifecycle::insert makes ordinary jobs only (workflow steps
         -- are inserted through the WriteSet), so both stay NULL.
         jobs AS (
             INSERT INTO hopper.jobs (id, namespace, queue, kind, state, priority, available_at,
                 created_at, tags, body, concurrency_key, fairness_key, estimated_ms)
             SELECT id, namespace, queue, kind, state, priority, available_at, $13,
                 ARRAY(SELECT jsonb_array_elements_text(tags::jsonb)), body, ckey, fkey, est
             FROM input
             RETURNING 1
         ),
         events AS (
             INSERT INTO hopper.job_events (job_id, namespace, from_state, to_state, at, actor, reason)
             SELECT id, namespace, NULL, state, $13, $14, reason FROM input ORDER BY n
             RETURNING 1
         ),
         woken AS (
             SELECT pg_notify('hopper_jobs',
                 json_build_object('node', $15::text, 'ns', namespace, 'queue', queue)::text)
             FROM (SELECT DISTINCT namespace, queue FROM input WHERE state = 'available') q
         )
         SELECT (SELECT count(*) FROM guard), (SELECT count(*) FROM jobs),
                (SELECT count(*) FROM events), (SELECT count(*) FROM woken)",
    )
    .bind(ids)
    .bind(namespaces)
    .bind(queues)
    .bind(kinds)
    .bind(states)
    .bind(priorities)
    .bind(available_ats)
    .bind(tags)
    .bind(bodies)
    .bind(keys)
    .bind(fingerprints)
    .bind(reasons)
    .bind(now.as_millis())
    .bind(actor)
    .bind(node)
    .bind(ckeys)
    .bind(fkeys)
    .bind(estimates)
    .execute(pool)
    .await;
    match done {
        Ok(_) => Ok(Some((out, wake))),
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some(KEY_HELD) => Ok(None),
        Err(e) => Err(db_error(e)),
    }
}
