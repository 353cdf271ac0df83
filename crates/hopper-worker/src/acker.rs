//! The ack flusher: collects the outcomes of finished jobs and sends them in batches through
//! `POST /v1/acks`, so a busy worker makes one request (and the server one commit) per batch
//! instead of one per job.
//!
//! A batch goes out when `batch_size` outcomes are pending or `interval` after the first one
//! arrived, whichever comes first; only one batch is in flight at a time, so while the server
//! works on one the next one grows. Outcomes are idempotent per lease token, so a batch whose
//! answer was lost is simply sent again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Client;
use crate::stats::WorkerStats;
use crate::wire::{Ack, AckOutcome, AckResult};

/// How many outcomes may wait for the flusher before finishing jobs wait too (backpressure).
const QUEUE_CAPACITY: usize = 8192;

/// Longest pause between two tries of a failed batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// How long a worker that is shutting down keeps trying to deliver its last outcomes before
/// giving up; the server's lease expiry then covers the jobs (they run again).
const SHUTDOWN_DELIVERY_LIMIT: Duration = Duration::from_secs(10);

/// Settings of the flusher.
#[derive(Debug, Clone)]
pub(crate) struct AckerConfig {
    /// Flush when this many outcomes are pending (the server takes at most 1000 per call).
    pub batch_size: usize,
    /// Flush this long after the first pending outcome arrived.
    pub interval: Duration,
}

/// The sending side: job tasks push outcomes here.
#[derive(Debug, Clone)]
pub(crate) struct Acker {
    tx: mpsc::Sender<Ack>,
}

impl Acker {
    /// Starts the flusher task; it ends once every [`Acker`] is dropped and the last batch went
    /// out.
    pub(crate) fn start(
        client: Client,
        config: AckerConfig,
        stats: Arc<WorkerStats>,
    ) -> (Acker, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(flush_loop(client, config, stats, rx));
        (Acker { tx }, task)
    }

    /// Queues one outcome. Fails only when the flusher is gone, which cannot happen while an
    /// `Acker` exists unless it panicked; the job's lease then expires on the server.
    pub(crate) async fn push(&self, ack: Ack) {
        if self.tx.send(ack).await.is_err() {
            tracing::error!("the ack flusher has stopped; an outcome was not sent");
        }
    }
}

async fn flush_loop(
    client: Client,
    config: AckerConfig,
    stats: Arc<WorkerStats>,
    mut rx: mpsc::Receiver<Ack>,
) {
    let batch_size = config.batch_size.clamp(1, 1000);
    let mut batch: Vec<Ack> = Vec::with_capacity(batch_size);
    let mut closed = false;
    while !closed {
        match rx.recv().await {
            Some(a) => batch.push(a),
            None => break,
        }
        let deadline = Instant::now() + config.interval;
        while batch.len() < batch_size {
            // Take what is already queued without waiting, then wait for the rest.
            match rx.try_recv() {
                Ok(a) => {
                    batch.push(a);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            tokio::select! {
                a = rx.recv() => match a {
                    Some(a) => batch.push(a),
                    None => { closed = true; break; }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Once the channel is closed the worker is shutting down: deliver with a time limit.
        send_batch(&client, &batch, &stats, closed || rx.is_closed()).await;
        batch.clear();
    }
    if !batch.is_empty() {
        send_batch(&client, &batch, &stats, true).await;
    }
}

/// Sends one batch, retrying what may succeed later, and records each result.
async fn send_batch(client: &Client, batch: &[Ack], stats: &WorkerStats, shutting_down: bool) {
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match client.acks(batch).await {
            Ok(results) => {
                record(batch, &results, stats);
                return;
            }
            Err(e) if e.is_retryable() => {
                if shutting_down && started.elapsed() > SHUTDOWN_DELIVERY_LIMIT {
                    tracing::error!(error = %e, count = batch.len(),
                        "giving up on delivering outcomes at shutdown; their leases will expire");
                    stats.record_undelivered(batch.len());
                    return;
                }
                tracing::warn!(error = %e, count = batch.len(), "sending outcomes failed; retrying");
                tokio::time::sleep(delay.max(e.retry_after().unwrap_or_default())).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
            Err(e) => {
                // A 4xx for the whole batch means this SDK built a request the server refuses:
                // retrying cannot help. The leases expire and the jobs run again.
                tracing::error!(error = %e, count = batch.len(), "the server refused a batch of outcomes");
                stats.record_undelivered(batch.len());
                return;
            }
        }
    }
}

fn record(batch: &[Ack], results: &[AckResult], stats: &WorkerStats) {
    for (ack, result) in batch.iter().zip(results) {
        if result.ok {
            stats.record_ack(&ack.outcome);
            continue;
        }
        stats.record_undelivered(1);
        let (code, message) = result
            .error
            .as_ref()
            .map(|e| (e.code.as_str(), e.message.as_str()))
            .unwrap_or(("unknown", ""));
        if code == crate::ErrorCode::LeaseLost.as_str() {
            // The server already ended this lease (expiry or timeout) and may have given the
            // job to someone else: our outcome must not and does not count.
            tracing::warn!(job_id = %ack.id, outcome = outcome_name(&ack.outcome),
                "lease lost before the outcome was recorded");
        } else {
            tracing::error!(job_id = %ack.id, outcome = outcome_name(&ack.outcome), code, message,
                "the server refused an outcome");
        }
    }
    if results.len() != batch.len() {
        tracing::error!(
            sent = batch.len(),
            answered = results.len(),
            "the server answered a different number of ack results"
        );
    }
}

/// The wire name of an outcome, for log lines and spans.
pub(crate) fn outcome_name(o: &AckOutcome) -> &'static str {
    match o {
        AckOutcome::Completed { .. } => "completed",
        AckOutcome::Failed { .. } => "failed",
        AckOutcome::Released => "released",
        AckOutcome::Cancelled => "cancelled",
    }
}
