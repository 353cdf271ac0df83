//! [`StreamEvent`]: one job transition as the live event stream (`GET /v1/events`) shows it.
//!
//! It is a [`crate::JobEvent`] plus what subscribers filter on (namespace, queue, kind) and a
//! `type`, which is the state the job reached: subscribers ask for "every `dead`" rather than
//! for a list of reasons that lead there.

use serde::{Deserialize, Serialize};

use crate::{JobEvent, JobId, JobState, Timestamp};

/// One recorded transition with the job's queue and kind, in event-log order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamEvent {
    /// Position in the store's event log: strictly increasing, the SSE `id`, and what
    /// `Last-Event-ID` resumes after.
    pub seq: i64,
    /// The state the job reached (the same as `to`), what the `type` filter matches.
    #[serde(rename = "type")]
    pub event_type: JobState,
    /// The job.
    pub job_id: JobId,
    /// Its tenant.
    pub namespace: String,
    /// Its queue.
    pub queue: String,
    /// Its kind.
    pub kind: String,
    /// The state before; none at enqueue.
    pub from: Option<JobState>,
    /// The state after.
    pub to: JobState,
    /// When.
    pub at: Timestamp,
    /// Who: `api`, `worker:<id>`, or `system:<service>`.
    pub actor: String,
    /// What happened, in a word or two (`lease`, `complete`, `cancel_requested`, ...).
    pub reason: String,
}

impl StreamEvent {
    /// `event` as the stream shows it, with its job's tenant, queue and kind.
    pub fn new(event: JobEvent, namespace: String, queue: String, kind: String) -> StreamEvent {
        StreamEvent {
            seq: event.seq,
            event_type: event.to,
            job_id: event.job_id,
            namespace,
            queue,
            kind,
            from: event.from,
            to: event.to,
            at: event.at,
            actor: event.actor,
            reason: event.reason,
        }
    }
}
