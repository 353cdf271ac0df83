//! The job state machine of the semantics document, as pure functions over a [`Job`].
//!
//! A backend loads the job (under its write lock or row lock), calls one of these, and stores
//! the job and the returned [`Change`] as an event. Nothing here reads a clock or does I/O:
//! `now` and randomness come in as arguments, so every rule is tested without a database.

use rand::Rng;
use serde_json::value::RawValue;

use crate::job::MAX_ERRORS_KEPT;
use crate::workflow_run::StepInfo;
use crate::{Attempt, AttemptOutcome, ErrorRecord, Job, JobState, LeaseToken, NewJob, Timestamp};

/// One state change to record as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// State before (none for an insert).
    pub from: Option<JobState>,
    /// State after.
    pub to: JobState,
    /// What caused it, as a short word for the event log.
    pub reason: &'static str,
}

/// What a worker outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The job changed.
    Changed(Change),
    /// The same outcome was already recorded for this token: nothing changed (idempotent repeat).
    Repeated,
}

/// Why a transition was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The token is not the job's current one, or its lease already ended.
    #[error("the lease token is not the job's current one, or its lease already ended")]
    LeaseLost,
    /// The trigger is not allowed from this state.
    #[error("cannot {action} a job that is {state}")]
    InvalidState {
        /// The job's state.
        state: JobState,
        /// What was asked.
        action: &'static str,
    },
    /// A finished step of a workflow run starts over only with its run (which also restarts
    /// the steps its failure cancelled).
    #[error("the job is a step of workflow run {workflow_id}: retry the run instead")]
    WorkflowStep {
        /// The run.
        workflow_id: crate::JobId,
    },
}

/// A failure reported by a worker.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Short machine-readable kind (`error` when the worker gave none).
    pub kind: String,
    /// What went wrong (already truncated to the configured limit).
    pub message: String,
    /// False sends the job to `dead` whatever attempts are left.
    pub retryable: bool,
    /// Overrides the backoff policy for this retry.
    pub retry_in_ms: Option<i64>,
}

/// Creates the stored job for a validated enqueue at `now`.
pub fn insert(new: NewJob, now: Timestamp) -> (Job, Change) {
    let available_at = new.available_at(now);
    let state = if available_at > now {
        JobState::Scheduled
    } else {
        JobState::Available
    };
    let job = Job {
        id: new.id,
        namespace: new.namespace,
        queue: new.queue,
        kind: new.kind,
        args: new.args,
        priority: new.priority,
        state,
        attempt: 0,
        max_attempts: new.max_attempts,
        backoff: new.backoff,
        timeout_ms: new.timeout_ms,
        idempotency_key: new.idempotency_key,
        tags: new.tags,
        meta: new.meta,
        traceparent: new.traceparent,
        concurrency_key: new.concurrency_key,
        fairness_key: new.fairness_key,
        estimated_ms: new.estimated_ms,
        lease_seq: 0,
        errors: Vec::new(),
        attempts: Vec::new(),
        result: None,
        progress: None,
        created_at: now,
        available_at,
        started_at: None,
        finished_at: None,
        lease_expires_at: None,
        worker_id: None,
        cancel_requested: false,
        lease_token: None,
        duplicate: None,
        workflow: None,
        lease_ms: 0,
    };
    (
        job,
        Change {
            from: None,
            to: state,
            reason: "enqueue",
        },
    )
}

/// Creates the stored job of a workflow step: `pending` while `step.waiting_on` is above zero,
/// otherwise as [`insert`] would.
pub fn insert_step(new: NewJob, step: StepInfo, now: Timestamp) -> (Job, Change) {
    let (mut job, mut change) = insert(new, now);
    if step.waiting_on > 0 {
        job.state = JobState::Pending;
        change.to = JobState::Pending;
    }
    job.workflow = Some(step);
    (job, change)
}

