//! Request and answer bodies of the v1 HTTP API that `hopper-types` does not already define.
//!
//! Requests carry exactly the fields of the contract (the server refuses unknown ones); answers
//! are read leniently, ignoring fields this SDK does not know, so a newer server that adds
//! fields never breaks an older SDK.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};

use hopper_types::workflow_definition::Backfill;
use hopper_types::workflow_run::Workflow;
use hopper_types::{Job, JobId, JobState, Timestamp};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

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

/// Answers that hold a list of jobs: a batch enqueue, and a lease (jobs carrying
/// `lease_token`, `lease_seq` and `lease_expires_at`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobsBody {
    pub jobs: Vec<Job>,
}

/// A job as a lease hands it out: the job itself (which it derefs to), and for a workflow step
/// with dependencies what its parents left it.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    /// The job, with its `lease_token`, `lease_seq` and `lease_expires_at`.
    pub job: Job,
    /// For a workflow step with dependencies: each parent's result by step name (`None` for a
    /// parent that returned nothing, or that failed under a policy that let this step run).
    /// `None` for any other job.
    pub parents: Option<BTreeMap<String, Option<Box<RawValue>>>>,
    /// For a workflow step some of whose parents failed under `continue` or `ignore`: how
    /// each of them ended, by step name.
    pub failed_parents: Option<BTreeMap<String, FailedParent>>,
}

impl LeasedJob {
    /// The job alone.
    pub fn into_job(self) -> Job {
        self.job
    }
}

impl From<Job> for LeasedJob {
    fn from(job: Job) -> Self {
        LeasedJob {
            job,
            parents: None,
            failed_parents: None,
        }
    }
}

impl From<LeasedJob> for Job {
    fn from(leased: LeasedJob) -> Self {
        leased.job
    }
}

impl Deref for LeasedJob {
    type Target = Job;
    fn deref(&self) -> &Job {
        &self.job
    }
}

impl DerefMut for LeasedJob {
    fn deref_mut(&mut self) -> &mut Job {
        &mut self.job
    }
}

/// How a failed parent of a workflow step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedParent {
    /// `dead` or `cancelled`.
    pub state: JobState,
    /// Its last error, if any.
    #[serde(default)]
    pub error: Option<String>,
}

/// What a lease answer adds to a job of a workflow step; read in a second pass over the
/// answer, and only when it holds steps, so ordinary leases cost nothing more.
#[derive(Debug, Deserialize)]
struct StepExtras {
    #[serde(default)]
    parents: Option<BTreeMap<String, Option<Box<RawValue>>>>,
    #[serde(default)]
    failed_parents: Option<BTreeMap<String, FailedParent>>,
}

#[derive(Debug, Deserialize)]
struct StepExtrasBody {
    jobs: Vec<StepExtras>,
}

/// Reads a lease answer. `hopper_types::Job` holds raw JSON values, which serde cannot buffer
/// through `#[serde(flatten)]`, so the jobs are read as they are, and the fields only steps
/// carry are read in a second pass when some job is a step.
pub(crate) fn parse_lease_answer(bytes: &[u8]) -> Result<Vec<LeasedJob>, serde_json::Error> {
    let JobsBody { jobs } = serde_json::from_slice(bytes)?;
    if !jobs.iter().any(|j| j.workflow.is_some()) {
        return Ok(jobs.into_iter().map(LeasedJob::from).collect());
    }
    let StepExtrasBody { jobs: extras } = serde_json::from_slice(bytes)?;
    let mut extras = extras.into_iter();
    Ok(jobs
        .into_iter()
        .map(|job| {
            let (parents, failed_parents) = extras
                .next()
                .map_or((None, None), |e| (e.parents, e.failed_parents));
            LeasedJob {
                job,
                parents,
                failed_parents,
            }
        })
        .collect())
}

/// A workflow run with every step's job: the answer of [`crate::Client::submit_workflow`] and
/// [`crate::Client::workflow`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The run.
    pub workflow: Workflow,
    /// Every step's job, oldest first; each job's `workflow.step` names its step.
    pub steps: Vec<Job>,
}

