//! The promoter: moves `scheduled` and `retryable` jobs whose time has come to `available`.
//!
//! Semantics promise a due job is leasable within a second of its time whatever the backlog, so
//! each pass promotes in batches until nothing due is left, then sleeps until the next job falls
//! due, but never longer than `max_sleep`, because a job enqueued meanwhile may be due sooner.
//! Waking waiting workers is the store's job (it fires its queue signals after committing).

use std::sync::Arc;
use std::time::Duration;

use hopper_store::{Store, StoreError};
use hopper_types::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{ERROR_BACKOFF, jitter, sleep_or_stop};

/// Jobs promoted per store call.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Longest sleep between passes.
pub const DEFAULT_MAX_SLEEP: Duration = Duration::from_millis(100);
/// Shortest sleep between passes, so a store that reports a due time it will not promote
/// cannot make the loop spin.
pub const MIN_SLEEP: Duration = Duration::from_millis(5);
/// Largest random delay before the first pass.
pub const DEFAULT_START_JITTER: Duration = Duration::from_millis(50);

/// Promoter settings.
#[derive(Debug, Clone)]
pub struct PromoterConfig {
    /// Jobs promoted per store call: bounds how long one write holds the store.
    pub batch_size: usize,
    /// Longest sleep between passes.
    pub max_sleep: Duration,
    /// Largest random delay before the first pass.
    pub start_jitter: Duration,
}

impl Default for PromoterConfig {
    fn default() -> Self {
        PromoterConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            max_sleep: DEFAULT_MAX_SLEEP,
            start_jitter: DEFAULT_START_JITTER,
        }
    }
}

impl PromoterConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("promoter batch_size must be at least 1".into());
        }
        if self.max_sleep.is_zero() || self.max_sleep > Duration::from_secs(1) {
            return Err("promoter max_sleep must be between 1 ms and 1 s".into());
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoteReport {
    /// Jobs moved to `available`.
    pub promoted: u64,
    /// When the next waiting job falls due, if any.
    pub next_due_at: Option<Timestamp>,
}

/// The promoter service.
pub struct Promoter {
    store: Arc<dyn Store>,
    config: PromoterConfig,
}

impl Promoter {
    /// A promoter over `store`.
    pub fn new(store: Arc<dyn Store>, config: PromoterConfig) -> Promoter {
        Promoter { store, config }
    }

    /// Promotes every due job, in batches, and reads when the next one falls due.
    pub async fn run_once(&self) -> Result<PromoteReport, StoreError> {
        let batch = self.config.batch_size.max(1);
        let mut promoted = 0;
        loop {
            let n = self.store.job_promote_due(batch).await?;
            promoted += n;
            if n < batch as u64 {
                break;
            }
            // Let requests waiting on the store in between batches.
            tokio::task::yield_now().await;
        }
        let next_due_at = self.store.job_next_due_at().await?;
        Ok(PromoteReport {
            promoted,
            next_due_at,
        })
    }

    /// How long to sleep after a pass that reported `r` at `now`.
    pub fn sleep_after(&self, r: &PromoteReport, now: Timestamp) -> Duration {
        let max = self.config.max_sleep;
        let until_due = match r.next_due_at {
            Some(t) => Duration::from_millis(u64::try_from(t.millis_since(now)).unwrap_or(0)),
            None => max,
        };
        until_due.clamp(MIN_SLEEP, max.max(MIN_SLEEP))
    }

    /// Runs passes until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        if !sleep_or_stop(&stop, jitter(self.config.start_jitter)).await {
            return;
        }
        loop {
            let pause = match self.run_once().await {
                Ok(r) => {
                    if r.promoted > 0 {
                        tracing::debug!(promoted = r.promoted, "promoted due jobs");
                    }
                    self.sleep_after(&r, self.store.clock().now())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "promoter pass failed");
                    ERROR_BACKOFF
                }
            };
            if !sleep_or_stop(&stop, pause).await {
                return;
            }
        }
    }
}
