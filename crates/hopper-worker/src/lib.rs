//! The Rust SDK of Hopper: a [`Client`] for every call of the HTTP API (v1 API), and a
//! [`Worker`] runtime that leases jobs, runs typed handlers, heartbeats, enforces timeouts and
//! cancellation, batches outcomes, and shuts down gracefully.
//!
//! # Producing
//!
//! ```no_run
//! # async fn produce() -> Result<(), hopper_worker::Error> {
//! use hopper_worker::{Client, EnqueueRequest};
//!
//! let client = Client::new("http://127.0.0.1:7480")?;
//! let req = EnqueueRequest::new("send_email", &serde_json::json!({"to": "ada@example.com"}))
//!     .map_err(hopper_worker::Error::Encode)?;
//! let job = client.enqueue(req).await?; // idempotency key set, retried on 503
//! println!("enqueued {}", job.id);
//! # Ok(()) }
//! ```
//!
//! # Working
//!
//! ```no_run
//! use hopper_worker::{Client, JobContext, Outcome, Worker};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct SendEmail {
//!     to: String,
//! }
//!
//! async fn send_email(ctx: JobContext, args: SendEmail) -> anyhow::Result<Outcome> {
//!     if !args.to.contains('@') {
//!         // No retry will fix this address.
//!         return Ok(Outcome::fail_permanently(format!("bad address {}", args.to)));
//!     }
//!     // Logged inside the job's span, so the line also carries job_id, trace_id, kind, queue.
//!     tracing::info!(attempt = ctx.attempt(), "sending to {}", args.to);
//!     Ok(Outcome::complete_with(&serde_json::json!({"sent_to": args.to})))
//! }
//!
//! # async fn work() -> anyhow::Result<()> {
//! let worker = Worker::builder(Client::new("http://127.0.0.1:7480")?)
//!     .queues(["default"])
//!     .concurrency(10)
//!     .register("send_email", send_email)
//!     .build()?;
//! worker.run().await?; // until SIGTERM or SIGINT, then a graceful shutdown
//! # Ok(()) }
//! ```
//!
//! A handler's `Err` is a retryable failure; args that do not decode into its type fail the
//! job permanently; a handler that runs past the job's `timeout_ms` is stopped and its
//! attempt fails with kind `timeout`; a cancel requested through the API fires
//! [`JobContext::cancelled`] and the job is reported `cancelled`.
//!
//! # Workflows
//!
//! A workflow run is a DAG of steps, each one job that waits until its parents are done; a
//! step's handler reads what its parents returned through [`JobContext::parent`], and may add
//! steps to its own run with [`JobContext::add_steps`].
//!
//! ```no_run
//! # async fn submit(client: hopper_worker::Client) -> Result<(), hopper_worker::Error> {
//! use hopper_worker::{EnqueueRequest, OnFailure, StepRequest, WorkflowRequest};
//!
//! let step = |name: &str, depends_on: &[&str]| StepRequest {
//!     step: name.to_string(),
//!     depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
//!     on_failure: OnFailure::CancelDependents,
//!     job: EnqueueRequest { kind: name.to_string(), ..EnqueueRequest::default() },
//! };
//! let run = client
//!     .submit_workflow(&WorkflowRequest {
//!         name: Some("nightly etl".into()),
//!         steps: vec![step("extract", &[]), step("load", &["extract"])],
//!     })
//!     .await?;
//! println!("run {} with {} steps", run.workflow.id, run.steps.len());
//! # Ok(()) }
//!
//! // The handler of `load`:
//! async fn load(
//!     ctx: hopper_worker::JobContext,
//!     _args: serde_json::Value,
//! ) -> anyhow::Result<hopper_worker::Outcome> {
//!     let rows: u64 = ctx.parent("extract").transpose()?.unwrap_or(0);
//!     Ok(hopper_worker::Outcome::complete_with(&rows))
//! }
//! ```
//!
//! ## Definitions, triggers and backfills
//!
//! A workflow definition is a named run template: its steps' job args may hold
//! `{{params.NAME}}` and `{{logical_date}}`, filled in for each run. A definition has one run
//! per logical date, so triggering it twice for one date, or backfilling a range twice, makes
//! no second run.
//!
//! ```no_run
//! # async fn define(client: hopper_worker::Client) -> Result<(), hopper_worker::Error> {
//! use hopper_worker::{BackfillRequest, DefinitionRequest, TriggerRequest};
//!
//! let def: DefinitionRequest = serde_json::from_value(serde_json::json!({
//!     "params": {"table": "users"},
//!     "cron": "@daily",
//!     "steps": [{"step": "export", "job": {"kind": "export",
//!         "args": {"table": "{{params.table}}", "day": "{{logical_date}}"}}}],
//! }))
//! .map_err(hopper_worker::Error::Encode)?;
//! client.put_workflow_definition("nightly", &def).await?;
//!
//! let req = TriggerRequest { logical_date: Some("2026-11-30".into()), ..Default::default() };
//! let run = client.trigger_workflow("nightly", &req).await?;
//! println!("run {} (new: {})", run.workflow.id, run.created);
//!
//! let status = client
//!     .backfill_workflow("nightly", &BackfillRequest {
//!         from: "2026-11-01".into(),
//!         to: "2026-11-29".into(),
//!         params: Default::default(),
//!         max_running: Some(2),
//!     })
//!     .await?;
//! let later = client.backfill(status.backfill.id).await?;
//! println!("{} of {} dates completed", later.progress.completed, later.progress.dates);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`client`]: the HTTP client; [`events`]: the live event stream, resumed across
//!   reconnects; [`wire`]: request and answer bodies; [`error`]: errors;
//!   [`retry`]: retry policy of idempotent calls.
//! - [`worker`]: builder and runtime; `leaser` (lease loop), `job_runner` (one job's run),
//!   `acker` (batched outcomes) are its parts.
//! - [`handler`], [`outcome`], [`context`]: what handler authors use.
//! - [`stats`]: live counters; [`shutdown`]: the SIGTERM/SIGINT future.
//! - [`trace`]: the `job` span each handler runs in; with feature `otel`, a child of the job's
//!   `traceparent` in OpenTelemetry, and enqueues carry the current trace context.
//! - `postgres` (feature `postgres`): enqueue inside the application's own PostgreSQL
//!   transaction, so a job exists if and only if the application's data was committed.

