//! `POST /v1/jobs/bulk`: one action on many jobs, each id standing alone.

use serde_json::{Value, json};

use crate::common::TestServer;

async fn dead_job(s: &TestServer, queue: &str) -> String {
    let (id, token) = s.enqueue_and_lease(queue, "k").await;
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "boom", "retryable": false}}),
    )
    .await
    .expect(200);
    id
}

async fn bulk(s: &TestServer, action: &str, ids: &[&str]) -> Vec<Value> {
    let r = s
        .post("/v1/jobs/bulk", json!({"action": action, "ids": ids}))
        .await
        .expect(200);
    r.body["results"].as_array().cloned().unwrap_or_default()
}

fn ok(r: &Value, id: &str) {
    assert_eq!(r["id"], id, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["error"].is_null(), "{r}");
}

fn refused(r: &Value, id: &str, code: &str) {
    assert_eq!(r["id"], id, "{r}");
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], code, "{r}");
    assert!(r["error"]["message"].is_string(), "{r}");
}

async fn state_of(s: &TestServer, id: &str) -> Value {
    s.get(&format!("/v1/jobs/{id}")).await.expect(200).body["state"].clone()
}

#[tokio::test]
async fn retry_cancel_delete_each_id_alone() {
    let s = TestServer::start().await;
    let dead = dead_job(&s, "bulk").await;
    let waiting = s.enqueue(json!({"kind": "k", "queue": "bulk"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let unknown = "0190f0f0-0000-7000-8000-000000000000";

    // Retry: the dead job runs again; an available one cannot be retried; an unknown id is
    // not found. Results come in request order whatever the outcome.
    let r = bulk(&s, "retry", &[&dead, &waiting, unknown]).await;
    assert_eq!(r.len(), 3);
    ok(&r[0], &dead);
    refused(&r[1], &waiting, "invalid_state");
    refused(&r[2], unknown, "not_found");
    assert_eq!(state_of(&s, &dead).await, "available");

    // Cancel both waiting jobs; a second cancel of a cancelled job is refused.
    let r = bulk(&s, "cancel", &[&dead, &waiting]).await;
    ok(&r[0], &dead);
    ok(&r[1], &waiting);
    assert_eq!(state_of(&s, &waiting).await, "cancelled");
    let r = bulk(&s, "cancel", &[&waiting]).await;
    refused(&r[0], &waiting, "invalid_state");

    // A running job is flagged, not ended.
    let (running, _token) = s.enqueue_and_lease("bulk-run", "k").await;
    let r = bulk(&s, "cancel", &[&running]).await;
    ok(&r[0], &running);
    let job = s.get(&format!("/v1/jobs/{running}")).await.expect(200).body;
    assert_eq!(job["state"], "running");
    assert_eq!(job["cancel_requested"], true);

    // Delete: finished jobs go; a running one is refused. An id named twice is acted on in
    // request order: deleted, then not found.
    let r = bulk(&s, "delete", &[&dead, &running, &waiting, &dead]).await;
    ok(&r[0], &dead);
    refused(&r[1], &running, "invalid_state");
    ok(&r[2], &waiting);
    refused(&r[3], &dead, "not_found");
    s.get(&format!("/v1/jobs/{dead}"))
        .await
        .expect_error(404, "not_found", None);
}

#[tokio::test]
async fn many_ids_in_one_call() {
    let s = TestServer::start().await;
    let jobs: Vec<Value> = (0..120)
        .map(|_| json!({"kind": "k", "queue": "many"}))
        .collect();
    let created = s
        .post("/v1/jobs/batch", json!({"jobs": jobs}))
        .await
        .expect(201)
        .body;
    let ids: Vec<String> = created["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let r = bulk(&s, "cancel", &refs).await;
    assert_eq!(r.len(), 120);
    for (res, id) in r.iter().zip(&ids) {
        ok(res, id);
    }
    let q = s.get("/v1/queues/many").await.expect(200).body;
    assert_eq!(q["counts"]["cancelled"], 120);
    assert_eq!(q["counts"]["available"], 0);
}

#[tokio::test]
async fn bad_bulk_requests_name_the_field() {
    let s = TestServer::start().await;
    let id = s.enqueue(json!({"kind": "k"})).await["id"].clone();
    s.post("/v1/jobs/bulk", json!({"action": "explode", "ids": [id]}))
        .await
        .expect_error(400, "invalid_argument", Some("action"));
    s.post("/v1/jobs/bulk", json!({"action": "retry", "ids": []}))
        .await
        .expect_error(400, "invalid_argument", Some("ids"));
    let too_many: Vec<Value> = (0..501).map(|_| id.clone()).collect();
    s.post("/v1/jobs/bulk", json!({"action": "retry", "ids": too_many}))
        .await
        .expect_error(400, "invalid_argument", Some("ids"));
    s.post(
        "/v1/jobs/bulk",
        json!({"action": "retry", "ids": [id, "nope"]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("ids[1]"));
    s.post("/v1/jobs/bulk", json!({"action": "retry"}))
        .await
        .expect_error(400, "invalid_argument", Some("ids"));
    s.post(
        "/v1/jobs/bulk",
        json!({"action": "retry", "ids": [id], "force": true}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("force"));
    s.post_raw("/v1/jobs/bulk", "", Some("application/json"))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    s.post_raw(
        "/v1/jobs/bulk",
        r#"{"action":"cancel","ids":[]}"#,
        Some("text/plain"),
    )
    .await
    .expect_error(400, "invalid_argument", Some("content-type"));
    // A page on another site cannot drive it.
    let r = s
        .send(
            s.client
                .post(s.url("/v1/jobs/bulk"))
                .header("origin", "http://elsewhere.example")
                .json(&json!({"action": "cancel", "ids": [id]})),
        )
        .await;
    r.expect_error(403, "permission_denied", None);
    // Nothing above changed the job.
    let job = s
        .get(&format!("/v1/jobs/{}", id.as_str().unwrap()))
        .await
        .expect(200)
        .body;
    assert_eq!(job["state"], "available");
}
