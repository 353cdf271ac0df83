//! Health, readiness, metrics, the OpenAPI document, and the bind policy.

use std::sync::Arc;

use hopper_server::{ServerConfig, ServerError};
use hopper_types::SystemClock;
use serde_json::json;

use crate::common::{TestServer, open_store};

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    assert_eq!(s.get("/healthz").await.expect(200).body["status"], "ok");
    assert_eq!(s.get("/readyz").await.expect(200).body["status"], "ready");
}

#[tokio::test]
async fn metrics_are_exported() {
    let s = TestServer::start().await;
    let (id, token) = s.enqueue_and_lease("mq", "k").await;
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": token}),
    )
    .await
    .expect(200);
    // A worker retrying after a lost answer: marked as a repeat, and counted once.
    let repeat = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": token}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(repeat["duplicate"], true);
    let (id, token) = s.enqueue_and_lease("mq", "k").await;
    s.post(
        &format!("/v1/jobs/{id}/fail"),
        json!({"lease_token": token, "error": {"message": "x", "retryable": false}}),
    )
    .await
    .expect(200);
    let id = s.enqueue(json!({"kind": "k", "queue": "mq"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(&format!("/v1/jobs/{id}/cancel"), json!({}))
        .await
        .expect(200);

    let r = s.send(s.client.get(s.url("/metrics"))).await.expect(200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.body.as_str().unwrap().to_string();
    for line in [
        r#"hopper_jobs_enqueued_total{queue="mq",kind="k"} 3"#,
        r#"hopper_jobs_started_total{queue="mq",kind="k"} 2"#,
        r#"hopper_jobs_completed_total{queue="mq",kind="k"} 1"#,
        r#"hopper_jobs_failed_total{queue="mq",kind="k"} 1"#,
        r#"hopper_jobs_dead_total{queue="mq",kind="k"} 1"#,
        r#"hopper_jobs_cancelled_total{queue="mq",kind="k"} 1"#,
        r#"hopper_jobs{queue="mq",state="completed"} 1"#,
        r#"hopper_jobs{queue="mq",state="dead"} 1"#,
        r#"hopper_queue_latency_seconds_count{queue="mq",kind="k"} 2"#,
        // The completed attempt and the failed one.
        r#"hopper_run_time_seconds_count{queue="mq",kind="k"} 2"#,
        r#"hopper_http_requests_total{route="/v1/jobs/{id}/complete",method="POST",status="200"} 2"#,
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn openapi_document_is_served() {
    let s = TestServer::start().await;
    let doc = s.get("/openapi.json").await.expect(200).body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/jobs",
        "/v1/leases",
        "/v1/acks",
        "/v1/queues",
        "/v1/workers",
        "/readyz",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
}

#[tokio::test]
async fn refuses_non_loopback_unless_insecure() {
    let (store, _dir) = open_store(Arc::new(SystemClock)).await;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = hopper_server::serve(ServerConfig::default(), store, listener, async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::NotLoopback(_)), "{err}");

    let (store, _dir) = open_store(Arc::new(SystemClock)).await;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let config = ServerConfig {
        insecure: true,
        ..ServerConfig::default()
    };
    // Allowed; stops at once because the shutdown future is already complete.
    hopper_server::serve(config, store, listener, async {})
        .await
        .unwrap();

    // Once the store holds a key, requests need one, so any address is allowed.
    let (store, _dir) = open_store(Arc::new(SystemClock)).await;
    let spec = hopper_server::auth::issue::KeySpec {
        name: "admin".into(),
        role: hopper_types::api_key::Role::Admin,
        namespaces: vec!["*".into()],
        expires_at: None,
        rate_limit_per_s: None,
    };
    hopper_server::auth::issue::issue(store.as_ref(), spec, "test")
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    hopper_server::serve(ServerConfig::default(), store, listener, async {})
        .await
        .unwrap();
}

#[tokio::test]
async fn app_serves_without_a_socket_and_contains_panics() {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    let (store, _dir) = open_store(Arc::new(SystemClock)).await;
    let state = hopper_server::AppState::new(ServerConfig::default(), store);
    let resp = hopper_server::app(state.clone())
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));

    // A handler panic becomes a JSON 500 that does not leak the panic message.
    let router = hopper_server::layers::wrap(axum::Router::new().route("/boom", get(boom)), &state)
        .with_state(state);
    let resp = router
        .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().contains_key("x-request-id"));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
}

async fn boom() -> &'static str {
    panic!("secret detail")
}
