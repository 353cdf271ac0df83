//! Leader election for the singleton services: only the node holding the store's
//! `maintenance` lease runs the promoter, rescuer, pruner and scheduler.
//!
//! Every node tries to take or renew the lease every `renew_interval`; the lease lasts `ttl`.
//! A node that dies stops renewing, and another takes over once the lease runs out (within
//! `ttl + renew_interval`). A node that cannot reach the store stops its services once its
//! lease may have run out, so that two nodes overlap only briefly; and since every service
//! locks the rows it changes and re-checks their state, a brief overlap does no harm. A node
//! that shuts down resigns, so another takes over at its next renewal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hopper_store::Store;
use tokio_util::sync::CancellationToken;

use super::sleep_or_stop;

/// The lease's name in the store.
pub const LEASE_NAME: &str = "maintenance";
/// How long a taken lease lasts without renewal.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// How often every node tries to take or renew it.
pub const DEFAULT_RENEW_INTERVAL: Duration = Duration::from_secs(1);

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeadershipConfig {
    /// How long a lease lasts without renewal: the longest a dead leader delays its successor.
    pub ttl: Duration,
    /// How often to take or renew the lease; well under `ttl`.
    pub renew_interval: Duration,
}

impl Default for LeadershipConfig {
    fn default() -> Self {
        LeadershipConfig {
            ttl: DEFAULT_TTL,
            renew_interval: DEFAULT_RENEW_INTERVAL,
        }
    }
}

impl LeadershipConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_interval.is_zero() || self.renew_interval * 2 > self.ttl {
            return Err("leader renew interval must be positive and at most half the ttl".into());
        }
        Ok(())
    }
}

/// Runs `lead` (which starts the services and returns once they have stopped, when its token
/// is cancelled) for as long as this node holds the lease, until `stop`.
pub async fn run<F, Fut>(
    store: Arc<dyn Store>,
    holder: String,
    config: LeadershipConfig,
    stop: CancellationToken,
    on_change: impl Fn(bool) + Send,
    lead: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ttl_ms = i64::try_from(config.ttl.as_millis()).unwrap_or(i64::MAX);
    let mut term: Option<(CancellationToken, tokio::task::JoinHandle<()>)> = None;
    let mut renewed_at = Instant::now();
    loop {
        match store.leader_acquire(LEASE_NAME, &holder, ttl_ms).await {
            Ok(true) => {
                renewed_at = Instant::now();
                if term.is_none() {
                    tracing::info!(node = %holder, "this node leads the maintenance services");
                    let token = stop.child_token();
                    let handle = tokio::spawn(lead(token.clone()));
                    term = Some((token, handle));
                    on_change(true);
                }
            }
            Ok(false) => {
                if term.is_some() {
                    tracing::warn!(node = %holder, "another node took the maintenance lease");
                    end_term(&mut term).await;
                    on_change(false);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the maintenance lease");
                // Our lease may run out before we reach the store again: stop in time.
                if term.is_some() && renewed_at.elapsed() + config.renew_interval >= config.ttl {
                    tracing::warn!(node = %holder, "stepping down: the lease may have run out");
                    end_term(&mut term).await;
                    on_change(false);
                }
            }
        }
        if !sleep_or_stop(&stop, config.renew_interval).await {
            break;
        }
    }
    if term.is_some() {
        end_term(&mut term).await;
        on_change(false);
        if let Err(e) = store.leader_resign(LEASE_NAME, &holder).await {
            tracing::warn!(error = %e, "could not resign the maintenance lease");
        }
    }
}

async fn end_term(term: &mut Option<(CancellationToken, tokio::task::JoinHandle<()>)>) {
    if let Some((token, handle)) = term.take() {
        token.cancel();
        if let Err(e) = handle.await {
            tracing::error!(error = %e, "maintenance services ended abnormally");
        }
    }
}
