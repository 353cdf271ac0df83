//! Signed webhooks: per-namespace subscriptions to job events, delivered by HTTP POST.
//!
//! Deliveries are Hopper jobs of Hopper's own namespace
//! ([`hopper_types::namespace::SYSTEM_NAMESPACE`], queue [`QUEUE`]): durable, retried with
//! exponential backoff, dead after their last attempt, and their attempts and errors are the
//! delivery log (`GET /v1/webhooks/{id}/deliveries`).
//!
//! - [`dispatcher`]: on the maintenance leader, reads the event log after each webhook's
//!   cursor and enqueues one delivery per matching event (idempotency key
//!   `webhook:<id>:<seq>`, so a pass repeated after a crash or by a new leader adds none),
//!   then moves the cursor by compare-and-set.
//! - [`sender`]: on every node, leases deliveries, signs and posts them, and acknowledges the
//!   outcome (2xx completes; anything else fails the attempt, to be retried).
//! - [`target`]: refuses targets that are not public addresses (unless allowed).
//!
//! The signature scheme and the receiver's checks are in [`hopper_types::webhook`].

pub mod dispatcher;
pub mod sender;
pub mod target;

use std::time::Duration;

/// The queue of deliveries in Hopper's namespace.
pub const QUEUE: &str = "webhooks";
/// The kind of a delivery job.
pub const KIND: &str = "webhook.deliver";

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Time between the dispatcher's passes (250 ms).
    pub dispatch_interval: Duration,
    /// Attempts per delivery before it is dead (12).
    pub max_attempts: i64,
    /// Delay after the first failed attempt (1 s), doubling up to `retry_cap_ms` (10 min).
    pub retry_base_ms: i64,
    /// Largest delay between attempts.
    pub retry_cap_ms: i64,
    /// How long a receiver may take to answer (10 s).
    pub timeout: Duration,
    /// Deliveries posted at once per node (8).
    pub concurrency: usize,
    /// Off only in tests that drive delivery by hand.
    pub disabled: bool,
    /// Lets deliveries go to loopback and private addresses (off: a tenant's webhook could
    /// otherwise reach services only the server can).
    pub allow_private_targets: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            dispatch_interval: Duration::from_millis(250),
            max_attempts: 12,
            retry_base_ms: 1_000,
            retry_cap_ms: 600_000,
            timeout: Duration::from_secs(10),
            concurrency: 8,
            disabled: false,
            allow_private_targets: false,
        }
    }
}

/// The tag of every delivery of webhook `id` (what its delivery log lists by).
pub fn tag(id: &str) -> String {
    format!("webhook:{id}")
}
