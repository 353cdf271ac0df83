//! W7: W3 spread over several Hopper nodes sharing one PostgreSQL database, one worker
//! (concurrency 10) per node, reported beside W3 on the first node alone with the same
//! number of jobs, so the ratio shows what coordination across nodes costs.

use hopper_worker::Client;

use super::drain::{drain, prepare};
use super::report::WorkloadResult;
use super::{fresh_queue, rate};

/// W3 on `clients[0]` alone, then W7 over all `clients`, each with `n` jobs.
pub async fn w7(clients: &[Client], n: u64) -> anyhow::Result<Vec<WorkloadResult>> {
    anyhow::ensure!(
        clients.len() >= 2,
        "W7 needs two or more nodes of one database (--node URL, repeated)"
    );
    let single = fresh_queue("w7-one");
    prepare(&clients[0], &single, n, "W7 prepare").await?;
    let one = drain(&clients[..1], &single, n, "W7 one node").await?;

    let spread = fresh_queue("w7");
    prepare(&clients[0], &spread, n, "W7 prepare").await?;
    let all = drain(clients, &spread, n, "W7 all nodes").await?;

    Ok(vec![
        WorkloadResult {
            workload: "W7-1",
            description: "W3 through the first node only (the baseline)",
            jobs: n,
            seconds: one.as_secs_f64(),
            jobs_per_sec: rate(n, one),
            latency: None,
            note: None,
        },
        WorkloadResult {
            workload: "W7",
            description: "one worker per node, concurrency 10 each, one queue",
            jobs: n,
            seconds: all.as_secs_f64(),
            jobs_per_sec: rate(n, all),
            latency: None,
            note: None,
        },
    ])
}
