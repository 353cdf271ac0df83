//! `hopper migrate --from SOURCE --to DEST`: copies a whole store into another, e.g. the
//! embedded SQLite store into PostgreSQL (or back).
//!
//! What is copied: queue settings, every job of every namespace exactly as stored (state,
//! attempts, errors, results, lease tokens: a worker that held a lease before the move can
//! still finish its job after it) with its whole history, every idempotency key, cron
//! schedules, and workflow runs (counters and dependency edges, so a run copied half done
//! finishes on the destination), definitions and backfills. Jobs go in pages by id, each page
//! one transaction of the destination; runs follow their steps. No row of the source
//! changes (opening it applies Hopper's schema migrations, as starting a server would).
//!
//! Safety:
//! - The source must be quiet, or the copy would miss what changes during it. An embedded
//!   store cannot be opened while a server runs on it (the data directory's lock); on
//!   PostgreSQL a running server holds the `maintenance` leader lease, so the command refuses
//!   when someone else holds it. The destination is checked the same way.
//! - The destination's import skips rows it already holds and overwrites nothing, so after an
//!   interruption the same command simply runs again and finishes the copy.
//! - At the end the destination's row counts must be at least the source's, and equal when
//!   the destination started empty; otherwise the command fails saying which count is off.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hopper_store::{ImportBatch, Store, StoreTotals};
use hopper_store_postgres::PgConfig;

use crate::cli::MigrateArgs;
use crate::stores::{Location, connect_postgres, open_sqlite};

/// The leader lease every server on a shared store holds while it runs.
const MAINTENANCE: &str = "maintenance";

/// How often progress is printed at most (the last page is always printed).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Which end of the copy a store is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Source,
    Destination,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Source => "source",
            End::Destination => "destination",
        }
    }
}

/// Runs the copy; an error (refused, failed or unverified copy) exits non-zero.
pub async fn run(args: MigrateArgs, json: bool) -> anyhow::Result<()> {
    let from = Location::parse(&args.from).context("--from")?;
    let to = Location::parse(&args.to).context("--to")?;
    refuse_same_store(&from, &to)?;
    let batch_size = usize::try_from(args.batch_size).unwrap_or(500);

    let source = open(&from, End::Source).await?;
    let dest = match open(&to, End::Destination).await {
        Ok(d) => d,
        Err(e) => {
            close(source.as_ref(), &from).await;
            return Err(e);
        }
    };
    let outcome = copy(source.as_ref(), dest.as_ref(), batch_size).await;
    // Closed whatever happened: the embedded store checkpoints its WAL and lets go of its
    // data directory's lock, so the next run (or a server) can open it.
    close(source.as_ref(), &from).await;
    close(dest.as_ref(), &to).await;
    let report = outcome?;
    verify(&report, &from, &to)?;
    print_report(&report, &from, &to, json)
}

/// Refuses to copy a store onto itself (the copy would skip every row and prove nothing).
fn refuse_same_store(from: &Location, to: &Location) -> anyhow::Result<()> {
    let same = match (from, to) {
        (Location::Sqlite(a), Location::Sqlite(b)) => {
            let canon = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or(p.to_path_buf());
            canon(a) == canon(b)
        }
        (Location::Postgres(a), Location::Postgres(b)) => a == b,
        _ => false,
    };
    anyhow::ensure!(!same, "--from and --to name the same store ({from})");
    Ok(())
}

/// Opens one end, refusing a store a running server uses.
async fn open(loc: &Location, end: End) -> anyhow::Result<Arc<dyn Store>> {
    let what = end.as_str();
    match loc {
        Location::Sqlite(dir) => {
            // Opening creates a missing database, which for the source would "copy" nothing
            // and succeed: a mistyped path must fail instead.
            if end == End::Source
                && !hopper_store_sqlite::SqliteConfig::new(dir)
                    .db_path()
                    .is_file()
            {
                anyhow::bail!("the source {loc} holds no Hopper database (no hopper.db in it)");
            }
            let store = open_sqlite(dir).with_context(|| {
                format!(
                    "cannot open the {what} {loc}; if a Hopper server runs on it, stop it first"
                )
            })?;
            Ok(Arc::new(store))
        }
        Location::Postgres(url) => {
            let store: Arc<dyn Store> = Arc::new(
                connect_postgres(PgConfig::new(url.clone()))
                    .await
                    .with_context(|| format!("cannot open the {what} {loc}"))?,
            );
            if let Err(e) = refuse_live_servers(store.as_ref(), loc, what).await {
                close(store.as_ref(), loc).await;
                return Err(e);
            }
            Ok(store)
        }
    }
}

