//! Behaviour specific to the embedded backend: group commit under concurrency, both durability
//! settings, and data surviving a reopen.

use std::sync::Arc;

use hopper_store::{JobInsertParams, JobLeaseParams, Store};
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::{EnqueueRequest, EnqueueRequestExt, JobState, Limits, SystemClock};

fn job(i: usize) -> hopper_types::NewJob {
    EnqueueRequest::new("noop", &serde_json::json!({ "i": i }))
        .unwrap()
        .validate_default(&Limits::default())
}

async fn concurrent_inserts_all_land(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig {
        data_dir: dir.path().to_path_buf(),
        durability,
        clock: Arc::new(SystemClock),
    };
    let store = Arc::new(SqliteStore::open(config.clone()).unwrap());
    let mut tasks = Vec::new();
    for t in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let p = JobInsertParams {
                    jobs: vec![job(t * 100 + i)],
                    actor: "test".into(),
                };
                store.job_insert_many(p).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let q = store.queue_get("default", "default").await.unwrap();
    assert_eq!(q.counts[&JobState::Available], 1000);
    store.close().await.unwrap();
    drop(store);

    // Everything acknowledged is there after reopening, counts included.
    let store = SqliteStore::open(config).unwrap();
    let q = store.queue_get("default", "default").await.unwrap();
    assert_eq!(q.counts[&JobState::Available], 1000);
    let leased = store
        .job_lease_many(JobLeaseParams {
            namespace: "default".into(),
            queues: vec!["default".into()],
            worker_id: "w".into(),
            max_jobs: 1000,
            lease_ms: 30_000,
        })
        .await
        .unwrap();
    assert_eq!(leased.len(), 1000);
    let q = store.queue_get("default", "default").await.unwrap();
    assert_eq!(
        (q.counts[&JobState::Available], q.counts[&JobState::Running]),
        (0, 1000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_all_land_with_full_durability() {
    concurrent_inserts_all_land(Durability::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_all_land_with_relaxed_durability() {
    concurrent_inserts_all_land(Durability::Relaxed).await;
}

#[tokio::test]
async fn a_closed_store_refuses_writes_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path())).unwrap();
    store.close().await.unwrap();
    let err = store
        .job_insert_many(JobInsertParams {
            jobs: vec![job(1)],
            actor: "t".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, hopper_store::StoreError::Unavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused_until_the_first_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(SqliteConfig::new(dir.path())).unwrap();
    let err = SqliteStore::open(SqliteConfig::new(dir.path())).unwrap_err();
    assert!(
        matches!(&err, hopper_store::StoreError::Unavailable(m) if m.contains("another Hopper server")),
        "{err:?}"
    );
    first.close().await.unwrap();
    drop(first);
    SqliteStore::open(SqliteConfig::new(dir.path())).expect("free again once the first is gone");
}
