//! The server's settings: request limits, retention, idempotency-key lifetime, the bind policy
//! and the maintenance services' intervals. Every field has a default that matches the
//! semantics document, so `ServerConfig::default()` is a correct production configuration.

use hopper_types::Limits;

use crate::events::EventsConfig;

use crate::maintenance::{
    LeadershipConfig, PromoterConfig, PrunerConfig, RescuerConfig, SchedulerConfig,
};

const DAY_MS: i64 = 24 * 3_600_000;

/// How long finished jobs are kept, per terminal state, before the pruner removes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Completed jobs: 1 day by default (they are rarely looked at once done).
    pub completed_ms: i64,
    /// Cancelled jobs: 7 days by default (someone may want to see what was cancelled).
    pub cancelled_ms: i64,
    /// Dead jobs: 30 days by default (the dead-letter queue is inspected and retried by hand).
    pub dead_ms: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            completed_ms: DAY_MS,
            cancelled_ms: 7 * DAY_MS,
            dead_ms: 30 * DAY_MS,
        }
    }
}

/// The maintenance services' settings.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceConfig {
    /// Off only in tests that drive the services by hand through `run_once`.
    pub disabled: bool,
    /// Moves due `scheduled` / `retryable` jobs to `available`.
    pub promoter: PromoterConfig,
    /// Reclaims expired leases and timed-out attempts.
    pub rescuer: RescuerConfig,
    /// Removes finished jobs past retention and expired idempotency keys.
    pub pruner: PrunerConfig,
    /// Enqueues the jobs of cron schedules.
    pub scheduler: SchedulerConfig,
    /// Starts the runs of workflow definitions (cron ticks, backfills).
    pub workflow_trigger: crate::maintenance::WorkflowTriggerConfig,
    /// Which node of several sharing a store runs the services.
    pub leadership: LeadershipConfig,
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long a node trusts its cached copy of the keys and namespace quotas (1 s): how
    /// soon a key revoked through another node is refused here.
    pub cache_ms: u64,
    /// How long a UI session lasts (12 hours).
    pub session_ttl_s: u64,
    /// Whether clients reach the server over TLS (session cookies are then `Secure`); set by
    /// [`crate::serve`] when it serves TLS itself, or by hand behind a TLS-terminating proxy.
    pub tls: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            cache_ms: 1_000,
            session_ttl_s: 12 * 3_600,
            tls: false,
        }
    }
}

/// Everything [`crate::serve`] and [`crate::app`] need besides the store and the socket.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Size and range limits on request bodies and job fields.
    pub limits: Limits,
    /// How long finished jobs are kept.
    pub retention: Retention,
    /// How long an idempotency key is remembered after its job was created (7 days by default),
    /// even if the job itself is pruned sooner.
    pub idempotency_key_ttl_ms: i64,
    /// Allows binding a non-loopback address without API keys (the `--insecure` flag): without
    /// it, anyone who can reach the port could enqueue work.
    pub insecure: bool,
    /// How long, after shutdown begins, the server keeps accepting connections while `/readyz`
    /// already answers 503, so a load balancer can take it out of rotation first. 0 by default.
    pub shutdown_drain_ms: u64,
    /// How long, after the drain, requests in flight may take to finish before their
    /// connections are closed anyway (10 s): an event-stream client that stopped reading would
    /// otherwise hold the server up forever.
    pub shutdown_timeout_ms: u64,
    /// A worker is listed by `GET /v1/workers` while it was seen this recently (1 minute).
    pub worker_seen_window_ms: i64,
    /// How often nodes exchange the workers they saw through the store (2 s): how soon a
    /// worker polling one node is listed by the others.
    pub worker_sync_ms: u64,
    /// Background services.
    pub maintenance: MaintenanceConfig,
    /// The live event stream: history size, read interval, keep-alives.
    pub events: EventsConfig,
    /// Keys, sessions.
    pub auth: AuthConfig,
    /// Serve HTTPS with this rustls configuration (see [`crate::tls::load`]); plain HTTP when
    /// absent.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Webhook dispatch and delivery.
    pub webhooks: crate::webhooks::WebhookConfig,
    /// This node's name among nodes sharing a store (in leader election and logs); a fresh
    /// unique name by default.
    pub node_id: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            retention: Retention::default(),
            idempotency_key_ttl_ms: 7 * DAY_MS,
            insecure: false,
            shutdown_drain_ms: 0,
            shutdown_timeout_ms: 10_000,
            worker_seen_window_ms: 60_000,
            worker_sync_ms: 2_000,
            maintenance: MaintenanceConfig::default(),
            events: EventsConfig::default(),
            auth: AuthConfig::default(),
            tls: None,
            webhooks: crate::webhooks::WebhookConfig::default(),
            node_id: format!("node-{}", uuid::Uuid::now_v7().simple()),
        }
    }
}
