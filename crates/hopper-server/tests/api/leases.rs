//! Workers: leases and the long poll, heartbeats, outcomes, acks, the worker list.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn lease_hands_out_tokens_and_validates() {
    let s = TestServer::start().await;
    assert!(s.lease("default", "w1", 1).await.is_empty());
    s.enqueue(json!({"kind": "k", "priority": 1})).await;
    let high = s
        .enqueue(json!({"kind": "k", "priority": 9, "queue": "other"}))
        .await;
    let r = s
        .post(
            "/v1/leases",
            json!({"queues": ["default", "other"], "worker_id": "w1", "max_jobs": 1, "lease_ms": 5000}),
        )
        .await
        .expect(200)
        .body;
    let job = &r["jobs"][0];
    assert_eq!(
        job["id"], high["id"],
        "highest priority across queues first"
    );
    assert_eq!(job["state"], "running");
    assert_eq!(job["lease_seq"], 1);
    assert!(job["lease_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(job["lease_expires_at"].is_string());
    // Nobody else sees the token.
    let got = s
        .get(&format!("/v1/jobs/{}", job["id"].as_str().unwrap()))
        .await
        .body;
    assert!(got.get("lease_token").is_none());
    let listed = s.get("/v1/jobs?state=running").await.body;
    assert!(listed["jobs"][0].get("lease_token").is_none());

    for (body, field) in [
        (json!({"queues": [], "worker_id": "w"}), "queues"),
        (json!({"queues": ["a b"], "worker_id": "w"}), "queues[0]"),
        (json!({"queues": ["a"], "worker_id": ""}), "worker_id"),
        (
            json!({"queues": ["a"], "worker_id": "x".repeat(257)}),
            "worker_id",
        ),
        (json!({"queues": ["a"]}), "worker_id"),
        (
            json!({"queues": ["a"], "worker_id": "w", "max_jobs": 0}),
            "max_jobs",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "max_jobs": 1001}),
            "max_jobs",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "lease_ms": 100}),
            "lease_ms",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "lease_ms": 3_600_001}),
            "lease_ms",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "wait_ms": -1}),
            "wait_ms",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "wait_ms": 60_001}),
            "wait_ms",
        ),
        (
            json!({"queues": ["a"], "worker_id": "w", "max_job": 2}),
            "max_job",
        ),
    ] {
        s.post("/v1/leases", body)
            .await
            .expect_error(400, "invalid_argument", Some(field));
    }
}

#[tokio::test]
async fn long_poll_wakes_within_milliseconds_of_an_enqueue() {
    let s = TestServer::start().await;
    let poll = {
        let client = s.client.clone();
        let url = s.url("/v1/leases");
        tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"queues": ["fast"], "worker_id": "w", "wait_ms": 10_000}))
                .send()
                .await
                .unwrap();
            let done = Instant::now();
            (r.json::<serde_json::Value>().await.unwrap(), done)
        })
    };
    // Let the poll arm itself and find nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "the poll must wait");
    let enqueued = s.enqueue(json!({"kind": "k", "queue": "fast"})).await;
    let enqueue_answered = Instant::now();
    let (body, done) = poll.await.unwrap();
    assert_eq!(body["jobs"][0]["id"], enqueued["id"]);
    let lag = done.saturating_duration_since(enqueue_answered);
    assert!(
        lag < Duration::from_millis(100),
        "woke {lag:?} after the enqueue"
    );
}

