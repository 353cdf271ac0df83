//! Queue-wide operations: pause and resume, retry of the dead-letter queue, purges, listing.

use std::sync::{Arc, RwLock};

use hopper_store::{QueueInfo, StoreError};
use hopper_types::{JobState, QueueConfig, Timestamp, lifecycle};
use rusqlite::{Connection, OptionalExtension, params};

use crate::counts::Counts;
use crate::ops::admin::delete_rows;
use crate::ops::flow;
use crate::rows::{load_job_any_ns, sql_error, update_job};
use crate::writer::WriteCtx;

/// Largest number of jobs one retry or purge call touches per transaction.
pub(crate) const BULK_CHUNK: usize = 5000;

pub(crate) fn set_paused(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<(), StoreError> {
    let mut config = flow::load_config(ctx.conn, namespace, name)?;
    config.paused = paused;
    configure(ctx, namespace, name, config)
}

/// Replaces a queue's configuration.
pub(crate) fn configure(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    config: QueueConfig,
) -> Result<(), StoreError> {
    flow::save_config(ctx.conn, namespace, name, &config, ctx.now)?;
    // Resuming, or loosening a limit, can make available jobs leasable: wake the workers
    // (they look again and find out), and forget a rate hold the new limits may not have.
    ctx.effects
        .hold
        .push((namespace.to_string(), name.to_string(), None));
    if !config.paused {
        ctx.effects
            .wake
            .push((namespace.to_string(), name.to_string()));
    }
    Ok(())
}

/// Queues of every namespace whose configuration sets their own retention.
pub(crate) fn custom_retention(
    conn: &Connection,
) -> Result<Vec<hopper_store::QueueRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT namespace, name FROM queues WHERE custom_retention ORDER BY namespace, name",
        )
        .map_err(sql_error)?;
    let names = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut out = Vec::with_capacity(names.len());
    for (namespace, name) in names {
        let config = flow::load_config(conn, &namespace, &name)?;
        out.push(hopper_store::QueueRecord {
            namespace,
            name,
            config,
            updated_at: Timestamp(0),
        });
    }
    Ok(out)
}

fn ids_in_state(
    ctx: &WriteCtx<'_>,
    namespace: &str,
    name: &str,
    state: JobState,
    steps: bool,
) -> Result<Vec<String>, StoreError> {
    // The state is spelled out (not bound) so SQLite can use the partial index of finished jobs.
    let sql = format!(
        "SELECT id FROM jobs WHERE namespace = ?1 AND state = '{}' AND queue = ?2 {} LIMIT ?3",
        state.as_str(),
        if steps { "" } else { "AND workflow_id IS NULL" }
    );
    let mut stmt = ctx.conn.prepare_cached(&sql).map_err(sql_error)?;
    let rows = stmt
        .query_map(params![namespace, name, BULK_CHUNK as i64], |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_error)
}

/// Retries up to [`BULK_CHUNK`] dead jobs; returns how many.
pub(crate) fn retry_dead_chunk(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    actor: &str,
) -> Result<u64, StoreError> {
    let mut n = 0;
    // A workflow step starts over only with its run.
    for id in ids_in_state(ctx, namespace, name, JobState::Dead, false)? {
        let Some(mut job) = load_job_any_ns(ctx.conn, &id)? else {
            continue;
        };
        let change = lifecycle::retry(&mut job, ctx.now)?;
        update_job(ctx.conn, &job)?;
        ctx.record(&job, change, actor)?;
        n += 1;
    }
    Ok(n)
}

/// Deletes up to [`BULK_CHUNK`] jobs of one finished state; returns how many.
pub(crate) fn purge_chunk(
    ctx: &mut WriteCtx<'_>,
    namespace: &str,
    name: &str,
    state: JobState,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for id in ids_in_state(ctx, namespace, name, state, true)? {
        delete_rows(ctx, &id)?;
        ctx.record_delete(namespace, name, state);
        n += 1;
    }
    Ok(n)
}

fn oldest_available(
    conn: &Connection,
    namespace: &str,
    name: &str,
) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached(
        "SELECT min(available_at) FROM jobs WHERE namespace = ?1 AND queue = ?2 AND state = 'available'",
    )
    .and_then(|mut s| s.query_row(params![namespace, name], |r| r.get::<_, Option<i64>>(0)).optional())
    .map(|v| v.flatten().map(Timestamp))
    .map_err(sql_error)
}

fn info(
    conn: &Connection,
    counts: &Arc<RwLock<Counts>>,
    namespace: &str,
    name: &str,
    now: Timestamp,
) -> Result<QueueInfo, StoreError> {
    let c = counts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .queue(namespace, name);
    let has_available = c.get(&JobState::Available).copied().unwrap_or(0) > 0;
    let oldest = if has_available {
        oldest_available(conn, namespace, name)?
    } else {
        None
    };
    let config = flow::load_config(conn, namespace, name)?;
    Ok(QueueInfo {
        name: name.to_string(),
        paused: config.paused,
        counts: c,
        oldest_available_age_ms: oldest.map(|t| now.millis_since(t).max(0)),
        config,
    })
}

pub(crate) fn get(
    conn: &Connection,
    counts: &Arc<RwLock<Counts>>,
    namespace: &str,
    name: &str,
    now: Timestamp,
) -> Result<QueueInfo, StoreError> {
    info(conn, counts, namespace, name, now)
}

pub(crate) fn list(
    conn: &Connection,
    counts: &Arc<RwLock<Counts>>,
    namespace: &str,
    now: Timestamp,
) -> Result<Vec<QueueInfo>, StoreError> {
    let mut names: Vec<String> = counts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .queues(namespace)
        .into_iter()
        .map(|(q, _)| q)
        .collect();
    let mut stmt = conn
        .prepare_cached("SELECT name FROM queues WHERE namespace = ?1")
        .map_err(sql_error)?;
    let configured = stmt
        .query_map(params![namespace], |r| r.get::<_, String>(0))
        .map_err(sql_error)?;
    for q in configured {
        names.push(q.map_err(sql_error)?);
    }
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|n| info(conn, counts, namespace, n, now))
        .collect()
}
