//! [`SnapshotCache`]: a small table of the store (the API keys, the namespace quotas) kept in
//! memory and reloaded when older than its `max_age`, because every request consults it and a
//! store round trip per request would cost more than the request itself.
//!
//! One reload at a time: requests that find the snapshot stale wait for the one reload in
//! flight instead of each going to the store. A change made through this node invalidates the
//! snapshot at once; a change through another node shows within `max_age`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

struct Snapshot<T> {
    // None: stale (never loaded, or invalidated).
    loaded_at: Option<Instant>,
    value: Arc<T>,
}

/// A cached value of type `T`, loaded by the caller's function.
pub struct SnapshotCache<T> {
    max_age: Duration,
    snapshot: RwLock<Arc<Snapshot<T>>>,
    reload: tokio::sync::Mutex<()>,
}

impl<T: Default + Send + Sync> SnapshotCache<T> {
    /// An empty (stale) cache whose snapshots live `max_age`.
    pub fn new(max_age: Duration) -> SnapshotCache<T> {
        SnapshotCache {
            max_age,
            snapshot: RwLock::new(Arc::new(Snapshot {
                loaded_at: None,
                value: Arc::new(T::default()),
            })),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// The current value, reloaded with `load` when stale.
    pub async fn get<E>(&self, load: impl AsyncFnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _one = self.reload.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let value = Arc::new(load().await?);
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(Snapshot {
                loaded_at: Some(Instant::now()),
                value: value.clone(),
            });
        }
        Ok(value)
    }

    /// Marks the snapshot stale: the next `get` reloads.
    pub fn invalidate(&self) {
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(Snapshot {
                loaded_at: None,
                value: Arc::new(T::default()),
            });
        }
    }

    fn fresh(&self) -> Option<Arc<T>> {
        let s = self.snapshot.read().ok()?.clone();
        s.loaded_at
            .is_some_and(|at| at.elapsed() < self.max_age)
            .then(|| s.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn loads_once_while_fresh_and_again_after_invalidation() {
        let cache: SnapshotCache<u32> = SnapshotCache::new(Duration::from_secs(60));
        let loads = AtomicU32::new(0);
        let load = async || -> Result<u32, ()> { Ok(loads.fetch_add(1, Ordering::SeqCst) + 1) };
        assert_eq!(*cache.get(load).await.expect("load"), 1);
        assert_eq!(*cache.get(load).await.expect("cached"), 1);
        cache.invalidate();
        assert_eq!(*cache.get(load).await.expect("reload"), 2);
        // A failed load leaves the cache stale, and the error reaches the caller.
        cache.invalidate();
        assert!(cache.get(async || Err::<u32, &str>("down")).await.is_err());
        assert_eq!(*cache.get(load).await.expect("reload"), 3);
    }

    #[tokio::test]
    async fn a_snapshot_older_than_its_age_is_reloaded() {
        let cache: SnapshotCache<u32> = SnapshotCache::new(Duration::ZERO);
        let loads = AtomicU32::new(0);
        let load = async || -> Result<u32, ()> { Ok(loads.fetch_add(1, Ordering::SeqCst) + 1) };
        cache.get(load).await.expect("load");
        cache.get(load).await.expect("load");
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
