//! Workflow runs: `workflow_insert`, `workflow_get`, `workflow_list`, `workflow_cancel`,
//! `workflow_retry`, `workflow_add_steps`, `workflow_parents`, and the follow-up every finished
//! step gets in the transaction that finishes it.
//!
//! Semantics: a step with dependencies waits in `pending` until every parent is done; a parent
//! that completed counts as done, a failed one counts as done under `continue` and `ignore` and
//! cancels everything downstream under `cancel_dependents`. The run is `running` until its last
//! step finishes, then `completed`, `failed` (a failure not under `ignore`) or `cancelled`. A
//! fan-in fires exactly once, whatever order and concurrency its parents finish with.

use std::collections::HashMap;

use hopper_store::{
    AckOutcome, JobAck, WorkflowAddSteps, WorkflowInsert, WorkflowListParams, WorkflowRun,
};
use hopper_types::workflow::{StepRequest, WorkflowRequest, validate_steps};
use hopper_types::workflow_run::{WorkflowId, WorkflowState};
use hopper_types::{Job, JobId, JobState, Limits};

use crate::Harness;
use crate::support::*;

/// Submits a run of `steps` (a JSON array of step requests).
async fn submit(env: &Env, steps: &str) -> WorkflowRun {
    let req: WorkflowRequest =
        serde_json::from_str(&format!(r#"{{"name": "test", "steps": {steps}}}"#)).expect("request");
    let steps = validate_steps(req.steps, &|_| false, 0, NS, &Limits::default()).expect("valid");
    env.store()
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: NS.into(),
            name: req.name,
            steps,
            actor: API.into(),
            definition: None,
        })
        .await
        .expect("insert workflow")
}

/// A step whose job runs in a queue of its own name, so tests lease exactly the step they mean.
fn step(name: &str, deps: &[&str], on_failure: &str) -> String {
    format!(
        r#"{{"step": "{name}", "depends_on": {}, "on_failure": "{on_failure}", "job": {{"kind": "k", "queue": "{name}", "max_attempts": 1}}}}"#,
        serde_json::to_string(deps).unwrap()
    )
}

fn steps(list: &[String]) -> String {
    format!("[{}]", list.join(","))
}

async fn run(env: &Env, id: WorkflowId) -> WorkflowRun {
    env.store()
        .workflow_get(NS, &id)
        .await
        .expect("get workflow")
}

/// Each step's state by name.
async fn states(env: &Env, id: WorkflowId) -> HashMap<String, JobState> {
    run(env, id)
        .await
        .steps
        .iter()
        .map(|j| (j.workflow.as_ref().expect("a step").step.clone(), j.state))
        .collect()
}

