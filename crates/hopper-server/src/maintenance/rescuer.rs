//! The rescuer: ends running jobs whose lease expired (the worker crashed or hung) or whose
//! attempt ran past `timeout_ms`, as failed attempts; the store applies the lifecycle rule.
//!
//! A pass runs every 250 ms so an expired lease is reclaimed well within the promised second.
//! Before its first pass it waits one full lease period (the longest `lease_ms` among running
//! jobs, read at start): workers that kept running while this server was down can still
//! heartbeat or complete with their current tokens instead of losing their work to a rescue.

use std::sync::Arc;
use std::time::Duration;

use hopper_store::{Store, StoreError};
use hopper_types::Job;
use tokio_util::sync::CancellationToken;

use super::{ERROR_BACKOFF, jitter, sleep_or_stop};

/// Time between passes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
/// Jobs rescued per store call.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Largest random delay before the first pass (after the startup grace).
pub const DEFAULT_START_JITTER: Duration = Duration::from_millis(50);

/// Rescuer settings.
#[derive(Debug, Clone)]
pub struct RescuerConfig {
    /// Time between passes.
    pub interval: Duration,
    /// Jobs rescued per store call.
    pub batch_size: usize,
    /// Largest random delay before the first pass.
    pub start_jitter: Duration,
    /// Skips the startup grace period: only for tests that need a rescue at once.
    pub skip_startup_grace: bool,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        RescuerConfig {
            interval: DEFAULT_INTERVAL,
            batch_size: DEFAULT_BATCH_SIZE,
            start_jitter: DEFAULT_START_JITTER,
            skip_startup_grace: false,
        }
    }
}

impl RescuerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("rescuer batch_size must be at least 1".into());
        }
        if self.interval.is_zero() || self.interval > Duration::from_secs(1) {
            return Err("rescuer interval must be between 1 ms and 1 s".into());
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct RescueReport {
    /// Jobs whose lease or attempt ended.
    pub rescued: u64,
    /// Those jobs as they are now (retryable, dead or cancelled), for metrics per queue.
    pub jobs: Vec<Job>,
}

/// The rescuer service.
pub struct Rescuer {
    store: Arc<dyn Store>,
    config: RescuerConfig,
}

impl Rescuer {
    /// A rescuer over `store`.
    pub fn new(store: Arc<dyn Store>, config: RescuerConfig) -> Rescuer {
        Rescuer { store, config }
    }

    /// Rescues every expired or timed-out running job, in batches.
    pub async fn run_once(&self) -> Result<RescueReport, StoreError> {
        let batch = self.config.batch_size.max(1);
        let mut report = RescueReport::default();
        loop {
            let jobs = self.store.job_rescue_expired(batch).await?;
            let n = jobs.len();
            report.rescued += n as u64;
            report.jobs.extend(jobs);
            if n < batch {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(report)
    }

    /// How long to wait before the first pass: the longest outstanding lease.
    pub async fn startup_grace(&self) -> Result<Duration, StoreError> {
        if self.config.skip_startup_grace {
            return Ok(Duration::ZERO);
        }
        let ms = self.store.job_max_outstanding_lease_ms().await?;
        Ok(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// Waits out the startup grace, then runs passes until `stop` is cancelled, handing each
    /// report to `observe` (metrics).
    pub async fn run(self, stop: CancellationToken, observe: impl Fn(&RescueReport) + Send) {
        let grace = loop {
            match self.startup_grace().await {
                Ok(g) => break g,
                Err(e) => {
                    tracing::warn!(error = %e, "rescuer could not read outstanding leases");
                    if !sleep_or_stop(&stop, ERROR_BACKOFF).await {
                        return;
                    }
                }
            }
        };
        if !grace.is_zero() {
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "rescuer waits one lease period before reclaiming leases"
            );
        }
        if !sleep_or_stop(&stop, grace + jitter(self.config.start_jitter)).await {
            return;
        }
        loop {
            let pause = match self.run_once().await {
                Ok(r) => {
                    if r.rescued > 0 {
                        tracing::info!(rescued = r.rescued, "reclaimed expired leases");
                    }
                    observe(&r);
                    self.config.interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rescuer pass failed");
                    ERROR_BACKOFF
                }
            };
            if !sleep_or_stop(&stop, pause).await {
                return;
            }
        }
    }
}
