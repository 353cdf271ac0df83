//! Bad input of every kind answers a 4xx with the JSON error body naming the field, changes
//! nothing, and leaves the server serving.

use hopper_types::Limits;
use serde_json::json;

use crate::common::{TestServer, test_config};

#[tokio::test]
async fn malformed_bodies_name_the_field() {
    let s = TestServer::start().await;
    for (body, field) in [
        (json!({"kind": "k", "max_attempt": 3}), "max_attempt"),
        (json!({"kind": "k", "priority": "high"}), "priority"),
        (json!({"kind": "k", "priority": 40000}), "priority"),
        (json!({"queue": "q"}), "kind"),
        (json!({"kind": "bad kind"}), "kind"),
        (
            json!({"kind": "k", "backoff": {"kind": "fixed", "delay": 1}}),
            "backoff.delay",
        ),
        (json!({"kind": "k", "tags": ["a", 5]}), "tags[1]"),
        (json!({"kind": "k", "run_at": "tomorrow"}), "run_at"),
    ] {
        s.post("/v1/jobs", body.clone())
            .await
            .expect_error(400, "invalid_argument", Some(field));
    }
    for raw in [
        "{",
        "not json",
        "[1,2]",
        "{\"kind\":\"k\"} trailing",
        "null",
    ] {
        s.post_raw("/v1/jobs", raw, Some("application/json"))
            .await
            .expect_error(400, "invalid_argument", Some("body"));
    }
    // A required body that is missing.
    s.post_raw("/v1/jobs", "", Some("application/json"))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    // A body that is not declared as JSON (what a cross-site form would send).
    s.post_raw("/v1/jobs", r#"{"kind":"k"}"#, Some("text/plain"))
        .await
        .expect_error(400, "invalid_argument", Some("content-type"));
    // Too deep: refused before parsing.
    let deep = format!(
        r#"{{"kind":"k","args":{}1{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    s.post_raw("/v1/jobs", deep, Some("application/json"))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    // Bad ids and queue names in paths.
    s.get("/v1/jobs/not-a-uuid")
        .await
        .expect_error(400, "invalid_argument", Some("id"));
    s.post("/v1/queues/bad%20name/pause", json!({}))
        .await
        .expect_error(400, "invalid_argument", Some("name"));
    // Nothing was created by any of it.
    let list = s.get("/v1/jobs").await.expect(200).body;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0);
    // Still serving.
    s.get("/healthz").await.expect(200);
}

#[tokio::test]
async fn size_limits_answer_413() {
    let mut config = test_config();
    config.limits = Limits {
        max_body_bytes: 4096,
        max_args_bytes: 100,
        max_progress_bytes: 50,
        max_error_message_bytes: 10,
        ..Limits::default()
    };
    let s = TestServer::start_with(config, None).await;
    let big = "x".repeat(5000);
    s.post("/v1/jobs", json!({"kind": "k", "args": big}))
        .await
        .expect_error(413, "too_large", Some("body"));
    s.post("/v1/jobs", json!({"kind": "k", "args": "y".repeat(200)}))
        .await
        .expect_error(413, "too_large", Some("args"));
    s.post(
        "/v1/jobs/batch",
        json!({"jobs": [{"kind": "k"}, {"kind": "k", "args": "y".repeat(200)}]}),
    )
    .await
    .expect_error(413, "too_large", Some("jobs[1].args"));
    // A chunked upload with no length announced is cut off too.
    let answer = raw_chunked_post(&s, "/v1/jobs", 100, 100).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");

    let (id, token) = s.enqueue_and_lease("default", "k").await;
    s.post(
        &format!("/v1/jobs/{id}/heartbeat"),
        json!({"lease_token": token, "progress": "p".repeat(60)}),
    )
    .await
    .expect_error(413, "too_large", Some("progress"));
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": token, "result": "r".repeat(200)}),
    )
    .await
    .expect_error(413, "too_large", Some("result"));
    // A long error message is cut (on a character boundary), not refused.
    let failed = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": token, "error": {"message": "ééééééééé"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(failed["state"], "retryable");
    assert_eq!(failed["errors"][0]["message"], "ééééé");
    assert_eq!(failed["errors"][0]["kind"], "error");
}

/// Sends `chunks` chunks of `size` bytes with `Transfer-Encoding: chunked` over a raw socket
/// (reqwest always knows the length of the bodies it can build here) and returns the answer's
/// head and body as text.
async fn raw_chunked_post(s: &TestServer, path: &str, chunks: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{size:x}\r\n{}\r\n", "x".repeat(size));
    for _ in 0..chunks {
        // The server may answer and close early; later writes may fail, which is the point.
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = TestServer::start().await;
    let r = s
        .get("/v2/nothing")
        .await
        .expect_error(404, "not_found", None);
    assert!(r.headers.contains_key("x-request-id"));
    s.send(s.client.put(s.url("/v1/jobs")))
        .await
        .expect_error(405, "method_not_allowed", None);
    s.send(s.client.get(s.url("/v1/leases")))
        .await
        .expect_error(405, "method_not_allowed", None);
}

#[tokio::test]
async fn cross_origin_changes_are_refused() {
    let s = TestServer::start().await;
    s.send(
        s.client
            .post(s.url("/v1/queues/default/pause"))
            .header("origin", "https://evil.example"),
    )
    .await
    .expect_error(403, "permission_denied", None);
    let q = s.get("/v1/queues").await.body;
    assert!(
        q["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["paused"] == false)
    );
    // Same origin (the UI served by this server) is fine, and reads are always fine.
    let host = s.base.trim_start_matches("http://").to_string();
    s.send(
        s.client
            .post(s.url("/v1/queues/default/pause"))
            .header("origin", format!("http://{host}")),
    )
    .await
    .expect(200);
    s.send(
        s.client
            .get(s.url("/v1/queues"))
            .header("origin", "https://evil.example"),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn numbers_beyond_a_double_are_refused_where_json_is_kept_raw() {
    let s = TestServer::start().await;
    let r = s
        .post_raw(
            "/v1/jobs",
            r#"{"kind":"k","queue":"huge","args":{"n":1e999}}"#,
            Some("application/json"),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, "args"), "{r:#?}");
    let r = s
        .post_raw(
            "/v1/jobs",
            r#"{"kind":"k","queue":"huge","meta":{"n":-1E+400}}"#,
            Some("application/json"),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, "meta"));
    let (id, token) = s.enqueue_and_lease("huge", "k").await;
    let r = s
        .post_raw(
            &format!("/v1/jobs/{id}/heartbeat"),
            format!(r#"{{"lease_token":"{token}","progress":1e999}}"#),
            Some("application/json"),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, "progress"));
    let r = s
        .post_raw(
            &format!("/v1/jobs/{id}/complete"),
            format!(r#"{{"lease_token":"{token}","result":[1e999]}}"#),
            Some("application/json"),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, "result"));
    // Nothing was stored: the queue holds only the leased job, still running.
    let jobs = s.get("/v1/jobs?queue=huge").await.expect(200);
    assert_eq!(jobs.body["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(jobs.body["jobs"][0]["state"], "running");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = test_config();
    config.limits.body_timeout_ms = 200;
    let s = TestServer::start_with(config, None).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // Headers promise 100 bytes; only the first few ever come.
    conn.write_all(
        format!(
            "POST /v1/jobs HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: 100\r\n\r\n{{\"kind\":"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut answer))
        .await
        .expect("answered well before the client would have finished")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("did not arrive within 200 ms"), "{text}");
    assert!(s.get("/v1/jobs").await.expect(200).body["jobs"] == json!([]));
}