#[tokio::test]
async fn long_poll_times_out_empty_and_ignores_other_queues() {
    let s = TestServer::start().await;
    let started = Instant::now();
    let waiter = {
        let client = s.client.clone();
        let url = s.url("/v1/leases");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"queues": ["mine"], "worker_id": "w", "wait_ms": 400}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.enqueue(json!({"kind": "k", "queue": "theirs"})).await;
    let body = waiter.await.unwrap();
    assert_eq!(body, json!({"jobs": []}));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn paused_queue_hands_out_nothing_until_resumed() {
    let s = TestServer::start().await;
    s.post("/v1/queues/p/pause", json!({})).await.expect(200);
    s.enqueue(json!({"kind": "k", "queue": "p"})).await;
    assert!(s.lease("p", "w", 5).await.is_empty());
    s.post_raw("/v1/queues/p/resume", "", None)
        .await
        .expect(200);
    assert_eq!(s.lease("p", "w", 5).await.len(), 1);
}

#[tokio::test]
async fn heartbeat_complete_and_fencing() {
    let s = TestServer::start().await;
    let (id, token) = s.enqueue_and_lease("default", "k").await;
    let hb = s
        .post(
            &format!("/v1/jobs/{id}/heartbeat"),
            json!({"lease_token": token, "lease_ms": 60_000, "progress": {"pct": 50}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(hb["cancel_requested"], false);
    assert!(hb["lease_expires_at"].is_string());
    assert_eq!(
        s.get(&format!("/v1/jobs/{id}")).await.body["progress"],
        json!({"pct": 50})
    );
    s.post(
        &format!("/v1/jobs/{id}/heartbeat"),
        json!({"lease_token": token, "lease_ms": 10}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("lease_ms"));
    s.post(
        &format!("/v1/jobs/{id}/heartbeat"),
        json!({"lease_token": "wrong"}),
    )
    .await
    .expect_error(409, "lease_lost", None);
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": "wrong", "result": 1}),
    )
    .await
    .expect_error(409, "lease_lost", None);

    let done = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": token, "result": {"ok": true}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(done["state"], "completed");
    assert_eq!(done["result"], json!({"ok": true}));
    assert!(done.get("lease_token").is_none());
    // Repeating the recorded outcome is fine; a different one is not.
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": token, "result": {"ok": true}}),
    )
    .await
    .expect(200);
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "late"}}),
    )
    .await
    .expect_error(409, "invalid_state", None);
    s.post(
        &format!("/v1/jobs/{id}/release"),
        json!({"lease_token": token}),
    )
    .await
    .expect_error(409, "invalid_state", None);

    let unknown = hopper_types::JobId::new();
    s.post(
        &format!("/v1/jobs/{unknown}/complete"),
        json!({"lease_token": token}),
    )
    .await
    .expect_error(404, "not_found", None);
    s.post(
        &format!("/v1/jobs/{unknown}/heartbeat"),
        json!({"lease_token": token}),
    )
    .await
    .expect_error(404, "not_found", None);
    s.post(&format!("/v1/jobs/{id}/complete"), json!({"result": 1}))
        .await
        .expect_error(400, "invalid_argument", Some("lease_token"));
}

