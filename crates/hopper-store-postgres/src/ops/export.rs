//! Copying whole stores (`hopper migrate`): pages of rows out in key order, rows in with
//! existing keys skipped, so an interrupted copy resumes by running again.

use std::collections::{HashMap, HashSet};

use hopper_store::{
    IdempotencyKeyRecord, ImportBatch, JobRecord, QueueRecord, StoreError, StoreTotals,
    WorkflowRecord,
};
use hopper_types::workflow_definition::WorkflowDefinition;
use hopper_types::{JobId, JobState, Timestamp};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::db_error;
use crate::rows::{EventColumns, JobColumns, decode_event, decode_job};
use crate::write_set::WriteSet;

pub(crate) async fn export_jobs(
    conn: &mut PgConnection,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<JobRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs WHERE ($1::uuid IS NULL OR id > $1)
         ORDER BY id LIMIT $2",
    )
    .bind(after.map(|a| a.0))
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut records = Vec::with_capacity(rows.len());
    let mut at: HashMap<JobId, usize> = HashMap::new();
    for row in &rows {
        let job = decode_job(row)?;
        at.insert(job.id, records.len());
        records.push(JobRecord {
            job,
            events: Vec::new(),
        });
    }
    let ids: Vec<Uuid> = records.iter().map(|r| r.job.id.0).collect();
    let events = sqlx::query(
        "SELECT seq, job_id, from_state, to_state, at, actor, reason FROM hopper.job_events
         WHERE job_id = ANY($1) ORDER BY seq",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    for row in &events {
        let e = decode_event(row)?;
        if let Some(&i) = at.get(&e.job_id) {
            records[i].events.push(e);
        }
    }
    Ok(records)
}

pub(crate) async fn export_idempotency_keys(
    conn: &mut PgConnection,
    after: Option<(String, String)>,
    limit: usize,
) -> Result<Vec<IdempotencyKeyRecord>, StoreError> {
    let (ns, key) = after.unzip();
    let rows = sqlx::query(
        "SELECT namespace, key, job_id, fingerprint, created_at FROM hopper.idempotency_keys
         WHERE $1::text IS NULL OR (namespace, key) > ($1, $2)
         ORDER BY namespace, key LIMIT $3",
    )
    .bind(ns)
    .bind(key)
    .bind(limit as i64)
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(IdempotencyKeyRecord {
                namespace: r.try_get(0).map_err(db_error)?,
                key: r.try_get(1).map_err(db_error)?,
                job_id: JobId(r.try_get(2).map_err(db_error)?),
                fingerprint: r.try_get(3).map_err(db_error)?,
                created_at: Timestamp(r.try_get(4).map_err(db_error)?),
            })
        })
        .collect()
}

pub(crate) async fn export_queues(conn: &mut PgConnection) -> Result<Vec<QueueRecord>, StoreError> {
    crate::ops::flow::records(conn, false).await
}

pub(crate) async fn export_workflows(
    conn: &mut PgConnection,
    after: Option<JobId>,
    limit: usize,
) -> Result<Vec<WorkflowRecord>, StoreError> {
    crate::ops::workflow::export(conn, after, limit).await
}

pub(crate) async fn export_workflow_definitions(
    conn: &mut PgConnection,
) -> Result<Vec<WorkflowDefinition>, StoreError> {
    crate::ops::workflow_definition::export(conn).await
}

