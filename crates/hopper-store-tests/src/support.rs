//! The test environment ([`Env`]) and the readable helpers every area of the suite uses.
//!
//! An [`Env`] is one fresh database, a store over it, and a [`ManualClock`] that starts at
//! [`T0`] and moves only when a test moves it. Helpers read like the semantics document:
//! `env.enqueue(json)`, `env.lease_one(queue)`, `env.complete(&leased)`, `env.history(id)`.
//! Helpers that set up a situation panic when the store misbehaves; helpers for the operation
//! under test return its `Result`, so the test asserts on it.

use std::fmt::Debug;
use std::sync::Arc;

use hopper_store::{
    AckOutcome, Heartbeat, Inserted, JobAck, JobHeartbeatParams, JobInsertParams, JobLeaseParams,
    JobListParams, JobPage, JobRef, Store, StoreError,
};
use hopper_types::lifecycle::Failure;
use hopper_types::{
    DEFAULT_NAMESPACE, EnqueueRequest, Job, JobEvent, JobId, JobState, Limits, ManualClock, NewJob,
    Timestamp,
};
use serde_json::value::RawValue;

use crate::{Harness, TestDatabase};

/// Where every test's clock starts: 2026-01-01T00:00:00Z.
pub const T0: Timestamp = Timestamp(1_767_225_600_000);

/// The default namespace.
pub const NS: &str = DEFAULT_NAMESPACE;

/// The worker the helpers lease as.
pub const WORKER: &str = "w1";

/// The lease length the helpers ask for.
pub const LEASE_MS: i64 = 30_000;

/// The actor the helpers record API calls as.
pub const API: &str = "api";

/// One test's world: a fresh database, a store over it, and the clock the store reads.
pub struct Env {
    // An option only so `reopen` can drop the old store before opening the new one.
    store: Option<Arc<dyn Store>>,
    /// The store's clock; move it with [`Env::advance`].
    pub clock: ManualClock,
    db: Box<dyn TestDatabase>,
}

/// A job leased by a helper, with its token.
#[derive(Debug, Clone)]
pub struct Leased {
    /// The job.
    pub id: JobId,
    /// Its lease token.
    pub token: String,
    /// The job as the lease returned it.
    pub job: Job,
}

/// A job brought into some state by [`Env::job_in_state`].
#[derive(Debug, Clone)]
pub struct Made {
    /// The job.
    pub id: JobId,
    /// The token of its last lease, when it was ever leased.
    pub token: Option<String>,
}

/// Everything observable about one job: what `job_get` answers (without the lease token) and
/// its events. Two equal snapshots mean nothing changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The job.
    pub id: JobId,
    /// The job as JSON, lease token left out.
    pub job: serde_json::Value,
    /// Its events.
    pub events: Vec<JobEvent>,
}

/// Parses a literal JSON text.
pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_string()).expect("valid JSON literal")
}

/// Parses JSON text into a value, to compare JSON regardless of spacing and key order.
pub fn value(raw: &RawValue) -> serde_json::Value {
    serde_json::from_str(raw.get()).expect("stored JSON is valid")
}

/// A validated job of the default namespace from an enqueue request in JSON.
pub fn new_job(json: &str) -> NewJob {
    new_job_in(NS, json)
}

/// A validated job of `namespace` from an enqueue request in JSON.
pub fn new_job_in(namespace: &str, json: &str) -> NewJob {
    let req: EnqueueRequest =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test request {json}: {e}"));
    req.validate(namespace, &Limits::default())
        .unwrap_or_else(|e| panic!("invalid test request {json}: {e}"))
}

/// A job of the default namespace.
pub fn job_ref(id: JobId) -> JobRef {
    JobRef::default_ns(id)
}

/// A job of `namespace`.
pub fn job_ref_in(namespace: &str, id: JobId) -> JobRef {
    JobRef {
        namespace: namespace.to_string(),
        id,
    }
}

/// A failure of kind `error`, message `boom`.
pub fn failure(retryable: bool) -> Failure {
    Failure {
        kind: "error".to_string(),
        message: "boom".to_string(),
        retryable,
        retry_in_ms: None,
    }
}