impl WorkflowRun {
    /// The job of the step named `step`, if the run has one.
    pub fn step(&self, step: &str) -> Option<&Job> {
        self.steps
            .iter()
            .find(|j| j.workflow.as_ref().is_some_and(|w| w.step == step))
    }
}

/// A run of a workflow definition as [`crate::Client::trigger_workflow`] answers it: the run,
/// which it derefs to, and whether this trigger made it. A definition has one run per logical
/// date, so a second trigger for the same date answers the first one's run with `created:
/// false`.
#[derive(Debug, Clone)]
pub struct TriggeredRun {
    /// The run with every step's job.
    pub run: WorkflowRun,
    /// True when this trigger made the run (`201`); false when the definition already had a
    /// run for that logical date (`200`), which is the run answered.
    pub created: bool,
}

impl Deref for TriggeredRun {
    type Target = WorkflowRun;
    fn deref(&self) -> &WorkflowRun {
        &self.run
    }
}

impl From<TriggeredRun> for WorkflowRun {
    fn from(t: TriggeredRun) -> Self {
        t.run
    }
}

/// Serialized as the API's answer with `created` added: `{"created", "workflow", "steps"}`.
impl Serialize for TriggeredRun {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("created", &self.created)?;
        map.serialize_entry("workflow", &self.run.workflow)?;
        map.serialize_entry("steps", &self.run.steps)?;
        map.end()
    }
}

/// A backfill and where it stands: the answer of [`crate::Client::backfill_workflow`] and
/// [`crate::Client::backfill`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillStatus {
    /// The backfill: its definition, range, parameters and `max_running`.
    pub backfill: Backfill,
    /// Its runs so far.
    pub progress: BackfillProgress,
    /// Set by [`crate::Client::backfill_workflow`] only: `Some(true)` when the call made the
    /// backfill (`201`), `Some(false)` when the same definition and range already had one
    /// (`200`), which is the one answered. `None` from [`crate::Client::backfill`]. Never sent
    /// by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

impl BackfillStatus {
    /// True once every date has a run and none of them is still running.
    pub fn is_finished(&self) -> bool {
        let p = &self.progress;
        p.created >= p.dates && p.running == 0
    }
}

/// How far a backfill has come, by counts of its dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackfillProgress {
    /// Dates it covers.
    pub dates: u32,
    /// Dates whose run exists.
    pub created: u32,
    /// Runs running now.
    pub running: u32,
    /// Runs completed.
    pub completed: u32,
    /// Runs failed or cancelled.
    pub failed: u32,
}

/// `GET /v1/workflows/definitions` answer.
#[derive(Debug, Deserialize)]
pub(crate) struct DefinitionsBody {
    pub definitions: Vec<hopper_types::workflow_definition::WorkflowDefinition>,
}

