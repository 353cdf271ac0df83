//! Backend-neutral decisions about workflow steps, like [`crate::lease_plan`] for leases: how
//! new steps start given the steps they depend on ([`plan_steps`]), which steps a retry of a
//! run reopens and how many parents each then waits for ([`plan_retry`]), and what a finished
//! step does to one of its pending children ([`child_after_parent`]).
//!
//! Backends load and lock the rows, call these, and write what they answer, so the graph's
//! rules are the same code on every backend.

use std::collections::HashMap;

use hopper_types::lifecycle::{self, Change};
use hopper_types::workflow::{Dependency, ValidatedStep};
use hopper_types::workflow_run::{StepInfo, Workflow};
use hopper_types::{Job, JobId, JobState, Timestamp};

/// A new step ready to insert: its job (in its first state), the event of that state, and the
/// ids of the steps it depends on (one dependency row each).
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The job, `pending`, `available`, `scheduled` or (when a parent already failed under
    /// `cancel_dependents`) `cancelled`.
    pub job: Job,
    /// Its first event.
    pub change: Change,
    /// The parents' job ids.
    pub parents: Vec<JobId>,
}

/// Plans `steps` (validated, in topological order) as new steps of `run`. `existing` maps the
/// run's step names to their jobs as they are now, under lock. A step waits for each parent
/// that is not finished; one whose parent already failed in a way that stops dependents is
/// cancelled at once (`upstream_failed`), like every step below it. Updates the run's counters.
pub fn plan_steps(
    run: &mut Workflow,
    steps: Vec<ValidatedStep>,
    existing: &HashMap<String, Job>,
    now: Timestamp,
) -> Vec<PlannedStep> {
    let mut planned: Vec<PlannedStep> = Vec::with_capacity(steps.len());
    let mut cancelled = 0u32;
    for s in steps {
        let mut parents = Vec::with_capacity(s.depends_on.len());
        let mut open = 0u32;
        let mut blocked = false;
        for d in &s.depends_on {
            let parent = match d {
                Dependency::New(k) => &planned[*k].job,
                Dependency::Existing(name) => match existing.get(name) {
                    Some(j) => j,
                    // Validation only lets through names in `existing`.
                    None => continue,
                },
            };
            parents.push(parent.id);
            if !parent.state.is_finished() {
                open += 1;
            } else if !parent
                .workflow
                .as_ref()
                .is_some_and(|w| w.lets_dependents_run(parent.state))
            {
                blocked = true;
            }
        }
        let info = StepInfo {
            workflow_id: run.id,
            step: s.step,
            depends_on: s
                .depends_on
                .iter()
                .map(|d| match d {
                    Dependency::New(k) => planned[*k]
                        .job
                        .workflow
                        .as_ref()
                        .map(|w| w.step.clone())
                        .unwrap_or_default(),
                    Dependency::Existing(name) => name.clone(),
                })
                .collect(),
            on_failure: s.on_failure,
            // A blocked step is cancelled from pending below, whatever else it waits for.
            waiting_on: if blocked { open.max(1) } else { open },
            upstream_failed: false,
        };
        let (mut job, mut change) = lifecycle::insert_step(s.job, info, now);
        if blocked && let Some(c) = lifecycle::upstream_failed(&mut job, now) {
            change = Change { from: None, ..c };
            cancelled += 1;
        }
        planned.push(PlannedStep {
            job,
            change,
            parents,
        });
    }
    let added = u32::try_from(planned.len()).unwrap_or(u32::MAX);
    run.steps_added(added, added - cancelled);
    planned
}

/// What a finished step (`parent`) does to one of its children: a pending child waits for one
/// fewer parent (and may become runnable), or is cancelled when the parent's failure stops its
/// dependents or the run is being cancelled. `None` when the child does not change state; the
/// child's stored body must still be written when it was pending (its count went down).
pub fn child_after_parent(
    child: &mut Job,
    parent: &Job,
    run_cancelling: bool,
    now: Timestamp,
) -> Option<Change> {
    let lets_run = parent
        .workflow
        .as_ref()
        .is_some_and(|w| w.lets_dependents_run(parent.state));
    if lets_run && !run_cancelling {
        lifecycle::dependency_done(child, now)
    } else {
        lifecycle::upstream_failed(child, now)
    }
}

/// A step a retry reopens, and how many parents it then waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopen {
    /// The step's job.
    pub id: JobId,
    /// Parents that are not completed once the retry is applied.
    pub waiting_on: u32,
}

