//! [`Client`]: every call of the v1 HTTP API as an async method, for producers, operators and workers.
//!
//! The client is cheap to clone (clones share one connection pool) and holds no state besides
//! the pool, so one client can serve a whole process.

use std::sync::Arc;
use std::time::Duration;

use hopper_types::schedule::{ScheduleRequest, ScheduleView};
use hopper_types::workflow::{StepRequest, WorkflowRequest};
use hopper_types::workflow_definition::{
    BackfillRequest, DefinitionRequest, TriggerRequest, WorkflowDefinition,
};
use hopper_types::workflow_run::{Workflow, WorkflowId, WorkflowState};
use hopper_types::{EnqueueRequest, Job, JobId, JobState};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Error, ErrorCode};
use crate::events::{EventFilter, EventStream};
use crate::retry::RetryPolicy;
use crate::wire::*;

/// The server's address when none is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7480";

/// Longest wait for any answer but a long poll's. Generous: a server under a write burst may
/// take seconds, and a caller that wants less wraps the call in its own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A long poll may legitimately take `wait_ms`; this much more means the server is gone.
const LONG_POLL_SLACK: Duration = Duration::from_secs(30);

/// A connection to one Hopper server.
#[derive(Debug, Clone)]
pub struct Client {
    /// Shared connection pool (reqwest's client is itself a handle).
    http: reqwest::Client,
    /// The server's base URL, every path is appended to it.
    base: Arc<Url>,
    /// How enqueues are retried; they are safe to retry because each carries a key.
    enqueue_retry: RetryPolicy,
    /// Credentials sent with every call (also on the event stream's own connection).
    headers: reqwest::header::HeaderMap,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:7480`).
    pub fn new(base_url: impl AsRef<str>) -> Result<Client, Error> {
        Client::with_credentials(base_url, None, None)
    }

    /// A client that sends `key` as `Authorization: Bearer <key>` on every call and acts in
    /// `namespace` (the `X-Hopper-Namespace` header) when given; without a namespace a key
    /// scoped to one namespace acts in it, any other in `default`.
    pub fn with_credentials(
        base_url: impl AsRef<str>,
        key: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Client, Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        let invalid = |what: &str| Error::InvalidUrl {
            url: base_url.as_ref().to_string(),
            reason: format!("the {what} cannot be sent in a header"),
        };
        if let Some(key) = key {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .map_err(|_| invalid("API key"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Some(ns) = namespace {
            let v = reqwest::header::HeaderValue::from_str(ns).map_err(|_| invalid("namespace"))?;
            headers.insert("x-hopper-namespace", v);
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("hopper-worker/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers.clone())
            .build()
            .map_err(Error::Transport)?;
        let mut client = Client::with_http(http, base_url)?;
        client.headers = headers;
        Ok(client)
    }

    /// A client that sends through `http` (to share a pool, or set TLS and proxy options).
    pub fn with_http(http: reqwest::Client, base_url: impl AsRef<str>) -> Result<Client, Error> {
        let raw = base_url.as_ref();
        let invalid = |reason: &str| Error::InvalidUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let base = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("the URL needs a host"));
        }
        Ok(Client {
            http,
            base: Arc::new(base),
            enqueue_retry: RetryPolicy::default(),
            headers: reqwest::header::HeaderMap::new(),
        })
    }

    /// Replaces how enqueues are retried on transport errors and 503s.
    pub fn with_enqueue_retry(mut self, policy: RetryPolicy) -> Client {
        self.enqueue_retry = policy;
        self
    }

    /// The HTTP client every call goes through (credentials included).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /v1/events`: subscribes to the live stream of job transitions that `filter`
    /// selects. Fails at once when the server refuses the filter or cannot be reached; after
    /// that, [`EventStream::next`] reconnects by itself, resuming after the last event.
    pub async fn events(&self, filter: &EventFilter) -> Result<EventStream, Error> {
        EventStream::open(
            &self.base,
            concat!("hopper-worker/", env!("CARGO_PKG_VERSION")),
            &self.headers,
            filter,
        )
        .await
    }