/// Leases the step `name` (its own queue) and completes it with `{"from": name}`.
async fn complete_step(env: &Env, name: &str) -> Job {
    let l = env.lease_one(name).await;
    env.ack(
        l.id,
        &l.token,
        AckOutcome::Completed {
            result: Some(raw(&format!(r#"{{"from":"{name}"}}"#))),
        },
    )
    .await
    .expect("complete")
}

/// Leases the step `name` and fails it for good (it is dead).
async fn kill_step(env: &Env, name: &str) -> Job {
    let l = env.lease_one(name).await;
    let j = env.fail(&l, false).await.expect("fail");
    assert_eq!(j.state, JobState::Dead);
    j
}

async fn parents_of(env: &Env, id: JobId) -> HashMap<String, Job> {
    env.store()
        .workflow_parents(NS, &[id])
        .await
        .expect("parents")
        .into_iter()
        .map(|(child, p)| {
            assert_eq!(child, id);
            (p.workflow.as_ref().expect("a step").step.clone(), p)
        })
        .collect()
}

fn by_name(r: &WorkflowRun, name: &str) -> Job {
    r.steps
        .iter()
        .find(|j| j.workflow.as_ref().is_some_and(|w| w.step == name))
        .cloned()
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// A diamond: the root runs first, both branches after it, the join after both, each seeing its
/// parents' results; the run completes with its last step.
pub async fn workflow_diamond_runs_in_dependency_order_and_passes_results(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("join", &["left", "right"], "cancel_dependents"),
            step("left", &["root"], "cancel_dependents"),
            step("right", &["root"], "cancel_dependents"),
            step("root", &[], "cancel_dependents"),
        ]),
    )
    .await;
    let id = r.workflow.id;
    assert_eq!(
        (r.workflow.state, r.workflow.steps, r.workflow.open_steps),
        (WorkflowState::Running, 4, 4)
    );
    assert_eq!(r.steps.len(), 4);
    let s = states(&env, id).await;
    assert_eq!(s["root"], JobState::Available);
    for name in ["left", "right", "join"] {
        assert_eq!(s[name], JobState::Pending, "{name}");
        assert!(
            env.lease(&[name], 1).await.is_empty(),
            "a pending step is not leased"
        );
    }
    complete_step(&env, "root").await;
    let s = states(&env, id).await;
    assert_eq!(
        (s["left"], s["right"], s["join"]),
        (JobState::Available, JobState::Available, JobState::Pending)
    );
    complete_step(&env, "right").await;
    assert_eq!(
        states(&env, id).await["join"],
        JobState::Pending,
        "one parent is not enough"
    );
    complete_step(&env, "left").await;
    let join = by_name(&run(&env, id).await, "join");
    assert_eq!(join.state, JobState::Available);
    assert_eq!(
        env.history(join.id).await,
        vec![
            "- -> pending (enqueue) by api",
            "pending -> available (dependencies_done) by worker:w1"
        ]
    );
    let parents = parents_of(&env, join.id).await;
    assert_eq!(parents.len(), 2);
    assert_eq!(
        value(parents["left"].result.as_deref().unwrap()),
        serde_json::json!({"from": "left"})
    );
    assert_eq!(
        value(parents["right"].result.as_deref().unwrap()),
        serde_json::json!({"from": "right"})
    );
    assert!(
        parents_of(&env, by_name(&run(&env, id).await, "root").id)
            .await
            .is_empty()
    );
    assert_eq!(run(&env, id).await.workflow.state, WorkflowState::Running);
    complete_step(&env, "join").await;
    let w = run(&env, id).await.workflow;
    assert_eq!(
        (w.state, w.open_steps, w.failed_steps),
        (WorkflowState::Completed, 0, 0)
    );
    assert_eq!(w.finished_at, Some(env.now()));
}

/// `cancel_dependents`: a dead step cancels everything downstream (whatever their own
/// policies), independent branches still run, and the run fails.
pub async fn workflow_cancel_dependents_cancels_everything_downstream(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("a", &[], "cancel_dependents"),
            step("b", &["a"], "continue"),
            step("c", &["b"], "ignore"),
            step("free", &[], "cancel_dependents"),
            step("d", &["c", "free"], "cancel_dependents"),
        ]),
    )
    .await;
    let id = r.workflow.id;
    kill_step(&env, "a").await;
    let s = states(&env, id).await;
    for name in ["b", "c", "d"] {
        assert_eq!(s[name], JobState::Cancelled, "{name}");
    }
    let b = by_name(&run(&env, id).await, "b");
    assert_eq!(
        env.history(b.id).await.last().unwrap(),
        "pending -> cancelled (upstream_failed) by worker:w1"
    );
    assert_eq!(
        run(&env, id).await.workflow.state,
        WorkflowState::Running,
        "free still runs"
    );
    complete_step(&env, "free").await;
    let w = run(&env, id).await.workflow;
    assert_eq!(
        (w.state, w.open_steps, w.failed_steps),
        (WorkflowState::Failed, 0, 1)
    );
}

/// `continue`: dependents run with the failed parent among their parents; the run fails.
/// `ignore`: the same, and the run can still complete.
pub async fn workflow_continue_and_ignore_let_dependents_run(h: &dyn Harness) {
    for (policy, outcome) in [
        ("continue", WorkflowState::Failed),
        ("ignore", WorkflowState::Completed),
    ] {
        let env = Env::new(h).await;
        let r = submit(
            &env,
            &steps(&[
                step("a", &[], policy),
                step("ok", &[], "cancel_dependents"),
                step("b", &["a", "ok"], "cancel_dependents"),
            ]),
        )
        .await;
        let id = r.workflow.id;
        kill_step(&env, "a").await;
        assert_eq!(states(&env, id).await["b"], JobState::Pending, "{policy}");
        complete_step(&env, "ok").await;
        let b = by_name(&run(&env, id).await, "b");
        assert_eq!(b.state, JobState::Available, "{policy}");
        let parents = parents_of(&env, b.id).await;
        assert_eq!(
            parents["a"].state,
            JobState::Dead,
            "{policy}: the failure is visible"
        );
        assert_eq!(
            parents["a"].errors.last().map(|e| e.message.as_str()),
            Some("boom")
        );
        complete_step(&env, "b").await;
        assert_eq!(run(&env, id).await.workflow.state, outcome, "{policy}");
    }
}

