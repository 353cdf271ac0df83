//! [`JobContext`]: what a running handler knows about its job and lease, how it learns that
//! it should stop, and for a workflow step, what its parents left it and how it adds steps to
//! its run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use hopper_types::workflow::StepRequest;
use hopper_types::workflow_run::StepInfo;
use hopper_types::{Job, JobId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::wire::{FailedParent, LeasedJob};
use crate::{Client, Error};

/// Why a handler's cancellation token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CancelReason {
    /// Someone cancelled the job through the API; the worker learnt it from a heartbeat.
    CancelRequested = 1,
    /// The attempt ran past the job's `timeout_ms`.
    Timeout = 2,
    /// The worker is shutting down and the grace period is over.
    Shutdown = 3,
    /// The server no longer recognises this lease (it expired or timed out there): another
    /// worker may be running the job now, so this run's outcome will not be recorded.
    LeaseLost = 4,
}

impl CancelReason {
    fn from_u8(v: u8) -> Option<CancelReason> {
        match v {
            1 => Some(CancelReason::CancelRequested),
            2 => Some(CancelReason::Timeout),
            3 => Some(CancelReason::Shutdown),
            4 => Some(CancelReason::LeaseLost),
            _ => None,
        }
    }
}

/// Everything a handler gets besides its typed args: the leased job, a way to report
/// progress, and a cancellation signal. Cheap to clone; clones share the cancellation.
#[derive(Debug, Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The job as leased, with its lease token.
    job: Job,
    /// A workflow step's parents' results, by step name.
    parents: Option<BTreeMap<String, Option<Box<RawValue>>>>,
    /// A workflow step's failed parents, by step name.
    failed_parents: Option<BTreeMap<String, FailedParent>>,
    /// The lease token, taken out of the job once so reports need not unwrap it.
    lease_token: String,
    /// For progress heartbeats.
    client: Client,
    /// The lease length asked for; progress heartbeats renew by this much.
    lease_ms: u64,
    /// When this attempt runs out of time (local clock, from the moment of the lease).
    deadline: Instant,
    /// Fires when the handler should stop; its children can hold clones.
    cancel: CancellationToken,
    /// The first [`CancelReason`], as its discriminant (0 = none yet).
    reason: AtomicU8,
}

impl JobContext {
    pub(crate) fn new(
        leased: LeasedJob,
        lease_token: String,
        client: Client,
        lease_ms: u64,
        deadline: Instant,
    ) -> JobContext {
        let LeasedJob {
            job,
            parents,
            failed_parents,
        } = leased;
        JobContext {
            inner: Arc::new(Inner {
                job,
                parents,
                failed_parents,
                lease_token,
                client,
                lease_ms,
                deadline,
                cancel: CancellationToken::new(),
                reason: AtomicU8::new(0),
            }),
        }
    }

    /// The job as leased (id, queue, kind, args, attempt, lease_seq, traceparent, meta, ...).
    pub fn job(&self) -> &Job {
        &self.inner.job
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.job.id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.inner.job.kind
    }

    /// The job's queue.
    pub fn queue(&self) -> &str {
        &self.inner.job.queue
    }

    /// Which counted attempt this is (1 for the first run).
    pub fn attempt(&self) -> i32 {
        self.inner.job.attempt
    }

    /// The lease's fencing number: grows at every lease of the job, so a handler can refuse
    /// downstream writes stamped with a newer number than its own.
    pub fn lease_seq(&self) -> i64 {
        self.inner.job.lease_seq
    }

    /// The lease token of this run.
    pub fn lease_token(&self) -> &str {
        &self.inner.lease_token
    }

    /// The args exactly as enqueued.
    pub fn args_raw(&self) -> &RawValue {
        &self.inner.job.args
    }

    /// Decodes the args into another type than the handler's.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.inner.job.args.get())
    }

    /// The producer's W3C trace context, if it sent one.
    pub fn traceparent(&self) -> Option<&str> {
        self.inner.job.traceparent.as_deref()
    }

    /// The step of a workflow run this job is (run id, step name, dependencies, policy), or
    /// `None` for an ordinary job.
    pub fn workflow(&self) -> Option<&StepInfo> {
        self.inner.job.workflow.as_ref()
    }

    /// For a workflow step with dependencies: each parent's result by step name, exactly as
    /// it was reported (`None` for a parent that returned nothing, or that failed under a
    /// policy that let this step run; see [`JobContext::failed_parents`]). `None` for a job
    /// without parents.
    pub fn parents(&self) -> Option<&BTreeMap<String, Option<Box<RawValue>>>> {
        self.inner.parents.as_ref()
    }

    /// Decodes the result of the parent step named `step`: `None` when this job has no such
    /// parent; a parent without a result decodes from `null` (so ask for an `Option<T>` when
    /// a parent may have returned nothing).
    pub fn parent<T: DeserializeOwned>(&self, step: &str) -> Option<Result<T, serde_json::Error>> {
        let result = self.inner.parents.as_ref()?.get(step)?;
        Some(match result {
            Some(raw) => serde_json::from_str(raw.get()),
            None => serde_json::from_value(serde_json::Value::Null),
        })
    }

    /// For a workflow step some of whose parents failed under `continue` or `ignore` (and so
    /// let it run anyway): how each of them ended, by step name. `None` when no parent failed.
    pub fn failed_parents(&self) -> Option<&BTreeMap<String, FailedParent>> {
        self.inner.failed_parents.as_ref()
    }

    /// Adds steps to this step's workflow run (dynamic fan-out): e.g. one child per chunk of
    /// the input and a step that depends on all of them. New steps may depend on each other
    /// and on the run's existing steps, this one included. Fails with [`Error::NotAStep`]
    /// when this job is not a workflow step.
    pub async fn add_steps(&self, steps: Vec<StepRequest>) -> Result<Vec<Job>, Error> {
        let Some(step) = self.workflow() else {
            return Err(Error::NotAStep(self.id()));
        };
        self.inner
            .client
            .add_workflow_steps(step.workflow_id, steps)
            .await
    }

    /// When this attempt runs out of time and the handler is stopped.
    pub fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// Reports progress now (a heartbeat carrying `value`, which also renews the lease). A
    /// heartbeat answer that asks for cancellation fires [`JobContext::cancelled`].
    pub async fn progress(&self, value: &impl Serialize) -> Result<(), Error> {
        let value = serde_json::to_value(value).map_err(Error::Encode)?;
        let answer = self
            .inner
            .client
            .heartbeat(
                self.id(),
                &self.inner.lease_token,
                Some(self.inner.lease_ms),
                Some(&value),
            )
            .await;
        match answer {
            Ok(a) => {
                if a.cancel_requested {
                    self.cancel(CancelReason::CancelRequested);
                }
                Ok(())
            }
            Err(e) => {
                if e.is_lease_lost() {
                    self.cancel(CancelReason::LeaseLost);
                }
                Err(e)
            }
        }
    }

    /// Completes when the handler should stop (cancel requested, timeout, shutdown past the
    /// grace period, or lease lost). Select on it around long waits.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.inner.cancel.cancelled()
    }

    /// True once the handler should stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Why the handler should stop, once it should.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.inner.reason.load(Ordering::Acquire))
    }

    /// A token that fires with [`JobContext::cancelled`], to hand to spawned tasks.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// Fires the cancellation; the first reason given is the one kept.
    pub(crate) fn cancel(&self, reason: CancelReason) {
        let _ = self.inner.reason.compare_exchange(
            0,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.inner.cancel.cancel();
    }
}
