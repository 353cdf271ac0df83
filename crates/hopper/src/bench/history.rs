//! W6: W3 again on a store that also holds a large backlog and history, as a ratio to W3 on
//! the same server before any of it existed: `n` jobs scheduled a day ahead in the drained
//! queue itself, `n` jobs waiting in another queue, and `n` completed jobs retained. The
//! figure shows whether a lease or an ack costs more as the tables grow (it should not: the
//! hot paths use partial indexes over the states they touch).

use anyhow::Context;
use hopper_worker::{Client, EnqueueRequest, JobState};

use super::drain::{drain, prepare};
use super::report::WorkloadResult;
use super::{fresh_queue, noop_job, progress, rate, verify_counts};

/// How far ahead the scheduled backlog runs: it must not become due during the run.
const SCHEDULED_AHEAD_MS: i64 = 86_400_000;

/// W3 on an empty server, then W6 with `n` jobs in each part.
pub async fn w6(client: &Client, n: u64) -> anyhow::Result<Vec<WorkloadResult>> {
    let plain = fresh_queue("w6-plain");
    prepare(client, &plain, n, "W3 prepare").await?;
    let base = drain(std::slice::from_ref(client), &plain, n, "W3 drain").await?;

    // The history: n completed jobs, drained now and retained (a day by default).
    let done = fresh_queue("w6-history");
    prepare(client, &done, n, "W6 history").await?;
    drain(std::slice::from_ref(client), &done, n, "W6 history").await?;
    verify_counts(client, &done, JobState::Completed, n).await?;

    // The backlogs: n waiting elsewhere, n scheduled in the queue about to be drained.
    let other = fresh_queue("w6-waiting");
    prepare(client, &other, n, "W6 waiting").await?;
    let queue = fresh_queue("w6");
    enqueue_with(client, n, "W6 scheduled", |i| EnqueueRequest {
        delay_ms: Some(SCHEDULED_AHEAD_MS),
        ..noop_job(&queue, i)
    })
    .await?;
    verify_counts(client, &queue, JobState::Scheduled, n).await?;

    // The drain itself: n available jobs in the same queue (numbered 0..n like the scheduled
    // ones, which the worker never sees: they are not due).
    enqueue_with(client, n, "W6 prepare", |i| noop_job(&queue, i)).await?;
    let elapsed = drain_available(client, &queue, n).await?;

    let w3 = WorkloadResult {
        workload: "W3",
        description: "one worker, concurrency 10, drains the backlog (W6's baseline)",
        jobs: n,
        seconds: base.as_secs_f64(),
        jobs_per_sec: rate(n, base),
        latency: None,
        note: None,
    };
    let w6 = WorkloadResult {
        workload: "W6",
        description: "W3 beside a large backlog and history",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
        note: Some(format!(
            "{:.2} of W3; {n} scheduled in the same queue, {n} waiting in another, {n} completed retained",
            rate(n, elapsed) / w3.jobs_per_sec.max(f64::MIN_POSITIVE)
        )),
    };
    Ok(vec![w3, w6])
}

// Drains the available jobs of a queue that also holds scheduled ones.
async fn drain_available(
    client: &Client,
    queue: &str,
    n: u64,
) -> anyhow::Result<std::time::Duration> {
    // `drain` checks the queue's counts afterwards; with the scheduled jobs still there, check
    // the completed count here instead.
    let elapsed =
        super::drain::drain_unchecked(std::slice::from_ref(client), queue, n, "W6 drain").await?;
    let queues = client.queues().await.context("reading queue counts")?;
    let q = queues
        .iter()
        .find(|q| q.name == queue)
        .context("the drained queue is missing")?;
    anyhow::ensure!(
        q.count(JobState::Completed) == n && q.count(JobState::Scheduled) == n,
        "W6 queue should hold {n} completed and {n} scheduled jobs: {:?}",
        q.counts
    );
    Ok(elapsed)
}

// Enqueues `n` jobs made by `job` in batches of 1,000.
async fn enqueue_with(
    client: &Client,
    n: u64,
    label: &str,
    job: impl Fn(u64) -> EnqueueRequest,
) -> anyhow::Result<()> {
    let pb = progress(n, label);
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        client.enqueue_batch((i..end).map(&job).collect()).await?;
        pb.inc(end - i);
        i = end;
    }
    pb.finish_and_clear();
    Ok(())
}