/// A step cancelled through the job API is a failure like a dead one.
pub async fn workflow_cancelled_step_follows_its_policy(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("a", &[], "cancel_dependents"),
            step("b", &["a"], "cancel_dependents"),
        ]),
    )
    .await;
    let a = by_name(&r, "a");
    env.cancel(a.id).await.expect("cancel a");
    let w = run(&env, r.workflow.id).await;
    assert_eq!(by_name(&w, "b").state, JobState::Cancelled);
    assert_eq!(w.workflow.state, WorkflowState::Failed);
}

/// Cancelling a run cancels its waiting steps at once and flags running ones; it ends
/// `cancelled` when the last running step reports.
pub async fn workflow_cancel_cancels_what_has_not_finished(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("done", &[], "cancel_dependents"),
            step("busy", &[], "cancel_dependents"),
            step("waiting", &["busy"], "cancel_dependents"),
            step("ready", &["done"], "cancel_dependents"),
        ]),
    )
    .await;
    let id = r.workflow.id;
    complete_step(&env, "done").await;
    let busy = env.lease_one("busy").await;
    let w = env
        .store()
        .workflow_cancel(NS, &id, API)
        .await
        .expect("cancel");
    assert_eq!(
        (w.state, w.cancel_requested),
        (WorkflowState::Running, true)
    );
    let s = states(&env, id).await;
    assert_eq!(
        (s["done"], s["busy"], s["waiting"], s["ready"]),
        (
            JobState::Completed,
            JobState::Running,
            JobState::Cancelled,
            JobState::Cancelled
        )
    );
    assert!(env.get(busy.id).await.cancel_requested);
    env.report_cancelled(&busy).await.expect("cancelled");
    let w = run(&env, id).await.workflow;
    assert_eq!((w.state, w.open_steps), (WorkflowState::Cancelled, 0));
    assert!(matches!(
        env.store().workflow_cancel(NS, &id, API).await,
        Err(hopper_store::StoreError::Conflict(_))
    ));
}

/// Retrying a failed run starts its dead and cancelled steps over, each waiting again for the
/// parents that start over with it, and keeps completed steps and their results.
pub async fn workflow_retry_reruns_failed_and_cancelled_steps_only(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("ok", &[], "cancel_dependents"),
            step("a", &["ok"], "cancel_dependents"),
            step("b", &["a", "ok"], "cancel_dependents"),
        ]),
    )
    .await;
    let id = r.workflow.id;
    assert!(
        matches!(
            env.store().workflow_retry(NS, &id, API).await,
            Err(hopper_store::StoreError::Conflict(_))
        ),
        "a running run is not retried"
    );
    let ok = complete_step(&env, "ok").await;
    kill_step(&env, "a").await;
    assert_eq!(run(&env, id).await.workflow.state, WorkflowState::Failed);
    let a = by_name(&run(&env, id).await, "a");
    assert!(
        matches!(
            env.retry(a.id).await,
            Err(hopper_store::StoreError::Conflict(_))
        ),
        "a step retries with its run"
    );
    let w = env
        .store()
        .workflow_retry(NS, &id, API)
        .await
        .expect("retry");
    assert_eq!(
        (w.state, w.open_steps, w.failed_steps, w.finished_at),
        (WorkflowState::Running, 2, 0, None)
    );
    let s = states(&env, id).await;
    assert_eq!(
        (s["ok"], s["a"], s["b"]),
        (JobState::Completed, JobState::Available, JobState::Pending)
    );
    assert_eq!(
        env.get(ok.id).await.result.as_deref().map(value),
        Some(serde_json::json!({"from": "ok"}))
    );
    complete_step(&env, "a").await;
    complete_step(&env, "b").await;
    assert_eq!(run(&env, id).await.workflow.state, WorkflowState::Completed);
    assert!(
        matches!(
            env.store().workflow_retry(NS, &id, API).await,
            Err(hopper_store::StoreError::Conflict(_))
        ),
        "nothing failed"
    );
}

async fn add(env: &Env, id: WorkflowId, list: &str) -> Result<Vec<Job>, hopper_store::StoreError> {
    let steps: Vec<StepRequest> = serde_json::from_str(list).expect("steps");
    env.store()
        .workflow_add_steps(WorkflowAddSteps {
            namespace: NS.into(),
            workflow_id: id,
            steps,
            limits: Limits::default(),
            actor: API.into(),
        })
        .await
}

