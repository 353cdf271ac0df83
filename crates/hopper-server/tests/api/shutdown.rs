//! Shutdown: readiness turns 503 at once, waiting long polls answer empty at once, requests in
//! flight finish, the store is closed, `serve` returns Ok.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{TestServer, test_config};

#[tokio::test]
async fn long_polls_end_empty_and_serve_returns_ok() {
    let mut s = TestServer::start().await;
    let poll = {
        let client = s.client.clone();
        let url = s.url("/v1/leases");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"queues": ["q"], "worker_id": "w", "wait_ms": 30_000}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    s.begin_stop();
    let body = tokio::time::timeout(Duration::from_secs(2), poll)
        .await
        .expect("the long poll ends at once")
        .unwrap();
    assert_eq!(body, json!({"jobs": []}));
    assert!(started.elapsed() < Duration::from_secs(1));
    s.stop().await.expect("serve returns Ok");
}

#[tokio::test]
async fn readiness_fails_at_once_while_draining() {
    let mut config = test_config();
    config.shutdown_drain_ms = 1_000;
    let mut s = TestServer::start_with(config, None).await;
    s.get("/readyz").await.expect(200);
    s.begin_stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.get("/readyz")
        .await
        .expect_error(503, "unavailable", None);
    // Still serving everything else during the drain.
    s.get("/healthz").await.expect(200);
    s.enqueue(json!({"kind": "k"})).await;
    s.stop().await.expect("serve returns Ok");
}

#[tokio::test]
async fn the_store_is_closed_after_serve_returns() {
    let s = TestServer::start().await;
    s.enqueue(json!({"kind": "k"})).await;
    let store = s.store.clone();
    s.stop().await.expect("serve returns Ok");
    use hopper_store::StoreError;
    assert!(matches!(
        store.job_promote_due(1).await,
        Err(StoreError::Unavailable(_))
    ));
}
