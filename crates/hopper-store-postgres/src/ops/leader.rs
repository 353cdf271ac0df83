//! Named leader leases: one row per singleton service, taken by whichever node finds it free
//! or expired, renewed by its holder. Expiry uses the store's clock, like job leases.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use sqlx::PgConnection;

use crate::error::db_error;

pub(crate) async fn acquire(
    conn: &mut PgConnection,
    now: Timestamp,
    name: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<bool, StoreError> {
    // One statement: take a missing or expired lease, or renew our own; a live lease of
    // another holder makes the conditional update do nothing and return no row.
    let got: Option<String> = sqlx::query_scalar(
        "INSERT INTO hopper.leader_leases AS l (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE l.holder = excluded.holder OR l.expires_at <= $4
         RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(now.plus_ms(ttl_ms.max(1)).as_millis())
    .bind(now.as_millis())
    .fetch_optional(conn)
    .await
    .map_err(db_error)?;
    Ok(got.is_some())
}

pub(crate) async fn resign(
    conn: &mut PgConnection,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM hopper.leader_leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}
