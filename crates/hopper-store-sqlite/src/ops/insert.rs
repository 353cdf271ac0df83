//! Enqueue: all jobs of a call or none, with idempotency keys checked and claimed atomically
//! (the single writer makes check-then-insert race-free).

use hopper_store::{Inserted, JobInsertParams, StoreError};
use hopper_types::lifecycle;
use rusqlite::{OptionalExtension, params};

use crate::rows::{insert_job, load_job, sql_error};
use crate::writer::WriteCtx;

pub(crate) fn insert_many(
    ctx: &mut WriteCtx<'_>,
    p: JobInsertParams,
) -> Result<Vec<Inserted>, StoreError> {
    let mut out = Vec::with_capacity(p.jobs.len());
    for (index, new) in p.jobs.into_iter().enumerate() {
        if let Some(key) = new.idempotency_key.clone() {
            let fingerprint = new.fingerprint();
            let existing: Option<(String, String)> = ctx
                .conn
                .prepare_cached("SELECT job_id, fingerprint FROM idempotency_keys WHERE namespace = ?1 AND key = ?2")
                .and_then(|mut s| s.query_row(params![new.namespace, key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(sql_error)?;
            if let Some((job_id, existing_fp)) = existing {
                let id = job_id.parse().map_err(|_| {
                    StoreError::Internal(format!("bad job id `{job_id}` in idempotency_keys"))
                })?;
                if existing_fp != fingerprint {
                    return Err(StoreError::IdempotencyConflict {
                        index,
                        existing: id,
                    });
                }
                let job = load_job(ctx.conn, &new.namespace, &id)?;
                out.push(Inserted {
                    job,
                    id,
                    duplicate: true,
                });
                continue;
            }
            ctx.conn
                .prepare_cached(
                    "INSERT INTO idempotency_keys (namespace, key, job_id, fingerprint, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        new.namespace,
                        key,
                        new.id.to_string(),
                        fingerprint,
                        ctx.now.as_millis()
                    ])
                })
                .map_err(sql_error)?;
        }
        let (job, change) = lifecycle::insert(new, ctx.now);
        insert_job(ctx.conn, &job)?;
        ctx.record(&job, change, &p.actor)?;
        out.push(Inserted {
            id: job.id,
            job: Some(job),
            duplicate: false,
        });
    }
    Ok(out)
}
