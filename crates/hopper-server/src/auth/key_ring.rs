//! [`KeyRing`]: the store's API keys, cached in memory, and the check of a presented key.
//!
//! Every request is authenticated, so keys are not read from the store per request: the ring
//! keeps a snapshot of every key ([`SnapshotCache`]) and reloads it when it is older than
//! `max_age` (1 s by default). A key created or revoked through this node takes effect here at once (the ring is
//! invalidated); through another node, within `max_age`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hopper_store::{Store, StoreError};
use hopper_types::Timestamp;
use hopper_types::api_key::{ApiKey, StoredApiKey, parse_key, secret_matches};

use crate::snapshot_cache::SnapshotCache;

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

/// The cached keys of one store.
pub struct KeyRing {
    store: Arc<dyn Store>,
    // By key id.
    keys: SnapshotCache<HashMap<String, StoredApiKey>>,
}

impl KeyRing {
    /// A ring over `store` reloading snapshots older than `max_age`.
    pub fn new(store: Arc<dyn Store>, max_age: Duration) -> KeyRing {
        KeyRing {
            store,
            keys: SnapshotCache::new(max_age),
        }
    }

    /// Whether authentication is on: the store holds at least one key.
    pub async fn enabled(&self) -> Result<bool, StoreError> {
        Ok(!self.current().await?.is_empty())
    }

    /// Checks a presented key at `now`; answers the key it is.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<ApiKey, VerifyError> {
        let keys = self.current().await.map_err(VerifyError::Store)?;
        let (id, secret) = parse_key(token).ok_or(VerifyError::Key(KeyError::Invalid))?;
        let stored = keys.get(id).ok_or(VerifyError::Key(KeyError::Invalid))?;
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
        self.keys.invalidate();
    }

    async fn current(&self) -> Result<Arc<HashMap<String, StoredApiKey>>, StoreError> {
        self.keys
            .get(async || {
                let keys = self.store.api_key_list().await?;
                Ok(keys.into_iter().map(|k| (k.key.id.clone(), k)).collect())
            })
            .await
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
