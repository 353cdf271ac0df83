//! Workflow fan-in under concurrency across nodes: several `PgStore`s (as several Hopper
//! nodes) over one database finish, add and cancel steps of the same run at once. After every
//! scenario the run's counters and every pending step's count must agree with the steps
//! themselves: a fan-in that fired twice, or never, shows up there.

use std::collections::HashMap;
use std::sync::Arc;

use hopper_store::{
    AckOutcome, JobAck, JobLeaseParams, JobRef, Store, StoreError, WorkflowAddSteps, WorkflowInsert,
};
use hopper_store_postgres::{PgConfig, PgStore, testing};
use hopper_types::workflow::{StepRequest, WorkflowRequest, validate_steps};
use hopper_types::workflow_run::{WorkflowId, WorkflowState};
use hopper_types::{Job, JobId, JobState, Limits};

const NS: &str = "default";

/// Two nodes over one fresh database.
async fn nodes() -> (Arc<PgStore>, Arc<PgStore>, String) {
    let url = testing::fresh_database_url().await;
    let open = |url: &str| {
        let mut config = PgConfig::new(url);
        config.pool_size = 8;
        PgStore::connect(config)
    };
    let a = Arc::new(open(&url).await.expect("node a"));
    let b = Arc::new(open(&url).await.expect("node b"));
    (a, b, url)
}

fn step(name: &str, deps: &[&str], queue: &str) -> String {
    format!(
        r#"{{"step": "{name}", "depends_on": {}, "job": {{"kind": "k", "queue": "{queue}", "max_attempts": 1}}}}"#,
        serde_json::to_string(deps).expect("names")
    )
}

fn requests(steps: &[String]) -> Vec<StepRequest> {
    let r: WorkflowRequest =
        serde_json::from_str(&format!(r#"{{"steps": [{}]}}"#, steps.join(","))).expect("request");
    r.steps
}

async fn submit(store: &PgStore, steps: &[String]) -> (WorkflowId, Vec<Job>) {
    let steps = validate_steps(requests(steps), &|_| false, 0, NS, &Limits::default())
        .expect("valid steps");
    let run = store
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: NS.into(),
            name: None,
            steps,
            actor: "api".into(),
            definition: None,
        })
        .await
        .expect("insert workflow");
    (run.workflow.id, run.steps)
}

async fn lease(store: &PgStore, queue: &str, n: usize) -> Vec<Job> {
    store
        .job_lease_many(JobLeaseParams {
            namespace: NS.into(),
            queues: vec![queue.into()],
            worker_id: "w".into(),
            max_jobs: n,
            lease_ms: 60_000,
        })
        .await
        .expect("lease")
}

fn ack(job: &Job, outcome: AckOutcome) -> JobAck {
    JobAck {
        job: JobRef {
            namespace: NS.into(),
            id: job.id,
        },
        lease_token: job.lease_token.as_ref().expect("leased").0.clone(),
        outcome,
    }
}

/// Completes a leased job, retrying when contention makes the store answer `Unavailable`
/// (a deadlock victim changed nothing), as a worker would.
async fn complete(store: &PgStore, job: &Job) {
    loop {
        match store
            .job_ack_many(vec![ack(job, AckOutcome::Completed { result: None })])
            .await
        {
            Ok(mut r) => {
                let out = r.pop().expect("one result").expect("completed");
                assert_eq!(out.state, JobState::Completed);
                return;
            }
            Err(StoreError::Unavailable(_)) => continue,
            Err(e) => panic!("ack: {e:?}"),
        }
    }
}

fn name(j: &Job) -> &str {
    &j.workflow.as_ref().expect("a step").step
}

/// The run's counters against its steps, and each pending step's count against its parents.
async fn check_consistent(store: &PgStore, id: WorkflowId) -> HashMap<String, Job> {
    let run = store.workflow_get(NS, &id).await.expect("get run");
    let w = &run.workflow;
    let open = run.steps.iter().filter(|j| !j.state.is_finished()).count();
    assert_eq!(w.steps as usize, run.steps.len(), "step count of {w:?}");
    assert_eq!(w.open_steps as usize, open, "open steps of {w:?}");
    assert_eq!(w.state.is_finished(), open == 0, "state of {w:?}");
    let ids: Vec<JobId> = run.steps.iter().map(|j| j.id).collect();
    let mut unfinished_parents: HashMap<JobId, u32> = HashMap::new();
    for (child, parent) in store.workflow_parents(NS, &ids).await.expect("parents") {
        if !parent.state.is_finished() {
            *unfinished_parents.entry(child).or_default() += 1;
        }
    }
    for j in &run.steps {
        let info = j.workflow.as_ref().expect("a step");
        let waiting = unfinished_parents.get(&j.id).copied().unwrap_or(0);
        if j.state == JobState::Pending {
            assert_eq!(info.waiting_on, waiting, "pending step {}", info.step);
            assert!(waiting > 0, "pending step {} waits for nothing", info.step);
        } else if !j.state.is_finished() {
            assert_eq!(waiting, 0, "step {} started before its parents", info.step);
            assert_eq!(info.waiting_on, 0, "step {}", info.step);
        }
    }
    run.steps
        .into_iter()
        .map(|j| (name(&j).to_string(), j))
        .collect()
}

