//! A stored workflow run and what its steps carry: the run's counters and state machine, and
//! [`StepInfo`], the part of a step's job that ties it into the run's graph.
//!
//! A run is `running` while any of its steps is unfinished; when the last one finishes it
//! settles as `cancelled` (a cancel was asked), `failed` (a step failed whose policy is not
//! `ignore`) or `completed`. Backends keep the counters in the run's row and change them in the
//! same transaction as the step transitions that move them, so they never drift from the steps.

use serde::{Deserialize, Serialize};

use crate::workflow::OnFailure;
use crate::{JobId, JobState, Timestamp};

/// A workflow run's id: a UUIDv7, like a job's.
pub type WorkflowId = JobId;

/// The part of a job that makes it a step of a workflow run. Stored with the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepInfo {
    /// The run.
    pub workflow_id: WorkflowId,
    /// The step's name, unique in its run.
    pub step: String,
    /// The steps this one waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// What this step's failure does downstream.
    pub on_failure: OnFailure,
    /// How many of `depends_on` are not done yet; the step leaves `pending` at zero.
    #[serde(default)]
    pub waiting_on: u32,
    /// Cancelled because a step upstream failed (its own policy then plays no part: everything
    /// downstream of it is cancelled too).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub upstream_failed: bool,
}

impl StepInfo {
    /// Whether this finished step lets its dependents run: it completed, or it failed under a
    /// policy that lets them run anyway.
    pub fn lets_dependents_run(&self, state: JobState) -> bool {
        match state {
            JobState::Completed => true,
            JobState::Dead | JobState::Cancelled => {
                !self.upstream_failed && self.on_failure != OnFailure::CancelDependents
            }
            _ => false,
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowState {
    /// Some step is not finished.
    Running,
    /// Every step finished, and none failed except under `ignore`.
    Completed,
    /// Every step finished, and a step failed under `cancel_dependents` or `continue`.
    Failed,
    /// Every step finished after a cancel of the run.
    Cancelled,
}

impl WorkflowState {
    /// The name used in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Running => "running",
            WorkflowState::Completed => "completed",
            WorkflowState::Failed => "failed",
            WorkflowState::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled.
    pub fn is_finished(self) -> bool {
        self != WorkflowState::Running
    }
}

impl std::str::FromStr for WorkflowState {
    type Err = crate::state::UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => WorkflowState::Running,
            "completed" => WorkflowState::Completed,
            "failed" => WorkflowState::Failed,
            "cancelled" => WorkflowState::Cancelled,
            other => return Err(crate::state::UnknownState(other.to_string())),
        })
    }
}

/// A workflow run as stored and as the API shows it (without its steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workflow {
    /// UUIDv7, assigned at submission.
    pub id: WorkflowId,
    /// Tenant.
    pub namespace: String,
    /// A label for people; the definition's name for runs of a definition.
    pub name: Option<String>,
    /// Where the run stands.
    pub state: WorkflowState,
    /// How many steps the run has, counting those added while it ran.
    pub steps: u32,
    /// Steps not finished yet.
    pub open_steps: u32,
    /// Finished steps that failed under `cancel_dependents` or `continue` (what makes a run fail).
    pub failed_steps: u32,
    /// A cancel of the run was asked and steps may still be finishing.
    pub cancel_requested: bool,
    /// The definition this run was made from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// The run's logical date (a run of a definition, e.g. one day of a backfill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<String>,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When its last step finished.
    pub finished_at: Option<Timestamp>,
}

impl Workflow {
    /// A run of `steps` steps submitted at `now`.
    pub fn new(
        id: WorkflowId,
        namespace: String,
        name: Option<String>,
        steps: u32,
        now: Timestamp,
    ) -> Self {
        Workflow {
            id,
            namespace,
            name,
            state: WorkflowState::Running,
            steps,
            open_steps: steps,
            failed_steps: 0,
            cancel_requested: false,
            definition: None,
            logical_date: None,
            created_at: now,
            finished_at: None,
        }
    }

