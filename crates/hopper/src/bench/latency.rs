//! W4: with a worker idle on its long poll, enqueue one job at a time, each once the previous
//! one started, and measure from the enqueue call to the handler's start.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hopper_worker::{Client, JobContext, JobState, Outcome, Worker};

use super::drain::{CONCURRENCY, NoopArgs};
use super::report::{Latency, WorkloadResult};
use super::{NOOP_KIND, fresh_queue, noop_job, progress, rate, verify_counts};

/// How long the worker gets to park on its long poll before the first job.
const SETTLE: Duration = Duration::from_millis(500);
/// A job that has not started after this long is lost.
const START_LIMIT: Duration = Duration::from_secs(30);

/// W4 with `n` jobs.
pub async fn w4(client: &Client, n: u64) -> anyhow::Result<WorkloadResult> {
    let queue = fresh_queue("w4");
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let worker = Worker::builder(client.clone())
        .queues([queue.clone()])
        .concurrency(CONCURRENCY)
        .register(NOOP_KIND, move |_ctx: JobContext, args: NoopArgs| {
            // Stamped when the runtime calls the handler, before anything else of it runs.
            let _ = started_tx.send((args.i, Instant::now()));
            async { Ok::<_, Infallible>(Outcome::complete()) }
        })
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(SETTLE).await;

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .context("creating the latency histogram")?;
    let pb = progress(n, "W4 latency");
    let phase = Instant::now();
    for i in 0..n {
        let sent = Instant::now();
        client.enqueue(noop_job(&queue, i)).await?;
        let (ran, at) = tokio::time::timeout(START_LIMIT, started_rx.recv())
            .await
            .with_context(|| format!("job {i} did not start within {START_LIMIT:?}"))?
            .context("the worker stopped")?;
        anyhow::ensure!(ran == i, "job {ran} started while waiting for job {i}");
        let micros =
            u64::try_from(at.saturating_duration_since(sent).as_micros()).unwrap_or(u64::MAX);
        hist.saturating_record(micros.max(1));
        pb.inc(1);
    }
    let elapsed = phase.elapsed();
    pb.finish_and_clear();
    let _ = stop.send(());
    running.await.context("the worker panicked")??;
    anyhow::ensure!(
        started_rx.try_recv().is_err(),
        "a job started more than once"
    );
    verify_counts(client, &queue, JobState::Completed, n).await?;

    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Ok(WorkloadResult {
        workload: "W4",
        description: "idle worker: enqueue call → handler start",
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
