//! Worker outcomes and heartbeats, fenced by lease token.

use hopper_store::{AckOutcome, AckResults, Heartbeat, JobAck, JobHeartbeatParams, StoreError};
use hopper_types::lifecycle::{self, Applied};

use crate::rows::{load_row, update_row};
use crate::writer::WriteCtx;

pub(crate) fn heartbeat(
    ctx: &mut WriteCtx<'_>,
    p: JobHeartbeatParams,
) -> Result<Heartbeat, StoreError> {
    let (seq, mut job) =
        load_row(ctx.conn, &p.job.namespace, &p.job.id)?.ok_or(StoreError::NotFound)?;
    lifecycle::heartbeat(&mut job, &p.lease_token, ctx.now, p.lease_ms, p.progress)?;
    update_row(ctx.conn, seq, &job)?;
    Ok(Heartbeat {
        lease_expires_at: job.lease_expires_at.unwrap_or(ctx.now),
        cancel_requested: job.cancel_requested,
    })
}

/// Applies each ack on its own; an ack's refusal changes nothing and does not affect the others.
/// Only a storage failure fails the whole call.
pub(crate) fn ack_many(
    ctx: &mut WriteCtx<'_>,
    acks: Vec<JobAck>,
) -> Result<AckResults, StoreError> {
    let mut results = Vec::with_capacity(acks.len());
    for ack in acks {
        let Some((seq, mut job)) = load_row(ctx.conn, &ack.job.namespace, &ack.job.id)? else {
            results.push(Err(StoreError::NotFound));
            continue;
        };
        let actor = format!("worker:{}", job.worker_id.as_deref().unwrap_or("unknown"));
        let token = ack.lease_token.as_str();
        let applied = match ack.outcome {
            AckOutcome::Completed { result } => {
                lifecycle::complete(&mut job, token, ctx.now, result)
            }
            AckOutcome::Failed(failure) => {
                lifecycle::fail(&mut job, token, ctx.now, failure, ctx.rng)
            }
            AckOutcome::Released => lifecycle::release(&mut job, token, ctx.now),
            AckOutcome::Cancelled => lifecycle::cancelled(&mut job, token, ctx.now),
        };
        match applied {
            Ok(Applied::Changed(change)) => {
                update_row(ctx.conn, seq, &job)?;
                ctx.record(&job, change, &actor)?;
                results.push(Ok(job));
            }
            Ok(Applied::Repeated) => {
                job.duplicate = Some(true);
                results.push(Ok(job));
            }
            Err(e) => results.push(Err(e.into())),
        }
    }
    Ok(results)
}
