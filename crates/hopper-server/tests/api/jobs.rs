//! Producer endpoints: enqueue, batch, get, list, cancel, retry, delete, events.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn enqueue_get_and_request_ids() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/v1/jobs",
            json!({"kind": "send_email", "queue": "emails", "args": {"to": "a@b"}, "priority": 5, "tags": ["x"]}),
        )
        .await
        .expect(201);
    assert!(r.headers.contains_key("x-request-id"));
    let job = r.body;
    assert_eq!(job["state"], "available");
    assert_eq!(job["queue"], "emails");
    assert_eq!(job["args"], json!({"to": "a@b"}));
    assert_eq!(job["namespace"], "default");
    assert!(job.get("lease_token").is_none());
    assert!(job.get("duplicate").is_none());

    let id = job["id"].as_str().unwrap();
    let got = s
        .send(
            s.client
                .get(s.url(&format!("/v1/jobs/{id}")))
                .header("x-request-id", "trace-me-42"),
        )
        .await
        .expect(200);
    assert_eq!(got.headers["x-request-id"], "trace-me-42");
    assert_eq!(got.body["id"], job["id"]);
    assert_eq!(got.body["priority"], 5);

    // run_at in the future makes it scheduled; delay_ms too.
    let later = s.enqueue(json!({"kind": "k", "delay_ms": 60_000})).await;
    assert_eq!(later["state"], "scheduled");
}