/// One page of `GET /v1/workflows`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowPage {
    /// The runs, without their steps.
    pub workflows: Vec<Workflow>,
    /// Pass as `cursor` for the next page; none on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
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

    /// A job as the server answers it, with `extra` fields merged in.
    fn job_json(id: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut j = json!({
            "id": id, "namespace": "default", "queue": "q", "kind": "k",
            "args": {"n": 1}, "priority": 0, "state": "running", "attempt": 1,
            "max_attempts": 3, "backoff": {"kind": "fixed", "delay_ms": 10},
            "timeout_ms": 1000, "idempotency_key": null, "tags": [], "meta": {},
            "traceparent": null, "lease_seq": 1, "errors": [], "attempts": [],
            "result": null, "progress": null, "created_at": "2026-01-01T00:00:00Z",
            "available_at": "2026-01-01T00:00:00Z", "started_at": null, "finished_at": null,
            "lease_expires_at": null, "worker_id": "w", "cancel_requested": false,
            "lease_token": "tok"
        });
        if let (Some(j), Some(extra)) = (j.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                j.insert(k.clone(), v.clone());
            }
        }
        j
    }

    #[test]
    fn lease_answers_keep_what_parents_left_each_step() {
        let plain = "0190f5c6-0000-7000-8000-000000000001";
        let step = "0190f5c6-0000-7000-8000-000000000002";
        let run = "0190f5c6-0000-7000-8000-000000000003";
        let body = json!({"jobs": [
            job_json(plain, json!({})),
            job_json(step, json!({
                "workflow": {"workflow_id": run, "step": "join", "depends_on": ["a", "b"],
                             "on_failure": "cancel_dependents", "waiting_on": 0},
                "parents": {"a": {"sum": 3}, "b": null},
                "failed_parents": {"b": {"state": "dead", "error": "boom"}}
            })),
        ]});
        let jobs = parse_lease_answer(body.to_string().as_bytes()).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs[0].parents.is_none() && jobs[0].failed_parents.is_none());
        assert_eq!(
            jobs[0].id.to_string(),
            plain,
            "the job is reached through the deref"
        );
        let parents = jobs[1].parents.as_ref().unwrap();
        assert_eq!(parents["a"].as_ref().unwrap().get(), r#"{"sum":3}"#);
        assert!(parents["b"].is_none());
        assert_eq!(
            jobs[1].failed_parents.as_ref().unwrap()["b"],
            FailedParent {
                state: JobState::Dead,
                error: Some("boom".into())
            }
        );
        assert_eq!(jobs[1].workflow.as_ref().unwrap().step, "join");
        assert_eq!(jobs[1].lease_token.as_ref().unwrap().0, "tok");

        let only_plain = json!({"jobs": [job_json(plain, json!({}))]});
        let jobs = parse_lease_answer(only_plain.to_string().as_bytes()).unwrap();
        assert!(jobs[0].parents.is_none());
        assert!(parse_lease_answer(b"{\"jobs\": 3}").is_err());
    }

    #[test]
    fn workflow_runs_find_their_steps() {
        let run = "0190f5c6-0000-7000-8000-000000000003";
        let body = json!({
            "workflow": {"id": run, "namespace": "default", "name": "etl", "state": "running",
                         "steps": 1, "open_steps": 1, "failed_steps": 0,
                         "cancel_requested": false, "created_at": "2026-01-01T00:00:00Z",
                         "finished_at": null},
            "steps": [job_json("0190f5c6-0000-7000-8000-000000000001", json!({
                "workflow": {"workflow_id": run, "step": "extract",
                             "on_failure": "continue", "waiting_on": 0}
            }))]
        });
        let r: WorkflowRun = serde_json::from_value(body).unwrap();
        assert_eq!(r.workflow.name.as_deref(), Some("etl"));
        assert!(r.step("extract").is_some());
        assert!(r.step("load").is_none());
    }

    #[test]
    fn backfill_answers_are_read_and_triggered_runs_say_whether_they_are_new() {
        let id = "0190f5c6-0000-7000-8000-000000000009";
        let body = json!({
            "backfill": {"id": id, "namespace": "default", "definition": "nightly",
                         "from": "2026-01-01", "to": "2026-01-03", "params": {"n": 1},
                         "max_running": 2, "created_at": "2026-01-01T00:00:00Z",
                         "finished_at": null},
            "progress": {"dates": 3, "created": 3, "running": 0, "completed": 2, "failed": 1,
                         "later": 0}
        });
        let b: BackfillStatus = serde_json::from_value(body).unwrap();
        assert_eq!(b.backfill.id.to_string(), id);
        assert_eq!(b.backfill.max_running, 2);
        assert_eq!(b.progress.failed, 1);
        assert_eq!(b.created, None, "the server never says");
        assert!(b.is_finished());
        let shown = serde_json::to_value(&b).unwrap();
        assert!(shown.get("created").is_none());

        let run = "0190f5c6-0000-7000-8000-000000000003";
        let r: WorkflowRun = serde_json::from_value(json!({
            "workflow": {"id": run, "namespace": "default", "name": "nightly",
                         "state": "running", "steps": 0, "open_steps": 0, "failed_steps": 0,
                         "cancel_requested": false, "created_at": "2026-01-01T00:00:00Z",
                         "finished_at": null, "definition": "nightly",
                         "logical_date": "2026-01-01"},
            "steps": []
        }))
        .unwrap();
        let t = TriggeredRun {
            run: r,
            created: false,
        };
        assert_eq!(t.workflow.logical_date.as_deref(), Some("2026-01-01"));
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["created"], false);
        assert_eq!(v["workflow"]["id"], run);
        assert_eq!(v["steps"], json!([]));
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