/// Fails when a server runs on the shared store: every running server keeps renewing the
/// `maintenance` lease, so if someone else holds it live, the store is in use. When it is
/// free, the momentary (1 ms) lease taken to find out is given back at once.
async fn refuse_live_servers(store: &dyn Store, loc: &Location, what: &str) -> anyhow::Result<()> {
    let me = format!("hopper-migrate-{}", uuid::Uuid::new_v4());
    let free = store
        .leader_acquire(MAINTENANCE, &me, 1)
        .await
        .with_context(|| format!("checking whether a server runs on the {what} {loc}"))?;
    if !free {
        anyhow::bail!(
            "a Hopper server is running on the {what} {loc} (it holds the `{MAINTENANCE}` \
             lease): stop every server using it, then run the migration again (a server that \
             died without shutting down keeps the lease for a few seconds more)"
        );
    }
    store
        .leader_resign(MAINTENANCE, &me)
        .await
        .with_context(|| format!("releasing the check's lease on the {what} {loc}"))?;
    Ok(())
}

async fn close(store: &dyn Store, loc: &Location) {
    if let Err(e) = store.close().await {
        tracing::warn!(store = %loc, error = %e, "closing the store failed");
    }
}

/// What a copy did and found.
struct Report {
    source: StoreTotals,
    dest_before: StoreTotals,
    dest_after: StoreTotals,
    jobs_new: u64,
}

/// Copies queues, then jobs page by page, then keys; prints progress on stderr.
async fn copy(source: &dyn Store, dest: &dyn Store, batch_size: usize) -> anyhow::Result<Report> {
    let source_totals = source
        .totals()
        .await
        .context("counting the source's rows")?;
    let dest_before = dest
        .totals()
        .await
        .context("counting the destination's rows")?;
    progress(format_args!(
        "copying {} jobs, {} events, {} idempotency keys, {} queue settings, {} schedules",
        source_totals.jobs,
        source_totals.events,
        source_totals.idempotency_keys,
        source_totals.queues,
        source_totals.schedules
    ));

    let queues = source
        .export_queues()
        .await
        .context("reading the source's queues")?;
    let n_queues = queues.len();
    dest.import(ImportBatch {
        queues,
        ..ImportBatch::default()
    })
    .await
    .context("writing queues to the destination")?;
    progress(format_args!("queues: {n_queues} copied"));

    let schedules = source
        .export_schedules()
        .await
        .context("reading the source's schedules")?;
    let n_schedules = schedules.len();
    dest.import(ImportBatch {
        schedules,
        ..ImportBatch::default()
    })
    .await
    .context("writing schedules to the destination")?;
    progress(format_args!("schedules: {n_schedules} copied"));

    let mut after = None;
    let (mut seen, mut jobs_new) = (0u64, 0u64);
    let mut last_print = Instant::now();
    loop {
        let page = source
            .export_jobs(after, batch_size)
            .await
            .with_context(|| format!("reading jobs from the source after {after:?}"))?;
        let Some(last) = page.last() else { break };
        after = Some(last.job.id);
        seen += page.len() as u64;
        let full = page.len() == batch_size;
        jobs_new += dest
            .import(ImportBatch {
                jobs: page,
                ..ImportBatch::default()
            })
            .await
            .with_context(|| format!("writing jobs up to {} to the destination", last_id(after)))?;
        if !full || last_print.elapsed() >= PROGRESS_EVERY {
            progress(format_args!(
                "jobs: {seen}/{} copied ({jobs_new} new, {} already there)",
                source_totals.jobs,
                seen - jobs_new
            ));
            last_print = Instant::now();
        }
    }
    if seen == 0 {
        progress(format_args!("jobs: none to copy"));
    }

    let mut after = None;
    let mut keys = 0u64;
    loop {
        let page = source
            .export_idempotency_keys(after.clone(), batch_size)
            .await
            .context("reading idempotency keys from the source")?;
        let Some(last) = page.last() else { break };
        after = Some((last.namespace.clone(), last.key.clone()));
        keys += page.len() as u64;
        dest.import(ImportBatch {
            idempotency_keys: page,
            ..ImportBatch::default()
        })
        .await
        .context("writing idempotency keys to the destination")?;
    }
    progress(format_args!("idempotency keys: {keys} copied"));

    // Runs after their steps' jobs, so an edge never names a job the destination lacks.
    let mut after = None;
    let mut runs = 0u64;
    loop {
        let page = source
            .export_workflows(after, batch_size)
            .await
            .context("reading workflow runs from the source")?;
        let Some(last) = page.last() else { break };
        after = Some(last.workflow.id);
        runs += page.len() as u64;
        dest.import(ImportBatch {
            workflows: page,
            ..ImportBatch::default()
        })
        .await
        .context("writing workflow runs to the destination")?;
    }
    let workflow_definitions = source
        .export_workflow_definitions()
        .await
        .context("reading the source's workflow definitions")?;
    let backfills = source
        .backfill_list(None, false)
        .await
        .context("reading the source's backfills")?;
    let (n_definitions, n_backfills) = (workflow_definitions.len(), backfills.len());
    dest.import(ImportBatch {
        workflow_definitions,
        backfills,
        ..ImportBatch::default()
    })
    .await
    .context("writing workflow definitions and backfills to the destination")?;
    progress(format_args!(
        "workflows: {runs} runs, {n_definitions} definitions, {n_backfills} backfills copied"
    ));

    let dest_after = dest
        .totals()
        .await
        .context("counting the destination's rows")?;
    Ok(Report {
        source: source_totals,
        dest_before,
        dest_after,
        jobs_new,
    })
}