mod acker;
pub mod admin;
pub mod client;
pub mod context;
pub mod error;
pub mod events;
pub mod handler;
mod job_runner;
mod leaser;
pub mod outcome;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod retry;
pub mod shutdown;
pub mod stats;
pub mod trace;
pub mod wire;
pub mod worker;

pub use client::{Client, DEFAULT_URL};
pub use context::{CancelReason, JobContext};
pub use error::{ApiError, Error, ErrorCode};
pub use events::{EventFilter, EventStream, StreamMessage};
pub use handler::Handler;
pub use hopper_types::cron::Misfire;
pub use hopper_types::schedule::{ScheduleRequest, ScheduleRun, ScheduleView};
pub use hopper_types::workflow::{OnFailure, StepRequest, WorkflowRequest};
pub use hopper_types::workflow_definition::{
    Backfill, BackfillRequest, DefinitionRequest, TriggerRequest, WorkflowDefinition,
};
pub use hopper_types::workflow_run::{StepInfo, Workflow, WorkflowId, WorkflowState};
pub use hopper_types::{
    Backoff, EnqueueRequest, Job, JobId, JobState, QueueConfig, QueuePolicy, RateLimit,
    StreamEvent, Timestamp,
};
pub use outcome::{BoxError, IntoOutcome, Outcome};
pub use retry::RetryPolicy;
pub use shutdown::shutdown_signal;
pub use stats::{StatsSnapshot, WorkerStats};
pub use wire::{
    Ack, AckOutcome, AckResult, BackfillProgress, BackfillStatus, FailedParent, FailureReport,
    HeartbeatAnswer, JobPage, LeaseRequest, LeasedJob, ListJobs, QueueInfo, TriggeredRun,
    WorkerInfo, WorkflowPage, WorkflowRun,
};
pub use worker::{ConfigError, Worker, WorkerBuilder};