/// One parent of a `pending` step is done (or failed under a policy that lets dependents
/// run). The step waits for one fewer; at zero it leaves `pending` (for `scheduled` when its
/// `run_at` is still ahead) and the change is returned. Anything but a pending step is left
/// alone.
pub fn dependency_done(job: &mut Job, now: Timestamp) -> Option<Change> {
    if job.state != JobState::Pending {
        return None;
    }
    let step = job.workflow.as_mut()?;
    step.waiting_on = step.waiting_on.saturating_sub(1);
    if step.waiting_on > 0 {
        return None;
    }
    // Queued behind what was enqueued before it became runnable, not by its submission time.
    job.available_at = job.available_at.max(now);
    job.state = if job.available_at > now {
        JobState::Scheduled
    } else {
        JobState::Available
    };
    Some(Change {
        from: Some(JobState::Pending),
        to: job.state,
        reason: "dependencies_done",
    })
}

/// A step upstream failed under `cancel_dependents` (or was itself cancelled that way), or the
/// run is being cancelled: a `pending` step is cancelled without running.
pub fn upstream_failed(job: &mut Job, now: Timestamp) -> Option<Change> {
    if job.state != JobState::Pending {
        return None;
    }
    if let Some(step) = job.workflow.as_mut() {
        step.upstream_failed = true;
    }
    finish(job, now, JobState::Cancelled);
    Some(Change {
        from: Some(JobState::Pending),
        to: JobState::Cancelled,
        reason: "upstream_failed",
    })
}

/// A retry of its run starts a failed or cancelled step over, waiting for `waiting_on` parents
/// that are not done (in `pending`) or ready at once.
pub fn reopen_step(
    job: &mut Job,
    waiting_on: u32,
    now: Timestamp,
) -> Result<Change, TransitionError> {
    let from = job.state;
    if !matches!(from, JobState::Dead | JobState::Cancelled) {
        return Err(TransitionError::InvalidState {
            state: from,
            action: "reopen",
        });
    }
    let mut change = restart(job, now)?;
    change.reason = "workflow_retry";
    if let Some(step) = job.workflow.as_mut() {
        step.waiting_on = waiting_on;
        step.upstream_failed = false;
        if waiting_on > 0 {
            job.state = JobState::Pending;
            change.to = JobState::Pending;
        }
    }
    Ok(change)
}

/// Leases an `available` job to `worker_id` for `lease_ms`.
pub fn lease(
    job: &mut Job,
    now: Timestamp,
    worker_id: &str,
    lease_ms: i64,
) -> Result<Change, TransitionError> {
    if job.state != JobState::Available {
        return Err(TransitionError::InvalidState {
            state: job.state,
            action: "lease",
        });
    }
    job.state = JobState::Running;
    job.attempt += 1;
    job.lease_seq += 1;
    job.lease_token = Some(LeaseToken::new());
    job.lease_ms = lease_ms;
    job.lease_expires_at = Some(now.plus_ms(lease_ms));
    job.started_at = Some(now);
    job.worker_id = Some(worker_id.to_string());
    job.attempts.push(Attempt {
        lease_seq: job.lease_seq,
        worker_id: worker_id.to_string(),
        started_at: now,
        finished_at: None,
        outcome: None,
    });
    Ok(Change {
        from: Some(JobState::Available),
        to: JobState::Running,
        reason: "lease",
    })
}

/// Checks `token` for a worker outcome. `Ok(true)` means the outcome was already recorded for
/// this token (answer the job unchanged); `Ok(false)` means the lease is live.
fn check_outcome_token(
    job: &Job,
    token: &str,
    outcome: AttemptOutcome,
) -> Result<bool, TransitionError> {
    if job.lease_token.as_ref().map(LeaseToken::as_str) != Some(token) {
        return Err(TransitionError::LeaseLost);
    }
    let last = job.attempts.last().filter(|a| a.lease_seq == job.lease_seq);
    match last.and_then(|a| a.outcome) {
        None if job.state == JobState::Running => Ok(false),
        Some(o) if o == outcome => Ok(true),
        Some(o) if o.is_reported_by_worker() => Err(TransitionError::InvalidState {
            state: job.state,
            action: outcome_action(outcome),
        }),
        _ => Err(TransitionError::LeaseLost),
    }
}

