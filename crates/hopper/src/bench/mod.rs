//! `hopper bench`: the benchmark workloads, run through the SDK against a server the
//! bench starts itself (or `--server`).
//!
//! - [`own_server`]: the child server.
//! - [`enqueue`]: W1 (one by one) and W2 (batches of 1,000).
//! - [`drain`]: W3 (one worker, concurrency 10, drains a backlog).
//! - [`latency`]: W4 (enqueue → handler start with an idle worker).
//! - [`history`]: W6 (W3 beside a large backlog and history, as a ratio to W3).
//! - [`memory`]: M1 (the server's resident memory, idle and with a large backlog).
//! - [`open_loop`]: W5 (an open-loop producer at a fixed rate while one worker runs).
//! - [`subscribers`]: event-stream subscribers kept busy during W3 (`--subscribers`).
//! - [`cluster`]: W7 (W3 spread over several nodes of one PostgreSQL database).
//! - [`workflows`]: WF (workflow fan-in latency, a 10-step chain, a 1,000-wide fan-out).
//! - [`report`]: the result table and JSON.
//!
//! Each workload uses a queue of its own (`bench-w1-<random>`), so its counts can be verified
//! exactly even on a server that holds other jobs, and each verifies them: a run that loses or
//! duplicates a job ends in an error instead of a figure.

pub mod cluster;
pub mod drain;
pub mod enqueue;
pub mod history;
pub mod latency;
pub mod memory;
pub mod open_loop;
pub mod own_server;
pub mod report;
pub mod subscribers;
pub mod workflows;

use std::time::Duration;

use anyhow::Context;
use hopper_worker::{Client, EnqueueRequest, JobState};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::value::RawValue;

use crate::cli::{BenchArgs, WorkloadArg};
use own_server::OwnServer;
use report::{BenchReport, WorkloadResult};

/// The kind of every bench job.
pub const NOOP_KIND: &str = "noop";

/// Runs the chosen workloads and prints the report.
pub async fn run(
    server: Option<String>,
    api_key: Option<String>,
    args: BenchArgs,
    json: bool,
) -> anyhow::Result<()> {
    // With --auth on its own server, the bench makes the admin key that server installs.
    let api_key = match (&server, args.auth) {
        (None, true) => Some(hopper_types::api_key::generate_key().token),
        _ => api_key,
    };
    let own = match &server {
        Some(_) => None,
        None => {
            Some(OwnServer::start(args.durability, api_key.as_deref().filter(|_| args.auth)).await?)
        }
    };
    let url = match (&server, &own) {
        (Some(url), _) => url.clone(),
        (None, Some(own)) => own.url.clone(),
        (None, None) => unreachable!("a server was started when none was given"),
    };
    let client = Client::with_credentials(&url, api_key.as_deref(), None)?;
    let outcome = run_workloads(
        &client,
        &args,
        own.as_ref().and_then(OwnServer::pid),
        api_key.as_deref(),
    )
    .await;
    if let Some(own) = own {
        own.stop().await.context("stopping the bench server")?;
    }
    let report = BenchReport {
        server: url,
        own_server: server.is_none(),
        durability: server.is_none().then(|| args.durability.as_str()),
        results: outcome?,
    };
    if json {
        crate::output::print_json(&report)
    } else {
        print!("{}", report.render());
        Ok(())
    }
}

