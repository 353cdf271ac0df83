//! Namespace quotas: one row per namespace that has any, replaced whole by each put, which
//! appends its audit entry in the caller's transaction.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::NewAuditEntry;
use hopper_types::namespace::NamespaceSettings;
use sqlx::{PgConnection, Row};

use crate::error::db_error;
use crate::ops::audit;

/// Inside the caller's transaction, which the audit entry joins.
pub(crate) async fn put(
    conn: &mut PgConnection,
    settings: NamespaceSettings,
    entry: NewAuditEntry,
) -> Result<NamespaceSettings, StoreError> {
    // `bigint` is signed: a quota beyond i64::MAX cannot be stored as given, and silently
    // storing a smaller one would change what the caller asked for (the embedded store
    // refuses it the same way).
    let max_waiting = settings
        .max_waiting_jobs
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::InvalidArgument {
            field: "max_waiting_jobs".into(),
            message: format!("max_waiting_jobs must be at most {}", i64::MAX),
        })?;
    sqlx::query(
        "INSERT INTO hopper.namespaces (name, max_waiting_jobs, enqueue_per_s, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET max_waiting_jobs = excluded.max_waiting_jobs,
             enqueue_per_s = excluded.enqueue_per_s, updated_at = excluded.updated_at",
    )
    .bind(&settings.name)
    .bind(max_waiting)
    .bind(settings.enqueue_per_s.map(i64::from))
    .bind(settings.updated_at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    audit::append(conn, entry).await?;
    Ok(settings)
}

/// Copies quotas in, skipping namespaces that already have their own. No audit entry: the
/// source's log, copied alongside, has the puts.
pub(crate) async fn import(
    conn: &mut PgConnection,
    all: &[NamespaceSettings],
) -> Result<(), StoreError> {
    for settings in all {
        // Refused like a put would be: `bigint` is signed.
        let max_waiting = settings
            .max_waiting_jobs
            .map(i64::try_from)
            .transpose()
            .map_err(|_| StoreError::InvalidArgument {
                field: "namespaces.max_waiting_jobs".into(),
                message: format!(
                    "namespace {}: max_waiting_jobs must be at most {}",
                    settings.name,
                    i64::MAX
                ),
            })?;
        sqlx::query(
            "INSERT INTO hopper.namespaces (name, max_waiting_jobs, enqueue_per_s, updated_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&settings.name)
        .bind(max_waiting)
        .bind(settings.enqueue_per_s.map(i64::from))
        .bind(settings.updated_at.as_millis())
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) async fn list(conn: &mut PgConnection) -> Result<Vec<NamespaceSettings>, StoreError> {
    // Byte order, the same as the embedded store's.
    let rows = sqlx::query(
        "SELECT name, max_waiting_jobs, enqueue_per_s, updated_at FROM hopper.namespaces
         ORDER BY name COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0).map_err(db_error)?;
            let max_waiting: Option<i64> = r.try_get(1).map_err(db_error)?;
            let rate: Option<i64> = r.try_get(2).map_err(db_error)?;
            let corrupt =
                |what: &str| StoreError::Internal(format!("namespace {name}: {what} out of range"));
            Ok(NamespaceSettings {
                max_waiting_jobs: max_waiting
                    .map(u64::try_from)
                    .transpose()
                    .map_err(|_| corrupt("max_waiting_jobs"))?,
                enqueue_per_s: rate
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| corrupt("enqueue_per_s"))?,
                updated_at: Timestamp(r.try_get(3).map_err(db_error)?),
                name,
            })
        })
        .collect()
}
