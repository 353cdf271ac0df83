//! Per-namespace quotas on enqueues: how many jobs may wait, and how fast jobs may arrive.
//!
//! Quotas are stored per namespace (`PUT /v1/namespaces/{name}`) and cached here like the keys
//! (reloaded when older than `max_age`, at once after a change through this node), so a
//! namespace without quotas costs one hash lookup per enqueue. `max_waiting_jobs` counts the
//! namespace's available, scheduled and retryable jobs before the enqueue: concurrent
//! enqueues may overshoot it by what they carry. `enqueue_per_s` is a token bucket per node.
//! Both refuse with 429 `rate_limited` and a `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hopper_store::Store;
use hopper_types::JobState;
use hopper_types::namespace::NamespaceSettings;

use crate::auth::rate_limit::RateLimiter;
use crate::error::ApiError;

/// How long a client refused for a full backlog should wait: the backlog drains at the
/// workers' pace, which the server cannot predict.
const BACKLOG_RETRY: Duration = Duration::from_secs(5);

struct Snapshot {
    loaded_at: Option<Instant>,
    by_name: HashMap<String, NamespaceSettings>,
}

/// The namespaces' quotas and their enqueue buckets.
pub struct Quotas {
    store: Arc<dyn Store>,
    max_age: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    reload: tokio::sync::Mutex<()>,
    rates: RateLimiter,
}

impl Quotas {
    /// Quotas of `store`, reloaded when older than `max_age`.
    pub fn new(store: Arc<dyn Store>, max_age: Duration) -> Quotas {
        Quotas {
            store,
            max_age,
            snapshot: RwLock::new(Arc::new(Snapshot {
                loaded_at: None,
                by_name: HashMap::new(),
            })),
            reload: tokio::sync::Mutex::new(()),
            rates: RateLimiter::default(),
        }
    }

    /// Admits an enqueue of `jobs` jobs into `namespace`, or answers the 429.
    pub async fn admit(&self, namespace: &str, jobs: usize) -> Result<(), ApiError> {
        let snap = self.current().await?;
        let Some(q) = snap.by_name.get(namespace) else {
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
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(Snapshot {
                loaded_at: None,
                by_name: HashMap::new(),
            });
        }
    }

    async fn current(&self) -> Result<Arc<Snapshot>, ApiError> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one = self.reload.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let all = self.store.namespace_list().await?;
        let snap = Arc::new(Snapshot {
            loaded_at: Some(Instant::now()),
            by_name: all.into_iter().map(|n| (n.name.clone(), n)).collect(),
        });
        if let Ok(mut s) = self.snapshot.write() {
            *s = snap.clone();
        }
        Ok(snap)
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let s = self.snapshot.read().ok()?.clone();
        s.loaded_at
            .is_some_and(|at| at.elapsed() < self.max_age)
            .then_some(s)
    }
}
