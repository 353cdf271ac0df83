//! Background services that keep jobs moving without any request: the [`promoter`] makes due
//! jobs available, the [`rescuer`] reclaims expired leases, the [`pruner`] applies retention,
//! the [`scheduler`] enqueues the jobs of cron schedules; the [`workflow_trigger`] starts runs
//! of workflow definitions (their cron ticks and backfills); the webhook dispatcher
//! ([`crate::webhooks::dispatcher`]) turns job events into webhook deliveries.
//!
//! Each service has one shape (after River's maintenance services): a config with default
//! constants and a `validate`, a `run_once` that does one pass and returns what it did (so tests
//! drive it alone, with a manual clock), and a `run` loop that starts after a small random
//! jitter (so several servers restarted together do not hit storage in lockstep) and ends when
//! its stop token is cancelled. [`Services`] starts them together and stops them together;
//! stopping twice does no harm.
//!
//! They are singletons across nodes sharing a store: [`leadership`] runs them only on the node
//! that holds the store's `maintenance` lease (on the embedded store, that is always this one).

pub mod leadership;
pub mod promoter;
pub mod pruner;
pub mod rescuer;
pub mod scheduler;
pub mod workflow_trigger;

use std::sync::Arc;
use std::time::Duration;

use hopper_store::Store;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use leadership::LeadershipConfig;
pub use promoter::{PromoteReport, Promoter, PromoterConfig};
pub use pruner::{PruneReport, Pruner, PrunerConfig};
pub use rescuer::{RescueReport, Rescuer, RescuerConfig};
pub use scheduler::{ScheduleReport, Scheduler, SchedulerConfig};
pub use workflow_trigger::{TriggerReport, WorkflowTrigger, WorkflowTriggerConfig};

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
    handle: Option<JoinHandle<()>>,
}

impl Services {
    /// Starts leader election over `store` as `node` (unless `config.maintenance.disabled`);
    /// while this node leads, every service runs. Stopped by cancelling `stop` or by
    /// [`Services::stop`].
    pub fn start(
        store: Arc<dyn Store>,
        config: &ServerConfig,
        node: String,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) -> Services {
        if config.maintenance.disabled {
            return Services { stop, handle: None };
        }
        let config = config.clone();
        let observer = metrics.clone();
        let election = leadership::run(
            store.clone(),
            node,
            config.maintenance.leadership.clone(),
            stop.clone(),
            move |leading| observer.set_leader(leading),
            move |term: CancellationToken| {
                run_all(store.clone(), config.clone(), metrics.clone(), term)
            },
        );
        Services {
            stop,
            handle: Some(tokio::spawn(election)),
        }
    }

    /// Stops every service and waits for each to finish its current pass. Idempotent.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take()
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "maintenance services ended abnormally");
        }
    }
}

/// Runs every service until `stop`, then waits for each to finish its current pass.
async fn run_all(
    store: Arc<dyn Store>,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let promoter = Promoter::new(store.clone(), config.maintenance.promoter.clone());
    let rescuer = Rescuer::new(store.clone(), config.maintenance.rescuer.clone());
    let (enqueued, passes) = (metrics.clone(), metrics.clone());
    let scheduler = Scheduler::new(
        store.clone(),
        config.maintenance.scheduler.clone(),
        config.limits.clone(),
    )
    .on_enqueued(move |job| enqueued.job_enqueued(job))
    .on_report(move |r| passes.schedule_pass(r.skipped, r.failed));
    let trigger = WorkflowTrigger::new(
        store.clone(),
        config.maintenance.workflow_trigger.clone(),
        config.limits.clone(),
    );
    let dispatcher = crate::webhooks::dispatcher::Dispatcher::new(
        store.clone(),
        config.webhooks.clone(),
        config.limits.clone(),
    );
    // The rescue's time, for the metrics' recent activity.
    let clock = store.clone();
    let pruner = Pruner::new(
        store,
        config.maintenance.pruner.clone(),
        config.retention.clone(),
        config.idempotency_key_ttl_ms,
    );
    let handles = [
        ("promoter", tokio::spawn(promoter.run(stop.clone()))),
        (
            "rescuer",
            tokio::spawn(rescuer.run(stop.clone(), move |r: &RescueReport| {
                metrics.leases_rescued(&r.jobs, clock.clock().now())
            })),
        ),
        ("pruner", tokio::spawn(pruner.run(stop.clone()))),
        ("scheduler", tokio::spawn(scheduler.run(stop.clone()))),
        ("workflow_trigger", tokio::spawn(trigger.run(stop.clone()))),
        (
            "webhook_dispatcher",
            tokio::spawn(async move {
                if !config.webhooks.disabled {
                    dispatcher.run(stop).await;
                }
            }),
        ),
    ];
    for (name, h) in handles {
        if let Err(e) = h.await {
            tracing::error!(service = name, error = %e, "maintenance service ended abnormally");
        }
    }
}