/// Lease parameters for [`WORKER`] on `queues` of the default namespace.
pub fn lease_params(queues: &[&str], max_jobs: usize) -> JobLeaseParams {
    JobLeaseParams {
        namespace: NS.to_string(),
        queues: queues.iter().map(|q| q.to_string()).collect(),
        worker_id: WORKER.to_string(),
        max_jobs,
        lease_ms: LEASE_MS,
    }
}

/// List parameters for the default namespace, everything else open, pages of 500.
pub fn list_params() -> JobListParams {
    JobListParams {
        namespace: NS.to_string(),
        limit: 500,
        ..Default::default()
    }
}

/// Asserts the result is [`StoreError::InvalidState`] naming `state`.
#[track_caller]
pub fn assert_invalid_state<T: Debug>(r: Result<T, StoreError>, state: JobState) {
    match r {
        Err(StoreError::InvalidState { state: s, .. }) if s == state => {}
        other => panic!("expected InvalidState {{ state: {state} }}, got {other:?}"),
    }
}

/// Asserts the result is [`StoreError::LeaseLost`].
#[track_caller]
pub fn assert_lease_lost<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::LeaseLost) => {}
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}

/// Asserts the result is [`StoreError::NotFound`].
#[track_caller]
pub fn assert_not_found<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Asserts `lo <= v <= hi`.
#[track_caller]
pub fn assert_between(what: &str, v: i64, lo: i64, hi: i64) {
    assert!(
        (lo..=hi).contains(&v),
        "{what}: expected {lo}..={hi}, got {v}"
    );
}

/// `job` serialized for comparison, without the fields that depend on who asks.
fn job_value(job: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(job).expect("a job serializes");
    if let Some(o) = v.as_object_mut() {
        o.remove("lease_token");
        o.remove("duplicate");
    }
    v
}

/// Asserts two jobs are the same, field for field (lease token and duplicate flag aside).
#[track_caller]
pub fn assert_same_job(got: &Job, want: &Job) {
    assert_eq!(job_value(got), job_value(want), "job {}", want.id);
}

impl Env {
    /// A fresh database of `h`, a store over it, the clock at [`T0`].
    pub async fn new(h: &dyn Harness) -> Env {
        let db = h.new_database().await;
        let clock = ManualClock::new(T0);
        let store = db
            .open(Arc::new(clock.clone()))
            .await
            .expect("open a store over a fresh database");
        Env {
            store: Some(store),
            clock,
            db,
        }
    }

