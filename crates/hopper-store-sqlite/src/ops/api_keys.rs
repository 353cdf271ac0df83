//! API keys: one row per key with its secret's SHA-256, never the secret itself. Creating and
//! revoking a key append their audit entry in the same writer command.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::api_key::{ApiKey, Role, StoredApiKey};
use hopper_types::audit::NewAuditEntry;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::ops::audit;
use crate::rows::sql_error;
use crate::writer::WriteCtx;

/// A key's row as selected, before its text columns are parsed.
struct RawKey {
    id: String,
    name: String,
    role: String,
    namespaces: String,
    created_at: i64,
    created_by: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    rate_limit_per_s: Option<u32>,
    secret_hash: Vec<u8>,
}

/// Reads the columns `id, name, role, namespaces, created_at, created_by, expires_at,
/// revoked_at, rate_limit_per_s, secret_hash`.
fn raw(r: &Row<'_>) -> rusqlite::Result<RawKey> {
    Ok(RawKey {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        namespaces: r.get(3)?,
        created_at: r.get(4)?,
        created_by: r.get(5)?,
        expires_at: r.get(6)?,
        revoked_at: r.get(7)?,
        rate_limit_per_s: r.get(8)?,
        secret_hash: r.get(9)?,
    })
}

impl RawKey {
    fn decode(self) -> Result<StoredApiKey, StoreError> {
        let corrupt = |what: &str| StoreError::Internal(format!("API key {}: {what}", self.id));
        let role = Role::parse(&self.role).ok_or_else(|| corrupt("unknown role"))?;
        let namespaces = serde_json::from_str(&self.namespaces)
            .map_err(|e| corrupt(&format!("decode namespaces: {e}")))?;
        let secret_hash = <[u8; 32]>::try_from(self.secret_hash.as_slice())
            .map_err(|_| corrupt("the secret hash is not 32 bytes"))?;
        Ok(StoredApiKey {
            key: ApiKey {
                id: self.id,
                name: self.name,
                role,
                namespaces,
                created_at: Timestamp(self.created_at),
                created_by: self.created_by,
                expires_at: self.expires_at.map(Timestamp),
                revoked_at: self.revoked_at.map(Timestamp),
                rate_limit_per_s: self.rate_limit_per_s,
            },
            secret_hash,
        })
    }
}

pub(crate) fn insert(
    ctx: &mut WriteCtx<'_>,
    stored: StoredApiKey,
    entry: NewAuditEntry,
) -> Result<(), StoreError> {
    if !insert_row(ctx.conn, &stored)? {
        return Err(StoreError::AlreadyExists(format!(
            "API key {}",
            stored.key.id
        )));
    }
    audit::append(ctx.conn, entry)?;
    Ok(())
}

/// Copies keys in exactly as given (digest, revocation and expiry included), skipping ids
/// already present. No audit entry: the source's log, copied alongside, has the key's.
pub(crate) fn import(conn: &Connection, keys: &[StoredApiKey]) -> Result<(), StoreError> {
    for k in keys {
        insert_row(conn, k)?;
    }
    Ok(())
}

/// Inserts a key's row unless its id exists; true when it was inserted.
fn insert_row(conn: &Connection, stored: &StoredApiKey) -> Result<bool, StoreError> {
    let k = &stored.key;
    let namespaces = serde_json::to_string(&k.namespaces)
        .map_err(|e| StoreError::Internal(format!("encode namespaces: {e}")))?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO api_keys (id, name, role, namespaces, created_at, created_by,
                expires_at, revoked_at, rate_limit_per_s, secret_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                k.id,
                k.name,
                k.role.as_str(),
                namespaces,
                k.created_at.as_millis(),
                k.created_by,
                k.expires_at.map(Timestamp::as_millis),
                k.revoked_at.map(Timestamp::as_millis),
                k.rate_limit_per_s,
                &stored.secret_hash[..],
            ])
        })
        .map_err(sql_error)?;
    Ok(inserted == 1)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<StoredApiKey>, StoreError> {
    let raws = conn
        .prepare_cached(
            "SELECT id, name, role, namespaces, created_at, created_by, expires_at, revoked_at,
                rate_limit_per_s, secret_hash
             FROM api_keys ORDER BY created_at, id",
        )
        .and_then(|mut s| s.query_map([], raw)?.collect::<Result<Vec<_>, _>>())
        .map_err(sql_error)?;
    raws.into_iter().map(RawKey::decode).collect()
}

pub(crate) fn revoke(
    ctx: &mut WriteCtx<'_>,
    id: &str,
    at: Timestamp,
    entry: NewAuditEntry,
) -> Result<ApiKey, StoreError> {
    // `coalesce`: a second revocation keeps the first time, which is when the key stopped
    // working.
    let row = ctx
        .conn
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1
             RETURNING id, name, role, namespaces, created_at, created_by, expires_at,
                revoked_at, rate_limit_per_s, secret_hash",
        )
        .and_then(|mut s| s.query_row(params![id, at.as_millis()], raw).optional())
        .map_err(sql_error)?;
    let key = row.ok_or(StoreError::NotFound)?.decode()?.key;
    audit::append(ctx.conn, entry)?;
    Ok(key)
}
