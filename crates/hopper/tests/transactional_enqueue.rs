//! Transactional enqueue on PostgreSQL: jobs inserted inside the application's own transaction
//! (the SDK's `postgres` feature) exist if and only if that transaction commits, and workers
//! long-polling the real server are woken at the commit, not before.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use hopper_worker::EnqueueRequest;
use hopper_worker::postgres::{self, TxEnqueueError};
use serde_json::{Value, json};
use sqlx::Connection;

async fn jobs_in(base: &str, queue: &str) -> Vec<Value> {
    let page: Value = reqwest::get(format!("{base}/v1/jobs?queue={queue}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["jobs"].as_array().cloned().unwrap_or_default()
}

async fn lease(base: &str, queue: &str, wait_ms: u64) -> Vec<Value> {
    let body = json!({"queues": [queue], "worker_id": "w", "max_jobs": 10, "wait_ms": wait_ms});
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/v1/leases"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["jobs"].as_array().cloned().unwrap_or_default()
}

fn welcome(to: &str) -> EnqueueRequest {
    EnqueueRequest {
        queue: Some("tx".into()),
        ..EnqueueRequest::new("send_welcome", &json!({"to": to})).unwrap()
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_job_and_a_committed_one_does() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    // The server creates Hopper's schema; the application shares the database.
    let server = Server::start_on_postgres(&url);
    let mut app = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE users (email text PRIMARY KEY)")
        .execute(&mut app)
        .await
        .unwrap();

    // Rolled back: neither the user nor the job.
    let mut tx = app.begin().await.unwrap();
    sqlx::query("INSERT INTO users VALUES ('ada@example.com')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = postgres::enqueue(&mut tx, welcome("ada@example.com"))
        .await
        .unwrap();
    assert_eq!(job.state.as_str(), "available");
    tx.rollback().await.unwrap();
    assert!(jobs_in(&server.url, "tx").await.is_empty());
    let r = reqwest::get(format!("{}/v1/jobs/{}", server.url, job.id))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Committed: both, and a worker already waiting is woken by the commit.
    let waiting = {
        let server_url = server.url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let jobs = lease(&server_url, "tx", 10_000).await;
            (jobs, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tx = app.begin().await.unwrap();
    sqlx::query("INSERT INTO users VALUES ('grace@example.com')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let job = postgres::enqueue(&mut tx, welcome("grace@example.com"))
        .await
        .unwrap();
    // Not visible before the commit: no other session can see or lease it.
    assert!(jobs_in(&server.url, "tx").await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the waiting worker got nothing yet");
    tx.commit().await.unwrap();
    let committed_at = Instant::now();
    let (leased, _) = waiting.await.unwrap();
    assert_eq!(leased.len(), 1, "{leased:?}");
    assert_eq!(leased[0]["id"], job.id.to_string());
    assert!(committed_at.elapsed() < Duration::from_secs(2));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(users, 1);
    let events: Value = reqwest::get(format!("{}/v1/jobs/{}/events", server.url, job.id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["actor"], "app", "{events}");
}

#[tokio::test]
async fn transactional_enqueue_validates_and_honours_idempotency_keys() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let server = Server::start_on_postgres(&url);
    let mut app = sqlx::PgConnection::connect(&url).await.unwrap();

    let bad = EnqueueRequest {
        priority: Some(1_000_000),
        ..welcome("x@example.com")
    };
    let mut tx = app.begin().await.unwrap();
    match postgres::enqueue(&mut tx, bad).await {
        Err(TxEnqueueError::Invalid { index: 0, source }) => {
            assert_eq!(source.field, "priority")
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    tx.commit().await.unwrap();

    let keyed = |to: &str| EnqueueRequest {
        idempotency_key: Some("welcome-1".into()),
        ..welcome(to)
    };
    let mut tx = app.begin().await.unwrap();
    let first = postgres::enqueue(&mut tx, keyed("a@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = app.begin().await.unwrap();
    let again = postgres::enqueue(&mut tx, keyed("a@example.com"))
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(again.duplicate, Some(true));
    match postgres::enqueue(&mut tx, keyed("b@example.com")).await {
        Err(TxEnqueueError::IdempotencyConflict { existing, .. }) => assert_eq!(existing, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    tx.commit().await.unwrap();
    assert_eq!(jobs_in(&server.url, "tx").await.len(), 1);
}