/// A running step fans out children and a join that waits for all of them (and for itself);
/// the join fires when the last child finishes, and only then.
pub async fn workflow_running_step_adds_a_fan_out_and_fan_in(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(&env, &steps(&[step("split", &[], "cancel_dependents")])).await;
    let id = r.workflow.id;
    let split = env.lease_one("split").await;
    let mut children: Vec<String> = (0..5)
        .map(|i| step(&format!("c{i}"), &["split"], "cancel_dependents"))
        .collect();
    let names: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    children.push(step("join", &refs, "cancel_dependents"));
    let added = add(&env, id, &steps(&children)).await.expect("add steps");
    assert_eq!(added.len(), 6);
    assert!(added.iter().all(|j| j.state == JobState::Pending));
    let w = run(&env, id).await.workflow;
    assert_eq!((w.steps, w.open_steps), (7, 7));
    env.complete(&split).await.expect("complete split");
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            states(&env, id).await["join"],
            JobState::Pending,
            "after {i} children"
        );
        complete_step(&env, name).await;
    }
    let join = by_name(&run(&env, id).await, "join");
    assert_eq!(join.state, JobState::Available);
    assert_eq!(parents_of(&env, join.id).await.len(), 5);
    complete_step(&env, "join").await;
    assert_eq!(run(&env, id).await.workflow.state, WorkflowState::Completed);
    // A finished run takes no more steps.
    assert!(matches!(
        add(&env, id, &steps(&[step("late", &[], "cancel_dependents")])).await,
        Err(hopper_store::StoreError::Conflict(_))
    ));
}

/// Added steps are validated against the run: a name it has, an unknown dependency or a cycle
/// is refused naming the field, and nothing is stored. A parent that already finished counts
/// as done (or, failed under `cancel_dependents`, cancels the new step).
pub async fn workflow_added_steps_are_validated_against_the_run(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("done", &[], "cancel_dependents"),
            step("dead", &[], "cancel_dependents"),
            step("busy", &[], "cancel_dependents"),
        ]),
    )
    .await;
    let id = r.workflow.id;
    complete_step(&env, "done").await;
    kill_step(&env, "dead").await;
    for (list, field) in [
        (
            steps(&[step("done", &[], "cancel_dependents")]),
            "steps[0].step",
        ),
        (
            steps(&[step("x", &["nope"], "cancel_dependents")]),
            "steps[0].depends_on[0]",
        ),
        (
            steps(&[
                step("x", &["y"], "cancel_dependents"),
                step("y", &["x"], "cancel_dependents"),
            ]),
            "depends_on",
        ),
    ] {
        match add(&env, id, &list).await {
            Err(hopper_store::StoreError::InvalidArgument { field: f, .. }) => {
                assert!(f.contains(field), "{f} vs {field}")
            }
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }
    assert_eq!(run(&env, id).await.steps.len(), 3, "nothing was stored");
    let added = add(
        &env,
        id,
        &steps(&[
            step("after_done", &["done"], "cancel_dependents"),
            step("after_dead", &["dead", "busy"], "cancel_dependents"),
        ]),
    )
    .await
    .expect("add");
    let s: HashMap<_, _> = added
        .iter()
        .map(|j| (j.workflow.as_ref().unwrap().step.clone(), j.state))
        .collect();
    assert_eq!(
        (s["after_done"], s["after_dead"]),
        (JobState::Available, JobState::Cancelled)
    );
    let w = run(&env, id).await.workflow;
    assert_eq!(
        (w.steps, w.open_steps),
        (5, 2),
        "busy and after_done are open"
    );
}