    // ---- producers -------------------------------------------------------------------------

    /// `POST /v1/jobs`: enqueues one job and returns it (`duplicate: Some(true)` when its
    /// idempotency key matched an existing job).
    ///
    /// A job without an `idempotency_key` gets a fresh random one, which makes retrying safe:
    /// transport errors and `503 unavailable` are retried per the client's [`RetryPolicy`].
    /// With feature `otel`, the current span's trace context goes along as the `traceparent`
    /// header, which the server gives the job unless it names a `traceparent` of its own.
    pub async fn enqueue(&self, mut req: EnqueueRequest) -> Result<Job, Error> {
        if req.idempotency_key.is_none() {
            req.idempotency_key = Some(Uuid::new_v4().to_string());
        }
        let body = encode(&req)?;
        let url = self.url(&["v1", "jobs"]);
        let traceparent = current_traceparent();
        self.enqueue_retry
            .run("enqueue", || {
                self.call(with_traceparent(
                    self.request(Method::POST, url.clone()).body(body.clone()),
                    traceparent.as_deref(),
                ))
            })
            .await
    }

    /// `POST /v1/jobs/batch`: enqueues 1..1000 jobs atomically, answered in request order.
    /// Jobs without a key get one each, so the whole batch is retried safely like
    /// [`Client::enqueue`].
    pub async fn enqueue_batch(&self, mut jobs: Vec<EnqueueRequest>) -> Result<Vec<Job>, Error> {
        for j in &mut jobs {
            if j.idempotency_key.is_none() {
                j.idempotency_key = Some(Uuid::new_v4().to_string());
            }
        }
        #[derive(Serialize)]
        struct Batch<'a> {
            jobs: &'a [EnqueueRequest],
        }
        let body = encode(&Batch { jobs: &jobs })?;
        let url = self.url(&["v1", "jobs", "batch"]);
        let traceparent = current_traceparent();
        let answer: JobsBody = self
            .enqueue_retry
            .run("batch enqueue", || {
                self.call(with_traceparent(
                    self.request(Method::POST, url.clone()).body(body.clone()),
                    traceparent.as_deref(),
                ))
            })
            .await?;
        Ok(answer.jobs)
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn get(&self, id: JobId) -> Result<Job, Error> {
        let url = self.url(&["v1", "jobs", &id.to_string()]);
        self.call(self.http.get(url)).await
    }

    /// `GET /v1/jobs`: one page of jobs matching `filter`, newest first.
    pub async fn list(&self, filter: &ListJobs) -> Result<JobPage, Error> {
        let url = self.url(&["v1", "jobs"]);
        self.call(self.http.get(url).query(&filter.query_pairs()))
            .await
    }

    /// `POST /v1/jobs/{id}/cancel`: a waiting job ends `cancelled`, a running one is flagged.
    pub async fn cancel(&self, id: JobId) -> Result<Job, Error> {
        self.post_empty(&["v1", "jobs", &id.to_string(), "cancel"])
            .await
    }

    /// `POST /v1/jobs/{id}/retry`: a finished job runs again from scratch, a waiting one now.
    pub async fn retry(&self, id: JobId) -> Result<Job, Error> {
        self.post_empty(&["v1", "jobs", &id.to_string(), "retry"])
            .await
    }

    /// `DELETE /v1/jobs/{id}`: removes a finished job.
    pub async fn delete(&self, id: JobId) -> Result<(), Error> {
        let url = self.url(&["v1", "jobs", &id.to_string()]);
        self.call_no_body(self.http.delete(url)).await
    }

    // ---- queues and workers ----------------------------------------------------------------

