//! The lease loop: asks the server for as many jobs as the worker has free slots, by long poll,
//! and hands each leased job to its own task.
//!
//! A slot is a permit of a semaphore sized at twice the concurrency, taken per job from its
//! lease until its outcome is queued for the flusher. Each lease request is one round trip
//! and one commit on the server, so requests should carry many jobs: while leased jobs still
//! wait for a run slot (the handlers have work), the loop waits until at least half the
//! slots are free before it asks; once nothing waits (the handlers would soon idle), or when
//! the worker is idle, it asks at once for whatever is free.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::job_runner::Runner;
use crate::wire::{LeaseRequest, LeasedJob};
use crate::worker::WorkerConfig;
use crate::{Client, Error};

/// The most jobs one lease request may ask for (v1 API).
const MAX_JOBS_PER_LEASE: usize = 1000;

/// After a shutdown signal, how long an in-flight lease request may still answer. Dropping it
/// at once could lose jobs the server leased just then (they would wait for lease expiry); an
/// idle long poll, on the other hand, must not hold up the shutdown.
const IN_FLIGHT_LEASE_DRAIN: Duration = Duration::from_millis(300);

/// First and longest pause after a failed lease request.
const RETRY_DELAY_MIN: Duration = Duration::from_millis(100);
const RETRY_DELAY_MAX: Duration = Duration::from_secs(5);

/// Leases until `stop` fires, or until the server refuses the lease request itself (then
/// fires `stop` and returns the error).
pub(crate) async fn lease_loop(
    client: Client,
    config: Arc<WorkerConfig>,
    runner: Arc<Runner>,
    tasks: TaskTracker,
    stop: CancellationToken,
) -> Result<(), Error> {
    let slots = Arc::new(Semaphore::new(config.concurrency * 2));
    let mut request = LeaseRequest {
        queues: config.queues.clone(),
        worker_id: config.worker_id.clone(),
        max_jobs: 1,
        lease_ms: config.lease_ms,
        wait_ms: config.poll_wait_ms,
    };
    // Half the slots: the other half keeps the handlers busy while the request is out.
    let min_batch = config.concurrency.clamp(1, MAX_JOBS_PER_LEASE);
    let mut retry_delay = RETRY_DELAY_MIN;
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let mut permits = vec![first];
        loop {
            // Armed before looking, so a job finishing in between still wakes the wait below.
            let changed = runner.progress.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            while permits.len() < MAX_JOBS_PER_LEASE {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            if permits.len() >= min_batch || runner.waiting.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                _ = changed => {}
            }
        }
        request.max_jobs = permits.len() as u32;

        let lease = client.lease(&request);
        tokio::pin!(lease);
        let (answer, stopping) = tokio::select! {
            r = &mut lease => (Some(r), false),
            _ = stop.cancelled() => {
                (tokio::time::timeout(IN_FLIGHT_LEASE_DRAIN, &mut lease).await.ok(), true)
            }
        };
        match answer {
            None => return Ok(()),
            Some(Ok(jobs)) => {
                retry_delay = RETRY_DELAY_MIN;
                runner.stats.record_leased(jobs.len());
                dispatch(&runner, &tasks, jobs, permits);
                if stopping {
                    // The job tasks see `stop` and release what they were given.
                    return Ok(());
                }
            }
            Some(Err(e)) if e.is_retryable() => {
                if stopping {
                    return Ok(());
                }
                tracing::warn!(error = %e, retry_in = ?retry_delay, "lease request failed");
                drop(permits);
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(retry_delay.max(e.retry_after().unwrap_or_default())) => {}
                }
                retry_delay = (retry_delay * 2).min(RETRY_DELAY_MAX);
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "the server refused the lease request; stopping");
                stop.cancel();
                return Err(e);
            }
        }
    }
}

/// Starts one task per leased job, each holding one slot. Unused slots are freed at once.
fn dispatch(
    runner: &Arc<Runner>,
    tasks: &TaskTracker,
    jobs: Vec<LeasedJob>,
    permits: Vec<OwnedSemaphorePermit>,
) {
    let mut permits = permits.into_iter();
    runner.waiting.fetch_add(jobs.len(), Ordering::AcqRel);
    for job in jobs {
        // A server answering more jobs than asked would be a bug; run them anyway, unslotted,
        // rather than leave them leased and unattended until their leases expire.
        let permit = permits.next();
        let runner = runner.clone();
        tasks.spawn(async move {
            runner.run(job).await;
            drop(permit);
            runner.progress.notify_waiters();
        });
    }
}