fn last_id(id: Option<hopper_types::JobId>) -> String {
    id.map_or_else(|| "the start".to_string(), |id| id.to_string())
}

/// One progress line on stderr (stdout carries only the final report).
fn progress(line: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// The rows of a [`StoreTotals`], named.
fn counts(t: &StoreTotals) -> [(&'static str, u64); 9] {
    [
        ("jobs", t.jobs),
        ("events", t.events),
        ("idempotency keys", t.idempotency_keys),
        ("queue settings", t.queues),
        ("schedules", t.schedules),
        ("workflow runs", t.workflows),
        ("workflow dependencies", t.job_deps),
        ("workflow definitions", t.workflow_definitions),
        ("backfills", t.backfills),
    ]
}

/// Checks the copy: the destination holds at least every source row, exactly as many when
/// it started empty.
fn verify(r: &Report, from: &Location, to: &Location) -> anyhow::Result<()> {
    let started_empty = r.dest_before == StoreTotals::default();
    let mut problems = Vec::new();
    for ((name, src), (_, dst)) in counts(&r.source).into_iter().zip(counts(&r.dest_after)) {
        if dst < src {
            problems.push(format!(
                "{name}: {src} in the source, only {dst} in the destination"
            ));
        } else if started_empty && dst != src {
            problems.push(format!(
                "{name}: {src} in the source, but {dst} in the destination, which started empty"
            ));
        }
    }
    anyhow::ensure!(
        problems.is_empty(),
        "the copy from {from} to {to} does not verify ({}); the destination may be in use, or \
         the source changed during the copy: stop every server on both and run the migration \
         again",
        problems.join("; ")
    );
    Ok(())
}

fn print_report(r: &Report, from: &Location, to: &Location, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let totals = |t: &StoreTotals| {
            serde_json::json!({
                "jobs": t.jobs,
                "events": t.events,
                "idempotency_keys": t.idempotency_keys,
                "queues": t.queues,
                "schedules": t.schedules,
            })
        };
        let v = serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "jobs_copied": r.jobs_new,
            "source": totals(&r.source),
            "destination": totals(&r.dest_after),
            "verified": true,
        });
        writeln!(out, "{v}").context("writing to stdout")?;
    } else {
        writeln!(
            out,
            "migrated {from} to {to}: {} jobs copied, counts verified",
            r.jobs_new
        )
        .context("writing to stdout")?;
        writeln!(out, "{:<18}{:>12}{:>14}", "", "SOURCE", "DESTINATION")
            .context("writing to stdout")?;
        for ((name, src), (_, dst)) in counts(&r.source).into_iter().zip(counts(&r.dest_after)) {
            writeln!(out, "{name:<18}{src:>12}{dst:>14}").context("writing to stdout")?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(())
}
