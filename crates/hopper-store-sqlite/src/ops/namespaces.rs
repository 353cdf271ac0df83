//! Namespace quotas: one row per namespace that has any, replaced whole by each put, which
//! appends its audit entry in the same writer command.

use hopper_store::StoreError;
use hopper_types::Timestamp;
use hopper_types::audit::NewAuditEntry;
use hopper_types::namespace::NamespaceSettings;
use rusqlite::{Connection, params};

use crate::ops::audit;
use crate::rows::sql_error;
use crate::writer::WriteCtx;

pub(crate) fn put(
    ctx: &mut WriteCtx<'_>,
    settings: NamespaceSettings,
    entry: NewAuditEntry,
) -> Result<NamespaceSettings, StoreError> {
    // SQLite integers are signed: a quota beyond i64::MAX cannot be stored as given, and
    // silently storing a smaller one would change what the caller asked for.
    let max_waiting = settings
        .max_waiting_jobs
        .map(i64::try_from)
        .transpose()
        .map_err(|_| StoreError::InvalidArgument {
            field: "max_waiting_jobs".into(),
            message: format!("max_waiting_jobs must be at most {}", i64::MAX),
        })?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO namespaces (name, max_waiting_jobs, enqueue_per_s, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET max_waiting_jobs = excluded.max_waiting_jobs,
                enqueue_per_s = excluded.enqueue_per_s, updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                settings.name,
                max_waiting,
                settings.enqueue_per_s,
                settings.updated_at.as_millis(),
            ])
        })
        .map_err(sql_error)?;
    audit::append(ctx.conn, entry)?;
    Ok(settings)
}

/// Copies quotas in, skipping namespaces that already have their own. No audit entry: the
/// source's log, copied alongside, has the puts.
pub(crate) fn import(conn: &Connection, all: &[NamespaceSettings]) -> Result<(), StoreError> {
    for settings in all {
        // Refused like a put would be: SQLite integers are signed.
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
        conn.prepare_cached(
            "INSERT INTO namespaces (name, max_waiting_jobs, enqueue_per_s, updated_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                settings.name,
                max_waiting,
                settings.enqueue_per_s,
                settings.updated_at.as_millis(),
            ])
        })
        .map_err(sql_error)?;
    }
    Ok(())
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<NamespaceSettings>, StoreError> {
    let raws = conn
        .prepare_cached(
            "SELECT name, max_waiting_jobs, enqueue_per_s, updated_at FROM namespaces
             ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<u32>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql_error)?;
    raws.into_iter()
        .map(|(name, max_waiting, enqueue_per_s, updated_at)| {
            let max_waiting_jobs = max_waiting.map(u64::try_from).transpose().map_err(|_| {
                StoreError::Internal(format!("namespace {name}: negative max_waiting_jobs"))
            })?;
            Ok(NamespaceSettings {
                name,
                max_waiting_jobs,
                enqueue_per_s,
                updated_at: Timestamp(updated_at),
            })
        })
        .collect()
}
