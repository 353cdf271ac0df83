//! [`AppState`]: what every handler shares. Cloning is cheap (one `Arc`).

use std::sync::Arc;

use hopper_store::Store;

use crate::auth::KeyRing;
use crate::auth::rate_limit::RateLimiter;
use crate::config::ServerConfig;
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::quota::Quotas;
use crate::shutdown::Shutdown;
use crate::timed_store::TimedStore;
use crate::workers::WorkerRegistry;

/// The shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    // Limits and policies the handlers enforce.
    config: ServerConfig,
    // Where jobs live; the only source of truth. Wrapped in a `TimedStore`.
    store: Arc<dyn Store>,
    // Which workers were seen lately: in memory, since it is only a monitoring aid.
    workers: WorkerRegistry,
    // Counters and histograms served at /metrics.
    metrics: Arc<Metrics>,
    // Fired when the server begins to stop.
    shutdown: Shutdown,
    // Recent job events and their fan-out to event-stream subscribers.
    events: Arc<EventHub>,
    // The API keys, cached.
    key_ring: KeyRing,
    // Per-key request buckets.
    key_limits: RateLimiter,
    // Per-namespace enqueue quotas.
    quotas: Quotas,
}

impl AppState {
    /// State for a server over `store`, with a fresh shutdown signal.
    pub fn new(config: ServerConfig, store: Arc<dyn Store>) -> AppState {
        AppState::with_shutdown(config, store, Shutdown::new())
    }

    /// State whose shutdown signal is `shutdown` (what [`crate::serve`] uses).
    pub fn with_shutdown(
        config: ServerConfig,
        store: Arc<dyn Store>,
        shutdown: Shutdown,
    ) -> AppState {
        let workers = WorkerRegistry::new(config.worker_seen_window_ms);
        // Every store call of the server goes through this wrapper, so each is timed.
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn Store> = Arc::new(TimedStore::new(store, &metrics));
        let events = Arc::new(EventHub::new(
            config.events.history,
            config.events.channel,
            0,
        ));
        let cache_age = std::time::Duration::from_millis(config.auth.cache_ms);
        AppState {
            inner: Arc::new(Inner {
                key_ring: KeyRing::new(store.clone(), cache_age),
                key_limits: RateLimiter::default(),
                quotas: Quotas::new(store.clone(), cache_age),
                config,
                store,
                workers,
                metrics,
                shutdown,
                events,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The worker registry.
    pub fn workers(&self) -> &WorkerRegistry {
        &self.inner.workers
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The event stream's hub.
    pub fn events(&self) -> &Arc<EventHub> {
        &self.inner.events
    }

    /// The shutdown signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// The API keys.
    pub fn key_ring(&self) -> &KeyRing {
        &self.inner.key_ring
    }

    /// The per-key request buckets.
    pub fn key_limits(&self) -> &RateLimiter {
        &self.inner.key_limits
    }

    /// The per-namespace quotas.
    pub fn quotas(&self) -> &Quotas {
        &self.inner.quotas
    }
}
