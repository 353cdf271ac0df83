//! Store-level throughput, without HTTP: how fast the embedded backend inserts in batches and
//! drains with batched leases and acks. Useful to tell store cost from server cost when
//! profiling; `hopper bench` measures the product end to end.
//!
//! `cargo run --release -p hopper-store-sqlite --example store_throughput -- [jobs] [full|relaxed]`

use std::sync::Arc;
use std::time::Instant;

use hopper_store::{AckOutcome, JobAck, JobInsertParams, JobLeaseParams, JobRef, Store};
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::{EnqueueRequest, Limits, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let durability: Durability = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(Durability::Full);
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        durability,
        clock: Arc::new(SystemClock),
    })?);

    let start = Instant::now();
    for chunk in 0..n.div_ceil(1000) {
        let jobs = (0..1000.min(n - chunk * 1000))
            .map(|i| {
                EnqueueRequest::new("noop", &serde_json::json!({ "i": chunk * 1000 + i }))?
                    .validate("default", &Limits::default())
                    .map_err(Into::into)
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
        store
            .job_insert_many(JobInsertParams {
                jobs,
                actor: "bench".into(),
            })
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "insert: {n} jobs in {secs:.2}s = {:.0} jobs/s",
        n as f64 / secs
    );

    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let jobs = store
                    .job_lease_many(JobLeaseParams {
                        namespace: "default".into(),
                        queues: vec!["default".into()],
                        worker_id: format!("w{w}"),
                        max_jobs: 50,
                        lease_ms: 30_000,
                    })
                    .await
                    .expect("lease");
                if jobs.is_empty() {
                    return done;
                }
                let acks = jobs
                    .iter()
                    .map(|j| JobAck {
                        job: JobRef::default_ns(j.id),
                        lease_token: j.lease_token.clone().map(|t| t.0).unwrap_or_default(),
                        outcome: AckOutcome::Completed { result: None },
                    })
                    .collect();
                let results = store.job_ack_many(acks).await.expect("ack");
                done += results.iter().filter(|r| r.is_ok()).count();
            }
        }));
    }
    let mut done = 0;
    for t in tasks {
        done += t.await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "drain: {done} jobs in {secs:.2}s = {:.0} jobs/s",
        done as f64 / secs
    );
    assert_eq!(done, n);
    Ok(())
}