/// Copies a batch in. Workflow rows arrive as the source recorded them: runs keep their
/// counters and states, nothing is settled or recounted here.
pub(crate) async fn import(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    batch: ImportBatch,
) -> Result<u64, StoreError> {
    let mut cols = JobColumns::default();
    for r in &batch.jobs {
        cols.push(&r.job)?;
    }
    let new: HashSet<Uuid> = cols.insert(conn).await?.into_iter().collect();
    let mut events = EventColumns::default();
    for r in batch.jobs.iter().filter(|r| new.contains(&r.job.id.0)) {
        for e in &r.events {
            events.push(
                r.job.id,
                &r.job.namespace,
                e.from,
                e.to,
                e.at,
                &e.actor,
                &e.reason,
            );
        }
        if r.job.state == JobState::Available {
            ws.wake(&r.job.namespace, &r.job.queue);
        }
    }
    events.insert(conn).await?;

    if !batch.idempotency_keys.is_empty() {
        let k = &batch.idempotency_keys;
        sqlx::query(
            "INSERT INTO hopper.idempotency_keys (namespace, key, job_id, fingerprint, created_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::uuid[], $4::text[], $5::bigint[])
             ON CONFLICT (namespace, key) DO NOTHING",
        )
        .bind(k.iter().map(|r| r.namespace.clone()).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.key.clone()).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.job_id.0).collect::<Vec<_>>())
        .bind(k.iter().map(|r| r.fingerprint.clone()).collect::<Vec<_>>())
        .bind(
            k.iter()
                .map(|r| r.created_at.as_millis())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    for s in &batch.schedules {
        crate::ops::schedule::import(conn, s).await?;
    }
    for q in &batch.queues {
        crate::ops::flow::save_config(conn, &q.namespace, &q.name, &q.config, q.updated_at, false)
            .await?;
    }
    crate::ops::workflow::import(conn, &batch.workflows).await?;
    crate::ops::workflow_definition::import(conn, &batch.workflow_definitions).await?;
    crate::ops::workflow_definition::backfill_import(conn, &batch.backfills).await?;
    crate::ops::api_keys::import(conn, &batch.api_keys).await?;
    crate::ops::namespaces::import(conn, &batch.namespaces).await?;
    crate::ops::audit::import(conn, &batch.audit).await?;
    // After the jobs: their events take seqs first, then the cursors move the log past theirs.
    crate::ops::webhooks::import(conn, &batch.webhooks).await?;
    Ok(new.len() as u64)
}

/// Moves the identity of `table`'s `seq` column forward so that the next number it hands out
/// is above `seq`; never backward (a number handed out is never handed out again).
///
/// `setval` is not transactional: when the caller's transaction rolls back, the identity
/// stays moved, which leaves only a gap, as any rolled-back insert does. Importing is the one
/// writer by then (`hopper migrate` refuses a store a server runs on), so no concurrent
/// insert takes a number between the check and the move.
pub(crate) async fn move_identity_past(
    conn: &mut PgConnection,
    table: &'static str,
    seq: i64,
) -> Result<(), StoreError> {
    // `pg_sequence_last_value` is null until the identity first hands out a number (the
    // first is then 1), hence 0.
    sqlx::query(
        "SELECT setval(s, $2)
         FROM (SELECT pg_get_serial_sequence($1, 'seq')::regclass AS s) AS identity
         WHERE $2 > coalesce(pg_sequence_last_value(s), 0)",
    )
    .bind(table)
    .bind(seq)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn totals(conn: &mut PgConnection) -> Result<StoreTotals, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM hopper.jobs), (SELECT count(*) FROM hopper.job_events),
                (SELECT count(*) FROM hopper.idempotency_keys), (SELECT count(*) FROM hopper.queues),
                (SELECT count(*) FROM hopper.schedules), (SELECT count(*) FROM hopper.workflows),
                (SELECT count(*) FROM hopper.job_deps),
                (SELECT count(*) FROM hopper.workflow_definitions),
                (SELECT count(*) FROM hopper.workflow_backfills),
                (SELECT count(*) FROM hopper.api_keys), (SELECT count(*) FROM hopper.namespaces),
                (SELECT count(*) FROM hopper.audit_log), (SELECT count(*) FROM hopper.webhooks)",
    )
    .fetch_one(conn)
    .await
    .map_err(db_error)?;
    let get = |i: usize| -> Result<u64, StoreError> {
        Ok(row.try_get::<i64, _>(i).map_err(db_error)? as u64)
    };
    Ok(StoreTotals {
        jobs: get(0)?,
        events: get(1)?,
        idempotency_keys: get(2)?,
        queues: get(3)?,
        schedules: get(4)?,
        workflows: get(5)?,
        job_deps: get(6)?,
        workflow_definitions: get(7)?,
        backfills: get(8)?,
        api_keys: get(9)?,
        namespaces: get(10)?,
        audit: get(11)?,
        webhooks: get(12)?,
    })
}
