//! The pruner: removes finished jobs past their retention (with their events) and forgets
//! idempotency keys past their lifetime.
//!
//! It works in small batches with a pause in between, because every batch is a write that other
//! writers (enqueues, acks) wait behind: retention is never urgent, the hot path always is.

use std::sync::Arc;
use std::time::Duration;

use hopper_store::{JobPruneParams, Store, StoreError};
use tokio_util::sync::CancellationToken;

use super::{ERROR_BACKOFF, jitter, sleep_or_stop};
use crate::config::Retention;

/// Time between passes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Rows removed per store call.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Most batches per kind in one pass; the rest waits for the next pass.
pub const DEFAULT_MAX_BATCHES: usize = 100;
/// Pause between two batches.
pub const DEFAULT_BATCH_PAUSE: Duration = Duration::from_millis(10);
/// Largest random delay before the first pass.
pub const DEFAULT_START_JITTER: Duration = Duration::from_secs(1);

/// Pruner settings.
#[derive(Debug, Clone)]
pub struct PrunerConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Rows removed per store call.
    pub batch_size: usize,
    /// Most batches per kind in one pass.
    pub max_batches: usize,
    /// Pause between two batches, so other writers get their turn.
    pub batch_pause: Duration,
    /// Largest random delay before the first pass.
    pub start_jitter: Duration,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        PrunerConfig {
            interval: DEFAULT_INTERVAL,
            batch_size: DEFAULT_BATCH_SIZE,
            max_batches: DEFAULT_MAX_BATCHES,
            batch_pause: DEFAULT_BATCH_PAUSE,
            start_jitter: DEFAULT_START_JITTER,
        }
    }
}

impl PrunerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 || self.max_batches == 0 {
            return Err("pruner batch_size and max_batches must be at least 1".into());
        }
        if self.interval.is_zero() {
            return Err("pruner interval must be positive".into());
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Finished jobs removed.
    pub jobs: u64,
    /// Idempotency keys forgotten.
    pub idempotency_keys: u64,
    /// Flow-control rows of idle keys forgotten.
    pub flow_rows: u64,
}

/// The pruner service.
pub struct Pruner {
    store: Arc<dyn Store>,
    config: PrunerConfig,
    retention: Retention,
    key_ttl_ms: i64,
}

impl Pruner {
    /// A pruner over `store` applying `retention` to jobs and `key_ttl_ms` to idempotency keys.
    pub fn new(
        store: Arc<dyn Store>,
        config: PrunerConfig,
        retention: Retention,
        key_ttl_ms: i64,
    ) -> Pruner {
        Pruner {
            store,
            config,
            retention,
            key_ttl_ms,
        }
    }

    /// Removes what is past retention now (by the store's clock), in batches.
    pub async fn run_once(&self) -> Result<PruneReport, StoreError> {
        let now = self.store.clock().now();
        let batch = self.config.batch_size.max(1);
        let mut report = PruneReport::default();
        // The server's retention for every queue without its own, then each queue with its
        // own retention, each state falling back to the server's where the queue is silent.
        let mut passes = vec![JobPruneParams {
            completed_before: now.plus_ms(-self.retention.completed_ms),
            cancelled_before: now.plus_ms(-self.retention.cancelled_ms),
            dead_before: now.plus_ms(-self.retention.dead_ms),
            limit: batch,
            queue: None,
        }];
        for q in self.store.queue_list_custom_retention().await? {
            let r = q.config.retention;
            passes.push(JobPruneParams {
                completed_before: now
                    .plus_ms(-r.completed_ms.unwrap_or(self.retention.completed_ms)),
                cancelled_before: now
                    .plus_ms(-r.cancelled_ms.unwrap_or(self.retention.cancelled_ms)),
                dead_before: now.plus_ms(-r.dead_ms.unwrap_or(self.retention.dead_ms)),
                limit: batch,
                queue: Some((q.namespace, q.name)),
            });
        }
        for params in passes {
            for _ in 0..self.config.max_batches {
                let n = self.store.job_prune_finished(params.clone()).await?;
                report.jobs += n;
                if n < batch as u64 {
                    break;
                }
                tokio::time::sleep(self.config.batch_pause).await;
            }
        }
        // Flow-control state that means the same as none (idle keys), so it stays as small as
        // the keys active lately.
        for q in self.store.export_queues().await? {
            let c = &q.config;
            if c.policy == hopper_types::QueuePolicy::Fair || c.key_rate.is_some() {
                let refilled = c.key_rate.map(|r| now.plus_ms(-r.refill_ms()));
                report.flow_rows += self
                    .store
                    .queue_flow_prune(&q.namespace, &q.name, refilled)
                    .await?;
            }
        }

        let keys_before = now.plus_ms(-self.key_ttl_ms);
        for _ in 0..self.config.max_batches {
            let n = self.store.idempotency_key_prune(keys_before, batch).await?;
            report.idempotency_keys += n;
            if n < batch as u64 {
                break;
            }
            tokio::time::sleep(self.config.batch_pause).await;
        }
        Ok(report)
    }

    /// Runs passes until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        if !sleep_or_stop(&stop, jitter(self.config.start_jitter)).await {
            return;
        }
        loop {
            let pause = match self.run_once().await {
                Ok(r) => {
                    if r != PruneReport::default() {
                        tracing::info!(
                            jobs = r.jobs,
                            idempotency_keys = r.idempotency_keys,
                            flow_rows = r.flow_rows,
                            "pruned past retention"
                        );
                    }
                    self.config.interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruner pass failed");
                    ERROR_BACKOFF
                }
            };
            if !sleep_or_stop(&stop, pause).await {
                return;
            }
        }
    }
}