async fn run_workloads(
    client: &Client,
    args: &BenchArgs,
    server_pid: Option<u32>,
    api_key: Option<&str>,
) -> anyhow::Result<Vec<WorkloadResult>> {
    let chosen: &[WorkloadArg] = match args.workload {
        WorkloadArg::All => &[
            WorkloadArg::W1,
            WorkloadArg::W2,
            WorkloadArg::W3,
            WorkloadArg::W4,
        ],
        ref one => std::slice::from_ref(one),
    };
    let mut results = Vec::new();
    for w in chosen {
        let r = match w {
            WorkloadArg::W1 => enqueue::w1(client, args.jobs.unwrap_or(20_000)).await,
            WorkloadArg::W2 => enqueue::w2(client, args.jobs.unwrap_or(200_000)).await,
            WorkloadArg::W3 => {
                let shape = drain::Shape::from_args(args)?;
                let subscribers = match args.subscribers {
                    0 => None,
                    n => Some(
                        subscribers::Subscribers::start(client.base_url().as_str(), api_key, n)
                            .await?,
                    ),
                };
                let r = drain::w3(client, args.jobs.unwrap_or(200_000), &shape).await;
                match (r, subscribers) {
                    (Ok(mut r), Some(s)) => {
                        r.note = Some(subscribers::Subscribers::summary(&s.finish().await?));
                        Ok(r)
                    }
                    (r, _) => r,
                }
            }
            WorkloadArg::W4 => latency::w4(client, args.jobs.unwrap_or(2_000)).await,
            WorkloadArg::W5 => open_loop::w5(client, args.rate, args.seconds).await,
            WorkloadArg::M1 => {
                let pid = server_pid.context(
                    "M1 reads the server's memory, so it needs the server the bench starts (no --server)",
                )?;
                memory::m1(client, pid, args.jobs.unwrap_or(1_000_000)).await
            }
            WorkloadArg::W6 => {
                let r = history::w6(client, args.jobs.unwrap_or(200_000)).await;
                results.extend(r.with_context(|| format!("workload {w:?}"))?);
                continue;
            }
            WorkloadArg::W7 => {
                let mut clients = vec![client.clone()];
                for node in &args.nodes {
                    clients.push(Client::with_credentials(node, api_key, None)?);
                }
                let r = cluster::w7(&clients, args.jobs.unwrap_or(100_000)).await;
                results.extend(r.with_context(|| format!("workload {w:?}"))?);
                continue;
            }
            WorkloadArg::Wf => {
                let r = workflows::wf(client, args.jobs.unwrap_or(1_000)).await;
                results.extend(r.with_context(|| format!("workload {w:?}"))?);
                continue;
            }
            WorkloadArg::All => continue,
        };
        results.push(r.with_context(|| format!("workload {w:?}"))?);
    }
    Ok(results)
}

/// A queue name no other run uses.
pub fn fresh_queue(workload: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("bench-{workload}-{}", &id[..8])
}

/// The bench job number `i`: `{"kind": "noop", "args": {"i": i}}` in `queue`.
pub fn noop_job(queue: &str, i: u64) -> EnqueueRequest {
    noop_job_keyed(queue, i, 0)
}

/// A no-op job whose concurrency and fairness keys are `k{i % keys}` (none when `keys` is 0).
pub fn noop_job_keyed(queue: &str, i: u64, keys: u64) -> EnqueueRequest {
    let key = (keys > 0).then(|| format!("k{}", i % keys));
    EnqueueRequest {
        kind: NOOP_KIND.to_string(),
        queue: Some(queue.to_string()),
        // `{"i":N}` is valid JSON for every integer, so this cannot fail; a None would only
        // drop the args, never a job.
        args: RawValue::from_string(format!("{{\"i\":{i}}}")).ok(),
        concurrency_key: key.clone(),
        fairness_key: key,
        ..EnqueueRequest::default()
    }
}

/// Checks that `queue` holds exactly `expected` jobs, all in `state`.
pub async fn verify_counts(
    client: &Client,
    queue: &str,
    state: JobState,
    expected: u64,
) -> anyhow::Result<()> {
    let queues = client.queues().await.context("reading queue counts")?;
    let Some(q) = queues.iter().find(|q| q.name == queue) else {
        anyhow::bail!("queue {queue} is missing: expected {expected} {state} jobs");
    };
    let in_state = q.count(state);
    let total: u64 = q.counts.values().sum();
    if in_state != expected || total != expected {
        anyhow::bail!(
            "queue {queue} should hold {expected} jobs, all {state}; it holds {total}, \
             {in_state} {state} (counts: {:?})",
            q.counts
        );
    }
    Ok(())
}

/// A progress bar on stderr for a phase of `len` jobs (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {human_pos}/{human_len} {per_sec:>12} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Jobs per second of `jobs` over `elapsed`.
pub fn rate(jobs: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { jobs as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_jobs_carry_their_number() {
        let j = noop_job("q", 42);
        assert_eq!(j.kind, "noop");
        assert_eq!(j.queue.as_deref(), Some("q"));
        assert_eq!(j.args.unwrap().get(), r#"{"i":42}"#);
    }

    #[test]
    fn fresh_queues_are_valid_and_distinct() {
        let a = fresh_queue("w1");
        assert!(hopper_types::validate_name("queue", &a).is_ok());
        assert_ne!(a, fresh_queue("w1"));
    }

    #[test]
    fn rate_handles_zero_time() {
        assert_eq!(rate(10, Duration::ZERO), 0.0);
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
    }
}
