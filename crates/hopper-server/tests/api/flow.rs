//! Flow control over HTTP: queue configuration, the new job fields, `explain`, limits that
//! hold at every moment under many concurrent workers, fairness, and waiting workers woken
//! the moment a limit lets a job start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Resp, TestServer};

async fn put(s: &TestServer, path: &str, body: Value) -> Resp {
    s.send(reqwest::Client::new().put(s.url(path)).json(&body))
        .await
}

async fn configure(s: &TestServer, queue: &str, config: Value) -> Value {
    put(s, &format!("/v1/queues/{queue}"), config)
        .await
        .expect(200)
        .body
}

async fn complete(s: &TestServer, job: &Value) {
    let id = job["id"].as_str().expect("id");
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": job["lease_token"]}),
    )
    .await
    .expect(200);
}

async fn explain(s: &TestServer, id: &Value) -> Value {
    let id = id.as_str().expect("id");
    s.get(&format!("/v1/jobs/{id}/explain"))
        .await
        .expect(200)
        .body
}

fn codes(e: &Value) -> Vec<String> {
    e["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_string())
        .collect()
}

#[tokio::test]
async fn queue_configuration_round_trips_and_refuses_bad_input() {
    let s = TestServer::start().await;
    let config = json!({
        "policy": "fair", "concurrency": 5, "key_concurrency": 1,
        "rate": {"limit": 10, "period_ms": 1000, "burst": 3},
        "key_rate": {"limit": 2, "period_ms": 60000},
        "fairness_weights": {"vip": 4},
        "retention": {"completed_ms": 3600000, "cancelled_ms": null, "dead_ms": null}
    });
    let q = configure(&s, "mail", config.clone()).await;
    assert_eq!(q["name"], "mail");
    assert_eq!(q["paused"], false);
    assert_eq!(q["config"]["concurrency"], 5);
    assert_eq!(q["config"]["rate"], config["rate"]);
    assert_eq!(q["config"]["fairness_weights"], config["fairness_weights"]);
    let got = s.get("/v1/queues/mail").await.expect(200).body;
    assert_eq!(got["config"], q["config"]);
    let listed = s.get("/v1/queues").await.expect(200).body;
    assert_eq!(listed["queues"][0]["config"], q["config"]);
    // A queue never configured shows the defaults.
    let fresh = s.get("/v1/queues/fresh").await.expect(200).body;
    assert_eq!(fresh["config"]["policy"], "priority");
    assert!(fresh["config"]["concurrency"].is_null());

    for (body, field) in [
        (json!({"concurrency": 0}), "concurrency"),
        (json!({"concurrency": "many"}), "concurrency"),
        (json!({"rate": {"limit": 0, "period_ms": 10}}), "rate.limit"),
        (json!({"key_rate": {"limit": 1}}), "key_rate.period_ms"),
        (json!({"policy": "lifo"}), "policy"),
        (json!({"fairness_weights": {"a": 0}}), "fairness_weights.a"),
        (json!({"retention": {"dead_ms": -5}}), "retention.dead_ms"),
        (json!({"concurency": 3}), "concurency"),
    ] {
        put(&s, "/v1/queues/mail", body.clone()).await.expect_error(
            400,
            "invalid_argument",
            Some(field),
        );
    }
    let after = s.get("/v1/queues/mail").await.expect(200).body;
    assert_eq!(after["config"], q["config"], "bad input changed nothing");
    put(&s, "/v1/queues/bad%20name", json!({}))
        .await
        .expect_error(400, "invalid_argument", Some("name"));

    // The job fields limits and policies read.
    let job = s
        .enqueue(json!({"kind": "k", "concurrency_key": "acme", "fairness_key": "t1", "estimated_ms": 250}))
        .await;
    assert_eq!(job["concurrency_key"], "acme");
    assert_eq!(job["fairness_key"], "t1");
    assert_eq!(job["estimated_ms"], 250);
    for (body, field) in [
        (
            json!({"kind": "k", "concurrency_key": ""}),
            "concurrency_key",
        ),
        (
            json!({"kind": "k", "fairness_key": "x".repeat(257)}),
            "fairness_key",
        ),
        (json!({"kind": "k", "estimated_ms": -1}), "estimated_ms"),
    ] {
        s.post("/v1/jobs", body)
            .await
            .expect_error(400, "invalid_argument", Some(field));
    }
}

#[tokio::test]
async fn explain_names_what_holds_a_job_back() {
    let s = TestServer::start().await;
    s.get("/v1/jobs/0190b6f0-0000-7000-8000-000000000000/explain")
        .await
        .expect_error(404, "not_found", None);

    // Nobody polls the queue yet.
    let lonely = s.enqueue(json!({"kind": "k", "queue": "q"})).await;
    let e = explain(&s, &lonely["id"]).await;
    assert_eq!(codes(&e), ["no_workers", "next"]);
    assert_eq!(e["runnable"], false);

    let later = s
        .enqueue(json!({"kind": "k", "queue": "q", "delay_ms": 60000}))
        .await;
    assert_eq!(codes(&explain(&s, &later["id"]).await), ["run_at"]);

    // One running job fills a concurrency of one; the two behind wait for it, in line.
    configure(&s, "q", json!({"concurrency": 1})).await;
    let running = s.lease("q", "w1", 1).await;
    assert_eq!(running.len(), 1);
    let second = s.enqueue(json!({"kind": "k", "queue": "q"})).await;
    let third = s.enqueue(json!({"kind": "k", "queue": "q"})).await;
    let e = explain(&s, &third["id"]).await;
    assert_eq!(codes(&e), ["queue_concurrency", "in_line"]);
    assert_eq!(e["reasons"][0]["running"], 1);
    assert_eq!(e["reasons"][0]["limit"], 1);
    assert_eq!(e["reasons"][1]["ahead"], 1);
    let e = explain(&s, &running[0]["id"]).await;
    assert_eq!(codes(&e), ["running"]);

    configure(&s, "q", json!({"concurrency": 1, "paused": true})).await;
    let e = explain(&s, &second["id"]).await;
    assert_eq!(codes(&e), ["queue_paused", "queue_concurrency", "next"]);
    assert!(e["summary"].as_str().unwrap().contains("paused"));

    // Per key: acme is at its cap, globex is not.
    configure(&s, "k", json!({"key_concurrency": 1})).await;
    s.enqueue(json!({"kind": "k", "queue": "k", "concurrency_key": "acme"}))
        .await;
    assert_eq!(s.lease("k", "w1", 1).await.len(), 1);
    let acme = s
        .enqueue(json!({"kind": "k", "queue": "k", "concurrency_key": "acme"}))
        .await;
    let globex = s
        .enqueue(json!({"kind": "k", "queue": "k", "concurrency_key": "globex"}))
        .await;
    let e = explain(&s, &acme["id"]).await;
    assert_eq!(codes(&e), ["key_concurrency", "next"]);
    assert_eq!(e["reasons"][0]["key"], "acme");
    let e = explain(&s, &globex["id"]).await;
    assert_eq!(e["runnable"], true, "{e}");

    // A rate of one per minute: after one start, the next waits for its token.
    configure(&s, "r", json!({"rate": {"limit": 1, "period_ms": 60000}})).await;
    s.enqueue(json!({"kind": "k", "queue": "r"})).await;
    let waiting = s.enqueue(json!({"kind": "k", "queue": "r"})).await;
    assert_eq!(s.lease("r", "w1", 5).await.len(), 1);
    let e = explain(&s, &waiting["id"]).await;
    assert_eq!(codes(&e), ["queue_rate", "next"]);
    assert!(e["reasons"][0]["until"].is_string());
}

/// Samples the running jobs of `queue` until `stop`, checking the caps each time; returns
/// how many samples saw the global cap reached (so a test can tell the limit was exercised).
async fn sample_running(
    s: Arc<TestServer>,
    queue: String,
    cap: usize,
    key_cap: usize,
    stop: Arc<AtomicBool>,
) -> (usize, usize) {
    let (mut samples, mut at_cap) = (0, 0);
    while !stop.load(Ordering::SeqCst) {
        let page = s
            .get(&format!("/v1/jobs?queue={queue}&state=running&limit=500"))
            .await
            .expect(200)
            .body;
        let jobs = page["jobs"].as_array().expect("jobs");
        assert!(
            jobs.len() <= cap,
            "{} running over the cap of {cap}",
            jobs.len()
        );
        let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
        for j in jobs {
            *per_key
                .entry(j["concurrency_key"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        for (k, n) in &per_key {
            assert!(*n <= key_cap, "key {k} has {n} running over {key_cap}");
        }
        samples += 1;
        if jobs.len() == cap {
            at_cap += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (samples, at_cap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_at_every_moment_under_concurrent_workers() {
    let s = Arc::new(TestServer::start().await);
    // Every limit at once: 4 running, 2 per key, 100 starts a second with a burst of 10.
    configure(
        &s,
        "busy",
        json!({"concurrency": 4, "key_concurrency": 2,
               "rate": {"limit": 100, "period_ms": 1000, "burst": 10}}),
    )
    .await;
    let keys = ["a", "b", "c", "d", "e", "f"];
    let jobs: Vec<Value> = (0..150)
        .map(|i| json!({"kind": "k", "queue": "busy", "concurrency_key": keys[i % keys.len()]}))
        .collect();
    s.post("/v1/jobs/batch", json!({"jobs": jobs}))
        .await
        .expect(201);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_running(s.clone(), "busy".into(), 4, 2, stop.clone()));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut done = 0;
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    let r = s
                        .post(
                            "/v1/leases",
                            json!({"queues": ["busy"], "worker_id": format!("w{w}"),
                                   "max_jobs": 3, "wait_ms": 300}),
                        )
                        .await
                        .expect(200);
                    let jobs = r.body["jobs"].as_array().cloned().unwrap_or_default();
                    if jobs.is_empty() {
                        let q = s.get("/v1/queues/busy").await.expect(200).body;
                        if q["counts"]["available"] == 0 && q["counts"]["running"] == 0 {
                            break;
                        }
                        continue;
                    }
                    for j in &jobs {
                        tokio::time::sleep(Duration::from_millis(3 + (done % 5))).await;
                        complete(&s, j).await;
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    stop.store(true, Ordering::SeqCst);
    let (samples, at_cap) = sampler.await.expect("sampler");
    assert_eq!(total, 150, "every job ran once");
    assert!(samples > 20, "the sampler looked often ({samples})");
    assert!(
        at_cap > 0,
        "the cap was reached at some moment, so it was exercised"
    );

    // The rate: in any window of one period, at most burst + limit starts.
    let mut starts: Vec<i64> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/jobs?queue=busy&state=completed&limit=500".to_string(),
            Some(c) => format!("/v1/jobs?queue=busy&state=completed&limit=500&cursor={c}"),
        };
        let page = s.get(&path).await.expect(200).body;
        for j in page["jobs"].as_array().expect("jobs") {
            let t = j["started_at"].as_str().expect("started_at");
            let t = hopper_types::Timestamp::parse_rfc3339(t).expect("time");
            starts.push(t.as_millis());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    starts.sort();
    assert_eq!(starts.len(), 150);
    for (i, t) in starts.iter().enumerate() {
        let in_window = starts[i..].iter().take_while(|u| **u < t + 1000).count();
        assert!(
            in_window <= 110,
            "{in_window} starts within one second from {t}"
        );
    }
    let span = starts[149] - starts[0];
    assert!(
        span >= 1000,
        "150 starts at 100/s after a burst of 10 take over a second ({span} ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fair_queue_serves_a_small_tenant_behind_a_huge_backlog() {
    let s = Arc::new(TestServer::start().await);
    configure(&s, "fair", json!({"policy": "fair"})).await;
    // A huge backlog of one tenant, enqueued first.
    for _ in 0..5 {
        let big: Vec<Value> = (0..1000)
            .map(|_| json!({"kind": "k", "queue": "fair", "fairness_key": "big"}))
            .collect();
        s.post("/v1/jobs/batch", json!({"jobs": big}))
            .await
            .expect(201);
    }
    let small: Vec<Value> = (0..5)
        .map(|_| json!({"kind": "k", "queue": "fair", "fairness_key": "small"}))
        .collect();
    s.post("/v1/jobs/batch", json!({"jobs": small}))
        .await
        .expect(201);

    // Three workers lease concurrently; the order of leases is the order of started_at.
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..10 {
                    for j in s.lease("fair", &format!("w{w}"), 2).await {
                        seen.push((
                            j["attempts"][0]["started_at"]
                                .as_str()
                                .unwrap_or("")
                                .to_string(),
                            j["id"].as_str().unwrap_or("").to_string(),
                            j["fairness_key"].as_str().unwrap_or("").to_string(),
                        ));
                        complete(&s, &j).await;
                    }
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    all.sort();
    let order: Vec<&str> = all.iter().map(|(_, _, k)| k.as_str()).collect();
    let last_small = order
        .iter()
        .rposition(|k| *k == "small")
        .expect("small ran");
    assert_eq!(order.iter().filter(|k| **k == "small").count(), 5);
    // Turn by turn, the small tenant's five jobs are done within its first ten-odd leases.
    assert!(
        last_small < 14,
        "small tenant's last job was lease {last_small}: {order:?}"
    );
}

#[tokio::test]
async fn waiting_workers_get_a_job_the_moment_a_limit_allows_it() {
    let s = Arc::new(TestServer::start().await);
    configure(&s, "one", json!({"concurrency": 1})).await;
    s.enqueue(json!({"kind": "k", "queue": "one"})).await;
    s.enqueue(json!({"kind": "k", "queue": "one"})).await;
    let first = s.lease("one", "w1", 1).await;
    assert_eq!(first.len(), 1);
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = s
                .post(
                    "/v1/leases",
                    json!({"queues": ["one"], "worker_id": "w2", "wait_ms": 10000}),
                )
                .await
                .expect(200);
            (
                t.elapsed(),
                r.body["jobs"].as_array().map(Vec::len).unwrap_or(0),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    complete(&s, &first[0]).await;
    let (waited, got) = waiter.await.expect("waiter");
    assert_eq!(got, 1);
    assert!(
        waited < Duration::from_secs(3),
        "woken by the completion, not the wait's end: {waited:?}"
    );

    // A rate of one per 400 ms: the waiting worker gets the next job when the token comes.
    configure(&s, "slow", json!({"rate": {"limit": 1, "period_ms": 400}})).await;
    s.enqueue(json!({"kind": "k", "queue": "slow"})).await;
    s.enqueue(json!({"kind": "k", "queue": "slow"})).await;
    // Timed from before the first lease: the token comes 400 ms after that lease was stamped.
    let t = Instant::now();
    assert_eq!(s.lease("slow", "w1", 5).await.len(), 1);
    let r = s
        .post(
            "/v1/leases",
            json!({"queues": ["slow"], "worker_id": "w1", "wait_ms": 10000}),
        )
        .await
        .expect(200);
    let waited = t.elapsed();
    assert_eq!(r.body["jobs"].as_array().map(Vec::len), Some(1));
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "handed out when the token came: {waited:?}"
    );
}