    /// The store under test.
    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("store is open")
    }

    /// The store under test, to hand to spawned tasks.
    pub fn store_arc(&self) -> Arc<dyn Store> {
        self.store.clone().expect("store is open")
    }

    /// Closes the store, drops it, and opens the same database again (a restart).
    pub async fn reopen(&mut self) {
        let old = self.store.take().expect("store is open");
        old.close().await.expect("close");
        assert_eq!(
            Arc::strong_count(&old),
            1,
            "the suite holds no other handle on the store"
        );
        drop(old);
        let store = self
            .db
            .open(Arc::new(self.clock.clone()))
            .await
            .expect("reopen the same database");
        self.store = Some(store);
    }

    /// The clock's time.
    pub fn now(&self) -> Timestamp {
        hopper_types::Clock::now(&self.clock)
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
    }

    /// Sets the clock to `t` (tests only move it forward).
    pub fn set_time(&self, t: Timestamp) {
        assert!(t >= self.now(), "the suite never moves time backwards");
        self.clock.set(t);
    }

    // ----- insert and read -----

    /// `job_insert_many` as the API would call it.
    pub async fn insert(&self, jobs: Vec<NewJob>) -> Result<Vec<Inserted>, StoreError> {
        self.store()
            .job_insert_many(JobInsertParams {
                jobs,
                actor: API.to_string(),
            })
            .await
    }

    /// Inserts one job and returns it as stored.
    pub async fn insert_one(&self, job: NewJob) -> Job {
        let id = job.id;
        let mut r = self.insert(vec![job]).await.expect("insert");
        assert_eq!(r.len(), 1, "one answer per job");
        let ins = r.pop().unwrap();
        assert!(!ins.duplicate, "a new job is not a duplicate");
        assert_eq!(ins.id, id, "the store keeps the id assigned before insert");
        ins.job.expect("a new job is returned")
    }

    /// Enqueues a job of the default namespace from a JSON request.
    pub async fn enqueue(&self, json: &str) -> Job {
        self.insert_one(new_job(json)).await
    }

    /// Enqueues a job of `namespace` from a JSON request.
    pub async fn enqueue_in(&self, namespace: &str, json: &str) -> Job {
        self.insert_one(new_job_in(namespace, json)).await
    }

    /// `job_get` in the default namespace.
    pub async fn try_get(&self, id: JobId) -> Result<Job, StoreError> {
        self.store().job_get(&job_ref(id)).await
    }

    /// The job, which must exist.
    pub async fn get(&self, id: JobId) -> Job {
        self.try_get(id)
            .await
            .unwrap_or_else(|e| panic!("job {id}: {e:?}"))
    }

    /// The job's state.
    pub async fn state(&self, id: JobId) -> JobState {
        self.get(id).await.state
    }

    /// `job_list`.
    pub async fn list(&self, params: &JobListParams) -> JobPage {
        self.store().job_list(params).await.expect("list")
    }

    /// Pages through a listing `limit` jobs at a time; returns every id seen, in order.
    pub async fn list_all(&self, params: &JobListParams) -> Vec<JobId> {
        let mut params = params.clone();
        let mut ids = Vec::new();
        loop {
            let page = self.list(&params).await;
            let n = page.jobs.len();
            assert!(n <= params.limit, "a page holds at most limit jobs");
            assert_newest_first(&page, params.before);
            ids.extend(page.jobs.iter().map(|j| j.id));
            match page.next_cursor {
                Some(c) => {
                    assert_eq!(n, params.limit, "only a full page has a next cursor");
                    assert_eq!(Some(c), ids.last().copied(), "the cursor is the last id");
                    params.before = Some(c);
                }
                None => return ids,
            }
        }
    }

    /// The job's events, oldest first.
    pub async fn events(&self, id: JobId) -> Vec<JobEvent> {
        self.store()
            .job_events(&job_ref(id))
            .await
            .unwrap_or_else(|e| panic!("events of {id}: {e:?}"))
    }

    /// The job's events as `from -> to (reason) by actor` lines, every `system:*` actor shown
    /// as `system` (service names are the backend's choice).
    pub async fn history(&self, id: JobId) -> Vec<String> {
        self.events(id)
            .await
            .iter()
            .map(|e| {
                assert_eq!(e.job_id, id, "an event names its job");
                let actor = if e.actor.starts_with("system:") {
                    "system"
                } else {
                    e.actor.as_str()
                };
                format!(
                    "{} -> {} ({}) by {}",
                    e.from.map_or("-", |s| s.as_str()),
                    e.to,
                    e.reason,
                    actor
                )
            })
            .collect()
    }

    /// Everything observable about the job now.
    pub async fn snapshot(&self, id: JobId) -> Snapshot {
        Snapshot {
            id,
            job: job_value(&self.get(id).await),
            events: self.events(id).await,
        }
    }

    /// Asserts nothing observable about the job changed since `before`.
    pub async fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        let now = self.snapshot(before.id).await;
        assert_eq!(now.job, before.job, "{what}: the job changed");
        assert_eq!(now.events, before.events, "{what}: events were added");
    }

    /// Asserts the job is gone: not found, no events, not listed.
    pub async fn assert_gone(&self, id: JobId) {
        assert_not_found(self.try_get(id).await);
        match self.store().job_events(&job_ref(id)).await {
            Err(StoreError::NotFound) => {}
            Ok(v) if v.is_empty() => {}
            other => panic!("events of removed job {id}: expected none, got {other:?}"),
        }
        assert!(
            !self.list_all(&list_params()).await.contains(&id),
            "removed job {id} is still listed"
        );
    }

    // ----- leases and outcomes -----

    /// `job_lease_many` with full parameters.
    pub async fn lease_with(&self, params: JobLeaseParams) -> Vec<Job> {
        let max = params.max_jobs;
        let jobs = self.store().job_lease_many(params).await.expect("lease");
        assert!(jobs.len() <= max, "at most max_jobs are leased");
        for j in &jobs {
            assert_eq!(j.state, JobState::Running, "a leased job is running");
            assert!(j.lease_token.is_some(), "a leased job carries its token");
        }
        jobs
    }

    /// Leases up to `max_jobs` from `queues` as [`WORKER`] for [`LEASE_MS`].
    pub async fn lease(&self, queues: &[&str], max_jobs: usize) -> Vec<Job> {
        self.lease_with(lease_params(queues, max_jobs)).await
    }

    /// Leases exactly one job from `queue`.
    pub async fn lease_one(&self, queue: &str) -> Leased {
        let mut jobs = self.lease(&[queue], 1).await;
        assert_eq!(jobs.len(), 1, "expected one job to lease in {queue}");
        leased(jobs.pop().unwrap())
    }

    /// Enqueues a job and leases it (it must be the next job of its queue).
    pub async fn enqueue_and_lease(&self, json: &str) -> Leased {
        let job = self.enqueue(json).await;
        let l = self.lease_one(&job.queue).await;
        assert_eq!(l.id, job.id, "the job just enqueued is leased");
        l
    }

    /// One worker outcome through `job_ack_many`.
    pub async fn ack(
        &self,
        id: JobId,
        token: &str,
        outcome: AckOutcome,
    ) -> Result<Job, StoreError> {
        self.ack_in(NS, id, token, outcome).await
    }

    /// One worker outcome for a job of `namespace`.
    pub async fn ack_in(
        &self,
        namespace: &str,
        id: JobId,
        token: &str,
        outcome: AckOutcome,
    ) -> Result<Job, StoreError> {
        let mut r = self
            .store()
            .job_ack_many(vec![JobAck {
                job: job_ref_in(namespace, id),
                lease_token: token.to_string(),
                outcome,
            }])
            .await
            .expect("the ack call itself succeeds");
        assert_eq!(r.len(), 1, "one result per ack");
        r.pop().unwrap()
    }

    /// Completes with result `{"ok":true}`.
    pub async fn complete(&self, l: &Leased) -> Result<Job, StoreError> {
        self.ack(
            l.id,
            &l.token,
            AckOutcome::Completed {
                result: Some(raw(r#"{"ok":true}"#)),
            },
        )
        .await
    }

    /// Fails with kind `error`, message `boom`.
    pub async fn fail(&self, l: &Leased, retryable: bool) -> Result<Job, StoreError> {
        self.fail_with(l, failure(retryable)).await
    }

    /// Fails with the given failure.
    pub async fn fail_with(&self, l: &Leased, f: Failure) -> Result<Job, StoreError> {
        self.ack(l.id, &l.token, AckOutcome::Failed(f)).await
    }

    /// Releases the lease.
    pub async fn release(&self, l: &Leased) -> Result<Job, StoreError> {
        self.ack(l.id, &l.token, AckOutcome::Released).await
    }

    /// Reports that the handler honoured a cancel.
    pub async fn report_cancelled(&self, l: &Leased) -> Result<Job, StoreError> {
        self.ack(l.id, &l.token, AckOutcome::Cancelled).await
    }

    /// Heartbeats without progress.
    pub async fn heartbeat(
        &self,
        l: &Leased,
        lease_ms: Option<i64>,
    ) -> Result<Heartbeat, StoreError> {
        self.store()
            .job_heartbeat(JobHeartbeatParams {
                job: job_ref(l.id),
                lease_token: l.token.clone(),
                lease_ms,
                progress: None,
            })
            .await
    }

    // ----- API and maintenance -----

    /// Cancels as [`API`].
    pub async fn cancel(&self, id: JobId) -> Result<Job, StoreError> {
        self.store().job_cancel(&job_ref(id), API).await
    }

    /// Retries as [`API`].
    pub async fn retry(&self, id: JobId) -> Result<Job, StoreError> {
        self.store().job_retry(&job_ref(id), API).await
    }

    /// Deletes.
    pub async fn delete(&self, id: JobId) -> Result<(), StoreError> {
        self.store().job_delete(&job_ref(id)).await
    }

    /// Promotes every due job; returns how many.
    pub async fn promote(&self) -> u64 {
        self.store().job_promote_due(1000).await.expect("promote")
    }

    /// Rescues every expired or timed-out lease; returns how many, after checking that each
    /// returned job is as the store now holds it.
    pub async fn rescue(&self) -> u64 {
        let rescued = self.store().job_rescue_expired(1000).await.expect("rescue");
        for job in &rescued {
            assert_same_job(job, &self.get(job.id).await);
        }
        rescued.len() as u64
    }

    /// Brings a new job of `queue` into `state` by the ordinary triggers. `queue` must hold no
    /// other available job. Retryable jobs wait a fixed 60 s backoff; scheduled ones 60 s.
    pub async fn job_in_state(&self, state: JobState, queue: &str) -> Made {
        let plain = format!(
            r#"{{"kind":"k","queue":"{queue}","backoff":{{"kind":"fixed","delay_ms":60000}}}}"#
        );
        let made = |id, token: Option<&Leased>| Made {
            id,
            token: token.map(|l| l.token.clone()),
        };
        let m = match state {
            JobState::Pending => panic!("no Store call creates pending jobs yet (workflows)"),
            JobState::Scheduled => {
                let j = self
                    .enqueue(&format!(
                        r#"{{"kind":"k","queue":"{queue}","delay_ms":60000}}"#
                    ))
                    .await;
                made(j.id, None)
            }
            JobState::Available => made(self.enqueue(&plain).await.id, None),
            JobState::Running => {
                let l = self.enqueue_and_lease(&plain).await;
                made(l.id, Some(&l))
            }
            JobState::Retryable => {
                let l = self.enqueue_and_lease(&plain).await;
                self.fail(&l, true).await.expect("fail");
                made(l.id, Some(&l))
            }
            JobState::Completed => {
                let l = self.enqueue_and_lease(&plain).await;
                self.complete(&l).await.expect("complete");
                made(l.id, Some(&l))
            }
            JobState::Dead => {
                let l = self.enqueue_and_lease(&plain).await;
                self.fail(&l, false).await.expect("fail");
                made(l.id, Some(&l))
            }
            JobState::Cancelled => {
                let j = self.enqueue(&plain).await;
                self.cancel(j.id).await.expect("cancel");
                made(j.id, None)
            }
        };
        assert_eq!(self.state(m.id).await, state, "job_in_state({state})");
        m
    }
}

/// Asserts a page is in strictly decreasing id order, every id below `before` (exclusive).
#[track_caller]
pub fn assert_newest_first(page: &JobPage, before: Option<JobId>) {
    let ids: Vec<JobId> = page.jobs.iter().map(|j| j.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "a page is newest first, without repeats: {ids:?}"
    );
    if let (Some(b), Some(first)) = (before, ids.first()) {
        assert!(
            *first < b,
            "`before` is exclusive: got {first} on a page before {b}"
        );
    }
}

/// Wraps a job returned by a lease.
pub fn leased(job: Job) -> Leased {
    Leased {
        id: job.id,
        token: job
            .lease_token
            .clone()
            .expect("a leased job carries its token")
            .0,
        job,
    }
}

/// Every state a job can be brought into today (all but `pending`, which needs workflows).
pub const REACHABLE_STATES: [JobState; 7] = [
    JobState::Scheduled,
    JobState::Available,
    JobState::Running,
    JobState::Retryable,
    JobState::Completed,
    JobState::Dead,
    JobState::Cancelled,
];