fn outcome_action(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Completed => "complete",
        AttemptOutcome::Failed => "fail",
        AttemptOutcome::Released => "release",
        AttemptOutcome::Cancelled => "report cancelled for",
        AttemptOutcome::LeaseExpired => "expire",
        AttemptOutcome::Timeout => "time out",
    }
}

/// Ends the current lease with `outcome` at `now`.
fn end_lease(job: &mut Job, now: Timestamp, outcome: AttemptOutcome) {
    if let Some(a) = job
        .attempts
        .last_mut()
        .filter(|a| a.lease_seq == job.lease_seq)
    {
        a.finished_at = Some(now);
        a.outcome = Some(outcome);
    }
    job.lease_expires_at = None;
    // The token stays on the job so a repeated outcome can be recognised; a new lease replaces it.
}

fn finish(job: &mut Job, now: Timestamp, to: JobState) {
    job.state = to;
    job.finished_at = Some(now);
}

/// Renews a live lease and records progress. Refused once the attempt ran past its timeout.
pub fn heartbeat(
    job: &mut Job,
    token: &str,
    now: Timestamp,
    lease_ms: Option<i64>,
    progress: Option<Box<RawValue>>,
) -> Result<(), TransitionError> {
    if job.state != JobState::Running
        || job.lease_token.as_ref().map(LeaseToken::as_str) != Some(token)
    {
        return Err(TransitionError::LeaseLost);
    }
    // An expired lease that the rescuer has not reclaimed yet may still be renewed: a server
    // that restarts waits a lease period before rescuing precisely so that workers that kept
    // running through the outage can carry on. Only a timed-out attempt is refused.
    if job.attempt_deadline().is_some_and(|d| now >= d) {
        return Err(TransitionError::LeaseLost);
    }
    let lease_ms = lease_ms.unwrap_or(job.lease_ms);
    job.lease_ms = lease_ms;
    job.lease_expires_at = Some(now.plus_ms(lease_ms));
    if progress.is_some() {
        job.progress = progress;
    }
    Ok(())
}

/// The worker finished the job successfully.
pub fn complete(
    job: &mut Job,
    token: &str,
    now: Timestamp,
    result: Option<Box<RawValue>>,
) -> Result<Applied, TransitionError> {
    if check_outcome_token(job, token, AttemptOutcome::Completed)? {
        return Ok(Applied::Repeated);
    }
    end_lease(job, now, AttemptOutcome::Completed);
    job.result = result;
    finish(job, now, JobState::Completed);
    Ok(Applied::Changed(Change {
        from: Some(JobState::Running),
        to: JobState::Completed,
        reason: "complete",
    }))
}

/// The worker reports a failed attempt.
pub fn fail(
    job: &mut Job,
    token: &str,
    now: Timestamp,
    failure: Failure,
    rng: &mut impl Rng,
) -> Result<Applied, TransitionError> {
    if check_outcome_token(job, token, AttemptOutcome::Failed)? {
        return Ok(Applied::Repeated);
    }
    Ok(Applied::Changed(fail_attempt(
        job,
        now,
        failure,
        AttemptOutcome::Failed,
        "fail",
        rng,
    )))
}