/// Which steps of a finished run a retry starts over: every `dead` or `cancelled` one, each
/// waiting for its parents that are being started over too (the others completed, or failed
/// under a policy that let their dependents run and start over themselves).
pub fn plan_retry(steps: &[Job]) -> Vec<Reopen> {
    let failed = |j: &Job| matches!(j.state, JobState::Dead | JobState::Cancelled);
    let reopened: HashMap<&str, bool> = steps
        .iter()
        .filter_map(|j| j.workflow.as_ref().map(|w| (w.step.as_str(), failed(j))))
        .collect();
    steps
        .iter()
        .filter(|j| failed(j))
        .map(|j| Reopen {
            id: j.id,
            waiting_on: j.workflow.as_ref().map_or(0, |w| {
                let n = w
                    .depends_on
                    .iter()
                    .filter(|p| reopened.get(p.as_str()).copied().unwrap_or(false))
                    .count();
                u32::try_from(n).unwrap_or(u32::MAX)
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_types::Limits;
    use hopper_types::workflow::{WorkflowRequest, validate_steps};
    use hopper_types::workflow_run::WorkflowState;

    fn validated(json: &str, existing: &HashMap<String, Job>) -> Vec<ValidatedStep> {
        let r: WorkflowRequest = serde_json::from_str(json).unwrap();
        validate_steps(
            r.steps,
            &|n| existing.contains_key(n),
            existing.len(),
            "default",
            &Limits::default(),
        )
        .unwrap()
    }

    fn run(steps: u32) -> Workflow {
        Workflow::new(JobId::new(), "default".into(), None, steps, Timestamp(0))
    }

    fn by_name(planned: &[PlannedStep]) -> HashMap<String, Job> {
        planned
            .iter()
            .map(|p| (p.job.workflow.as_ref().unwrap().step.clone(), p.job.clone()))
            .collect()
    }

    #[test]
    fn a_diamond_starts_with_its_root_and_counts_its_parents() {
        let mut w = run(0);
        let planned = plan_steps(
            &mut w,
            validated(
                r#"{"steps": [
                {"step": "d", "depends_on": ["b", "c"], "job": {"kind": "k"}},
                {"step": "b", "depends_on": ["a"], "job": {"kind": "k"}},
                {"step": "c", "depends_on": ["a"], "job": {"kind": "k"}},
                {"step": "a", "job": {"kind": "k"}}]}"#,
                &HashMap::new(),
            ),
            &HashMap::new(),
            Timestamp(0),
        );
        let steps = by_name(&planned);
        assert_eq!(steps["a"].state, JobState::Available);
        assert_eq!(steps["d"].state, JobState::Pending);
        assert_eq!(steps["d"].workflow.as_ref().unwrap().waiting_on, 2);
        assert_eq!(
            steps["d"].workflow.as_ref().unwrap().depends_on,
            vec!["b", "c"]
        );
        let d = planned.iter().find(|p| p.job.id == steps["d"].id).unwrap();
        assert_eq!(d.parents, vec![steps["b"].id, steps["c"].id]);
        assert_eq!((w.steps, w.open_steps), (4, 4));
    }

    #[test]
    fn added_steps_count_only_unfinished_parents_and_inherit_a_failure() {
        let mut w = run(0);
        let first = plan_steps(
            &mut w,
            validated(
                r#"{"steps": [{"step": "done", "job": {"kind": "k"}},
                              {"step": "dead", "job": {"kind": "k"}},
                              {"step": "busy", "job": {"kind": "k"}}]}"#,
                &HashMap::new(),
            ),
            &HashMap::new(),
            Timestamp(0),
        );
        let mut existing = by_name(&first);
        let finish = |j: &mut Job, complete: bool| {
            lifecycle::lease(j, Timestamp(0), "w", 1000).unwrap();
            let t = j.lease_token.clone().expect("leased").0;
            if complete {
                lifecycle::complete(j, &t, Timestamp(1), None).unwrap();
            } else {
                lifecycle::cancelled(j, &t, Timestamp(1)).unwrap();
            }
        };
        finish(existing.get_mut("done").unwrap(), true);
        finish(existing.get_mut("dead").unwrap(), false);
        let added = plan_steps(
            &mut w,
            validated(
                r#"{"steps": [{"step": "x", "depends_on": ["done", "busy"], "job": {"kind": "k"}},
                              {"step": "y", "depends_on": ["done"], "job": {"kind": "k"}},
                              {"step": "z", "depends_on": ["dead", "busy"], "job": {"kind": "k"}},
                              {"step": "below_z", "depends_on": ["z"], "job": {"kind": "k"}}]}"#,
                &existing,
            ),
            &existing,
            Timestamp(2),
        );
        let s = by_name(&added);
        assert_eq!(s["x"].state, JobState::Pending);
        assert_eq!(s["x"].workflow.as_ref().unwrap().waiting_on, 1);
        assert_eq!(s["y"].state, JobState::Available);
        assert_eq!(s["z"].state, JobState::Cancelled);
        assert_eq!(s["below_z"].state, JobState::Cancelled);
        let z = added.iter().find(|p| p.job.id == s["z"].id).unwrap();
        assert_eq!((z.change.from, z.change.reason), (None, "upstream_failed"));
        assert_eq!(
            (w.steps, w.open_steps, w.state),
            (7, 5, WorkflowState::Running)
        );
    }

    #[test]
    fn a_retry_reopens_failed_steps_waiting_for_reopened_parents() {
        let mut w = run(0);
        let planned = plan_steps(
            &mut w,
            validated(
                r#"{"steps": [{"step": "a", "job": {"kind": "k"}},
                              {"step": "b", "depends_on": ["a"], "job": {"kind": "k"}},
                              {"step": "c", "depends_on": ["a", "b"], "job": {"kind": "k"}},
                              {"step": "ok", "job": {"kind": "k"}}]}"#,
                &HashMap::new(),
            ),
            &HashMap::new(),
            Timestamp(0),
        );
        let mut steps: Vec<Job> = planned.into_iter().map(|p| p.job).collect();
        for j in &mut steps {
            let name = j.workflow.as_ref().unwrap().step.clone();
            if name == "ok" {
                j.state = JobState::Completed;
            } else {
                j.state = if name == "a" {
                    JobState::Dead
                } else {
                    JobState::Cancelled
                };
            }
        }
        let plan = plan_retry(&steps);
        let waits: Vec<u32> = plan.iter().map(|r| r.waiting_on).collect();
        assert_eq!(waits, vec![0, 1, 2]);
    }
}
