//! Copying rows in from another store (`hopper migrate`): jobs exactly as they were (state,
//! attempts, lease tokens and all) with their histories, idempotency keys, queue settings,
//! schedules, workflow runs (with their edges), definitions and backfills, API keys, namespace
//! quotas, the audit log (each entry at its own seq) and webhooks (with their cursors).
//!
//! A row whose key is already present is skipped, never overwritten, so an interrupted copy
//! can simply run again. Imported jobs bypass the lifecycle on purpose: they are not changing
//! state, they are arriving in the state another store already recorded, with the events that
//! got them there. The counts still learn of them, and queues that gained available jobs are
//! woken, like after any other commit.

use hopper_store::{ImportBatch, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::rows::{insert_event, insert_job, sql_error};
use crate::writer::WriteCtx;

/// Inserts what is new of `batch`, all in the caller's one savepoint; returns how many jobs
/// were new.
pub(crate) fn import(ctx: &mut WriteCtx<'_>, batch: ImportBatch) -> Result<u64, StoreError> {
    let mut new_jobs = 0;
    for rec in &batch.jobs {
        let job = &rec.job;
        // Ids are unique across namespaces (the column is UNIQUE), so presence is by id alone.
        let present = ctx
            .conn
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row(params![job.id.to_string()], |_| Ok(()))
                    .optional()
            })
            .map_err(sql_error)?
            .is_some();
        if present {
            // Its events are skipped with it: they are already here, or the job here has a
            // history of its own that foreign events must not be mixed into.
            continue;
        }
        if let Some(e) = rec.events.iter().find(|e| e.job_id != job.id) {
            return Err(StoreError::InvalidArgument {
                field: "jobs.events.job_id".into(),
                message: format!("event {} of job {} names job {}", e.seq, job.id, e.job_id),
            });
        }
        insert_job(ctx.conn, job)?;
        // Events get new seqs here, in the order given (oldest first), so a job's history
        // keeps its order and later events still sort after every imported one.
        for e in &rec.events {
            insert_event(ctx.conn, job, e.from, e.to, e.at, &e.actor, &e.reason)?;
        }
        ctx.record_import(job);
        new_jobs += 1;
    }
    for k in &batch.idempotency_keys {
        ctx.conn
            .prepare_cached(
                "INSERT INTO idempotency_keys (namespace, key, job_id, fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (namespace, key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    k.namespace,
                    k.key,
                    k.job_id.to_string(),
                    k.fingerprint,
                    k.created_at.as_millis()
                ])
            })
            .map_err(sql_error)?;
    }
    for s in &batch.schedules {
        crate::ops::schedule::import(ctx.conn, s)?;
    }
    for q in &batch.queues {
        let exists = ctx
            .conn
            .prepare_cached("SELECT 1 FROM queues WHERE namespace = ?1 AND name = ?2")
            .and_then(|mut s| s.exists(params![q.namespace, q.name]))
            .map_err(sql_error)?;
        if !exists {
            crate::ops::flow::save_config(
                ctx.conn,
                &q.namespace,
                &q.name,
                &q.config,
                q.updated_at,
            )?;
        }
    }
    crate::ops::workflow::import(ctx.conn, &batch.workflows)?;
    crate::ops::workflow_definition::import(
        ctx.conn,
        &batch.workflow_definitions,
        &batch.backfills,
    )?;
    crate::ops::api_keys::import(ctx.conn, &batch.api_keys)?;
    crate::ops::namespaces::import(ctx.conn, &batch.namespaces)?;
    crate::ops::audit::import(ctx.conn, &batch.audit)?;
    // After the jobs: their events take seqs first, then the cursors move the log past theirs.
    crate::ops::webhooks::import(ctx.conn, &batch.webhooks)?;
    Ok(new_jobs)
}
