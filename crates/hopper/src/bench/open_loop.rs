//! W5: an open-loop producer offers jobs at a fixed rate (5,000/s for 60 s by default), one
//! job per call, on a schedule that does not wait for the server, while one worker at
//! concurrency 10 runs them. Latency runs from each job's *scheduled* send time to its
//! handler's start, so a server that falls behind shows it in the figure (there is no
//! coordinated omission: a late send counts its lateness).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hopper_worker::{Client, JobContext, JobState, Outcome, Worker};
use tokio::sync::Semaphore;

use super::drain::{CONCURRENCY, NoopArgs};
use super::report::{Latency, WorkloadResult};
use super::{NOOP_KIND, fresh_queue, noop_job, progress, rate, verify_counts};

/// Most enqueue calls in flight at once: enough to sustain the rate through the server's
/// commit latency; beyond it the producer falls behind schedule, which the latency shows.
const IN_FLIGHT: usize = 512;
/// How long the worker gets to park on its long poll before the first job.
const SETTLE: Duration = Duration::from_millis(500);
/// Jobs still not started this long after the last send are lost.
const FINISH_LIMIT: Duration = Duration::from_secs(120);

/// W5: `rate` jobs/s offered for `seconds`.
pub async fn w5(
    client: &Client,
    rate_per_sec: u64,
    seconds: u64,
) -> anyhow::Result<WorkloadResult> {
    anyhow::ensure!(
        rate_per_sec > 0 && seconds > 0,
        "W5 needs a rate and a duration"
    );
    let n = rate_per_sec * seconds;
    let queue = fresh_queue("w5");
    // Microseconds from the phase's start to each job's handler start; 0 = not yet.
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let extra = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicU64::new(0));
    let phase = Instant::now() + SETTLE;

    let worker = {
        let (starts, extra, started) = (starts.clone(), extra.clone(), started.clone());
        Worker::builder(client.clone())
            .queues([queue.clone()])
            .concurrency(CONCURRENCY)
            .register(NOOP_KIND, move |_ctx: JobContext, args: NoopArgs| {
                let micros = Instant::now().saturating_duration_since(phase).as_micros();
                let micros = u64::try_from(micros).unwrap_or(u64::MAX).max(1);
                let first = usize::try_from(args.i)
                    .ok()
                    .and_then(|i| starts.get(i))
                    .is_some_and(|s| {
                        s.compare_exchange(0, micros, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    });
                if first {
                    started.fetch_add(1, Ordering::Relaxed);
                } else {
                    extra.fetch_add(1, Ordering::Relaxed);
                }
                async { Ok::<_, Infallible>(Outcome::complete()) }
            })
            .build()?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep_until(phase.into()).await;

    let pb = progress(n, "W5 offered");
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut sends = tokio::task::JoinSet::new();
    let interval_nanos = 1_000_000_000 / rate_per_sec;
    for i in 0..n {
        let due = phase + Duration::from_nanos(i * interval_nanos);
        tokio::time::sleep_until(due.into()).await;
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .context("the send slots closed")?;
        let (client, job) = (client.clone(), noop_job(&queue, i));
        sends.spawn(async move {
            let r = client.enqueue(job).await;
            drop(permit);
            r
        });
        // Reap finished sends as we go, so errors surface early and memory stays flat.
        while let Some(done) = sends.try_join_next() {
            done.context("an enqueue task panicked")??;
        }
        pb.inc(1);
    }
    while let Some(done) = sends.join_next().await {
        done.context("an enqueue task panicked")??;
    }
    pb.finish_and_clear();
    let offered_for = phase.elapsed();

    let deadline = Instant::now() + FINISH_LIMIT;
    while started.load(Ordering::Relaxed) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {n} jobs never started",
            n - started.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_start = starts
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let _ = stop.send(());
    running.await.context("the worker panicked")??;
    anyhow::ensure!(
        extra.load(Ordering::Relaxed) == 0,
        "{} handler runs were duplicates",
        extra.load(Ordering::Relaxed)
    );
    verify_counts(client, &queue, JobState::Completed, n).await?;

    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .context("creating the latency histogram")?;
    for (i, s) in starts.iter().enumerate() {
        let scheduled = i as u64 * interval_nanos / 1_000;
        hist.saturating_record(s.load(Ordering::Relaxed).saturating_sub(scheduled).max(1));
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let span = Duration::from_micros(last_start).max(offered_for);
    Ok(WorkloadResult {
        workload: "W5",
        description: "open loop: scheduled send → handler start",
        jobs: n,
        seconds: span.as_secs_f64(),
        jobs_per_sec: rate(n, span),
        latency: Some(Latency {
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            max_ms: hist.max() as f64 / 1000.0,
        }),
        note: Some(format!("{rate_per_sec} jobs/s offered for {seconds} s")),
    })
}