    /// `GET /v1/queues`: every queue with jobs or configuration.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, Error> {
        let answer: QueuesBody = self
            .call(self.http.get(self.url(&["v1", "queues"])))
            .await?;
        Ok(answer.queues)
    }

    /// `POST /v1/queues/{name}/pause`: no new leases from the queue.
    pub async fn pause_queue(&self, name: &str) -> Result<QueueInfo, Error> {
        self.post_empty(&["v1", "queues", name, "pause"]).await
    }

    /// `GET /v1/queues/{name}`: one queue with its counts and configuration.
    pub async fn queue(&self, name: &str) -> Result<QueueInfo, Error> {
        self.call(self.http.get(self.url(&["v1", "queues", name])))
            .await
    }

    /// `PUT /v1/queues/{name}`: replaces the queue's whole configuration.
    pub async fn configure_queue(
        &self,
        name: &str,
        config: &hopper_types::QueueConfig,
    ) -> Result<QueueInfo, Error> {
        let body = encode(config)?;
        self.call(
            self.request(Method::PUT, self.url(&["v1", "queues", name]))
                .body(body),
        )
        .await
    }

    /// `GET /v1/jobs/{id}/explain`: why the job is not running (yet), as the server's JSON.
    pub async fn explain(&self, id: JobId) -> Result<serde_json::Value, Error> {
        let id = id.to_string();
        self.call(self.http.get(self.url(&["v1", "jobs", &id, "explain"])))
            .await
    }

    /// `POST /v1/queues/{name}/resume`.
    pub async fn resume_queue(&self, name: &str) -> Result<QueueInfo, Error> {
        self.post_empty(&["v1", "queues", name, "resume"]).await
    }

    /// `POST /v1/queues/{name}/retry`: retries every dead job of the queue; returns how many.
    pub async fn retry_queue(&self, name: &str) -> Result<u64, Error> {
        let answer: CountBody = self.post_empty(&["v1", "queues", name, "retry"]).await?;
        Ok(answer.count)
    }

    /// `DELETE /v1/queues/{name}/jobs?state=S`: deletes the queue's jobs in one finished state;
    /// returns how many.
    pub async fn purge_queue(&self, name: &str, state: JobState) -> Result<u64, Error> {
        let url = self.url(&["v1", "queues", name, "jobs"]);
        let answer: CountBody = self
            .call(self.http.delete(url).query(&[("state", state.as_str())]))
            .await?;
        Ok(answer.count)
    }

    /// `GET /v1/workers`: workers seen in the last minute.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, Error> {
        let answer: WorkersBody = self
            .call(self.http.get(self.url(&["v1", "workers"])))
            .await?;
        Ok(answer.workers)
    }

    // ---- schedules -------------------------------------------------------------------------

    /// `POST /v1/schedules`: creates a cron schedule (`409 invalid_state` when its name is
    /// taken). Not retried: a lost answer is best checked with [`Client::schedule`].
    pub async fn create_schedule(&self, req: &ScheduleRequest) -> Result<ScheduleView, Error> {
        self.post_json(&["v1", "schedules"], req).await
    }

    /// `GET /v1/schedules`: every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleView>, Error> {
        #[derive(Deserialize)]
        struct Body {
            schedules: Vec<ScheduleView>,
        }
        let answer: Body = self
            .call(self.http.get(self.url(&["v1", "schedules"])))
            .await?;
        Ok(answer.schedules)
    }

    /// `GET /v1/schedules/{name}`: one schedule with its next fire times and last runs.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleView, Error> {
        self.call(self.http.get(self.url(&["v1", "schedules", name])))
            .await
    }

    /// `PUT /v1/schedules/{name}`: replaces a schedule's definition (its runs stay).
    pub async fn replace_schedule(
        &self,
        name: &str,
        req: &ScheduleRequest,
    ) -> Result<ScheduleView, Error> {
        let body = encode(req)?;
        self.call(
            self.request(Method::PUT, self.url(&["v1", "schedules", name]))
                .body(body),
        )
        .await
    }

    /// `DELETE /v1/schedules/{name}`: deletes a schedule (the jobs it enqueued stay).
    pub async fn delete_schedule(&self, name: &str) -> Result<(), Error> {
        let url = self.url(&["v1", "schedules", name]);
        self.call_no_body(self.http.delete(url)).await
    }

    /// `POST /v1/schedules/{name}/pause`: the schedule fires nothing until resumed.
    pub async fn pause_schedule(&self, name: &str) -> Result<ScheduleView, Error> {
        self.post_empty(&["v1", "schedules", name, "pause"]).await
    }

    /// `POST /v1/schedules/{name}/resume`: ticks missed while paused follow its misfire policy.
    pub async fn resume_schedule(&self, name: &str) -> Result<ScheduleView, Error> {
        self.post_empty(&["v1", "schedules", name, "resume"]).await
    }

    /// `POST /v1/schedules/{name}/trigger`: enqueues one job from the schedule's template now.
    pub async fn trigger_schedule(&self, name: &str) -> Result<Job, Error> {
        self.post_empty(&["v1", "schedules", name, "trigger"]).await
    }

    // ---- workflows -------------------------------------------------------------------------

    /// `POST /v1/workflows`: submits a workflow run, a DAG of steps stored atomically; steps
    /// with dependencies wait in `pending` until their parents are done. A cycle, an unknown
    /// dependency or a duplicate step name is a `400 invalid_argument` naming the field (e.g.
    /// `steps[1].depends_on[0]`). Not retried: a lost answer is best checked with
    /// [`Client::workflows`].
    pub async fn submit_workflow(&self, req: &WorkflowRequest) -> Result<WorkflowRun, Error> {
        self.post_json(&["v1", "workflows"], req).await
    }

    /// `GET /v1/workflows/{id}`: a run with every step's job.
    pub async fn workflow(&self, id: WorkflowId) -> Result<WorkflowRun, Error> {
        let url = self.url(&["v1", "workflows", &id.to_string()]);
        self.call(self.http.get(url)).await
    }

    /// `GET /v1/workflows`: one page of runs, newest first, only those in `state` when given;
    /// `limit` is 1..500 (the server's default is 50), `cursor` the previous page's
    /// `next_cursor`.
    pub async fn workflows(
        &self,
        state: Option<WorkflowState>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<WorkflowPage, Error> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = state {
            query.push(("state", s.as_str().to_string()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_string()));
        }
        let url = self.url(&["v1", "workflows"]);
        self.call(self.http.get(url).query(&query)).await
    }

    /// `POST /v1/workflows/{id}/cancel`: waiting steps are cancelled at once, running ones
    /// flagged; the run ends `cancelled` when its last step has finished. `409 invalid_state`
    /// once the run has finished.
    pub async fn cancel_workflow(&self, id: WorkflowId) -> Result<Workflow, Error> {
        self.post_empty(&["v1", "workflows", &id.to_string(), "cancel"])
            .await
    }

    /// `POST /v1/workflows/{id}/retry`: a finished run's dead and cancelled steps start over;
    /// completed steps keep their results. `409 invalid_state` while it runs or when no step
    /// failed.
    pub async fn retry_workflow(&self, id: WorkflowId) -> Result<Workflow, Error> {
        self.post_empty(&["v1", "workflows", &id.to_string(), "retry"])
            .await
    }

    /// `POST /v1/workflows/{id}/steps`: adds steps to a running run (dynamic fan-out, usually
    /// from one of its running steps: see [`crate::JobContext::add_steps`]). New steps may
    /// depend on each other and on the run's existing steps. Returns the new steps' jobs.
    pub async fn add_workflow_steps(
        &self,
        id: WorkflowId,
        steps: Vec<StepRequest>,
    ) -> Result<Vec<Job>, Error> {
        #[derive(Serialize)]
        struct Body {
            steps: Vec<StepRequest>,
        }
        #[derive(Deserialize)]
        struct Answer {
            steps: Vec<Job>,
        }
        let answer: Answer = self
            .post_json(
                &["v1", "workflows", &id.to_string(), "steps"],
                &Body { steps },
            )
            .await?;
        Ok(answer.steps)
    }

    // ---- workflow definitions, triggers and backfills ---------------------------------------

    /// `PUT /v1/workflows/definitions/{name}`: stores a named definition, replacing one of the
    /// same name (its runs stay). Its steps are a run's, with `{{params.NAME}}` and
    /// `{{logical_date}}` placeholders in job args; they are checked as a run would be,
    /// rendered with the default parameters, so a missing parameter or a bad graph is a `400
    /// invalid_argument` naming the field. With `cron`, the server starts a run at every tick.
    pub async fn put_workflow_definition(
        &self,
        name: &str,
        req: &DefinitionRequest,
    ) -> Result<WorkflowDefinition, Error> {
        let body = encode(req)?;
        self.call(
            self.request(
                Method::PUT,
                self.url(&["v1", "workflows", "definitions", name]),
            )
            .body(body),
        )
        .await
    }

    /// `GET /v1/workflows/definitions`: every definition, by name.
    pub async fn workflow_definitions(&self) -> Result<Vec<WorkflowDefinition>, Error> {
        let answer: DefinitionsBody = self
            .call(self.http.get(self.url(&["v1", "workflows", "definitions"])))
            .await?;
        Ok(answer.definitions)
    }

    /// `GET /v1/workflows/definitions/{name}`: one definition, with when its cron expression
    /// next fires.
    pub async fn workflow_definition(&self, name: &str) -> Result<WorkflowDefinition, Error> {
        self.call(
            self.http
                .get(self.url(&["v1", "workflows", "definitions", name])),
        )
        .await
    }

    /// `DELETE /v1/workflows/definitions/{name}`: deletes a definition; its runs stay.
    pub async fn delete_workflow_definition(&self, name: &str) -> Result<(), Error> {
        let url = self.url(&["v1", "workflows", "definitions", name]);
        self.call_no_body(self.http.delete(url)).await
    }

    /// `POST /v1/workflows/definitions/{name}/runs`: starts a run of the definition for
    /// `req.logical_date` (the current time when absent), with `req.params` over the
    /// definition's defaults. A definition has one run per logical date, so the call is
    /// idempotent per date: [`TriggeredRun::created`] is true when this call made the run, and
    /// false when the run of that date existed, which is then the run answered (whatever
    /// `params` this call gave).
    pub async fn trigger_workflow(
        &self,
        name: &str,
        req: &TriggerRequest,
    ) -> Result<TriggeredRun, Error> {
        let body = encode(req)?;
        let (status, run) = self
            .call_with_status::<WorkflowRun>(
                self.request(
                    Method::POST,
                    self.url(&["v1", "workflows", "definitions", name, "runs"]),
                )
                .body(body),
            )
            .await?;
        Ok(TriggeredRun {
            run,
            created: status == 201,
        })
    }

    /// `POST /v1/workflows/definitions/{name}/backfill`: one run of the definition per date
    /// from `req.from` to `req.to` (`YYYY-MM-DD`, inclusive), started in date order by the
    /// server, at most `req.max_running` at a time (default 4). Idempotent: the same
    /// definition and range answers the existing backfill ([`BackfillStatus::created`] is
    /// `Some(false)`), and a date that already has a run gets no second one. Follow it with
    /// [`Client::backfill`].
    pub async fn backfill_workflow(
        &self,
        name: &str,
        req: &BackfillRequest,
    ) -> Result<BackfillStatus, Error> {
        let body = encode(req)?;
        let (status, mut answer) = self
            .call_with_status::<BackfillStatus>(
                self.request(
                    Method::POST,
                    self.url(&["v1", "workflows", "definitions", name, "backfill"]),
                )
                .body(body),
            )
            .await?;
        answer.created = Some(status == 201);
        Ok(answer)
    }

    /// `GET /v1/workflows/backfills/{id}`: a backfill and how many of its dates have a run,
    /// running, completed or failed.
    pub async fn backfill(&self, id: JobId) -> Result<BackfillStatus, Error> {
        let url = self.url(&["v1", "workflows", "backfills", &id.to_string()]);
        self.call(self.http.get(url)).await
    }

    // ---- workers ---------------------------------------------------------------------------

    /// `POST /v1/leases`: leases up to `max_jobs` jobs, waiting up to `wait_ms` for the first.
    /// Each job carries its `lease_token`, `lease_seq` and `lease_expires_at`, and a workflow
    /// step with dependencies what its parents left it ([`LeasedJob::parents`]); a
    /// [`LeasedJob`] derefs to its [`Job`].
    pub async fn lease(&self, req: &LeaseRequest) -> Result<Vec<LeasedJob>, Error> {
        let body = encode(req)?;
        let timeout = Duration::from_millis(req.wait_ms) + LONG_POLL_SLACK;
        let (status, bytes) = send(
            self.request(Method::POST, self.url(&["v1", "leases"]))
                .timeout(timeout)
                .body(body),
        )
        .await?;
        parse_lease_answer(&bytes).map_err(|e| Error::Protocol {
            status,
            message: format!("cannot read the answer: {e}"),
        })
    }

    /// `POST /v1/jobs/{id}/heartbeat`: extends the lease (by `lease_ms`, or the lease's own
    /// length) and records `progress`; the answer says whether a cancel was requested.
    pub async fn heartbeat(
        &self,
        id: JobId,
        lease_token: &str,
        lease_ms: Option<u64>,
        progress: Option<&serde_json::Value>,
    ) -> Result<HeartbeatAnswer, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            lease_token: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            lease_ms: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            progress: Option<&'a serde_json::Value>,
        }
        self.post_json(
            &["v1", "jobs", &id.to_string(), "heartbeat"],
            &Body {
                lease_token,
                lease_ms,
                progress,
            },
        )
        .await
    }

    /// `POST /v1/jobs/{id}/complete`.
    pub async fn complete(
        &self,
        id: JobId,
        lease_token: &str,
        result: &serde_json::Value,
    ) -> Result<Job, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            lease_token: &'a str,
            result: &'a serde_json::Value,
        }
        self.post_json(
            &["v1", "jobs", &id.to_string(), "complete"],
            &Body {
                lease_token,
                result,
            },
        )
        .await
    }

    /// `POST /v1/jobs/{id}/fail`: a failed attempt; `retry_in_ms` overrides the backoff.
    pub async fn fail(
        &self,
        id: JobId,
        lease_token: &str,
        error: &FailureReport,
        retry_in_ms: Option<u64>,
    ) -> Result<Job, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            lease_token: &'a str,
            error: &'a FailureReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_in_ms: Option<u64>,
        }
        self.post_json(
            &["v1", "jobs", &id.to_string(), "fail"],
            &Body {
                lease_token,
                error,
                retry_in_ms,
            },
        )
        .await
    }

    /// `POST /v1/jobs/{id}/release`: hands the job back without counting the attempt.
    pub async fn release(&self, id: JobId, lease_token: &str) -> Result<Job, Error> {
        self.post_json(
            &["v1", "jobs", &id.to_string(), "release"],
            &TokenBody { lease_token },
        )
        .await
    }

    /// `POST /v1/jobs/{id}/cancelled`: the worker honoured a cancel.
    pub async fn cancelled(&self, id: JobId, lease_token: &str) -> Result<Job, Error> {
        self.post_json(
            &["v1", "jobs", &id.to_string(), "cancelled"],
            &TokenBody { lease_token },
        )
        .await
    }

    /// `POST /v1/acks`: many outcomes in one call, each standing alone; results in order.
    pub async fn acks(&self, acks: &[Ack]) -> Result<Vec<AckResult>, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            acks: &'a [Ack],
        }
        let answer: AckResultsBody = self.post_json(&["v1", "acks"], &Body { acks }).await?;
        Ok(answer.results)
    }

    // ---- plumbing --------------------------------------------------------------------------

    /// The base URL with `segments` appended, each percent-encoded as needed.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = (*self.base).clone();
        // `new` refused cannot-be-a-base URLs, the only case where this is an error.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(CONTENT_TYPE, "application/json")
    }

    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl Serialize,
    ) -> Result<T, Error> {
        let body = encode(body)?;
        self.call(self.request(Method::POST, self.url(segments)).body(body))
            .await
    }

    /// A POST whose body is optional; the API accepts it empty.
    pub(crate) async fn post_empty<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, Error> {
        self.call(self.http.post(self.url(segments))).await
    }

    /// Sends `req` and decodes a success body as `T`, or an error body as [`ApiError`].
    pub(crate) async fn call<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, Error> {
        self.call_with_status(req).await.map(|(_, answer)| answer)
    }

    /// [`Client::call`], also answering the success status (to tell `201` from `200`).
    async fn call_with_status<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
    ) -> Result<(u16, T), Error> {
        let (status, bytes) = send(req).await?;
        let answer = serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            status,
            message: format!("cannot read the answer: {e}"),
        })?;
        Ok((status, answer))
    }

    /// Sends `req` and expects a success with no body worth reading (204).
    async fn call_no_body(&self, req: RequestBuilder) -> Result<(), Error> {
        send(req).await.map(|_| ())
    }
}

