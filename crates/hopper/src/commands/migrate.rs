//! `hopper migrate --from SOURCE --to DEST`: copies a whole store into another, e.g. the
//! embedded SQLite store into PostgreSQL (or back).
//!
//! What is copied: queue settings, every job of every namespace exactly as stored (state,
//! attempts, errors, results, lease tokens: a worker that held a lease before the move can
//! still finish its job after it) with its whole history, every idempotency key, cron
//! schedules, and workflow runs (counters and dependency edges, so a run copied half done
//! finishes on the destination), definitions and backfills. Jobs go in pages by id, each page
//! one transaction of the destination; runs follow their steps. Then API keys (their secrets'
//! digests, revoked and expiring ones as they are: every key that worked still works, and
//! authentication stays on), namespace quotas, webhooks and the audit log (in pages, each
//! entry at its own seq; one whose seq the destination already gave another entry is appended
//! after its log instead). No row of the source changes (opening it applies Hopper's schema
//! migrations, as starting a server would).
//!
//! Webhooks: a webhook's cursor is a position in the event log, and the destination numbers
//! the copied events itself, so a cursor copied as it was would point elsewhere. A copied
//! webhook instead starts after every event either store has numbered: events that happen on
//! the destination are delivered, the copied history is not delivered again, and new
//! deliveries never reuse the key (`webhook:<id>:<seq>`) of one copied from the source. Events
//! the source had not yet dispatched when it stopped are not delivered; the command says so.
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
use hopper_types::webhook::Webhook;

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

/// Copies queues and schedules, then jobs page by page, idempotency keys, workflows, and last
/// the security tables (see [`copy_security`]); prints progress on stderr.
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
        "copying {} jobs, {} events, {} idempotency keys, {} queue settings, {} schedules, \
         {} API keys, {} audit entries, {} webhooks",
        source_totals.jobs,
        source_totals.events,
        source_totals.idempotency_keys,
        source_totals.queues,
        source_totals.schedules,
        source_totals.api_keys,
        source_totals.audit,
        source_totals.webhooks
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

    copy_security(source, dest, batch_size).await?;

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

/// Copies namespace quotas, API keys, webhooks and, page by page, the audit log. Runs after
/// the jobs, whose events the webhooks' cursors are placed after.
async fn copy_security(
    source: &dyn Store,
    dest: &dyn Store,
    batch_size: usize,
) -> anyhow::Result<()> {
    let namespaces = source
        .namespace_list()
        .await
        .context("reading the source's namespace quotas")?;
    let api_keys = source
        .api_key_list()
        .await
        .context("reading the source's API keys")?;
    let webhooks = source
        .webhook_list(None)
        .await
        .context("reading the source's webhooks")?;
    let source_last = source
        .events_last_seq()
        .await
        .context("reading the source's event log position")?;
    let dest_last = dest
        .events_last_seq()
        .await
        .context("reading the destination's event log position")?;
    // See the module docs: past every seq either store's log holds and every cursor (a
    // cursor can be past the source's newest event when that event's job was deleted since),
    // so only events that happen on the destination are delivered, under keys no copied
    // delivery has. The import moves the destination's log past it too.
    let resume_after = webhooks
        .iter()
        .map(|h| h.cursor)
        .fold(source_last.max(dest_last), i64::max);
    for hook in webhooks.iter().filter(|h| h.cursor < source_last) {
        progress(format_args!(
            "warning: webhook {} (namespace {}) had not dispatched the source's events after \
             {} (up to {source_last}); they are not delivered from the destination",
            hook.id, hook.namespace, hook.cursor
        ));
    }
    let webhooks: Vec<Webhook> = webhooks
        .into_iter()
        .map(|hook| Webhook {
            cursor: resume_after,
            ..hook
        })
        .collect();
    let (n_namespaces, n_keys, n_hooks) = (namespaces.len(), api_keys.len(), webhooks.len());
    dest.import(ImportBatch {
        namespaces,
        api_keys,
        webhooks,
        ..ImportBatch::default()
    })
    .await
    .context("writing namespace quotas, API keys and webhooks to the destination")?;

    let mut after = None;
    let mut entries = 0u64;
    loop {
        let page = source
            .export_audit(after, batch_size)
            .await
            .context("reading the audit log from the source")?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        entries += page.len() as u64;
        dest.import(ImportBatch {
            audit: page,
            ..ImportBatch::default()
        })
        .await
        .context("writing audit entries to the destination")?;
    }
    progress(format_args!(
        "security: {n_keys} API keys, {n_namespaces} namespace quotas, {n_hooks} webhooks, \
         {entries} audit entries copied"
    ));
    Ok(())
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
fn counts(t: &StoreTotals) -> [(&'static str, u64); 13] {
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
        ("API keys", t.api_keys),
        ("namespace quotas", t.namespaces),
        ("audit entries", t.audit),
        ("webhooks", t.webhooks),
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
                "api_keys": t.api_keys,
                "namespaces": t.namespaces,
                "audit": t.audit,
                "webhooks": t.webhooks,
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