async fn fired(store: &PgStore, id: JobId) -> usize {
    store
        .job_events(&JobRef {
            namespace: NS.into(),
            id,
        })
        .await
        .expect("events")
        .iter()
        .filter(|e| e.reason == "dependencies_done")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_parents_acked_on_two_nodes_release_their_child_exactly_once() {
    let (a, b, _) = nodes().await;
    for round in 0..40 {
        let qa = format!("a{round}");
        let qb = format!("b{round}");
        let (id, _) = submit(
            &a,
            &[
                step("a", &[], &qa),
                step("b", &[], &qb),
                step("c", &["a", "b"], "c"),
            ],
        )
        .await;
        let ja = lease(&a, &qa, 1).await.pop().expect("a leased");
        let jb = lease(&b, &qb, 1).await.pop().expect("b leased");
        let (na, nb) = (a.clone(), b.clone());
        let ta = tokio::spawn(async move { complete(&na, &ja).await });
        let tb = tokio::spawn(async move { complete(&nb, &jb).await });
        ta.await.expect("task a");
        tb.await.expect("task b");
        let steps = check_consistent(&a, id).await;
        let c = &steps["c"];
        assert_eq!(c.state, JobState::Available, "round {round}");
        assert_eq!(c.workflow.as_ref().expect("step").waiting_on, 0);
        assert_eq!(fired(&a, c.id).await, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wide_fan_in_acked_from_eight_tasks_on_two_nodes_fires_once() {
    let (a, b, _) = nodes().await;
    const N: usize = 200;
    let mut list: Vec<String> = (0..N).map(|i| step(&format!("p{i}"), &[], "fan")).collect();
    let names: Vec<String> = (0..N).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    list.push(step("join", &refs, "join"));
    let (id, _) = submit(&a, &list).await;
    let leased = lease(&a, "fan", N).await;
    assert_eq!(leased.len(), N);
    let mut tasks = Vec::new();
    for (i, chunk) in leased.chunks(N / 8).enumerate() {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for j in &chunk {
                complete(&node, j).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let steps = check_consistent(&b, id).await;
    let join = &steps["join"];
    assert_eq!(join.state, JobState::Available);
    assert_eq!(join.workflow.as_ref().expect("step").waiting_on, 0);
    assert_eq!(fired(&a, join.id).await, 1, "the fan-in fires exactly once");
    let run = a.workflow_get(NS, &id).await.expect("run").workflow;
    assert_eq!((run.state, run.open_steps), (WorkflowState::Running, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_added_while_its_parent_finishes_waits_for_it_exactly_once() {
    let (a, b, _) = nodes().await;
    // Which side won each race (by the added step's first state), to see both happen.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for round in 0..40 {
        let q = format!("p{round}");
        // `keep` stays available, so the run is still running whoever wins.
        let (id, _) = submit(&a, &[step("p", &[], &q), step("keep", &[], "keep")]).await;
        let p = lease(&a, &q, 1).await.pop().expect("p leased");
        let na = a.clone();
        let finish = tokio::spawn(async move { complete(&na, &p).await });
        let nb = b.clone();
        let add = tokio::spawn(async move {
            loop {
                let r = nb
                    .workflow_add_steps(WorkflowAddSteps {
                        namespace: NS.into(),
                        workflow_id: id,
                        steps: requests(&[step("x", &["p"], "x")]),
                        limits: Limits::default(),
                        actor: "api".into(),
                    })
                    .await;
                match r {
                    Ok(jobs) => return jobs,
                    Err(StoreError::Unavailable(_)) => continue,
                    Err(e) => panic!("add: {e:?}"),
                }
            }
        });
        finish.await.expect("finish");
        let added = add.await.expect("add");
        let steps = check_consistent(&a, id).await;
        let run = a.workflow_get(NS, &id).await.expect("run").workflow;
        let first = added.first().map_or("none", |j| j.state.as_str());
        *seen.entry(first.to_string()).or_default() += 1;
        let x = &steps["x"];
        assert_eq!(x.state, JobState::Available, "round {round}");
        assert!(fired(&a, x.id).await <= 1, "round {round}");
        assert_eq!((run.steps, run.open_steps), (3, 2), "round {round}");
    }
    eprintln!("added step's first state per round: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_a_finishing_step_leaves_the_run_consistent() {
    let (a, b, _) = nodes().await;
    for round in 0..25 {
        let q = format!("p{round}");
        let (id, _) = submit(
            &a,
            &[
                step("p", &[], &q),
                step("c1", &["p"], "c"),
                step("c2", &["p"], "c"),
                step("d", &["c1", "c2"], "c"),
            ],
        )
        .await;
        let p = lease(&a, &q, 1).await.pop().expect("p leased");
        let na = a.clone();
        let finish = tokio::spawn(async move {
            loop {
                match na
                    .job_ack_many(vec![ack(&p, AckOutcome::Completed { result: None })])
                    .await
                {
                    Ok(_) => return,
                    Err(StoreError::Unavailable(_)) => continue,
                    Err(e) => panic!("ack: {e:?}"),
                }
            }
        });
        let nb = b.clone();
        let cancel = tokio::spawn(async move {
            loop {
                match nb.workflow_cancel(NS, &id, "api").await {
                    Ok(w) => return w,
                    Err(StoreError::Unavailable(_)) => continue,
                    Err(e) => panic!("cancel: {e:?}"),
                }
            }
        });
        finish.await.expect("finish");
        let w = cancel.await.expect("cancel");
        assert!(w.cancel_requested);
        let steps = check_consistent(&a, id).await;
        for n in ["c1", "c2", "d"] {
            assert_eq!(steps[n].state, JobState::Cancelled, "{n} in round {round}");
        }
        let run = a.workflow_get(NS, &id).await.expect("run").workflow;
        assert_eq!(run.state, WorkflowState::Cancelled, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chain_cascades_without_recursion_and_forgets_its_edges() {
    let (a, _, url) = nodes().await;
    const N: usize = 10_000;
    let mut list = vec![step("s0", &[], "head")];
    for i in 1..N {
        list.push(step(&format!("s{i}"), &[&format!("s{}", i - 1)], "chain"));
    }
    let (id, _) = submit(&a, &list).await;
    let head = lease(&a, "head", 1).await.pop().expect("head leased");
    let out = a
        .job_ack_many(vec![ack(
            &head,
            AckOutcome::Failed(hopper_types::lifecycle::Failure {
                kind: "error".into(),
                message: "boom".into(),
                retryable: false,
                retry_in_ms: None,
            }),
        )])
        .await
        .expect("ack")
        .pop()
        .expect("one")
        .expect("failed");
    assert_eq!(out.state, JobState::Dead);
    let steps = check_consistent(&a, id).await;
    assert!(
        steps
            .values()
            .filter(|j| name(j) != "s0")
            .all(|j| j.state == JobState::Cancelled
                && j.workflow.as_ref().is_some_and(|w| w.upstream_failed))
    );
    let run = a.workflow_get(NS, &id).await.expect("run").workflow;
    assert_eq!(
        (run.state, run.open_steps, run.failed_steps),
        (WorkflowState::Failed, 0, 1)
    );

    // Retrying the run reopens the whole chain, each step waiting for the one before.
    let run = a.workflow_retry(NS, &id, "api").await.expect("retry");
    assert_eq!(
        (run.state, run.open_steps),
        (WorkflowState::Running, N as u32)
    );
    let steps = check_consistent(&a, id).await;
    assert_eq!(steps["s0"].state, JobState::Available);
    assert_eq!(steps["s1"].state, JobState::Pending);

    // Deleting steps deletes their edges (and only steps pay for the trigger).
    let run = a.workflow_cancel(NS, &id, "api").await.expect("cancel");
    assert_eq!((run.state, run.open_steps), (WorkflowState::Cancelled, 0));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    let edges: i64 = sqlx::query_scalar("SELECT count(*) FROM hopper.job_deps")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(edges, (N - 1) as i64);
    let purged = a
        .queue_purge(NS, "chain", JobState::Cancelled)
        .await
        .expect("purge");
    assert_eq!(purged, (N - 1) as u64);
    let edges: i64 = sqlx::query_scalar("SELECT count(*) FROM hopper.job_deps")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(edges, 0);
}