/// Records a failed attempt and moves the job on: cancelled if a cancel was requested, dead if
/// not retryable or out of attempts, otherwise retryable after the backoff.
fn fail_attempt(
    job: &mut Job,
    now: Timestamp,
    failure: Failure,
    outcome: AttemptOutcome,
    reason: &'static str,
    rng: &mut impl Rng,
) -> Change {
    end_lease(job, now, outcome);
    job.errors.push(ErrorRecord {
        attempt: job.attempt,
        at: now,
        kind: failure.kind,
        message: failure.message,
    });
    if job.errors.len() > MAX_ERRORS_KEPT {
        let excess = job.errors.len() - MAX_ERRORS_KEPT;
        job.errors.drain(..excess);
    }
    let to = if job.cancel_requested {
        finish(job, now, JobState::Cancelled);
        JobState::Cancelled
    } else if !failure.retryable || job.attempt >= job.max_attempts {
        finish(job, now, JobState::Dead);
        JobState::Dead
    } else {
        let delay = failure
            .retry_in_ms
            .unwrap_or_else(|| job.backoff.delay_ms(job.attempt, rng));
        job.state = JobState::Retryable;
        job.available_at = now.plus_ms(delay.max(0));
        JobState::Retryable
    };
    Change {
        from: Some(JobState::Running),
        to,
        reason,
    }
}

/// The worker hands the job back without counting the attempt.
pub fn release(job: &mut Job, token: &str, now: Timestamp) -> Result<Applied, TransitionError> {
    if check_outcome_token(job, token, AttemptOutcome::Released)? {
        return Ok(Applied::Repeated);
    }
    end_lease(job, now, AttemptOutcome::Released);
    job.attempt -= 1;
    if job.cancel_requested {
        // Nobody should run a job whose cancel was asked for.
        finish(job, now, JobState::Cancelled);
        return Ok(Applied::Changed(Change {
            from: Some(JobState::Running),
            to: JobState::Cancelled,
            reason: "release",
        }));
    }
    job.state = JobState::Available;
    Ok(Applied::Changed(Change {
        from: Some(JobState::Running),
        to: JobState::Available,
        reason: "release",
    }))
}

/// The worker stopped the handler because it was cancelled (or chose to cancel the job).
pub fn cancelled(job: &mut Job, token: &str, now: Timestamp) -> Result<Applied, TransitionError> {
    if check_outcome_token(job, token, AttemptOutcome::Cancelled)? {
        return Ok(Applied::Repeated);
    }
    end_lease(job, now, AttemptOutcome::Cancelled);
    finish(job, now, JobState::Cancelled);
    Ok(Applied::Changed(Change {
        from: Some(JobState::Running),
        to: JobState::Cancelled,
        reason: "cancelled",
    }))
}

/// Cancel asked through the API: waiting jobs end at once; a running one is flagged, and its
/// worker learns it on the next heartbeat.
pub fn cancel(job: &mut Job, now: Timestamp) -> Result<Change, TransitionError> {
    let from = job.state;
    match from {
        s if s.is_waiting() => {
            finish(job, now, JobState::Cancelled);
            Ok(Change {
                from: Some(from),
                to: JobState::Cancelled,
                reason: "cancel",
            })
        }
        JobState::Running => {
            job.cancel_requested = true;
            Ok(Change {
                from: Some(from),
                to: JobState::Running,
                reason: "cancel_requested",
            })
        }
        _ => Err(TransitionError::InvalidState {
            state: from,
            action: "cancel",
        }),
    }
}

/// Retry asked through the API: finished jobs start over; waiting ones run now.
pub fn retry(job: &mut Job, now: Timestamp) -> Result<Change, TransitionError> {
    let from = job.state;
    if let Some(step) = &job.workflow
        && from.is_finished()
    {
        return Err(TransitionError::WorkflowStep {
            workflow_id: step.workflow_id,
        });
    }
    restart(job, now)
}

// Retry without the workflow check: a run's retry reopens its steps through here.
fn restart(job: &mut Job, now: Timestamp) -> Result<Change, TransitionError> {
    let from = job.state;
    match from {
        JobState::Dead | JobState::Cancelled | JobState::Completed => {
            job.attempt = 0;
            job.finished_at = None;
            job.cancel_requested = false;
            job.result = None;
            job.worker_id = None;
        }
        JobState::Scheduled | JobState::Retryable => {}
        _ => {
            return Err(TransitionError::InvalidState {
                state: from,
                action: "retry",
            });
        }
    }
    job.state = JobState::Available;
    job.available_at = now;
    Ok(Change {
        from: Some(from),
        to: JobState::Available,
        reason: "retry",
    })
}

