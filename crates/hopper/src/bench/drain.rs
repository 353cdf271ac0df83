//! W3: a backlog of no-op jobs, then one SDK worker at concurrency 10 drains it; jobs/s from
//! the worker's start to the last completion the server acknowledged.
//!
//! Every handler run marks its job number, so the run proves each job ran exactly once; the
//! server's counts prove each completion was recorded.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hopper_worker::{Client, JobContext, JobState, Outcome, Worker};
use serde::Deserialize;

use super::enqueue::enqueue_keyed_batches;
use super::report::WorkloadResult;
use super::{NOOP_KIND, fresh_queue, progress, rate, verify_counts};

/// The worker's concurrency in W3 and W4.
pub const CONCURRENCY: usize = 10;

/// A drain that makes no progress for this long has failed.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// The args of a bench job.
#[derive(Debug, Deserialize)]
pub struct NoopArgs {
    /// The job's number.
    pub i: u64,
}

/// How many times each job number ran.
pub struct Runs {
    counts: Vec<AtomicU8>,
    /// Runs of a number already seen, or out of range.
    extra: AtomicU64,
}

impl Runs {
    /// Room for jobs `0..n`.
    pub fn new(n: u64) -> Runs {
        Runs {
            counts: (0..n).map(|_| AtomicU8::new(0)).collect(),
            extra: AtomicU64::new(0),
        }
    }

    /// Records one run of job `i`.
    pub fn mark(&self, i: u64) {
        let first = usize::try_from(i)
            .ok()
            .and_then(|i| self.counts.get(i))
            .map(|c| c.fetch_add(1, Ordering::Relaxed) == 0)
            .unwrap_or(false);
        if !first {
            self.extra.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Fails unless every job ran exactly once.
    pub fn check(&self) -> anyhow::Result<()> {
        let missing = self
            .counts
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) == 0)
            .count();
        let extra = self.extra.load(Ordering::Relaxed);
        anyhow::ensure!(
            missing == 0 && extra == 0,
            "{missing} jobs never ran and {extra} runs were duplicates"
        );
        Ok(())
    }
}

/// How W3's queue is shaped: its configuration and how many keys its jobs are spread over.
#[derive(Debug, Default)]
pub struct Shape {
    /// Set on the queue before the drain.
    pub config: Option<hopper_worker::QueueConfig>,
    /// Concurrency and fairness keys (`k0`..), none when 0.
    pub keys: u64,
}

impl Shape {
    /// The shape `hopper bench` was asked for.
    pub fn from_args(args: &crate::cli::BenchArgs) -> anyhow::Result<Shape> {
        let config = args
            .queue_config
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .context("--queue-config must be a queue configuration as JSON")?;
        Ok(Shape {
            config,
            keys: args.keys,
        })
    }
}

/// W3 with `n` jobs, on a queue shaped by `shape`.
pub async fn w3(client: &Client, n: u64, shape: &Shape) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("w3");
    if let Some(config) = &shape.config {
        client.configure_queue(&queue, config).await?;
    }
    prepare_keyed(client, &queue, n, shape.keys, "W3 prepare").await?;
    let elapsed = drain(std::slice::from_ref(client), &queue, n, "W3 drain").await?;
    Ok(WorkloadResult {
        workload: "W3",
        description: "one worker, concurrency 10, drains the backlog",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
        note: None,
    })
}

/// Enqueues `n` no-op jobs into `queue` and checks they are all available.
pub async fn prepare(client: &Client, queue: &str, n: u64, label: &str) -> anyhow::Result<()> {
    prepare_keyed(client, queue, n, 0, label).await
}

/// [`prepare`] with the jobs spread over `keys` concurrency and fairness keys.
pub async fn prepare_keyed(
    client: &Client,
    queue: &str,
    n: u64,
    keys: u64,
    label: &str,
) -> anyhow::Result<()> {
    let pb = progress(n, label);
    enqueue_keyed_batches(client, queue, n, keys, |k| pb.inc(k)).await?;
    pb.finish_and_clear();
    verify_counts(client, queue, JobState::Available, n).await
}

/// Drains the `n` jobs of `queue` with one worker (concurrency 10) per client, all at once;
/// returns the time from the workers' start to the last completion acknowledged. Checks that
/// every job ran exactly once and that the server recorded every completion.
pub async fn drain(
    clients: &[Client],
    queue: &str,
    n: u64,
    label: &str,
) -> anyhow::Result<Duration> {
    let elapsed = drain_unchecked(clients, queue, n, label).await?;
    verify_counts(&clients[0], queue, JobState::Completed, n).await?;
    Ok(elapsed)
}

/// [`drain`] without the final check of the queue's counts, for a queue that holds other
/// jobs too (the caller checks what it expects).
pub async fn drain_unchecked(
    clients: &[Client],
    queue: &str,
    n: u64,
    label: &str,
) -> anyhow::Result<Duration> {
    let runs = Arc::new(Runs::new(n));
    let mut workers = Vec::new();
    for client in clients {
        let marks = runs.clone();
        workers.push(
            Worker::builder(client.clone())
                .queues([queue.to_string()])
                .concurrency(CONCURRENCY)
                .register(NOOP_KIND, move |_ctx: JobContext, args: NoopArgs| {
                    marks.mark(args.i);
                    async { Ok::<_, Infallible>(Outcome::complete()) }
                })
                .build()?,
        );
    }
    let stats: Vec<_> = workers.iter().map(|w| w.stats()).collect();
    let completed = || stats.iter().map(|s| s.completed()).sum::<u64>();
    let (stop, stopped) = tokio::sync::watch::channel(false);

    let pb = progress(n, label);
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for worker in workers {
        let mut stopped = stopped.clone();
        running.spawn(worker.run_until(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }
    let mut last = 0;
    let mut last_change = Instant::now();
    let elapsed = loop {
        let done = completed();
        if done >= n {
            break started.elapsed();
        }
        if done != last {
            last = done;
            last_change = Instant::now();
            pb.set_position(done);
        } else if last_change.elapsed() > STALL_LIMIT {
            anyhow::bail!("the drain stalled at {done} of {n} jobs");
        }
        tokio::select! {
            Some(r) = running.join_next() => {
                r.context("a worker panicked")??;
                anyhow::bail!("a worker stopped at {done} of {n} jobs");
            }
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    };
    pb.finish_and_clear();
    let _ = stop.send(true);
    while let Some(r) = running.join_next().await {
        r.context("a worker panicked")??;
    }

    runs.check()?;
    for s in &stats {
        let s = s.snapshot();
        tracing::debug!(stats = ?s, "drain worker");
        anyhow::ensure!(
            s.undelivered == 0 && s.failed == 0,
            "a worker recorded {s:?}"
        );
    }
    anyhow::ensure!(
        completed() == n,
        "the workers completed {} of {n} jobs",
        completed()
    );
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_catch_missing_and_duplicate_jobs() {
        let r = Runs::new(3);
        r.mark(0);
        r.mark(1);
        assert!(r.check().is_err());
        r.mark(2);
        assert!(r.check().is_ok());
        r.mark(2);
        assert!(r.check().is_err());
        let r = Runs::new(1);
        r.mark(0);
        r.mark(7);
        assert!(r.check().is_err());
    }
}