#[tokio::test]
async fn fail_release_and_cancel_outcomes() {
    let s = TestServer::start().await;
    // Retryable failure with a worker-chosen delay.
    let (id, token) = s.enqueue_and_lease("default", "k").await;
    let failed = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": token, "error": {"message": "boom", "kind": "io"}, "retry_in_ms": 60_000}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(failed["state"], "retryable");
    assert_eq!(failed["errors"][0]["kind"], "io");
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "boom", "kind": "io"}, "retry_in_ms": 60_000}),
    )
    .await
    .expect(200);
    // Not retryable: dead at once.
    let (id, token) = s.enqueue_and_lease("q2", "k").await;
    let dead = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": token, "error": {"message": "bad input", "retryable": false}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(dead["state"], "dead");
    // Malformed failures.
    let (id, token) = s.enqueue_and_lease("q3", "k").await;
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("error"));
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"msg": "x"}}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("error.msg"));
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "x"}, "retry_in_ms": -5}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("retry_in_ms"));
    // Release: back to available, uncounted.
    let released = s
        .post(
            &format!("/v1/jobs/{id}/release"),
            json!({"lease_token": token}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(released["state"], "available");
    assert_eq!(released["attempt"], 0);
    // Cancel while running: the heartbeat tells, the worker reports cancelled.
    let leased = s.lease("q3", "w", 1).await;
    let token = leased[0]["lease_token"].as_str().unwrap().to_string();
    let flagged = s
        .post(&format!("/v1/jobs/{id}/cancel"), json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(flagged["state"], "running");
    assert_eq!(flagged["cancel_requested"], true);
    let hb = s
        .post(
            &format!("/v1/jobs/{id}/heartbeat"),
            json!({"lease_token": token}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(hb["cancel_requested"], true);
    let ended = s
        .post(
            &format!("/v1/jobs/{id}/cancelled"),
            json!({"lease_token": token}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(ended["state"], "cancelled");
}

#[tokio::test]
async fn acks_apply_each_alone() {
    let s = TestServer::start().await;
    let (a, ta) = s.enqueue_and_lease("acks", "k").await;
    let (b, tb) = s.enqueue_and_lease("acks", "k").await;
    let (c, tc) = s.enqueue_and_lease("acks", "k").await;
    let missing = hopper_types::JobId::new().to_string();
    let r = s
        .post(
            "/v1/acks",
            json!({"acks": [
                {"id": a, "lease_token": ta, "outcome": "completed", "result": {"n": 1}},
                {"id": b, "lease_token": "stale", "outcome": "completed"},
                {"id": c, "lease_token": tc, "outcome": "failed", "error": {"message": "boom"}},
                {"id": missing, "lease_token": "t", "outcome": "released"},
                {"id": b, "lease_token": tb, "outcome": "released"},
            ]}),
        )
        .await
        .expect(200)
        .body;
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], json!({"id": a, "ok": true}));
    assert_eq!(results[1]["ok"], false);
    assert_eq!(results[1]["error"]["code"], "lease_lost");
    assert_eq!(results[2]["ok"], true);
    assert_eq!(results[3]["error"]["code"], "not_found");
    assert_eq!(results[4]["ok"], true);
    assert_eq!(
        s.get(&format!("/v1/jobs/{a}")).await.body["state"],
        "completed"
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{b}")).await.body["state"],
        "available"
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{c}")).await.body["state"],
        "retryable"
    );

    // One malformed ack rejects the whole request, and nothing is applied.
    let (d, td) = s.enqueue_and_lease("acks2", "k").await;
    for (ack, field) in [
        (
            json!({"id": d, "lease_token": td, "outcome": "done"}),
            "acks[1].outcome",
        ),
        (
            json!({"id": d, "outcome": "completed"}),
            "acks[1].lease_token",
        ),
        (
            json!({"id": d, "lease_token": td, "outcome": "failed"}),
            "acks[1].error",
        ),
        (
            json!({"id": "nope", "lease_token": td, "outcome": "released"}),
            "acks[1].id",
        ),
        (
            json!({"id": d, "lease_token": td, "outcome": "released", "extra": 1}),
            "acks[1].extra",
        ),
    ] {
        s.post(
            "/v1/acks",
            json!({"acks": [{"id": d, "lease_token": td, "outcome": "completed"}, ack]}),
        )
        .await
        .expect_error(400, "invalid_argument", Some(field));
    }
    s.post("/v1/acks", json!({"acks": []})).await.expect_error(
        400,
        "invalid_argument",
        Some("acks"),
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{d}")).await.body["state"],
        "running"
    );
}

#[tokio::test]
async fn workers_are_listed_with_running_counts() {
    let s = TestServer::start().await;
    s.enqueue(json!({"kind": "k", "queue": "wq"})).await;
    s.enqueue(json!({"kind": "k", "queue": "wq"})).await;
    let leased = s.lease("wq", "host-1:pid-42", 2).await;
    assert_eq!(leased.len(), 2);
    s.lease("other", "idle-worker", 1).await;
    let token = leased[0]["lease_token"].as_str().unwrap();
    let id = leased[0]["id"].as_str().unwrap();
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": token}),
    )
    .await
    .expect(200);
    let w = s.get("/v1/workers").await.expect(200).body;
    let workers = w["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{w}");
    assert_eq!(workers[0]["id"], "host-1:pid-42");
    assert_eq!(workers[0]["queues"], json!(["wq"]));
    assert_eq!(workers[0]["running"], 1);
    assert!(workers[0]["last_seen_at"].is_string());
    assert_eq!(workers[1]["id"], "idle-worker");
    assert_eq!(workers[1]["running"], 0);
}