/// A `scheduled` or `retryable` job whose time has come becomes `available`.
pub fn promote(job: &mut Job, now: Timestamp) -> Result<Change, TransitionError> {
    let from = job.state;
    if !matches!(from, JobState::Scheduled | JobState::Retryable) || job.available_at > now {
        return Err(TransitionError::InvalidState {
            state: from,
            action: "promote",
        });
    }
    job.state = JobState::Available;
    Ok(Change {
        from: Some(from),
        to: JobState::Available,
        reason: "promote",
    })
}

/// A running job whose lease expired or whose attempt ran past its timeout: a failed attempt of
/// kind `lease_expired` or `timeout`. Refused while the lease is live and in time.
pub fn rescue(
    job: &mut Job,
    now: Timestamp,
    rng: &mut impl Rng,
) -> Result<Change, TransitionError> {
    if job.state != JobState::Running {
        return Err(TransitionError::InvalidState {
            state: job.state,
            action: "rescue",
        });
    }
    let timed_out = job.attempt_deadline().is_some_and(|d| now >= d);
    let expired = job.lease_expires_at.is_none_or(|e| now >= e);
    let (outcome, kind, message) = if timed_out {
        (
            AttemptOutcome::Timeout,
            "timeout",
            format!("attempt ran past its timeout of {} ms", job.timeout_ms),
        )
    } else if expired {
        (
            AttemptOutcome::LeaseExpired,
            "lease_expired",
            "the lease expired before the worker reported an outcome".to_string(),
        )
    } else {
        return Err(TransitionError::InvalidState {
            state: job.state,
            action: "rescue",
        });
    };
    let failure = Failure {
        kind: kind.to_string(),
        message,
        retryable: true,
        retry_in_ms: None,
    };
    Ok(fail_attempt(job, now, failure, outcome, kind, rng))
}

