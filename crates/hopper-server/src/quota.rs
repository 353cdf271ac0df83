//! Per-namespace quotas on enqueues: how many jobs may wait, and how fast jobs may arrive.
//!
//! Quotas are stored per namespace (`PUT /v1/namespaces/{name}`) and cached here like the keys
//! ([`SnapshotCache`]: reloaded when older than `max_age`, at once after a change through this
//! node), so a
//! namespace without quotas costs one hash lookup per enqueue. `max_waiting_jobs` counts the
//! namespace's available, scheduled and retryable jobs before the enqueue: concurrent
//! enqueues may overshoot it by what they carry. `enqueue_per_s` is a token bucket per node.
//! Both refuse with 429 `rate_limited` and a `Retry-After`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hopper_store::{Store, StoreError};
use hopper_types::JobState;
use hopper_types::namespace::NamespaceSettings;

use crate::auth::rate_limit::RateLimiter;
use crate::error::ApiError;
use crate::snapshot_cache::SnapshotCache;

/// How long a client refused for a full backlog should wait: the backlog drains at the
/// workers' pace, which the server cannot predict.
const BACKLOG_RETRY: Duration = Duration::from_secs(5);

/// The namespaces' quotas and their enqueue buckets.
pub struct Quotas {
    store: Arc<dyn Store>,
    // By namespace name.
    settings: SnapshotCache<HashMap<String, NamespaceSettings>>,
    rates: RateLimiter,
}

impl Quotas {
    /// Quotas of `store`, reloaded when older than `max_age`.
    pub fn new(store: Arc<dyn Store>, max_age: Duration) -> Quotas {
        Quotas {
            store,
            settings: SnapshotCache::new(max_age),
            rates: RateLimiter::default(),
        }
    }

    /// Admits an enqueue of `jobs` jobs into `namespace`, or answers the 429.
    pub async fn admit(&self, namespace: &str, jobs: usize) -> Result<(), ApiError> {
        let settings = self
            .settings
            .get(async || {
                let all = self.store.namespace_list().await?;
                Ok::<_, StoreError>(all.into_iter().map(|n| (n.name.clone(), n)).collect())
            })
            .await?;
        let Some(q) = settings.get(namespace) else {
            return Ok(());
        };
        let jobs_u32 = u32::try_from(jobs).unwrap_or(u32::MAX);
        if let Some(max) = q.max_waiting_jobs {
            let waiting: u64 = self
                .store
                .queue_list(namespace)
                .await?
                .iter()
                .flat_map(|queue| {
                    [
                        JobState::Available,
                        JobState::Scheduled,
                        JobState::Retryable,
                    ]
                    .map(|s| queue.counts.get(&s).copied().unwrap_or(0))
                })
                .sum();
            if waiting.saturating_add(jobs as u64) > max {
                return Err(ApiError::rate_limited(
                    format!(
                        "namespace `{namespace}` has {waiting} waiting jobs; its quota is {max}"
                    ),
                    BACKLOG_RETRY,
                ));
            }
        }
        if let Some(rate) = q.enqueue_per_s
            && let Err(wait) = self.rates.take(namespace, rate, jobs_u32, Instant::now())
        {
            return Err(ApiError::rate_limited(
                format!("namespace `{namespace}` may enqueue {rate} jobs per second"),
                wait,
            ));
        }
        Ok(())
    }

    /// Forgets the snapshot (after a change made through this node).
    pub fn invalidate(&self) {
        self.settings.invalidate();
    }
}
