//! Several servers sharing one PostgreSQL database, each with its own store, as separate nodes
//! would: leader election for the maintenance services, wake-ups across nodes, and idempotency
//! keys that stay atomic across nodes. PostgreSQL only: the embedded store belongs to one
//! server by design. (The multi-process version, with SIGKILL, is the CLI's cluster test.)

use std::time::{Duration, Instant};

use hopper_server::ServerConfig;
use hopper_server::maintenance::LeadershipConfig;

use std::sync::Arc;

use hopper_store_postgres::{PgConfig, PgStore};

use crate::common::{TestServer, test_config};

async fn node(url: &str) -> TestServer {
    node_with(url, PgConfig::new(url)).await
}

async fn node_with(_url: &str, config: PgConfig) -> TestServer {
    let store = PgStore::connect(config).await.expect("connect");
    TestServer::start_on(fast_election(), Arc::new(store)).await
}

fn fast_election() -> ServerConfig {
    let mut config = test_config();
    config.maintenance.leadership = LeadershipConfig {
        ttl: Duration::from_millis(1500),
        renew_interval: Duration::from_millis(100),
    };
    config
}

/// The `hopper_leader` gauge of a server.
async fn leader_gauge(s: &TestServer) -> i64 {
    let text = s.get("/metrics").await.expect(200).body;
    let text = text.as_str().expect("metrics are text").to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("hopper_leader "))
        .and_then(|v| v.trim().parse().ok())
        .expect("hopper_leader is exported")
}

/// Waits until `f` holds, or fails after `within`.
async fn eventually<F: AsyncFn() -> bool>(within: Duration, what: &str, f: F) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn exactly_one_of_two_servers_leads_and_the_other_takes_over() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let a = node(&url).await;
    eventually(Duration::from_secs(5), "first server leads", async || {
        leader_gauge(&a).await == 1
    })
    .await;
    let b = node(&url).await;
    // Several renewals later, still exactly one leader.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((leader_gauge(&a).await, leader_gauge(&b).await), (1, 0));

    // The leader stops (and resigns): the other takes over at its next renewal.
    a.stop().await.expect("clean stop");
    eventually(Duration::from_secs(5), "second server leads", async || {
        leader_gauge(&b).await == 1
    })
    .await;

    // And it runs the services: a due job is promoted by it.
    let job = b
        .enqueue(serde_json::json!({"kind": "k", "delay_ms": 100}))
        .await;
    let id = job["id"].as_str().expect("id").to_string();
    eventually(
        Duration::from_secs(5),
        "promoted by the new leader",
        async || b.get(&format!("/v1/jobs/{id}")).await.body["state"] == "available",
    )
    .await;
}

#[tokio::test]
async fn a_worker_polling_node_b_wakes_on_an_enqueue_through_node_a() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    // The fallback poll is pushed out of reach: only a notification can wake the worker.
    let mut config = PgConfig::new(&url);
    config.fallback_poll = Duration::from_secs(600);
    let b = node_with(&url, config.clone()).await;
    let a = node_with(&url, config).await;
    for round in 0..3 {
        let poll = b.post(
            "/v1/leases",
            serde_json::json!({"queues": ["wake"], "worker_id": "w", "max_jobs": 1, "wait_ms": 20000}),
        );
        let enqueue = async {
            // Let the long poll reach its wait first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let job = a
                .enqueue(serde_json::json!({"kind": "k", "queue": "wake"}))
                .await;
            (job, Instant::now())
        };
        let (leased, (job, enqueued_at)) = tokio::join!(poll, enqueue);
        let woke_after = enqueued_at.elapsed();
        let jobs = leased.expect(200).body["jobs"].clone();
        assert_eq!(jobs[0]["id"], job["id"], "round {round}: {jobs}");
        assert!(
            woke_after < Duration::from_secs(2),
            "round {round}: woke {woke_after:?} after the enqueue"
        );
    }
}

#[tokio::test]
async fn one_idempotency_key_enqueued_through_two_nodes_at_once_creates_one_job() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let a = node(&url).await;
    let b = node(&url).await;
    for round in 0..20 {
        let body = serde_json::json!({"kind": "k", "idempotency_key": format!("key-{round}")});
        let reqs: Vec<_> = (0..8)
            .map(|i| {
                let node = if i % 2 == 0 { &a } else { &b };
                node.post("/v1/jobs", body.clone())
            })
            .collect();
        let answers = futures::future::join_all(reqs).await;
        let created = answers.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 1, "round {round}: {answers:#?}");
        let ids: std::collections::HashSet<_> =
            answers.iter().map(|r| r.body["id"].to_string()).collect();
        assert_eq!(
            ids.len(),
            1,
            "round {round}: every answer names the same job"
        );
    }
    let listed = a.get("/v1/jobs?limit=500").await.expect(200).body;
    assert_eq!(listed["jobs"].as_array().expect("jobs").len(), 20);
}

