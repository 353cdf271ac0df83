//! Leaf types shared by every Hopper crate: jobs, their states and options, ids, time, and the
//! job lifecycle (the state machine of the semantics document) as pure functions.
//!
//! Nothing here does I/O. Storage backends load a job, apply a [`lifecycle`] function to it and
//! write it back, so every backend moves jobs between states by the very same code.
//!
//! Layout:
//! - [`time`]: millisecond timestamps and the injectable [`Clock`].
//! - [`api_key`]: API keys, roles, their wire format and hashing.
//! - [`namespace`]: namespace names and quotas.
//! - [`audit`]: audit log entries.
//! - [`webhook`]: webhook subscriptions and delivery signatures.
//! - [`id`]: job ids (UUIDv7) and lease tokens.
//! - [`state`]: [`JobState`] and what moves jobs in and out of each state.
//! - [`backoff`]: retry delay policies.
//! - [`job`]: the stored [`Job`] and its records (errors, attempts, events).
//! - [`new_job`]: a validated enqueue request ([`NewJob`]) and the limits that govern it.
//! - [`lifecycle`]: the transitions.
//! - [`cron`]: cron schedules in IANA time zones, their fire times and missed-tick policies.
//! - [`queue_config`]: a queue's pause, retention, limits and lease policy.
//! - [`schedule`]: cron schedules as defined, stored and shown, and the jobs they enqueue.
//! - [`stream_event`]: a transition as the live event stream shows it.
//! - [`workflow`]: workflow runs as submitted (a DAG of steps) and their validation.
//! - [`workflow_definition`]: named definitions (templates with parameters), triggers, backfills.
//! - [`workflow_run`]: a stored run, its state machine, and what its steps carry.

pub mod api_key;
pub mod audit;
pub mod backoff;
pub mod cron;
pub mod id;
pub mod job;
pub mod lifecycle;
pub mod namespace;
pub mod new_job;
pub mod queue_config;
pub mod schedule;
pub mod state;
pub mod stream_event;
pub mod time;
pub mod webhook;
pub mod workflow;
pub mod workflow_definition;
pub mod workflow_run;

pub use backoff::Backoff;
pub use id::{JobId, LeaseToken};
pub use job::{Attempt, AttemptOutcome, ErrorRecord, Job, JobEvent};
pub use new_job::{
    EnqueueRequest, EnqueueRequestExt, Limits, NewJob, RunAt, ValidationError, validate_name,
};
pub use queue_config::{Bucket, QueueConfig, QueuePolicy, RateLimit, Retention};
pub use state::JobState;
pub use stream_event::StreamEvent;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

/// The namespace of a request that names none.
pub const DEFAULT_NAMESPACE: &str = "default";