/// Only finished jobs may be deleted.
pub fn check_deletable(job: &Job) -> Result<(), TransitionError> {
    if job.state.is_finished() {
        Ok(())
    } else {
        Err(TransitionError::InvalidState {
            state: job.state,
            action: "delete",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EnqueueRequestExt, Limits};

    const T0: Timestamp = Timestamp(1_800_000_000_000);

    fn new_job(json: &str) -> Job {
        let r: crate::new_job::EnqueueRequest = serde_json::from_str(json).unwrap();
        insert(r.validate_default(&Limits::default()), T0).0
    }

    fn leased(json: &str) -> (Job, String) {
        let mut j = new_job(json);
        lease(&mut j, T0, "w1", 30_000).unwrap();
        let t = j.lease_token.clone().unwrap().0;
        (j, t)
    }

    fn failure(retryable: bool) -> Failure {
        Failure {
            kind: "error".into(),
            message: "boom".into(),
            retryable,
            retry_in_ms: None,
        }
    }

    fn step(json: &str, waiting_on: u32) -> Job {
        let r: crate::new_job::EnqueueRequest = serde_json::from_str(json).unwrap();
        let info = StepInfo {
            workflow_id: crate::JobId::new(),
            step: "s".into(),
            depends_on: vec!["a".into(), "b".into()],
            on_failure: crate::workflow::OnFailure::CancelDependents,
            waiting_on,
            upstream_failed: false,
        };
        insert_step(r.validate_default(&Limits::default()), info, T0).0
    }

    #[test]
    fn a_step_waits_in_pending_until_its_last_parent_is_done() {
        assert_eq!(step(r#"{"kind":"k"}"#, 0).state, JobState::Available);
        let mut j = step(r#"{"kind":"k"}"#, 2);
        assert_eq!(j.state, JobState::Pending);
        let later = T0.plus_ms(5_000);
        assert_eq!(dependency_done(&mut j, later), None);
        assert_eq!(j.workflow.as_ref().unwrap().waiting_on, 1);
        let c = dependency_done(&mut j, later).unwrap();
        assert_eq!(
            (c.from, c.to, c.reason),
            (
                Some(JobState::Pending),
                JobState::Available,
                "dependencies_done"
            )
        );
        assert_eq!(
            j.available_at, later,
            "queued from the moment it became runnable"
        );
        assert_eq!(
            dependency_done(&mut j, later),
            None,
            "only a pending step moves"
        );
        let mut delayed = step(r#"{"kind":"k","delay_ms":60000}"#, 1);
        assert_eq!(
            dependency_done(&mut delayed, T0).unwrap().to,
            JobState::Scheduled
        );
    }

    #[test]
    fn an_upstream_failure_cancels_a_pending_step_and_a_run_retry_reopens_it() {
        let mut j = step(r#"{"kind":"k"}"#, 2);
        let c = upstream_failed(&mut j, T0).unwrap();
        assert_eq!((c.to, c.reason), (JobState::Cancelled, "upstream_failed"));
        assert!(j.workflow.as_ref().unwrap().upstream_failed);
        assert_eq!(upstream_failed(&mut j, T0), None);
        let c = reopen_step(&mut j, 1, T0).unwrap();
        assert_eq!(
            (c.from, c.to),
            (Some(JobState::Cancelled), JobState::Pending)
        );
        let info = j.workflow.as_ref().unwrap();
        assert_eq!((info.waiting_on, info.upstream_failed), (1, false));
        let mut done = step(r#"{"kind":"k"}"#, 0);
        assert!(
            reopen_step(&mut done, 0, T0).is_err(),
            "only failed steps reopen"
        );
    }

    #[test]
    fn insert_picks_state_from_run_at() {
        assert_eq!(new_job(r#"{"kind":"k"}"#).state, JobState::Available);
        assert_eq!(
            new_job(r#"{"kind":"k","delay_ms":10}"#).state,
            JobState::Scheduled
        );
        assert_eq!(
            new_job(r#"{"kind":"k","run_at":"2000-01-01T00:00:00Z"}"#).state,
            JobState::Available
        );
    }

    #[test]
    fn lease_counts_attempt_and_seq() {
        let (j, _) = leased(r#"{"kind":"k"}"#);
        assert_eq!((j.state, j.attempt, j.lease_seq), (JobState::Running, 1, 1));
        assert_eq!(j.lease_expires_at, Some(T0.plus_ms(30_000)));
        assert_eq!(j.attempts.len(), 1);
    }

    #[test]
    fn outcomes_are_fenced_and_idempotent() {
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        assert_eq!(
            complete(&mut j, "other", T0, None),
            Err(TransitionError::LeaseLost)
        );
        assert!(matches!(
            complete(&mut j, &t, T0, None),
            Ok(Applied::Changed(_))
        ));
        assert_eq!(complete(&mut j, &t, T0, None), Ok(Applied::Repeated));
        assert!(matches!(
            release(&mut j, &t, T0),
            Err(TransitionError::InvalidState { .. })
        ));
        assert_eq!(j.state, JobState::Completed);
    }

    #[test]
    fn failures_retry_then_die() {
        let mut rng = rand::rng();
        let (mut j, t) =
            leased(r#"{"kind":"k","max_attempts":2,"backoff":{"kind":"fixed","delay_ms":500}}"#);
        fail(&mut j, &t, T0, failure(true), &mut rng).unwrap();
        assert_eq!(j.state, JobState::Retryable);
        assert_eq!(j.available_at, T0.plus_ms(500));
        assert!(promote(&mut j, T0).is_err(), "not due yet");
        promote(&mut j, T0.plus_ms(500)).unwrap();
        lease(&mut j, T0, "w", 1000).unwrap();
        let t2 = j.lease_token.clone().unwrap().0;
        fail(&mut j, &t2, T0, failure(true), &mut rng).unwrap();
        assert_eq!(j.state, JobState::Dead);
        assert_eq!(j.errors.len(), 2);
    }

    #[test]
    fn non_retryable_dies_at_once_and_retry_in_overrides_backoff() {
        let mut rng = rand::rng();
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        fail(&mut j, &t, T0, failure(false), &mut rng).unwrap();
        assert_eq!(j.state, JobState::Dead);
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        let f = Failure {
            retry_in_ms: Some(42),
            ..failure(true)
        };
        fail(&mut j, &t, T0, f, &mut rng).unwrap();
        assert_eq!(j.available_at, T0.plus_ms(42));
    }

    #[test]
    fn release_does_not_count() {
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        release(&mut j, &t, T0).unwrap();
        assert_eq!((j.state, j.attempt), (JobState::Available, 0));
        assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::Released));
    }

    #[test]
    fn cancel_waiting_and_running() {
        let mut j = new_job(r#"{"kind":"k"}"#);
        cancel(&mut j, T0).unwrap();
        assert_eq!(j.state, JobState::Cancelled);
        assert!(cancel(&mut j, T0).is_err());

        let mut rng = rand::rng();
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        cancel(&mut j, T0).unwrap();
        assert_eq!((j.state, j.cancel_requested), (JobState::Running, true));
        fail(&mut j, &t, T0, failure(true), &mut rng).unwrap();
        assert_eq!(j.state, JobState::Cancelled);
    }

    #[test]
    fn rescue_expired_and_timed_out() {
        let mut rng = rand::rng();
        let (mut j, _) = leased(r#"{"kind":"k"}"#);
        assert!(rescue(&mut j, T0.plus_ms(29_999), &mut rng).is_err());
        rescue(&mut j, T0.plus_ms(30_000), &mut rng).unwrap();
        assert_eq!(j.state, JobState::Retryable);
        assert_eq!(j.errors[0].kind, "lease_expired");

        let (mut j, t) = leased(r#"{"kind":"k","timeout_ms":1000}"#);
        assert_eq!(
            heartbeat(&mut j, &t, T0.plus_ms(1000), None, None),
            Err(TransitionError::LeaseLost)
        );
        rescue(&mut j, T0.plus_ms(1000), &mut rng).unwrap();
        assert_eq!(j.errors[0].kind, "timeout");
        // The old token learns its lease is gone.
        assert_eq!(
            complete(&mut j, &t, T0, None),
            Err(TransitionError::LeaseLost)
        );
    }

    #[test]
    fn retry_resets_finished_and_hurries_waiting() {
        let mut rng = rand::rng();
        let (mut j, t) = leased(r#"{"kind":"k"}"#);
        fail(&mut j, &t, T0, failure(false), &mut rng).unwrap();
        retry(&mut j, T0).unwrap();
        assert_eq!(
            (j.state, j.attempt, j.errors.len()),
            (JobState::Available, 0, 1)
        );
        let mut s = new_job(r#"{"kind":"k","delay_ms":100000}"#);
        retry(&mut s, T0).unwrap();
        assert_eq!((s.state, s.available_at), (JobState::Available, T0));
        let (mut r, _) = leased(r#"{"kind":"k"}"#);
        assert!(retry(&mut r, T0).is_err());
    }

    #[test]
    fn errors_keep_the_last_fifty() {
        let mut rng = rand::rng();
        let mut j = new_job(r#"{"kind":"k","max_attempts":1000}"#);
        for _ in 0..60 {
            lease(&mut j, T0, "w", 1000).unwrap();
            let t = j.lease_token.clone().unwrap().0;
            fail(&mut j, &t, T0, failure(true), &mut rng).unwrap();
            promote(&mut j, T0.plus_ms(10_000_000)).unwrap();
        }
        assert_eq!(j.errors.len(), 50);
        assert_eq!(j.errors[0].attempt, 11);
    }
}