#[derive(Serialize)]
struct TokenBody<'a> {
    lease_token: &'a str,
}

/// The trace context an enqueue hands on: the current span's, when it is part of an
/// OpenTelemetry trace (feature `otel`). The server gives it to jobs that name no
/// `traceparent` of their own.
fn current_traceparent() -> Option<String> {
    #[cfg(feature = "otel")]
    {
        crate::trace::current_traceparent()
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// Adds the `traceparent` header when there is one.
fn with_traceparent(req: RequestBuilder, traceparent: Option<&str>) -> RequestBuilder {
    match traceparent {
        Some(tp) => req.header("traceparent", tp),
        None => req,
    }
}

fn encode(body: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(Error::Encode)
}

/// Sends a request; returns the status and body of a 2xx, or the API error of anything else.
async fn send(req: RequestBuilder) -> Result<(u16, Vec<u8>), Error> {
    let resp = req.send().await.map_err(Error::Transport)?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = resp.bytes().await.map_err(Error::Transport)?;
    if status.is_success() {
        return Ok((status.as_u16(), bytes.to_vec()));
    }
    Err(api_error(status.as_u16(), &bytes, retry_after))
}

/// Reads an error answer; an unreadable one still yields an [`ApiError`] so callers can match
/// on the status (a proxy's 502 page, say).
pub(crate) fn api_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => Error::Api(ApiError {
            status,
            code: ErrorCode::parse(&b.error.code),
            message: b.error.message,
            field: b.error.field,
            retry_after,
        }),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let code = match status {
                503 => ErrorCode::Unavailable,
                429 => ErrorCode::RateLimited,
                404 => ErrorCode::NotFound,
                _ => ErrorCode::Other(format!("http_{status}")),
            };
            Error::Api(ApiError {
                status,
                code,
                message: text.chars().take(512).collect(),
                field: None,
                retry_after,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_append_and_encode_segments() {
        let c = Client::new("http://127.0.0.1:7480").unwrap();
        assert_eq!(
            c.url(&["v1", "queues", "a b/c", "pause"]).as_str(),
            "http://127.0.0.1:7480/v1/queues/a%20b%2Fc/pause"
        );
        let c = Client::new("http://example.test/hopper/").unwrap();
        assert_eq!(
            c.url(&["v1", "jobs"]).as_str(),
            "http://example.test/hopper/v1/jobs"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for u in ["127.0.0.1:7480", "ftp://x", "not a url", "mailto:a@b"] {
            assert!(
                matches!(Client::new(u), Err(Error::InvalidUrl { .. })),
                "{u}"
            );
        }
    }

    #[test]
    fn error_bodies_are_read_and_odd_ones_kept() {
        let e = api_error(
            409,
            br#"{"error":{"code":"lease_lost","message":"gone"}}"#,
            None,
        );
        assert!(e.is_lease_lost());
        let e = api_error(503, b"<html>bad gateway</html>", None);
        assert_eq!(e.code(), Some(&ErrorCode::Unavailable));
        assert!(e.is_retryable());
    }
}
