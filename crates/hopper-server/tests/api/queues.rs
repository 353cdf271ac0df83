//! Queue endpoints.

use serde_json::json;

use crate::common::TestServer;

async fn make_dead(s: &TestServer, queue: &str) -> String {
    let (id, token) = s.enqueue_and_lease(queue, "k").await;
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "x", "retryable": false}}),
    )
    .await
    .expect(200);
    id
}

#[tokio::test]
async fn list_pause_resume() {
    let s = TestServer::start().await;
    s.enqueue(json!({"kind": "k", "queue": "alpha"})).await;
    s.enqueue(json!({"kind": "k", "queue": "alpha"})).await;
    s.enqueue(json!({"kind": "k", "queue": "beta", "delay_ms": 60_000}))
        .await;
    let q = s.get("/v1/queues").await.expect(200).body;
    let queues = q["queues"].as_array().unwrap();
    let alpha = queues.iter().find(|q| q["name"] == "alpha").unwrap();
    assert_eq!(alpha["paused"], false);
    assert_eq!(alpha["counts"]["available"], 2);
    assert_eq!(alpha["counts"]["dead"], 0);
    assert!(alpha["oldest_available_age_ms"].is_i64() || alpha["oldest_available_age_ms"].is_u64());
    let beta = queues.iter().find(|q| q["name"] == "beta").unwrap();
    assert_eq!(beta["counts"]["scheduled"], 1);
    assert!(beta["oldest_available_age_ms"].is_null());

    // Any valid name works, even one without jobs: queues never 404.
    let paused = s
        .post("/v1/queues/never-seen/pause", json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(paused["name"], "never-seen");
    assert_eq!(paused["paused"], true);
    let resumed = s
        .post_raw("/v1/queues/never-seen/resume", "", None)
        .await
        .expect(200)
        .body;
    assert_eq!(resumed["paused"], false);
    s.post("/v1/queues/alpha/pause", json!({"really": true}))
        .await
        .expect_error(400, "invalid_argument", Some("really"));
}

#[tokio::test]
async fn retry_and_purge_dead() {
    let s = TestServer::start().await;
    make_dead(&s, "dq").await;
    make_dead(&s, "dq").await;
    make_dead(&s, "elsewhere").await;
    let r = s
        .post_raw("/v1/queues/dq/retry", "", None)
        .await
        .expect(200)
        .body;
    assert_eq!(r, json!({"count": 2}));
    assert_eq!(s.lease("dq", "w", 10).await.len(), 2);

    let purged = s
        .delete("/v1/queues/elsewhere/jobs?state=dead")
        .await
        .expect(200)
        .body;
    assert_eq!(purged, json!({"count": 1}));
    let purged = s
        .delete("/v1/queues/elsewhere/jobs?state=dead")
        .await
        .expect(200)
        .body;
    assert_eq!(purged, json!({"count": 0}));
    s.delete("/v1/queues/dq/jobs?state=running")
        .await
        .expect_error(400, "invalid_argument", Some("state"));
    s.delete("/v1/queues/dq/jobs")
        .await
        .expect_error(400, "invalid_argument", Some("state"));
    s.delete("/v1/queues/dq/jobs?state=dead&force=1")
        .await
        .expect_error(400, "invalid_argument", Some("force"));
}
