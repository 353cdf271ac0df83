//! [`KeyRing`]: the store's API keys, cached in memory, and the check of a presented key.
//!
//! Every request is authenticated, so keys are not read from the store per request: the ring
//! keeps a snapshot of every key and reloads it when it is older than `max_age` (1 s by
//! default). A key created or revoked through this node takes effect here at once (the ring is
//! invalidated); through another node, within `max_age`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hopper_store::{Store, StoreError};
use hopper_types::Timestamp;
use hopper_types::api_key::{ApiKey, StoredApiKey, parse_key, secret_matches};

/// Why a presented key was refused (all answered 401, with these messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not `hop_<id>_<secret>`, unknown id, or wrong secret: indistinguishable on purpose.
    #[error("the API key is not valid")]
    Invalid,
    /// Revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// Past its expiry.
    #[error("the API key has expired")]
    Expired,
}

struct Snapshot {
    loaded_at: Option<Instant>,
    // By key id.
    keys: HashMap<String, StoredApiKey>,
}

/// The cached keys of one store.
pub struct KeyRing {
    store: Arc<dyn Store>,
    max_age: Duration,
    snapshot: RwLock<Arc<Snapshot>>,
    // One reload at a time: concurrent requests that find the snapshot stale wait for it.
    reload: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// A ring over `store` reloading snapshots older than `max_age`.
    pub fn new(store: Arc<dyn Store>, max_age: Duration) -> KeyRing {
        KeyRing {
            store,
            max_age,
            snapshot: RwLock::new(Arc::new(Snapshot {
                loaded_at: None,
                keys: HashMap::new(),
            })),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether authentication is on: the store holds at least one key.
    pub async fn enabled(&self) -> Result<bool, StoreError> {
        Ok(!self.current().await?.keys.is_empty())
    }

    /// Checks a presented key at `now`; answers the key it is.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<ApiKey, VerifyError> {
        let snap = self.current().await.map_err(VerifyError::Store)?;
        let (id, secret) = parse_key(token).ok_or(VerifyError::Key(KeyError::Invalid))?;
        let stored = snap
            .keys
            .get(id)
            .ok_or(VerifyError::Key(KeyError::Invalid))?;
        if !secret_matches(secret, &stored.secret_hash) {
            return Err(VerifyError::Key(KeyError::Invalid));
        }
        if stored.key.revoked_at.is_some() {
            return Err(VerifyError::Key(KeyError::Revoked));
        }
        if stored.key.expires_at.is_some_and(|e| e <= now) {
            return Err(VerifyError::Key(KeyError::Expired));
        }
        Ok(stored.key.clone())
    }

    /// Forgets the snapshot, so the next request reloads (after a change made here).
    pub fn invalidate(&self) {
        // A snapshot without a load time is stale: the next `current` reloads.
        if let Ok(mut s) = self.snapshot.write() {
            *s = Arc::new(Snapshot {
                loaded_at: None,
                keys: HashMap::new(),
            });
        }
    }

    async fn current(&self) -> Result<Arc<Snapshot>, StoreError> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let _one = self.reload.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let keys = self.store.api_key_list().await?;
        let snap = Arc::new(Snapshot {
            loaded_at: Some(Instant::now()),
            keys: keys.into_iter().map(|k| (k.key.id.clone(), k)).collect(),
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

/// Why [`KeyRing::verify`] refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    /// The key itself.
    #[error(transparent)]
    Key(KeyError),
    /// The keys could not be read.
    #[error(transparent)]
    Store(StoreError),
}
