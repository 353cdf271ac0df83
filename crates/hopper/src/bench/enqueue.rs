//! W1 and W2: how fast one producer enqueues, one job per call awaiting each (W1) or in
//! batches of 1,000 (W2).

use std::time::Instant;

use hopper_worker::{Client, JobState};

use super::report::WorkloadResult;
use super::{fresh_queue, noop_job, progress, rate, verify_counts};

/// Jobs per batch in W2 (the API's maximum).
pub const BATCH: u64 = 1000;

/// W1: `n` enqueues, one at a time.
pub async fn w1(client: &Client, n: u64) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("w1");
    let pb = progress(n, "W1 enqueue");
    let started = Instant::now();
    for i in 0..n {
        client.enqueue(noop_job(&queue, i)).await?;
        pb.inc(1);
    }
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    verify_counts(client, &queue, JobState::Available, n).await?;
    Ok(WorkloadResult {
        workload: "W1",
        description: "one producer, one job per call",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
        note: None,
    })
}

/// W2: `n` jobs in batches of [`BATCH`].
pub async fn w2(client: &Client, n: u64) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("w2");
    let pb = progress(n, "W2 enqueue");
    let started = Instant::now();
    enqueue_batches(client, &queue, n, |k| pb.inc(k)).await?;
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    verify_counts(client, &queue, JobState::Available, n).await?;
    Ok(WorkloadResult {
        workload: "W2",
        description: "one producer, batches of 1,000",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
        note: None,
    })
}

/// Enqueues jobs `0..n` into `queue` in batches, calling `done` with each batch's size.
pub async fn enqueue_batches(
    client: &Client,
    queue: &str,
    n: u64,
    done: impl Fn(u64),
) -> anyhow::Result<()> {
    enqueue_keyed_batches(client, queue, n, 0, done).await
}

/// [`enqueue_batches`] with the jobs spread over `keys` concurrency and fairness keys.
pub async fn enqueue_keyed_batches(
    client: &Client,
    queue: &str,
    n: u64,
    keys: u64,
    done: impl Fn(u64),
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < n {
        let end = (next + BATCH).min(n);
        let jobs = (next..end)
            .map(|i| super::noop_job_keyed(queue, i, keys))
            .collect();
        let answered = client.enqueue_batch(jobs).await?;
        anyhow::ensure!(
            answered.len() as u64 == end - next,
            "a batch of {} jobs was answered with {}",
            end - next,
            answered.len()
        );
        done(end - next);
        next = end;
    }
    Ok(())
}