#[tokio::test]
async fn idempotency_keys() {
    let s = TestServer::start().await;
    let body = json!({"kind": "k", "args": {"a": 1, "b": 2}, "idempotency_key": "key-1"});
    let first = s.post("/v1/jobs", body.clone()).await.expect(201).body;
    let again = s
        .post(
            "/v1/jobs",
            json!({"kind": "k", "args": {"b": 2, "a": 1}, "idempotency_key": "key-1"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["duplicate"], true);
    s.post(
        "/v1/jobs",
        json!({"kind": "k", "args": {"a": 2}, "idempotency_key": "key-1"}),
    )
    .await
    .expect_error(409, "idempotency_conflict", Some("idempotency_key"));

    // The key outlives its job: deleted job, duplicate answer with the id only.
    let id = first["id"].as_str().unwrap();
    s.post(&format!("/v1/jobs/{id}/cancel"), json!({}))
        .await
        .expect(200);
    s.delete(&format!("/v1/jobs/{id}")).await.expect(204);
    let gone = s.post("/v1/jobs", body).await.expect(200).body;
    assert_eq!(gone, json!({"id": id, "duplicate": true}));
}

#[tokio::test]
async fn batch_enqueue() {
    let s = TestServer::start().await;
    let existing = s
        .enqueue(json!({"kind": "k", "idempotency_key": "old", "args": 1}))
        .await;
    let r = s
        .post(
            "/v1/jobs/batch",
            json!({"jobs": [
                {"kind": "a"},
                {"kind": "b", "queue": "other"},
                {"kind": "k", "idempotency_key": "old", "args": 1},
            ]}),
        )
        .await
        .expect(201);
    let jobs = r.body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["kind"], "a");
    assert_eq!(jobs[1]["queue"], "other");
    assert_eq!(jobs[2]["id"], existing["id"]);
    assert_eq!(jobs[2]["duplicate"], true);

    s.post("/v1/jobs/batch", json!({"jobs": []}))
        .await
        .expect_error(400, "invalid_argument", Some("jobs"));
    let many: Vec<_> = (0..1001).map(|_| json!({"kind": "k"})).collect();
    s.post("/v1/jobs/batch", json!({"jobs": many}))
        .await
        .expect_error(400, "invalid_argument", Some("jobs"));
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "a", "idempotency_key": "x"}, {"kind": "a", "idempotency_key": "x"}]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("jobs[1].idempotency_key"));
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "a"}, {"kind": "a"}, {"kind": "a"}, {"kind": "a", "priority": 99999}]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("jobs[3].priority"));
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "a"}, {"kind": "a", "priority": "high"}]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("jobs[1].priority"));
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "a"}, {"kind": "a", "max_attempt": 3}]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("jobs[1].max_attempt"));

    // A conflict anywhere stores nothing.
    let before = s.get("/v1/jobs?limit=500").await.body["jobs"]
        .as_array()
        .unwrap()
        .len();
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "new"}, {"kind": "k", "idempotency_key": "old", "args": 2}]}),
    )
    .await
    .expect_error(409, "idempotency_conflict", Some("jobs[1].idempotency_key"));
    let after = s.get("/v1/jobs?limit=500").await.body["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn list_filter_and_page() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let j = s
            .enqueue(
                json!({"kind": format!("kind{}", i % 2), "queue": "q1", "tags": [format!("t{i}")]}),
            )
            .await;
        ids.push(j["id"].as_str().unwrap().to_string());
    }
    s.enqueue(json!({"kind": "kind0", "queue": "q2"})).await;

    let page1 = s.get("/v1/jobs?queue=q1&limit=2").await.expect(200).body;
    let got: Vec<&str> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[4].as_str(), ids[3].as_str()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = s
        .get(&format!("/v1/jobs?queue=q1&limit=2&cursor={cursor}"))
        .await
        .expect(200)
        .body;
    assert_eq!(page2["jobs"][0]["id"], ids[2].as_str());
    let page3 = s
        .get(&format!(
            "/v1/jobs?queue=q1&limit=2&cursor={}",
            page2["next_cursor"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(page3["jobs"].as_array().unwrap().len(), 1);
    assert!(page3["next_cursor"].is_null());

    let kind0 = s.get("/v1/jobs?kind=kind0").await.body;
    assert_eq!(kind0["jobs"].as_array().unwrap().len(), 4);
    let tagged = s.get("/v1/jobs?tag=t3").await.body;
    assert_eq!(tagged["jobs"][0]["id"], ids[3].as_str());
    let cancelled_id = &ids[0];
    s.post(&format!("/v1/jobs/{cancelled_id}/cancel"), json!({}))
        .await
        .expect(200);
    let by_state = s.get("/v1/jobs?state=cancelled&state=dead").await.body;
    assert_eq!(by_state["jobs"].as_array().unwrap().len(), 1);
    let search = s.get("/v1/jobs?q=kind1").await.body;
    assert_eq!(search["jobs"].as_array().unwrap().len(), 2);

    s.get("/v1/jobs?cursor=not-an-id")
        .await
        .expect_error(400, "invalid_argument", Some("cursor"));
    s.get("/v1/jobs?limit=0")
        .await
        .expect_error(400, "invalid_argument", Some("limit"));
    s.get("/v1/jobs?limit=501")
        .await
        .expect_error(400, "invalid_argument", Some("limit"));
    s.get("/v1/jobs?state=finished")
        .await
        .expect_error(400, "invalid_argument", Some("state"));
    s.get("/v1/jobs?queeue=x")
        .await
        .expect_error(400, "invalid_argument", Some("queeue"));
}

#[tokio::test]
async fn cancel_retry_delete_and_events() {
    let s = TestServer::start().await;
    let id = s.enqueue(json!({"kind": "k"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Optional bodies: none at all, with or without a JSON content type.
    let cancelled = s
        .post_raw(&format!("/v1/jobs/{id}/cancel"), "", None)
        .await
        .expect(200)
        .body;
    assert_eq!(cancelled["state"], "cancelled");
    s.post_raw(
        &format!("/v1/jobs/{id}/cancel"),
        "",
        Some("application/json"),
    )
    .await
    .expect_error(409, "invalid_state", None);
    s.post(&format!("/v1/jobs/{id}/retry"), json!({"now": true}))
        .await
        .expect_error(400, "invalid_argument", Some("now"));
    let retried = s
        .post_raw(
            &format!("/v1/jobs/{id}/retry"),
            "",
            Some("application/json"),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(retried["state"], "available");
    assert_eq!(retried["attempt"], 0);
    s.post(&format!("/v1/jobs/{id}/retry"), json!({}))
        .await
        .expect_error(409, "invalid_state", None);

    s.delete(&format!("/v1/jobs/{id}"))
        .await
        .expect_error(409, "invalid_state", None);
    s.post(&format!("/v1/jobs/{id}/cancel"), json!({}))
        .await
        .expect(200);

    let events = s
        .get(&format!("/v1/jobs/{id}/events"))
        .await
        .expect(200)
        .body;
    let to: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, vec!["available", "cancelled", "available", "cancelled"]);

    let r = s.delete(&format!("/v1/jobs/{id}")).await.expect(204);
    assert!(r.body.is_null());
    s.get(&format!("/v1/jobs/{id}"))
        .await
        .expect_error(404, "not_found", None);
    s.get(&format!("/v1/jobs/{id}/events"))
        .await
        .expect_error(404, "not_found", None);
    s.delete(&format!("/v1/jobs/{id}"))
        .await
        .expect_error(404, "not_found", None);
    s.post(&format!("/v1/jobs/{id}/cancel"), json!({}))
        .await
        .expect_error(404, "not_found", None);
    s.post(&format!("/v1/jobs/{id}/retry"), json!({}))
        .await
        .expect_error(404, "not_found", None);
}
