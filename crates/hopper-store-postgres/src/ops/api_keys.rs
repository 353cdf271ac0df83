//! API keys: one row per key with its secret's SHA-256, never the secret itself. Creating and
//! revoking a key append their audit entry in the caller's transaction.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::api_key::{ApiKey, Role, StoredApiKey};
use hopper_types::audit::NewAuditEntry;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::db_error;
use crate::ops::audit;

/// A key from the columns `id, name, role, namespaces, created_at, created_by, expires_at,
/// revoked_at, rate_limit_per_s, secret_hash`.
fn decode(r: &PgRow) -> Result<StoredApiKey, StoreError> {
    let id: String = r.try_get(0).map_err(db_error)?;
    let corrupt = |what: &str| StoreError::Internal(format!("API key {id}: {what}"));
    let role: String = r.try_get(2).map_err(db_error)?;
    let namespaces: String = r.try_get(3).map_err(db_error)?;
    let rate: Option<i64> = r.try_get(8).map_err(db_error)?;
    let hash: Vec<u8> = r.try_get(9).map_err(db_error)?;
    let key = ApiKey {
        name: r.try_get(1).map_err(db_error)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("unknown role"))?,
        namespaces: serde_json::from_str(&namespaces)
            .map_err(|e| corrupt(&format!("decode namespaces: {e}")))?,
        created_at: Timestamp(r.try_get(4).map_err(db_error)?),
        created_by: r.try_get(5).map_err(db_error)?,
        expires_at: r
            .try_get::<Option<i64>, _>(6)
            .map_err(db_error)?
            .map(Timestamp),
        revoked_at: r
            .try_get::<Option<i64>, _>(7)
            .map_err(db_error)?
            .map(Timestamp),
        rate_limit_per_s: rate
            .map(u32::try_from)
            .transpose()
            .map_err(|_| corrupt("rate_limit_per_s out of range"))?,
        id: id.clone(),
    };
    let secret_hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| corrupt("the secret hash is not 32 bytes"))?;
    Ok(StoredApiKey { key, secret_hash })
}

/// Inside the caller's transaction, which the audit entry joins.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    stored: StoredApiKey,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    if !insert_row(conn, &stored).await? {
        return Err(StoreError::AlreadyExists(format!(
            "API key {}",
            stored.key.id
        )));
    }
    audit::append(conn, entry).await?;
    Ok(())
}

/// Copies keys in exactly as given (digest, revocation and expiry included), skipping ids
/// already present. No audit entry: the source's log, copied alongside, has the key's.
pub(crate) async fn import(
    conn: &mut PgConnection,
    keys: &[StoredApiKey],
) -> Result<(), StoreError> {
    for k in keys {
        insert_row(conn, k).await?;
    }
    Ok(())
}

/// Inserts a key's row unless its id exists; true when it was inserted.
async fn insert_row(conn: &mut PgConnection, stored: &StoredApiKey) -> Result<bool, StoreError> {
    let k = &stored.key;
    let namespaces = serde_json::to_string(&k.namespaces)
        .map_err(|e| StoreError::Internal(format!("encode namespaces: {e}")))?;
    // A concurrent insert of the same id makes this wait for its commit, then do nothing.
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO hopper.api_keys (id, name, role, namespaces, created_at, created_by,
             expires_at, revoked_at, rate_limit_per_s, secret_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO NOTHING
         RETURNING 1",
    )
    .bind(&k.id)
    .bind(&k.name)
    .bind(k.role.as_str())
    .bind(namespaces)
    .bind(k.created_at.as_millis())
    .bind(&k.created_by)
    .bind(k.expires_at.map(Timestamp::as_millis))
    .bind(k.revoked_at.map(Timestamp::as_millis))
    .bind(k.rate_limit_per_s.map(i64::from))
    .bind(&stored.secret_hash[..])
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(inserted.is_some())
}

pub(crate) async fn list(conn: &mut PgConnection) -> Result<Vec<StoredApiKey>, StoreError> {
    // Ids in byte order, the same as the embedded store's.
    let rows = sqlx::query(
        "SELECT id, name, role, namespaces, created_at, created_by, expires_at, revoked_at,
             rate_limit_per_s, secret_hash
         FROM hopper.api_keys ORDER BY created_at, id COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter().map(decode).collect()
}

/// Inside the caller's transaction, which the audit entry joins.
pub(crate) async fn revoke(
    conn: &mut PgConnection,
    id: &str,
    at: Timestamp,
    entry: NewAuditEntry,
) -> Result<ApiKey, StoreError> {
    // `coalesce`: a second revocation keeps the first time, which is when the key stopped
    // working. One statement, so two concurrent revocations serialize on the row.
    let row = sqlx::query(
        "UPDATE hopper.api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
         RETURNING id, name, role, namespaces, created_at, created_by, expires_at, revoked_at,
             rate_limit_per_s, secret_hash",
    )
    .bind(id)
    .bind(at.as_millis())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_error)?;
    let key = decode(&row.ok_or(StoreError::NotFound)?)?.key;
    audit::append(conn, entry).await?;
    Ok(key)
}