#[tokio::test]
async fn a_subscriber_of_one_node_sees_every_nodes_transitions_once_in_order() {
    use crate::events::Sse;
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let a = node(&url).await;
    let b = node(&url).await;
    let mut sse = Sse::open(&b, "", None).await;
    // Racing transactions on two nodes: seqs are taken at insert, so some commit out of order.
    let producers: Vec<_> = (0..8)
        .map(|p| {
            let (client, base) = if p % 2 == 0 {
                (a.client.clone(), a.base.clone())
            } else {
                (b.client.clone(), b.base.clone())
            };
            tokio::spawn(async move {
                for i in 0..25 {
                    let r = client
                        .post(format!("{base}/v1/jobs"))
                        .json(&serde_json::json!({"kind": "k", "queue": "x", "args": {"p": p, "i": i}}))
                        .send()
                        .await
                        .expect("enqueue");
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("producer");
    }
    let got = sse.until(Duration::from_secs(20), 200, |_| true).await;
    let seqs: Vec<i64> = got.iter().map(|m| m.id.expect("id")).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing, so each once and in log order: {seqs:?}"
    );
    let stored = a.store.events_after(0, 1_000).await.expect("log");
    let stored: Vec<i64> = stored.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, stored, "exactly the log, nothing skipped");
}

#[tokio::test]
async fn the_stream_holds_back_behind_a_transaction_that_has_not_committed() {
    use crate::events::Sse;
    use sqlx::Connection;
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let a = node(&url).await;
    let j = a
        .enqueue(serde_json::json!({"kind": "k", "queue": "x"}))
        .await;
    let log = a
        .get(&format!("/v1/jobs/{}/events", j["id"].as_str().unwrap()))
        .await;
    let enqueued = log.body["events"][0]["seq"]
        .as_i64()
        .expect("the enqueue event");
    let mut sse = Sse::open(&a, "", Some(enqueued)).await;

    // A transaction takes the next seq and stays open.
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut tx = conn.begin().await.expect("begin");
    let held: i64 = sqlx::query_scalar(
        "INSERT INTO hopper.job_events (job_id, namespace, from_state, to_state, at, actor, reason)
         VALUES ($1::uuid, 'default', 'available', 'available', 0, 'test', 'held') RETURNING seq",
    )
    .bind(j["id"].as_str().unwrap())
    .fetch_one(&mut *tx)
    .await
    .expect("insert");
    // A later seq commits first.
    let k = a
        .enqueue(serde_json::json!({"kind": "k", "queue": "x"}))
        .await;
    let early = tokio::time::timeout(
        Duration::from_millis(500),
        sse.until(Duration::from_secs(1), 1, |_| true),
    )
    .await;
    assert!(
        early.is_err(),
        "nothing may pass the open transaction's seq: {early:?}"
    );
    tx.commit().await.expect("commit");
    let got = sse.until(Duration::from_secs(10), 2, |_| true).await;
    assert_eq!(got[0].id, Some(held), "the late commit first, in seq order");
    assert_eq!(got[1].data["job_id"], k["id"]);
}

#[tokio::test]
async fn every_node_lists_the_workers_polling_any_node() {
    let url = hopper_store_postgres::testing::fresh_database_url().await;
    let mut config = fast_election();
    config.worker_sync_ms = 100;
    let a = TestServer::start_on(
        config.clone(),
        Arc::new(
            PgStore::connect(PgConfig::new(&url))
                .await
                .expect("connect"),
        ),
    )
    .await;
    let b = TestServer::start_on(
        config,
        Arc::new(
            PgStore::connect(PgConfig::new(&url))
                .await
                .expect("connect"),
        ),
    )
    .await;
    // A worker polls node A only.
    a.post(
        "/v1/leases",
        serde_json::json!({"queues": ["mail"], "worker_id": "only-on-a", "wait_ms": 0}),
    )
    .await
    .expect(200);
    eventually(
        Duration::from_secs(10),
        "node B lists the worker",
        async || {
            let w = b.get("/v1/workers").await.expect(200).body;
            w["workers"].as_array().is_some_and(|ws| {
                ws.iter()
                    .any(|w| w["id"] == "only-on-a" && w["queues"][0] == "mail")
            })
        },
    )
    .await;
    // Node B's explain and gauges count it too.
    let job = b
        .enqueue(serde_json::json!({"kind": "k", "queue": "mail"}))
        .await;
    let explain = b
        .get(&format!("/v1/jobs/{}/explain", job["id"].as_str().unwrap()))
        .await
        .expect(200)
        .body;
    assert!(
        !explain.to_string().contains("no_workers"),
        "B knows a worker polls `mail`: {explain}"
    );
    let metrics = b.get("/metrics").await.expect(200).body;
    let text = metrics.as_str().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("hopper_queue_workers{queue=\"mail\"} 1")),
        "{text}"
    );
}