    /// A step of the run reached a finished state (`state`), as `info` says it was.
    pub fn step_finished(&mut self, info: &StepInfo, state: JobState, now: Timestamp) {
        self.open_steps = self.open_steps.saturating_sub(1);
        let failed = matches!(state, JobState::Dead | JobState::Cancelled);
        if failed && !info.upstream_failed && info.on_failure != OnFailure::Ignore {
            self.failed_steps += 1;
        }
        self.settle(now);
    }

    /// Steps were added to the running run (`open` of them unfinished).
    pub fn steps_added(&mut self, added: u32, open: u32) {
        self.steps += added;
        self.open_steps += open;
    }

    /// A cancel of the run was asked: unfinished steps are being cancelled.
    pub fn cancel_requested(&mut self, now: Timestamp) {
        self.cancel_requested = true;
        self.settle(now);
    }

    /// A retry of the run reopened `reopened` finished steps; failures are forgiven.
    pub fn reopened(&mut self, reopened: u32) {
        self.open_steps += reopened;
        self.failed_steps = 0;
        self.cancel_requested = false;
        self.state = WorkflowState::Running;
        self.finished_at = None;
    }

    // Ends the run once no step is open.
    fn settle(&mut self, now: Timestamp) {
        if self.open_steps > 0 || self.state.is_finished() {
            return;
        }
        self.state = if self.cancel_requested {
            WorkflowState::Cancelled
        } else if self.failed_steps > 0 {
            WorkflowState::Failed
        } else {
            WorkflowState::Completed
        };
        self.finished_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(on_failure: OnFailure) -> StepInfo {
        StepInfo {
            workflow_id: JobId::new(),
            step: "s".into(),
            depends_on: Vec::new(),
            on_failure,
            waiting_on: 0,
            upstream_failed: false,
        }
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    #[test]
    fn a_run_completes_when_its_last_step_does() {
        let mut w = Workflow::new(JobId::new(), "default".into(), None, 2, at(0));
        w.step_finished(
            &info(OnFailure::CancelDependents),
            JobState::Completed,
            at(1),
        );
        assert_eq!(w.state, WorkflowState::Running);
        w.step_finished(
            &info(OnFailure::CancelDependents),
            JobState::Completed,
            at(2),
        );
        assert_eq!(w.state, WorkflowState::Completed);
        assert_eq!(w.finished_at, Some(at(2)));
    }

    #[test]
    fn failures_fail_the_run_unless_ignored() {
        for (policy, expected) in [
            (OnFailure::CancelDependents, WorkflowState::Failed),
            (OnFailure::Continue, WorkflowState::Failed),
            (OnFailure::Ignore, WorkflowState::Completed),
        ] {
            let mut w = Workflow::new(JobId::new(), "default".into(), None, 1, at(0));
            w.step_finished(&info(policy), JobState::Dead, at(1));
            assert_eq!(w.state, expected, "{policy:?}");
        }
    }

    #[test]
    fn a_cancelled_run_settles_cancelled_and_a_retry_reopens_it() {
        let mut w = Workflow::new(JobId::new(), "default".into(), None, 1, at(0));
        w.cancel_requested(at(1));
        assert_eq!(w.state, WorkflowState::Running, "a step is still open");
        w.step_finished(
            &info(OnFailure::CancelDependents),
            JobState::Cancelled,
            at(2),
        );
        assert_eq!(w.state, WorkflowState::Cancelled);
        w.reopened(1);
        assert_eq!(
            (w.state, w.open_steps, w.failed_steps),
            (WorkflowState::Running, 1, 0)
        );
        w.step_finished(
            &info(OnFailure::CancelDependents),
            JobState::Completed,
            at(3),
        );
        assert_eq!(w.state, WorkflowState::Completed);
    }

    #[test]
    fn only_some_failures_let_dependents_run() {
        let mut i = info(OnFailure::CancelDependents);
        assert!(i.lets_dependents_run(JobState::Completed));
        assert!(!i.lets_dependents_run(JobState::Dead));
        i.on_failure = OnFailure::Continue;
        assert!(i.lets_dependents_run(JobState::Dead));
        i.upstream_failed = true;
        assert!(
            !i.lets_dependents_run(JobState::Cancelled),
            "a cascade goes all the way down"
        );
        assert!(!info(OnFailure::Ignore).lets_dependents_run(JobState::Running));
    }
}
