//! WF: workflow runs. Three figures, each from a run the bench checks afterwards:
//!
//! - WF1, fan-in latency: with a worker idle on the join's queue, the time from the call that
//!   completes a run's last parent to the join's handler starting (a 2-parent diamond, `--jobs`
//!   runs one after another).
//! - WF2, a 10-step chain: 100 chains submitted at once, drained by one worker at concurrency
//!   10; steps per second until every run completed.
//! - WF3, a 1,000-wide fan-out: one run of a root, 1,000 children and a join over all of them;
//!   steps per second from submission to the join's completion.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hopper_worker::{
    Client, EnqueueRequest, JobContext, LeaseRequest, Outcome, StepRequest, Worker,
    WorkflowRequest, WorkflowState,
};

use super::drain::CONCURRENCY;
use super::report::{Latency, WorkloadResult};
use super::{fresh_queue, progress, rate};

/// Chains in WF2, and their length.
const CHAINS: u64 = 100;
const CHAIN_LENGTH: u64 = 10;
/// Children in WF3.
const FAN_OUT: u64 = 1_000;
/// A run that has not finished after this long has failed.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long the worker gets to park on its long poll before the first run.
const SETTLE: Duration = Duration::from_millis(500);

fn step(name: &str, depends_on: &[String], queue: &str) -> StepRequest {
    StepRequest {
        step: name.to_string(),
        depends_on: depends_on.to_vec(),
        on_failure: Default::default(),
        job: EnqueueRequest {
            kind: "step".to_string(),
            queue: Some(queue.to_string()),
            ..EnqueueRequest::default()
        },
    }
}

/// The three WF figures; WF1 over `n` runs.
pub async fn wf(client: &Client, n: u64) -> anyhow::Result<Vec<WorkloadResult>> {
    Ok(vec![
        fan_in_latency(client, n).await?,
        chains(client).await?,
        fan_out(client).await?,
    ])
}

async fn fan_in_latency(client: &Client, n: u64) -> anyhow::Result<WorkloadResult> {
    let (parents, joins) = (fresh_queue("wf1-parents"), fresh_queue("wf1-join"));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let worker = Worker::builder(client.clone())
        .queues([joins.clone()])
        .concurrency(CONCURRENCY)
        .register("step", move |_ctx: JobContext, _args: serde_json::Value| {
            let _ = started_tx.send(Instant::now());
            async { Ok::<_, Infallible>(Outcome::complete()) }
        })
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(SETTLE).await;

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let pb = progress(n, "WF1 fan-in");
    let phase = Instant::now();
    let lease = LeaseRequest {
        queues: vec![parents.clone()],
        worker_id: "bench-wf1".to_string(),
        max_jobs: 2,
        lease_ms: 30_000,
        wait_ms: 0,
    };
    for _ in 0..n {
        let names = ["a".to_string(), "b".to_string()];
        let run = client
            .submit_workflow(&WorkflowRequest {
                name: Some("bench-wf1".into()),
                steps: vec![
                    step("a", &[], &parents),
                    step("b", &[], &parents),
                    step("join", &names, &joins),
                ],
            })
            .await?;
        let leased = client.lease(&lease).await?;
        anyhow::ensure!(
            leased.len() == 2,
            "both parents of run {} lease",
            run.workflow.id
        );
        let token = |i: usize| {
            leased[i]
                .lease_token
                .clone()
                .map(|t| t.0)
                .unwrap_or_default()
        };
        client
            .complete(leased[0].id, &token(0), &serde_json::Value::Null)
            .await?;
        let sent = Instant::now();
        client
            .complete(leased[1].id, &token(1), &serde_json::Value::Null)
            .await?;
        let at = tokio::time::timeout(RUN_LIMIT, started_rx.recv())
            .await
            .context("the join did not start")?
            .context("the worker stopped")?;
        let micros =
            u64::try_from(at.saturating_duration_since(sent).as_micros()).unwrap_or(u64::MAX);
        hist.saturating_record(micros.max(1));
        pb.inc(1);
    }
    let elapsed = phase.elapsed();
    pb.finish_and_clear();
    let _ = stop.send(());
    running.await.context("the worker panicked")??;
    anyhow::ensure!(started_rx.try_recv().is_err(), "a join started twice");
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(WorkloadResult {
        workload: "WF1",
        description: "last parent's complete call → join handler start",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: Some(Latency {
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: hist.max() as f64 / 1000.0,
        }),
        note: None,
    })
}

/// Runs one worker (concurrency 10) on `queue` until `runs` all finished; returns the time
/// from `since` and checks each completed.
async fn work_until_done(
    client: &Client,
    queue: &str,
    runs: &[hopper_worker::WorkflowId],
    steps: u64,
    since: Instant,
    label: &str,
) -> anyhow::Result<Duration> {
    let worker = Worker::builder(client.clone())
        .queues([queue.to_string()])
        .concurrency(CONCURRENCY)
        .register("step", |_ctx: JobContext, _args: serde_json::Value| async {
            Ok::<_, Infallible>(Outcome::complete())
        })
        .build()?;
    let stats = worker.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    let pb = progress(steps, label);
    let deadline = Instant::now() + RUN_LIMIT;
    let elapsed = loop {
        let done = stats.completed();
        pb.set_position(done);
        if done >= steps {
            break since.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{label}: {done} of {steps} steps ran"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    pb.finish_and_clear();
    let _ = stop.send(());
    running.await.context("the worker panicked")??;
    for id in runs {
        let r = client.workflow(*id).await?;
        anyhow::ensure!(
            r.workflow.state == WorkflowState::Completed,
            "run {id} ended {:?}",
            r.workflow.state
        );
    }
    Ok(elapsed)
}

async fn chains(client: &Client) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("wf2");
    let started = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..CHAINS {
        let steps = (0..CHAIN_LENGTH)
            .map(|i| {
                let before: Vec<String> = if i == 0 {
                    vec![]
                } else {
                    vec![format!("s{}", i - 1)]
                };
                step(&format!("s{i}"), &before, &queue)
            })
            .collect();
        let run = client
            .submit_workflow(&WorkflowRequest {
                name: Some("bench-wf2".into()),
                steps,
            })
            .await?;
        runs.push(run.workflow.id);
    }
    let total = CHAINS * CHAIN_LENGTH;
    let elapsed = work_until_done(client, &queue, &runs, total, started, "WF2 chains").await?;
    Ok(WorkloadResult {
        workload: "WF2",
        description: "100 chains of 10 steps, one worker (concurrency 10): steps/s",
        jobs: total,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(total, elapsed),
        latency: None,
        note: None,
    })
}

async fn fan_out(client: &Client) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("wf3");
    let root = vec!["root".to_string()];
    let mut steps = vec![step("root", &[], &queue)];
    let children: Vec<String> = (0..FAN_OUT).map(|i| format!("c{i}")).collect();
    steps.extend(children.iter().map(|c| step(c, &root, &queue)));
    steps.push(step("join", &children, &queue));
    let started = Instant::now();
    let run = client
        .submit_workflow(&WorkflowRequest {
            name: Some("bench-wf3".into()),
            steps,
        })
        .await?;
    let total = FAN_OUT + 2;
    let elapsed = work_until_done(
        client,
        &queue,
        &[run.workflow.id],
        total,
        started,
        "WF3 fan-out",
    )
    .await?;
    Ok(WorkloadResult {
        workload: "WF3",
        description: "one run: root, 1,000 children, a join over all; steps/s",
        jobs: total,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(total, elapsed),
        latency: None,
        note: None,
    })
}
