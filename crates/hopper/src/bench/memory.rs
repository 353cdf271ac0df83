//! M1: the server's resident memory (RSS, from `/proc/<pid>/status`), idle and then with `n`
//! jobs waiting (enqueued in batches of 1,000). Only for the server the bench starts itself,
//! whose process it can see.

use std::time::{Duration, Instant};

use anyhow::Context;
use hopper_worker::{Client, JobState};

use super::enqueue::enqueue_batches;
use super::report::WorkloadResult;
use super::{fresh_queue, progress, rate, verify_counts};

/// How long the server gets to settle before each reading.
const SETTLE: Duration = Duration::from_secs(2);

/// M1 with `n` jobs waiting.
pub async fn m1(client: &Client, pid: u32, n: u64) -> anyhow::Result<WorkloadResult> {
    tokio::time::sleep(SETTLE).await;
    let idle = rss_kib(pid)?;
    let queue = fresh_queue("m1");
    let pb = progress(n, "M1 enqueue");
    let started = Instant::now();
    enqueue_batches(client, &queue, n, |k| pb.inc(k)).await?;
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    verify_counts(client, &queue, JobState::Available, n).await?;
    tokio::time::sleep(SETTLE).await;
    let loaded = rss_kib(pid)?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(WorkloadResult {
        workload: "M1",
        description: "server resident memory",
        jobs: n,
        seconds: elapsed.as_secs_f64(),
        jobs_per_sec: rate(n, elapsed),
        latency: None,
        note: Some(format!(
            "idle {:.1} MiB; {:.1} MiB with {n} jobs waiting",
            mib(idle),
            mib(loaded)
        )),
    })
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading the memory of process {pid}"))?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/<pid>/status")
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_set_line() {
        let status = "Name:\thopper\nVmPeak:\t  300000 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(10_240));
        assert_eq!(parse_vm_rss("Name:\thopper\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
