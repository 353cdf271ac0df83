//! Creating keys: [`issue`] makes a fresh one (the API, the CLI, the first start), and
//! [`install`] stores one whose text an operator chose ahead (an environment variable for
//! automated setups). Either way only the digest reaches the store, with its audit entry.

use hopper_store::{Store, StoreError};
use hopper_types::api_key::{ApiKey, StoredApiKey, generate_key, hash_secret, parse_key};
use hopper_types::audit::NewAuditEntry;

/// What a new key may do: everything of [`ApiKey`] but its id and creation stamp.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Label.
    pub name: String,
    /// Role.
    pub role: hopper_types::api_key::Role,
    /// Namespaces (`*` for all).
    pub namespaces: Vec<String>,
    /// Expiry.
    pub expires_at: Option<hopper_types::Timestamp>,
    /// Requests per second per node.
    pub rate_limit_per_s: Option<u32>,
}

/// Creates a random key for `spec` on behalf of `actor`; answers the key and its text (to be
/// shown once).
pub async fn issue(
    store: &dyn Store,
    spec: KeySpec,
    actor: &str,
) -> Result<(ApiKey, String), StoreError> {
    let generated = generate_key();
    let key = store_key(store, spec, actor, generated.id, generated.secret_hash).await?;
    Ok((key, generated.token))
}

/// Stores the key whose text is `token` (it must read `hop_<16 hex>_<64 hex>`) unless a key
/// of that id exists; answers whether it was stored.
pub async fn install(
    store: &dyn Store,
    token: &str,
    spec: KeySpec,
    actor: &str,
) -> Result<bool, InstallError> {
    let (id, secret) = parse_key(token).ok_or(InstallError::Malformed)?;
    match store_key(store, spec, actor, id.to_string(), hash_secret(secret)).await {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(InstallError::Store(e)),
    }
}

/// Why [`install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The text is not a key.
    #[error("not an API key: expected hop_<16 hex digits>_<64 hex digits>")]
    Malformed,
    /// Storing it failed.
    #[error(transparent)]
    Store(StoreError),
}

async fn store_key(
    store: &dyn Store,
    spec: KeySpec,
    actor: &str,
    id: String,
    secret_hash: [u8; 32],
) -> Result<ApiKey, StoreError> {
    let now = store.clock().now();
    let key = ApiKey {
        id,
        name: spec.name,
        role: spec.role,
        namespaces: spec.namespaces,
        created_at: now,
        created_by: actor.to_string(),
        expires_at: spec.expires_at,
        revoked_at: None,
        rate_limit_per_s: spec.rate_limit_per_s,
    };
    let audit = NewAuditEntry {
        at: now,
        actor: actor.to_string(),
        action: "key.create".into(),
        namespace: String::new(),
        target: key.id.clone(),
        details: serde_json::json!({
            "name": key.name,
            "role": key.role,
            "namespaces": key.namespaces,
            "expires_at": key.expires_at,
            "rate_limit_per_s": key.rate_limit_per_s,
        }),
    };
    store
        .api_key_insert(
            StoredApiKey {
                key: key.clone(),
                secret_hash,
            },
            audit,
        )
        .await?;
    Ok(key)
}
