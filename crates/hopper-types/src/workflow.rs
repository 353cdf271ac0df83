//! Workflows: a run is a DAG of steps, each step one job that waits in `pending` until its
//! dependencies are done. This module is the request a client submits ([`WorkflowRequest`],
//! [`StepRequest`]) and its validation into [`ValidatedStep`]s, pure like the rest of this
//! crate: every backend stores what [`validate_steps`] returns and nothing it refuses.
//!
//! Validation is what makes a run safe to store atomically: names are unique and well formed,
//! every dependency names a step of the run, the graph is acyclic (a cycle is reported with
//! its path), and a run stays within [`MAX_STEPS`]. The same function checks steps a running
//! step adds to its own run (dynamic fan-out): they may also depend on the run's existing
//! steps, which can never depend on them, so a cycle can only form among the new ones.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{EnqueueRequest, Limits, NewJob, ValidationError, validate_name};

/// Most steps one run holds, counting steps added while it runs.
pub const MAX_STEPS: usize = 10_000;

/// What a step's failure does to the steps downstream of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// A dead or cancelled step cancels every step downstream of it, and the run fails.
    #[default]
    CancelDependents,
    /// Dependents run anyway, with the failure among their parents; the run fails.
    Continue,
    /// The failure counts as done: dependents run and the run can still succeed.
    Ignore,
}

/// One step as a client submits it. Unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    /// The step's name, unique in its run (`^[A-Za-z0-9_.:-]{1,128}$`).
    pub step: String,
    /// Names of the steps that must be done before this one starts.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// What this step's failure does downstream; `cancel_dependents` when absent.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The job this step runs.
    pub job: EnqueueRequest,
}

/// A workflow run as a client submits it (`POST /v1/workflows`). Unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRequest {
    /// A label for people (the definition's name for runs of a definition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The steps, in any order.
    pub steps: Vec<StepRequest>,
}

/// Where a dependency points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    /// Another step of the same submission, by its index in [`validate_steps`]'s answer.
    New(usize),
    /// A step already in the run, by name.
    Existing(String),
}

/// A step that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedStep {
    /// Its name.
    pub step: String,
    /// What it waits for, each once.
    pub depends_on: Vec<Dependency>,
    /// What its failure does downstream.
    pub on_failure: OnFailure,
    /// Its job, validated as an enqueue would be.
    pub job: NewJob,
}

/// Checks `steps` to be stored together in one run of `namespace` and answers them in
/// topological order (each after every new step it depends on), so a backend can insert them
/// front to back. `existing` names the steps the run already has (none for a new run), and
/// `existing_count` how many there are. Errors name the field at fault, e.g.
/// `steps[3].depends_on[1]`.
pub fn validate_steps(
    steps: Vec<StepRequest>,
    existing: &dyn Fn(&str) -> bool,
    existing_count: usize,
    namespace: &str,
    limits: &Limits,
) -> Result<Vec<ValidatedStep>, ValidationError> {
    if steps.is_empty() {
        return Err(ValidationError::invalid(
            "steps",
            "a workflow needs at least one step",
        ));
    }
    if existing_count + steps.len() > MAX_STEPS {
        return Err(ValidationError::invalid(
            "steps",
            format!(
                "a workflow run has at most {MAX_STEPS} steps ({existing_count} already, {} more asked)",
                steps.len()
            ),
        ));
    }

    // Names: well formed, unique within the submission and the run.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let field = format!("steps[{i}].step");
        validate_name(&field, &s.step)?;
        if let Some(first) = index.insert(s.step.as_str(), i) {
            return Err(ValidationError::invalid(
                field,
                format!("step `{}` is named twice (also steps[{first}])", s.step),
            ));
        }
        if existing(&s.step) {
            return Err(ValidationError::invalid(
                field,
                format!("the run already has a step `{}`", s.step),
            ));
        }
    }

    // Dependencies: known, each once.
    let mut deps: Vec<Vec<Dependency>> = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let mut these = Vec::with_capacity(s.depends_on.len());
        for (j, name) in s.depends_on.iter().enumerate() {
            let field = format!("steps[{i}].depends_on[{j}]");
            let dep = match index.get(name.as_str()) {
                Some(&k) => Dependency::New(k),
                None if existing(name) => Dependency::Existing(name.clone()),
                None => {
                    return Err(ValidationError::invalid(
                        field,
                        format!(
                            "step `{}` depends on `{name}`, which is not a step of the run",
                            s.step
                        ),
                    ));
                }
            };
            if these.contains(&dep) {
                return Err(ValidationError::invalid(
                    field,
                    format!("step `{}` lists `{name}` twice", s.step),
                ));
            }
            these.push(dep);
        }
        deps.push(these);
    }

    let order = topological_order(&steps, &deps)?;

    // The jobs, validated as enqueues are; then everything in topological order.
    let mut validated: Vec<Option<ValidatedStep>> = Vec::with_capacity(steps.len());
    for (i, (s, d)) in steps.into_iter().zip(deps).enumerate() {
        if s.job.idempotency_key.is_some() {
            return Err(ValidationError::invalid(
                format!("steps[{i}].job.idempotency_key"),
                "a step has no idempotency key of its own: its run is submitted once (a \
                 definition's run is unique per logical date)",
            ));
        }
        let job = s
            .job
            .validate(namespace, limits)
            .map_err(|e| e.under(&format!("steps[{i}].job")))?;
        validated.push(Some(ValidatedStep {
            step: s.step,
            depends_on: d,
            on_failure: s.on_failure,
            job,
        }));
    }
    // Positions in the answer, for the `New` dependencies.
    let mut position = vec![0; order.len()];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    Ok(order
        .iter()
        .map(|&i| {
            let mut s = validated[i]
                .take()
                .expect("each index appears once in the order");
            for d in &mut s.depends_on {
                if let Dependency::New(k) = d {
                    *k = position[*k];
                }
            }
            s
        })
        .collect())
}

