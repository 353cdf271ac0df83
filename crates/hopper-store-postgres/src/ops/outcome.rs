//! Worker outcomes and heartbeats, fenced by lease token under the job's row lock, so a stale
//! worker on any node can never overwrite a newer lease's result.

use std::collections::HashMap;

use hopper_store::{AckOutcome, AckResults, Heartbeat, JobAck, JobHeartbeatParams, StoreError};
use hopper_types::lifecycle::{self, Applied};
use hopper_types::{Job, JobId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::db_error;
use crate::ops::lock_job;
use crate::rows::decode_job;
use crate::write_set::WriteSet;

pub(crate) async fn heartbeat(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    p: JobHeartbeatParams,
) -> Result<Heartbeat, StoreError> {
    let mut job = lock_job(conn, &p.job.namespace, &p.job.id)
        .await?
        .ok_or(StoreError::NotFound)?;
    lifecycle::heartbeat(&mut job, &p.lease_token, ws.now, p.lease_ms, p.progress)?;
    ws.updated(&job);
    Ok(Heartbeat {
        lease_expires_at: job.lease_expires_at.unwrap_or(ws.now),
        cancel_requested: job.cancel_requested,
    })
}

/// Applies each ack on its own; an ack's refusal changes nothing and does not affect the
/// others. All the batch's jobs are locked with one statement, in id order.
pub(crate) async fn ack_many(
    conn: &mut PgConnection,
    ws: &mut WriteSet,
    acks: Vec<JobAck>,
) -> Result<AckResults, StoreError> {
    let mut ids: Vec<Uuid> = acks.iter().map(|a| a.job.id.0).collect();
    ids.sort();
    ids.dedup();
    let rows = sqlx::query(
        "SELECT body, lease_ms FROM hopper.jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_error)?;
    let mut jobs: HashMap<JobId, Job> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let job = decode_job(row)?;
        jobs.insert(job.id, job);
    }
    // No await below: the random source for backoff jitter is thread-local.
    let mut rng = rand::rng();
    let mut results = Vec::with_capacity(acks.len());
    for ack in acks {
        let Some(job) = jobs
            .get_mut(&ack.job.id)
            .filter(|j| j.namespace == ack.job.namespace)
        else {
            results.push(Err(StoreError::NotFound));
            continue;
        };
        let actor = format!("worker:{}", job.worker_id.as_deref().unwrap_or("unknown"));
        let token = ack.lease_token.as_str();
        let mut next = job.clone();
        let applied = match ack.outcome {
            AckOutcome::Completed { result } => {
                lifecycle::complete(&mut next, token, ws.now, result)
            }
            AckOutcome::Failed(failure) => {
                lifecycle::fail(&mut next, token, ws.now, failure, &mut rng)
            }
            AckOutcome::Released => lifecycle::release(&mut next, token, ws.now),
            AckOutcome::Cancelled => lifecycle::cancelled(&mut next, token, ws.now),
        };
        match applied {
            Ok(Applied::Changed(change)) => {
                ws.changed(&next, change, &actor);
                *job = next.clone();
                results.push(Ok(next));
            }
            Ok(Applied::Repeated) => {
                let mut same = job.clone();
                same.duplicate = Some(true);
                results.push(Ok(same));
            }
            Err(e) => results.push(Err(e.into())),
        }
    }
    Ok(results)
}
