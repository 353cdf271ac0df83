//! Leader leases: a named role (`maintenance`) that one holder at a time may take, renew and
//! give up, so nodes sharing a store run the singleton services once. Liveness is judged by
//! the store's clock: a lease is live while `expires_at > now`.

use hopper_store::StoreError;
use rusqlite::params;

use crate::rows::sql_error;
use crate::writer::WriteCtx;

/// Takes or renews `name` for `holder` until `ttl_ms` from now; true when `holder` holds it
/// afterwards.
pub(crate) fn acquire(
    ctx: &mut WriteCtx<'_>,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<bool, StoreError> {
    let now = ctx.now.as_millis();
    let expires_at = ctx.now.plus_ms(ttl_ms).as_millis();
    // One statement decides and writes: the row is created, or overwritten when it is ours
    // (a renewal) or no longer live (a takeover). When another holder's lease is live the
    // conflict's WHERE is false and nothing changes, which `execute` reports as 0 rows.
    let changed = ctx
        .conn
        .prepare_cached(
            "INSERT INTO leader_leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at <= ?4",
        )
        .and_then(|mut s| s.execute(params![name, holder, expires_at, now]))
        .map_err(sql_error)?;
    Ok(changed == 1)
}

/// Gives `name` up if `holder` holds it; anyone else's call changes nothing.
pub(crate) fn resign(ctx: &mut WriteCtx<'_>, name: &str, holder: &str) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached("DELETE FROM leader_leases WHERE name = ?1 AND holder = ?2")
        .and_then(|mut s| s.execute(params![name, holder]))
        .map_err(sql_error)?;
    Ok(())
}