// Kahn's algorithm over the new steps; on a cycle, walks it to report its path.
fn topological_order(
    steps: &[StepRequest],
    deps: &[Vec<Dependency>],
) -> Result<Vec<usize>, ValidationError> {
    let n = steps.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for dep in d {
            if let Dependency::New(k) = dep {
                waiting_on[i] += 1;
                dependents[*k].push(i);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let i = order[next];
        next += 1;
        for &d in &dependents[i] {
            waiting_on[d] -= 1;
            if waiting_on[d] == 0 {
                order.push(d);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Every step left waits on another step left: follow first dependencies until one repeats.
    let start = (0..n).find(|&i| waiting_on[i] > 0).unwrap_or(0);
    let mut path = vec![start];
    let mut seen = vec![usize::MAX; n];
    seen[start] = 0;
    let mut at = start;
    loop {
        let parent = deps[at]
            .iter()
            .find_map(|d| match d {
                Dependency::New(k) if waiting_on[*k] > 0 => Some(*k),
                _ => None,
            })
            .unwrap_or(start);
        if seen[parent] != usize::MAX {
            // The path runs from dependent to dependency; shown in running order, closed.
            let mut cycle: Vec<&str> = path[seen[parent]..]
                .iter()
                .rev()
                .map(|&i| steps[i].step.as_str())
                .collect();
            cycle.push(cycle[0]);
            return Err(ValidationError::invalid(
                format!("steps[{parent}].depends_on"),
                format!("the steps form a cycle: {}", cycle.join(" → ")),
            ));
        }
        seen[parent] = path.len();
        path.push(parent);
        at = parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> WorkflowRequest {
        serde_json::from_str(json).expect("a workflow request")
    }

    fn validate(json: &str) -> Result<Vec<ValidatedStep>, ValidationError> {
        validate_steps(
            request(json).steps,
            &|_| false,
            0,
            "default",
            &Limits::default(),
        )
    }

    fn names(steps: &[ValidatedStep]) -> Vec<&str> {
        steps.iter().map(|s| s.step.as_str()).collect()
    }

    #[test]
    fn a_diamond_comes_back_in_topological_order_with_positions() {
        let steps = validate(
            r#"{"steps": [
                {"step": "join", "depends_on": ["left", "right"], "job": {"kind": "j"}},
                {"step": "right", "depends_on": ["start"], "on_failure": "continue", "job": {"kind": "r"}},
                {"step": "left", "depends_on": ["start"], "job": {"kind": "l"}},
                {"step": "start", "job": {"kind": "s", "queue": "q"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(names(&steps), vec!["start", "right", "left", "join"]);
        assert_eq!(steps[0].job.queue, "q");
        assert_eq!(steps[1].on_failure, OnFailure::Continue);
        assert_eq!(steps[2].on_failure, OnFailure::CancelDependents);
        assert_eq!(steps[1].depends_on, vec![Dependency::New(0)]);
        assert_eq!(
            steps[3].depends_on,
            vec![Dependency::New(2), Dependency::New(1)],
            "positions in the answer, in the order listed"
        );
    }

    #[test]
    fn a_cycle_is_refused_with_its_path() {
        let e = validate(
            r#"{"steps": [
                {"step": "a", "depends_on": ["c"], "job": {"kind": "k"}},
                {"step": "b", "depends_on": ["a"], "job": {"kind": "k"}},
                {"step": "c", "depends_on": ["b"], "job": {"kind": "k"}},
                {"step": "free", "job": {"kind": "k"}}
            ]}"#,
        )
        .unwrap_err();
        assert!(
            e.field.starts_with("steps[") && e.field.ends_with("].depends_on"),
            "{e}"
        );
        assert!(e.message.contains("cycle"), "{e}");
        for s in ["a", "b", "c"] {
            assert!(e.message.contains(s), "{e}");
        }
        assert!(!e.message.contains("free"), "{e}");
        // Each arrow runs from a step to one that depends on it.
        assert_eq!(e.message, "the steps form a cycle: b → c → a → b");
        let own =
            validate(r#"{"steps": [{"step": "a", "depends_on": ["a"], "job": {"kind": "k"}}]}"#)
                .unwrap_err();
        assert_eq!(own.message, "the steps form a cycle: a → a");
    }

    #[test]
    fn unknown_and_repeated_dependencies_and_duplicate_names_name_the_field() {
        let e = validate(
            r#"{"steps": [{"step": "a", "job": {"kind": "k"}},
                          {"step": "b", "depends_on": ["a", "nope"], "job": {"kind": "k"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[1].depends_on[1]");
        assert!(e.message.contains("`nope`"), "{e}");
        let e = validate(
            r#"{"steps": [{"step": "a", "job": {"kind": "k"}},
                          {"step": "b", "depends_on": ["a", "a"], "job": {"kind": "k"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[1].depends_on[1]");
        let e = validate(
            r#"{"steps": [{"step": "a", "job": {"kind": "k"}}, {"step": "a", "job": {"kind": "k"}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[1].step");
        assert!(e.message.contains("also steps[0]"), "{e}");
        let e =
            validate(r#"{"steps": [{"step": "no spaces", "job": {"kind": "k"}}]}"#).unwrap_err();
        assert_eq!(e.field, "steps[0].step");
        let e = validate(r#"{"steps": []}"#).unwrap_err();
        assert_eq!(e.field, "steps");
    }

    #[test]
    fn a_bad_job_is_named_under_its_step() {
        let e = validate(r#"{"steps": [{"step": "a", "job": {"kind": "k", "priority": 99999}}]}"#)
            .unwrap_err();
        assert_eq!(e.field, "steps[0].job.priority");
    }

    #[test]
    fn unknown_fields_are_refused_by_the_parser() {
        let r: Result<WorkflowRequest, _> = serde_json::from_str(
            r#"{"steps": [{"step": "a", "job": {"kind": "k"}, "retries": 3}]}"#,
        );
        assert!(r.is_err());
        let r: Result<WorkflowRequest, _> = serde_json::from_str(
            r#"{"steps": [{"step": "a", "on_failure": "explode", "job": {"kind": "k"}}]}"#,
        );
        assert!(r.is_err());
    }

    #[test]
    fn a_run_is_bounded_counting_the_steps_it_has() {
        let many: Vec<String> = (0..=MAX_STEPS)
            .map(|i| format!(r#"{{"step": "s{i}", "job": {{"kind": "k"}}}}"#))
            .collect();
        let e = validate(&format!(r#"{{"steps": [{}]}}"#, many.join(","))).unwrap_err();
        assert_eq!(e.field, "steps");
        assert!(!e.too_large, "a 400 naming the problem, not a 413");
        let two = request(
            r#"{"steps": [{"step": "x", "job": {"kind": "k"}}, {"step": "y", "job": {"kind": "k"}}]}"#,
        );
        assert!(
            validate_steps(
                two.steps,
                &|_| false,
                MAX_STEPS - 1,
                "default",
                &Limits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn added_steps_may_depend_on_the_runs_steps_but_not_reuse_their_names() {
        let run = ["fan_out"];
        let existing = |n: &str| run.contains(&n);
        let added = request(
            r#"{"steps": [
                {"step": "join", "depends_on": ["c0", "c1", "fan_out"], "job": {"kind": "k"}},
                {"step": "c0", "depends_on": ["fan_out"], "job": {"kind": "k"}},
                {"step": "c1", "depends_on": ["fan_out"], "job": {"kind": "k"}}
            ]}"#,
        );
        let steps =
            validate_steps(added.steps, &existing, 1, "default", &Limits::default()).unwrap();
        assert_eq!(names(&steps), vec!["c0", "c1", "join"]);
        assert_eq!(
            steps[2].depends_on,
            vec![
                Dependency::New(0),
                Dependency::New(1),
                Dependency::Existing("fan_out".into())
            ]
        );
        let clash = request(r#"{"steps": [{"step": "fan_out", "job": {"kind": "k"}}]}"#);
        let e =
            validate_steps(clash.steps, &existing, 1, "default", &Limits::default()).unwrap_err();
        assert_eq!(e.field, "steps[0].step");
    }
}
