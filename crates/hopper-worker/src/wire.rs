//! Request and answer bodies of the v1 HTTP API that `hopper-types` does not already define.
//!
//! Requests carry exactly the fields of the contract (the server refuses unknown ones); answers
//! are read leniently, ignoring fields this SDK does not know, so a newer server that adds
//! fields never breaks an older SDK.

use std::collections::BTreeMap;

use hopper_types::{Job, JobId, JobState, Timestamp};
use serde::{Deserialize, Serialize};

/// `POST /v1/leases`.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRequest {
    /// Queues to lease from, served as one (1..100 names).
    pub queues: Vec<String>,
    /// Recorded on each leased job; shown by `GET /v1/workers`.
    pub worker_id: String,
    /// Most jobs to take (1..1000).
    pub max_jobs: u32,
    /// Lease length (200..3,600,000 ms).
    pub lease_ms: u64,
    /// How long to wait for a job when none is available (0..60,000 ms).
    pub wait_ms: u64,
}

/// The answer to a lease: jobs carrying `lease_token`, `lease_seq` and `lease_expires_at`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobsBody {
    pub jobs: Vec<Job>,
}

/// The answer to `POST /v1/jobs/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HeartbeatAnswer {
    /// The lease's new end.
    pub lease_expires_at: Timestamp,
    /// Someone asked to cancel the job: stop and report `cancelled`.
    pub cancel_requested: bool,
}

/// The error a worker reports for a failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureReport {
    /// What went wrong (the server truncates past 8 KiB).
    pub message: String,
    /// Short machine-readable kind: `error`, `timeout`, `invalid_args`, ...
    pub kind: String,
    /// False sends the job to `dead` whatever attempts are left.
    pub retryable: bool,
}

/// One outcome of `POST /v1/acks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    /// The job.
    pub id: JobId,
    /// The token it was leased with.
    pub lease_token: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AckOutcome,
}

/// The outcomes a worker reports, as `POST /v1/acks` spells them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AckOutcome {
    /// The handler succeeded.
    Completed {
        /// What it returned.
        result: serde_json::Value,
    },
    /// The handler failed.
    Failed {
        /// Why.
        error: FailureReport,
        /// Retry after this long instead of the job's backoff.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<u64>,
    },
    /// Hand the job back uncounted.
    Released,
    /// The handler honoured a cancel.
    Cancelled,
}

/// The result of one ack, in request order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AckResult {
    /// The job.
    pub id: JobId,
    /// Whether the outcome was recorded.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The `error` object of an error answer or of a refused ack.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ErrorDetail {
    /// Wire code (`lease_lost`, `invalid_state`, ...).
    pub code: String,
    /// For a human.
    #[serde(default)]
    pub message: String,
    /// The offending field, if any.
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AckResultsBody {
    pub results: Vec<AckResult>,
}

/// Filters and paging of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListJobs {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only these states (any of them).
    pub states: Vec<JobState>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only jobs with this tag.
    pub tag: Option<String>,
    /// Substring of kind, id or a tag.
    pub q: Option<String>,
    /// Page size (1..500; the server's default is 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListJobs {
    /// The query string pairs; `state` repeats once per state.
    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(v) = &self.queue {
            q.push(("queue", v.clone()));
        }
        for s in &self.states {
            q.push(("state", s.as_str().to_string()));
        }
        if let Some(v) = &self.kind {
            q.push(("kind", v.clone()));
        }
        if let Some(v) = &self.tag {
            q.push(("tag", v.clone()));
        }
        if let Some(v) = &self.q {
            q.push(("q", v.clone()));
        }
        if let Some(v) = self.limit {
            q.push(("limit", v.to_string()));
        }
        if let Some(v) = &self.cursor {
            q.push(("cursor", v.clone()));
        }
        q
    }
}

/// One page of `GET /v1/jobs`, newest first.
#[derive(Debug, Clone, Deserialize)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Pass as [`ListJobs::cursor`] for the next page; none on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A queue as `GET /v1/queues` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// Paused queues hand out no leases.
    pub paused: bool,
    /// Jobs per state.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Age of the oldest available job, if any.
    #[serde(default)]
    pub oldest_available_age_ms: Option<i64>,
    /// Its configuration: pause, retention, limits, lease policy.
    #[serde(default)]
    pub config: hopper_types::QueueConfig,
}

impl QueueInfo {
    /// How many jobs of the queue are in `state` (0 when the server listed none).
    pub fn count(&self, state: JobState) -> u64 {
        self.counts.get(state.as_str()).copied().unwrap_or(0)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueuesBody {
    pub queues: Vec<QueueInfo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CountBody {
    pub count: u64,
}

/// A worker as `GET /v1/workers` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WorkerInfo {
    /// The `worker_id` of its leases.
    pub id: String,
    /// Queues it holds jobs of.
    #[serde(default)]
    pub queues: Vec<String>,
    /// Jobs it holds.
    #[serde(default)]
    pub running: u64,
    /// When it was last seen.
    #[serde(default)]
    pub last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WorkersBody {
    pub workers: Vec<WorkerInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn acks_serialize_as_the_contract_spells_them() {
        let id: JobId = "0190f5c6-0000-7000-8000-000000000001".parse().unwrap();
        let acks = vec![
            Ack {
                id,
                lease_token: "t1".into(),
                outcome: AckOutcome::Completed {
                    result: json!({"ok": 1}),
                },
            },
            Ack {
                id,
                lease_token: "t2".into(),
                outcome: AckOutcome::Failed {
                    error: FailureReport {
                        message: "boom".into(),
                        kind: "error".into(),
                        retryable: true,
                    },
                    retry_in_ms: None,
                },
            },
            Ack {
                id,
                lease_token: "t3".into(),
                outcome: AckOutcome::Released,
            },
        ];
        let v = serde_json::to_value(&acks).unwrap();
        assert_eq!(
            v,
            json!([
                {"id": id.to_string(), "lease_token": "t1", "outcome": "completed", "result": {"ok": 1}},
                {"id": id.to_string(), "lease_token": "t2", "outcome": "failed",
                 "error": {"message": "boom", "kind": "error", "retryable": true}},
                {"id": id.to_string(), "lease_token": "t3", "outcome": "released"},
            ])
        );
    }

    #[test]
    fn list_query_repeats_state() {
        let l = ListJobs {
            queue: Some("q".into()),
            states: vec![JobState::Dead, JobState::Cancelled],
            limit: Some(10),
            ..Default::default()
        };
        assert_eq!(
            l.query_pairs(),
            vec![
                ("queue", "q".to_string()),
                ("state", "dead".to_string()),
                ("state", "cancelled".to_string()),
                ("limit", "10".to_string()),
            ]
        );
    }

    #[test]
    fn answers_ignore_unknown_fields() {
        let q: QueueInfo = serde_json::from_value(json!({
            "name": "default", "paused": false, "counts": {"available": 3}, "new_field": 1
        }))
        .unwrap();
        assert_eq!(q.count(JobState::Available), 3);
        assert_eq!(q.count(JobState::Dead), 0);
    }
}
