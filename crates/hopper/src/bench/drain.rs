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

use super::enqueue::enqueue_batches;
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

/// W3 with `n` jobs.
pub async fn w3(client: &Client, n: u64) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("w3");
    let pb = progress(n, "W3 prepare");
    enqueue_batches(client, &queue, n, |k| pb.inc(k)).await?;
    pb.finish_and_clear();
    verify_counts(client, &queue, JobState::Available, n).await?;

    let runs = Arc::new(Runs::new(n));
    let marks = runs.clone();
    let worker = Worker::builder(client.clone())
        .queues([queue.clone()])
        .concurrency(CONCURRENCY)
        .register(NOOP_KIND, move |_ctx: JobContext, args: NoopArgs| {
            marks.mark(args.i);
            async { Ok::<_, Infallible>(Outcome::complete()) }
        })
        .build()?;
    let stats = worker.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    let pb = progress(n, "W3 drain");
    let started = Instant::now();
    let mut running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    let mut last = 0;
    let mut last_change = Instant::now();
    let elapsed = loop {
        let done = stats.completed();
        if done >= n {
            break started.elapsed();
        }
        if done != last {
            last = done;
            last_change = Instant::now();
            pb.set_position(done);
        } else if last_change.elapsed() > STALL_LIMIT {
            anyhow::bail!(
                "the drain stalled at {done} of {n} jobs ({:?})",
                stats.snapshot()
            );
        }
        tokio::select! {
            r = &mut running => {
                r.context("the worker panicked")??;
                anyhow::bail!("the worker stopped at {done} of {n} jobs");
            }
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    };
    pb.finish_and_clear();
    let _ = stop.send(());
    running.await.context("the worker panicked")??;

    runs.check()?;
    let s = stats.snapshot();
    tracing::debug!(stats = ?s, "W3 worker");
    anyhow::ensure!(
        s.completed == n && s.undelivered == 0 && s.failed == 0,
        "the worker recorded {s:?} for {n} jobs"
    );
    verify_counts(client, &queue, JobState::Completed, n).await?;
    Ok(WorkloadResult {
        workload: "W3",
        description: "one worker, concurrency 10, drains the backlog",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
    })
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
