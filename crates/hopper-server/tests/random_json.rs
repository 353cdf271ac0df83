//! Property test: random JSON (valid documents of random shape, near-miss job bodies, and raw
//! byte noise) thrown at the job and lease endpoints never gets a 5xx, never crashes the
//! server, and a 4xx always carries the api-v1 error body.

use std::sync::Arc;

#[path = "strategies/mod.rs"]
mod strategies;

use hopper_server::{ServerConfig, serve};
use hopper_store_sqlite::{SqliteConfig, SqliteStore};
use proptest::prelude::*;
use serde_json::Value;
use strategies::arb_json;

/// Job-shaped bodies whose fields take random values: the interesting near misses.
fn arb_job_body() -> impl Strategy<Value = Value> {
    let fields = [
        "kind",
        "queue",
        "args",
        "priority",
        "run_at",
        "delay_ms",
        "max_attempts",
        "backoff",
        "timeout_ms",
        "idempotency_key",
        "tags",
        "meta",
        "traceparent",
        "lease_token",
        "result",
        "error",
        "retry_in_ms",
        "queues",
        "worker_id",
        "max_jobs",
        "lease_ms",
        "wait_ms",
        "progress",
        "jobs",
        "acks",
        "outcome",
        "id",
    ];
    prop::collection::vec((prop::sample::select(fields.to_vec()), arb_json()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn arb_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        4 => arb_job_body().prop_map(Body::Json),
        2 => arb_json().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
    ]
}

fn arb_path() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just("0190c9b6-7c3a-7b8e-9a55-3b9f1d2e4a10".to_string()),
        "[a-z0-9-]{0,40}".prop_map(|s| s),
    ];
    (0..10usize, id).prop_map(|(which, id)| match which {
        0 => "/v1/jobs".to_string(),
        1 => "/v1/jobs/batch".to_string(),
        2 => "/v1/leases".to_string(),
        3 => "/v1/acks".to_string(),
        4 => format!("/v1/jobs/{id}/complete"),
        5 => format!("/v1/jobs/{id}/fail"),
        6 => format!("/v1/jobs/{id}/heartbeat"),
        7 => format!("/v1/jobs/{id}/release"),
        8 => format!("/v1/jobs/{id}/cancel"),
        _ => format!("/v1/jobs/{id}/cancelled"),
    })
}

#[test]
fn random_json_never_gets_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = rt.block_on(async {
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(dir.path())).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            ServerConfig::default(),
            store,
            listener,
            std::future::pending(),
        ));
        format!("http://{addr}")
    });
    let client = reqwest::Client::new();
    let config = ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(path in arb_path(), body in arb_body())| {
        let (status, text) = rt.block_on(async {
            let req = client.post(format!("{base}{path}")).header("content-type", "application/json");
            let req = match &body {
                Body::Json(v) => req.body(v.to_string()),
                Body::Bytes(b) => req.body(b.clone()),
            };
            let resp = req.send().await.expect("the server answers");
            let status = resp.status();
            (status, resp.text().await.unwrap_or_default())
        });
        prop_assert!(status.as_u16() < 500, "{path} {body:?} -> {status} {text}");
        if status.is_client_error() {
            let v: Value = serde_json::from_str(&text).expect("error body is JSON");
            prop_assert!(v["error"]["code"].is_string(), "no error code: {text}");
            prop_assert!(v["error"]["message"].is_string(), "no error message: {text}");
        }
    });
    // Still serving.
    let ok = rt.block_on(async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(ok.is_success());
}
