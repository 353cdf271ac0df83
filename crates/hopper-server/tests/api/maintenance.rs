//! The maintenance services: each `run_once` driven by hand with a manual clock, and the
//! running services observed through the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hopper_server::Retention;
use hopper_server::maintenance::{
    Promoter, PromoterConfig, Pruner, PrunerConfig, Rescuer, RescuerConfig,
};
use hopper_store::Store;
use hopper_types::Timestamp;
use serde_json::json;

use crate::common::{TestServer, test_config};

/// A server on a manual clock with the background services off, so only the test moves jobs.
async fn manual() -> TestServer {
    let mut config = test_config();
    config.maintenance.disabled = true;
    TestServer::start_with(config, Some(TestServer::manual_clock())).await
}

fn store(s: &TestServer) -> Arc<dyn Store> {
    s.store.clone()
}

#[tokio::test]
async fn promoter_promotes_what_is_due() {
    let s = manual().await;
    let clock = s.clock.clone().unwrap();
    let t0 = clock.now_ts();
    for _ in 0..3 {
        s.enqueue(json!({"kind": "k", "delay_ms": 5_000})).await;
    }
    let p = Promoter::new(
        store(&s),
        PromoterConfig {
            batch_size: 2,
            ..PromoterConfig::default()
        },
    );
    let r = p.run_once().await.unwrap();
    assert_eq!(r.promoted, 0);
    assert_eq!(r.next_due_at, Some(t0.plus_ms(5_000)));
    assert_eq!(p.sleep_after(&r, t0), PromoterConfig::default().max_sleep);
    assert_eq!(
        p.sleep_after(&r, t0.plus_ms(4_950)),
        Duration::from_millis(50)
    );
    clock.advance_ms(5_000);
    let r = p.run_once().await.unwrap();
    assert_eq!(r.promoted, 3, "several batches in one pass");
    assert_eq!(r.next_due_at, None);
    assert_eq!(s.lease("default", "w", 10).await.len(), 3);
}

#[tokio::test]
async fn rescuer_reclaims_expired_leases() {
    let s = manual().await;
    let clock = s.clock.clone().unwrap();
    s.enqueue(json!({"kind": "k"})).await;
    let leased = s
        .post(
            "/v1/leases",
            json!({"queues": ["default"], "worker_id": "w", "lease_ms": 1_000}),
        )
        .await
        .expect(200)
        .body;
    let id = leased["jobs"][0]["id"].as_str().unwrap().to_string();
    let r = Rescuer::new(store(&s), RescuerConfig::default());
    assert_eq!(
        r.startup_grace().await.unwrap(),
        Duration::from_millis(1_000)
    );
    assert_eq!(r.run_once().await.unwrap().rescued, 0);
    clock.advance_ms(1_000);
    assert_eq!(r.run_once().await.unwrap().rescued, 1);
    let job = s.get(&format!("/v1/jobs/{id}")).await.body;
    assert_eq!(job["state"], "retryable");
    assert_eq!(job["errors"][0]["kind"], "lease_expired");
    assert_eq!(r.startup_grace().await.unwrap(), Duration::ZERO);
}

#[tokio::test]
async fn pruner_applies_retention_per_state() {
    let s = manual().await;
    let clock = s.clock.clone().unwrap();
    let (done, token) = s.enqueue_and_lease("default", "k").await;
    s.post(
        &format!("/v1/jobs/{done}/complete"),
        json!({"lease_token": token}),
    )
    .await
    .expect(200);
    let cancelled = s
        .enqueue(json!({"kind": "k", "idempotency_key": "key"}))
        .await;
    let cancelled = cancelled["id"].as_str().unwrap();
    s.post(&format!("/v1/jobs/{cancelled}/cancel"), json!({}))
        .await
        .expect(200);
    let retention = Retention {
        completed_ms: 1_000,
        cancelled_ms: 5_000,
        dead_ms: 10_000,
    };
    let p = Pruner::new(store(&s), PrunerConfig::default(), retention, 20_000);
    assert_eq!(p.run_once().await.unwrap().jobs, 0);
    // Retention ends strictly after the period.
    clock.advance_ms(1_001);
    let r = p.run_once().await.unwrap();
    assert_eq!((r.jobs, r.idempotency_keys), (1, 0));
    s.get(&format!("/v1/jobs/{done}"))
        .await
        .expect_error(404, "not_found", None);
    s.get(&format!("/v1/jobs/{cancelled}")).await.expect(200);
    clock.advance_ms(4_000);
    assert_eq!(p.run_once().await.unwrap().jobs, 1);
    // The key outlives its job until its own lifetime ends.
    let dup = s
        .post("/v1/jobs", json!({"kind": "k", "idempotency_key": "key"}))
        .await
        .expect(200)
        .body;
    assert_eq!(dup["duplicate"], true);
    clock.advance_ms(15_000);
    assert_eq!(p.run_once().await.unwrap().idempotency_keys, 1);
    s.post("/v1/jobs", json!({"kind": "k", "idempotency_key": "key"}))
        .await
        .expect(201);
}

#[tokio::test]
async fn running_services_promote_and_rescue_on_time() {
    let mut config = test_config();
    config.maintenance.rescuer.skip_startup_grace = true;
    let s = TestServer::start_with(config, None).await;

    // A job due in 300 ms reaches a waiting worker well within a second of its time.
    let started = Instant::now();
    s.enqueue(json!({"kind": "k", "queue": "later", "delay_ms": 300}))
        .await;
    let r = s
        .post(
            "/v1/leases",
            json!({"queues": ["later"], "worker_id": "w", "wait_ms": 5_000, "lease_ms": 200}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(r["jobs"].as_array().unwrap().len(), 1);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1_300),
        "{took:?}"
    );

    // Its 200 ms lease expires; the rescuer reclaims it within a second.
    let id = r["jobs"][0]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_millis(1_500);
    loop {
        let job = s.get(&format!("/v1/jobs/{id}")).await.body;
        if job["state"] == "retryable" {
            assert_eq!(job["errors"][0]["kind"], "lease_expired");
            break;
        }
        assert!(Instant::now() < deadline, "not rescued in time: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = s.get("/metrics").await.body;
    assert!(
        text.as_str()
            .unwrap()
            .contains(r#"hopper_lease_rescues_total{queue="later"} 1"#),
        "{text}"
    );
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for hopper_types::ManualClock {
    fn now_ts(&self) -> Timestamp {
        hopper_types::Clock::now(self)
    }
}
