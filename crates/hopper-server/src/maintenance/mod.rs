//! Background services that keep jobs moving without any request: the [`promoter`] makes due
//! jobs available, the [`rescuer`] reclaims expired leases, the [`pruner`] applies retention.
//!
//! Each service has one shape (after River's maintenance services): a config with default
//! constants and a `validate`, a `run_once` that does one pass and returns what it did (so tests
//! drive it alone, with a manual clock), and a `run` loop that starts after a small random
//! jitter (so several servers restarted together do not hit storage in lockstep) and ends when
//! its stop token is cancelled. [`Services`] starts them together and stops them together;
//! stopping twice does no harm.

pub mod promoter;
pub mod pruner;
pub mod rescuer;

use std::sync::Arc;
use std::time::Duration;

use hopper_store::Store;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use promoter::{PromoteReport, Promoter, PromoterConfig};
pub use pruner::{PruneReport, Pruner, PrunerConfig};
pub use rescuer::{RescueReport, Rescuer, RescuerConfig};

use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// How long a service waits after a storage error before trying again: long enough not to
/// flood the log while storage is down, short enough to resume promptly.
pub const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Sleeps for `d` unless `stop` is cancelled first; false means "stop now".
pub async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// A random duration in `[0, max]`.
pub fn jitter(max: Duration) -> Duration {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=ms))
}

/// The running maintenance services.
pub struct Services {
    stop: CancellationToken,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Services {
    /// Starts every service over `store` (unless `config.maintenance.disabled`), stopped by
    /// cancelling `stop` or by [`Services::stop`].
    pub fn start(
        store: Arc<dyn Store>,
        config: &ServerConfig,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Services {
        let mut handles = Vec::new();
        if !config.maintenance.disabled {
            let promoter = Promoter::new(store.clone(), config.maintenance.promoter.clone());
            handles.push(("promoter", tokio::spawn(promoter.run(stop.clone()))));
            let rescuer = Rescuer::new(store.clone(), config.maintenance.rescuer.clone());
            handles.push((
                "rescuer",
                tokio::spawn(rescuer.run(stop.clone(), move |r: &RescueReport| {
                    metrics.leases_rescued(&r.jobs)
                })),
            ));
            let pruner = Pruner::new(
                store,
                config.maintenance.pruner.clone(),
                config.retention.clone(),
                config.idempotency_key_ttl_ms,
            );
            handles.push(("pruner", tokio::spawn(pruner.run(stop.clone()))));
        }
        Services { stop, handles }
    }

    /// Stops every service and waits for each to finish its current pass. Idempotent.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        for (name, h) in self.handles.drain(..) {
            if let Err(e) = h.await {
                tracing::error!(service = name, error = %e, "maintenance service ended abnormally");
            }
        }
    }
}