/// Many workers finish the children of one fan-in at once, in random order: the join leaves
/// `pending` exactly once, after the last of them.
pub async fn workflow_concurrent_fan_in_fires_exactly_once(h: &dyn Harness) {
    let env = Env::new(h).await;
    const N: usize = 200;
    let mut list: Vec<String> = (0..N)
        .map(|i| format!(r#"{{"step": "c{i}", "job": {{"kind": "k", "queue": "fan"}}}}"#))
        .collect();
    let names: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    list.push(step("join", &refs, "cancel_dependents"));
    let r = submit(&env, &steps(&list)).await;
    let id = r.workflow.id;
    let mut leased = env.lease(&["fan"], N).await;
    assert_eq!(leased.len(), N);
    // A deterministic shuffle: finishing order unrelated to lease order.
    leased.sort_by_key(|j| (j.id.0.as_u128().wrapping_mul(0x9E37_79B9_7F4A_7C15)) as u64);
    let store = env.store_arc();
    let mut tasks = Vec::new();
    for chunk in leased.chunks(N / 8) {
        let store = store.clone();
        let chunk: Vec<Job> = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for j in chunk {
                let ack = JobAck {
                    job: job_ref(j.id),
                    lease_token: j.lease_token.clone().expect("token").0,
                    outcome: AckOutcome::Completed { result: None },
                };
                // Contention may make a backend answer `Unavailable`: a worker retries once.
                let mut retried = false;
                let mut results = loop {
                    match store.job_ack_many(vec![ack.clone()]).await {
                        Err(hopper_store::StoreError::Unavailable(_)) if !retried => retried = true,
                        other => break other.expect("ack"),
                    }
                };
                results.pop().expect("one result").expect("completed");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let join = by_name(&run(&env, id).await, "join");
    assert_eq!(join.state, JobState::Available);
    assert_eq!(join.workflow.as_ref().unwrap().waiting_on, 0);
    let fired = env
        .history(join.id)
        .await
        .iter()
        .filter(|e| e.contains("dependencies_done"))
        .count();
    assert_eq!(fired, 1, "the fan-in fires exactly once");
    let w = run(&env, id).await.workflow;
    assert_eq!((w.state, w.open_steps), (WorkflowState::Running, 1));
}

/// A step whose lease expired without attempts left is dead through the rescuer, and its
/// dependents follow its policy in the same transaction.
pub async fn workflow_rescued_dead_step_cancels_its_dependents(h: &dyn Harness) {
    let env = Env::new(h).await;
    let r = submit(
        &env,
        &steps(&[
            step("a", &[], "cancel_dependents"),
            step("b", &["a"], "cancel_dependents"),
        ]),
    )
    .await;
    env.lease_one("a").await;
    env.advance(LEASE_MS + 1);
    let rescued = env.store().job_rescue_expired(10).await.expect("rescue");
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].state, JobState::Dead);
    let w = run(&env, r.workflow.id).await;
    assert_eq!(by_name(&w, "b").state, JobState::Cancelled);
    assert_eq!(w.workflow.state, WorkflowState::Failed);
}

/// Runs are listed newest first, per namespace, filtered by state, paged by id; an unknown
/// run or one of another namespace is not found.
pub async fn workflow_list_get_and_namespaces(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = submit(
            &env,
            &steps(&[step(&format!("s{i}"), &[], "cancel_dependents")]),
        )
        .await;
        ids.push(r.workflow.id);
    }
    complete_step(&env, "s1").await;
    let list = |state, limit, before| WorkflowListParams {
        namespace: NS.into(),
        state,
        definition: None,
        limit,
        before,
    };
    let all = env
        .store()
        .workflow_list(&list(None, 10, None))
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
    let page = env
        .store()
        .workflow_list(&list(None, 2, Some(ids[2])))
        .await
        .expect("list");
    assert_eq!(
        page.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]]
    );
    let done = env
        .store()
        .workflow_list(&list(Some(WorkflowState::Completed), 10, None))
        .await
        .expect("list");
    assert_eq!(done.iter().map(|w| w.id).collect::<Vec<_>>(), vec![ids[1]]);
    let other = WorkflowListParams {
        namespace: "other".into(),
        state: None,
        definition: None,
        limit: 10,
        before: None,
    };
    assert!(
        env.store()
            .workflow_list(&other)
            .await
            .expect("list")
            .is_empty()
    );
    assert_not_found(env.store().workflow_get("other", &ids[0]).await);
    assert_not_found(env.store().workflow_get(NS, &WorkflowId::new()).await);
    assert_not_found(env.store().workflow_cancel("other", &ids[0], API).await);
}

/// Retrying a queue's dead jobs leaves dead workflow steps alone (they retry with their run).
pub async fn workflow_steps_are_left_out_of_queue_retry_dead(h: &dyn Harness) {
    let env = Env::new(h).await;
    submit(&env, &steps(&[step("a", &[], "cancel_dependents")])).await;
    kill_step(&env, "a").await;
    let plain = env
        .enqueue_and_lease(r#"{"kind": "k", "queue": "a", "max_attempts": 1}"#)
        .await;
    env.fail(&plain, false).await.expect("fail");
    let n = env
        .store()
        .queue_retry_dead(NS, "a", API)
        .await
        .expect("retry dead");
    assert_eq!(n, 1, "only the plain job");
}
