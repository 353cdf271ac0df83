//! Metrics end to end: a known workload through the real API (with the maintenance services
//! running on a manual clock, so the rescuer and the scheduler act when the test moves time),
//! then every counter, gauge and histogram count of `/metrics` checked exactly, and
//! `GET /v1/stats` checked against the same workload. Also: every metric the shipped Grafana
//! dashboard and Prometheus alert rules use is one the server exports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hopper_types::{Clock, ManualClock, Timestamp};
use serde_json::{Value, json};

use crate::common::{TestServer, test_config};

/// One parsed scrape: every sample by name and sorted labels.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
    // Metric families by their `# TYPE` line.
    families: BTreeMap<String, String>,
    text: String,
}

/// Splits `a="x",b="y"` into pairs (values here never hold quotes or commas).
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = s
        .split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad label pair `{p}`"));
            (k.to_string(), v.trim_end_matches('"').to_string())
        })
        .collect();
    out.sort();
    out
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect("TYPE line has a type");
                families.insert(name.to_string(), ty.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, parse_labels(l.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in `{line}`"));
            samples.insert((name.to_string(), labels), value);
        }
        Scrape {
            samples,
            families,
            text: text.to_string(),
        }
    }

    /// The value of one sample, if exported.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        self.samples.get(&(name.to_string(), key)).copied()
    }

    /// Asserts one sample's value.
    #[track_caller]
    fn expect(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let got = self.get(name, labels);
        assert_eq!(
            got,
            Some(want),
            "{name}{labels:?}: got {got:?}, want {want}\n{}",
            self.text
        );
    }

    /// Whether any sample of family `family` exists (`family`, or it with a suffix).
    fn has_samples_of(&self, family: &str) -> bool {
        self.samples.keys().any(|(n, _)| {
            n == family
                || ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .any(|s| n.strip_suffix(s) == Some(family))
        })
    }
}

async fn scrape(s: &TestServer) -> Scrape {
    let r = s.get("/metrics").await.expect(200);
    Scrape::parse(r.body.as_str().expect("metrics are text"))
}

/// Polls `f` every 20 ms until it holds, or fails after 10 s.
async fn eventually<F: AsyncFn() -> bool>(what: &str, f: F) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the workload left behind, for the checks.
struct Workload {
    t0: Timestamp,
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("job id").to_string()
}

/// A server on a manual clock with every maintenance service running (the rescuer without its
/// startup grace), so the test decides when leases expire and ticks come.
async fn server() -> (TestServer, ManualClock) {
    let mut config = test_config();
    config.maintenance.rescuer.skip_startup_grace = true;
    let clock = TestServer::manual_clock();
    let s = TestServer::start_with(config, Some(clock.clone())).await;
    eventually("the server leads its store", async || {
        scrape(&s).await.get("hopper_leader", &[]) == Some(1.0)
    })
    .await;
    (s, clock)
}

/// The workload:
/// - queue `a`, kind `x`: 7 jobs (5 one by one, 2 in a batch) plus a duplicate of the first
///   (same idempotency key: not a new job); one cancelled while waiting; 6 leased by worker `wa`:
///   3 completed (one reported twice, one through `/v1/acks`), 1 failed into retryable (through
///   `/v1/acks`), 1 failed into dead by running out of attempts, 1 failed as not retryable.
/// - queue `b`, kind `y`: 5 jobs (1 in the batch, 4 one by one); one cancelled while waiting;
///   3 leased by worker `wb`: one with a 1 s lease that expires and is rescued (retryable),
///   one completed a second after its lease, one left running; one left available.
/// - queue `sched`, kind `cron`: 1 job enqueued by the scheduler when its schedule ticks.
///
/// Time: everything at t0, except that the clock then moves 1 s, the `b` completion happens at
/// t0 + 1 s, and the rescue and the tick happen at t0 + 1 s.
async fn run_workload(s: &TestServer, clock: &ManualClock) -> Workload {
    let t0 = clock.now();
    s.post(
        "/v1/schedules",
        json!({"name": "tick", "cron": "* * * * * *", "job": {"kind": "cron", "queue": "sched"}}),
    )
    .await
    .expect(201);

    // Queue a, kind x.
    let ax = |extra: Value| {
        let mut j = json!({"kind": "x", "queue": "a"});
        if let (Some(j), Some(e)) = (j.as_object_mut(), extra.as_object()) {
            j.extend(e.clone());
        }
        j
    };
    let a1 = id_of(&s.enqueue(ax(json!({"idempotency_key": "k-a1"}))).await);
    let dup = s
        .post("/v1/jobs", ax(json!({"idempotency_key": "k-a1"})))
        .await
        .expect(200)
        .body;
    assert_eq!(
        (dup["duplicate"].clone(), id_of(&dup)),
        (json!(true), a1.clone())
    );
    let a2 = id_of(&s.enqueue(ax(json!({}))).await);
    let a3 = id_of(&s.enqueue(ax(json!({}))).await);
    let a4 = id_of(&s.enqueue(ax(json!({}))).await);
    let a5 = id_of(&s.enqueue(ax(json!({"max_attempts": 1}))).await);
    let by =
        json!({"kind": "y", "queue": "b", "backoff": {"kind": "fixed", "delay_ms": 3_600_000}});
    let batch = s
        .post(
            "/v1/jobs/batch",
            json!({"jobs": [ax(json!({})), ax(json!({})), by]}),
        )
        .await
        .expect(201)
        .body;
    let a6 = id_of(&batch["jobs"][0]);
    let a7 = id_of(&batch["jobs"][1]);
    let mut b_ids = vec![id_of(&batch["jobs"][2])];
    for _ in 0..4 {
        b_ids.push(id_of(&s.enqueue(by.clone()).await));
    }

    // Cancelled while waiting: one of each queue.
    for id in [&a7, &b_ids[3]] {
        let j = s
            .post(&format!("/v1/jobs/{id}/cancel"), json!({}))
            .await
            .expect(200)
            .body;
        assert_eq!(j["state"], "cancelled");
    }

    // Leases.
    let lease = async |queue: &str, worker: &str, max: u32, lease_ms: i64| -> Vec<Value> {
        let r = s
            .post(
                "/v1/leases",
                json!({"queues": [queue], "worker_id": worker, "max_jobs": max, "lease_ms": lease_ms}),
            )
            .await
            .expect(200);
        r.body["jobs"].as_array().cloned().unwrap_or_default()
    };
    let tokens: BTreeMap<String, String> = lease("a", "wa", 6, 30_000)
        .await
        .iter()
        .map(|j| {
            (
                id_of(j),
                j["lease_token"].as_str().expect("token").to_string(),
            )
        })
        .collect();
    let mut want: Vec<&String> = vec![&a1, &a2, &a3, &a4, &a5, &a6];
    want.sort();
    assert_eq!(
        tokens.keys().collect::<Vec<_>>(),
        want,
        "a leases all but the cancelled one"
    );
    let expiring = lease("b", "wb", 1, 1_000).await;
    let b_leased = lease("b", "wb", 2, 30_000).await;
    assert_eq!((expiring.len(), b_leased.len()), (1, 2));
    let expiring = id_of(&expiring[0]);
    let (b_done, b_done_token) = (
        id_of(&b_leased[0]),
        b_leased[0]["lease_token"]
            .as_str()
            .expect("token")
            .to_string(),
    );

    // Outcomes on a, at t0.
    let tok = |id: &String| tokens[id].clone();
    s.post(
        &format!("/v1/jobs/{a1}/complete"),
        json!({"lease_token": tok(&a1)}),
    )
    .await
    .expect(200);
    for repeat in [false, true] {
        let j = s
            .post(
                &format!("/v1/jobs/{a2}/complete"),
                json!({"lease_token": tok(&a2)}),
            )
            .await
            .expect(200)
            .body;
        // The second report is a worker retrying after a lost answer: recorded once.
        assert_eq!(j["duplicate"] == json!(true), repeat, "{j}");
    }
    let acks = s
        .post(
            "/v1/acks",
            json!({"acks": [
                {"id": a3, "lease_token": tok(&a3), "outcome": "completed"},
                {"id": a4, "lease_token": tok(&a4), "outcome": "failed",
                 "error": {"message": "try later"}, "retry_in_ms": 3_600_000},
            ]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(acks["results"][0]["ok"], true, "{acks}");
    assert_eq!(acks["results"][1]["ok"], true, "{acks}");
    let j = s
        .post(
            &format!("/v1/jobs/{a5}/fail"),
            json!({"lease_token": tok(&a5), "error": {"message": "boom"}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(j["state"], "dead", "out of attempts");
    let j = s
        .post(
            &format!("/v1/jobs/{a6}/fail"),
            json!({"lease_token": tok(&a6), "error": {"message": "bad input", "retryable": false}}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(j["state"], "dead", "not retryable");

    // One second later: b's 1 s lease has run out and the schedule's next tick has come.
    clock.advance_ms(1_000);
    s.post(
        &format!("/v1/jobs/{b_done}/complete"),
        json!({"lease_token": b_done_token}),
    )
    .await
    .expect(200);
    eventually("the rescuer reclaims the expired lease", async || {
        scrape(s)
            .await
            .get("hopper_lease_rescues_total", &[("queue", "b")])
            == Some(1.0)
    })
    .await;
    let rescued = s
        .get(&format!("/v1/jobs/{expiring}"))
        .await
        .expect(200)
        .body;
    assert_eq!(rescued["state"], "retryable", "{rescued}");
    assert_eq!(rescued["errors"][0]["kind"], "lease_expired", "{rescued}");
    eventually("the scheduler enqueues the tick's job", async || {
        scrape(s).await.get(
            "hopper_jobs_enqueued_total",
            &[("queue", "sched"), ("kind", "cron")],
        ) == Some(1.0)
    })
    .await;
    // No more ticks: the clock does not move again, and the schedule goes.
    s.delete("/v1/schedules/tick").await.expect(204);
    Workload { t0 }
}

#[tokio::test]
async fn metrics_count_a_known_workload_exactly() {
    let (s, clock) = server().await;
    let w = run_workload(&s, &clock).await;
    let m = scrape(&s).await;

    // Counters per queue and kind.
    let ax = [("queue", "a"), ("kind", "x")];
    let by = [("queue", "b"), ("kind", "y")];
    let cron = [("queue", "sched"), ("kind", "cron")];
    for (name, a, b, sched) in [
        ("hopper_jobs_enqueued_total", 7.0, 5.0, 1.0),
        ("hopper_jobs_started_total", 6.0, 3.0, 0.0),
        ("hopper_jobs_completed_total", 3.0, 1.0, 0.0),
        // a: the retryable one and both dead ones; b: the rescued lease.
        ("hopper_jobs_failed_total", 3.0, 1.0, 0.0),
        ("hopper_jobs_dead_total", 2.0, 0.0, 0.0),
        ("hopper_jobs_cancelled_total", 1.0, 1.0, 0.0),
        ("hopper_queue_latency_seconds_count", 6.0, 3.0, 0.0),
        // Attempts a worker ended (completed or failed); a rescued lease is not one.
        ("hopper_run_time_seconds_count", 6.0, 1.0, 0.0),
    ] {
        m.expect(name, &ax, a);
        m.expect(name, &by, b);
        m.expect(name, &cron, sched);
    }
    // The only b completion ran exactly 1 s (lease at t0, complete at t0 + 1 s); everything
    // else took no time on the manual clock.
    m.expect("hopper_run_time_seconds_sum", &by, 1.0);
    m.expect("hopper_run_time_seconds_sum", &ax, 0.0);
    m.expect("hopper_queue_latency_seconds_sum", &ax, 0.0);
    m.expect("hopper_lease_rescues_total", &[("queue", "b")], 1.0);
    assert_eq!(m.get("hopper_lease_rescues_total", &[("queue", "a")]), None);
    // Nothing else was counted under any other label set.
    for name in [
        "hopper_jobs_enqueued_total",
        "hopper_jobs_completed_total",
        "hopper_jobs_failed_total",
    ] {
        let series = m.samples.keys().filter(|(n, _)| n == name).count();
        assert_eq!(series, 3, "{name} has one series per (queue, kind) seen");
    }

    // Jobs per state, from the store.
    let state = |q: &'static str, st: &'static str, n: f64| {
        m.expect("hopper_jobs", &[("queue", q), ("state", st)], n);
    };
    for (st, n) in [
        ("available", 0.0),
        ("running", 0.0),
        ("completed", 3.0),
        ("retryable", 1.0),
        ("dead", 2.0),
        ("cancelled", 1.0),
        ("scheduled", 0.0),
    ] {
        state("a", st, n);
    }
    for (st, n) in [
        ("available", 1.0),
        ("running", 1.0),
        ("completed", 1.0),
        ("retryable", 1.0),
        ("dead", 0.0),
        ("cancelled", 1.0),
    ] {
        state("b", st, n);
    }
    state("sched", "available", 1.0);

    // Queue gauges: b's waiting job has waited the 1 s the clock moved; the tick's job none.
    let age = "hopper_queue_oldest_available_age_seconds";
    m.expect(age, &[("queue", "a")], 0.0);
    m.expect(age, &[("queue", "b")], 1.0);
    m.expect(age, &[("queue", "sched")], 0.0);
    m.expect("hopper_queue_paused", &[("queue", "a")], 0.0);
    m.expect("hopper_queue_workers", &[("queue", "a")], 1.0);
    m.expect("hopper_queue_workers", &[("queue", "b")], 1.0);
    // A queue with a waiting job and no worker: what the "no workers" alert looks for.
    m.expect("hopper_queue_workers", &[("queue", "sched")], 0.0);
    m.expect("hopper_workers_seen", &[], 2.0);
    m.expect("hopper_leader", &[], 1.0);

    // HTTP, by route pattern.
    let http = |route: &'static str, status: &'static str, n: f64| {
        m.expect(
            "hopper_http_requests_total",
            &[("route", route), ("method", "POST"), ("status", status)],
            n,
        );
    };
    http("/v1/jobs/{id}/complete", "200", 4.0);
    http("/v1/jobs/{id}/fail", "200", 2.0);
    http("/v1/acks", "200", 1.0);
    http("/v1/jobs", "201", 9.0);
    http("/v1/jobs", "200", 1.0);
    m.expect(
        "hopper_http_request_duration_seconds_count",
        &[
            ("route", "/v1/jobs"),
            ("method", "POST"),
            ("status_class", "2xx"),
        ],
        10.0,
    );
    m.expect(
        "hopper_http_request_duration_seconds_count",
        &[
            ("route", "/v1/leases"),
            ("method", "POST"),
            ("status_class", "2xx"),
        ],
        3.0,
    );

    // Store operations, timed by the wrapper: one insert per enqueue call (10 single, 1 batch),
    // one ack call per outcome call (a1, a2 twice, the acks, a5, a6, b's completion).
    let op = |name: &'static str, n: f64| {
        m.expect(
            "hopper_store_operation_duration_seconds_count",
            &[("operation", name)],
            n,
        );
    };
    op("job_insert_many", 11.0);
    op("job_ack_many", 7.0);
    op("job_lease_many", 3.0);
    op("job_cancel", 2.0);
    op("schedule_fire", 1.0);
    let rescue_calls = m
        .get(
            "hopper_store_operation_duration_seconds_count",
            &[("operation", "job_rescue_expired")],
        )
        .unwrap_or(0.0);
    assert!(rescue_calls >= 1.0, "the rescuer's calls are timed too");

    // The same workload, seen by /v1/stats.
    let stats = s.get("/v1/stats").await.expect(200).body;
    let now = Timestamp::parse_rfc3339(stats["now"].as_str().expect("now")).expect("rfc3339");
    assert_eq!(now, w.t0.plus_ms(1_000));
    assert_eq!(stats["bucket_ms"], 1000);
    assert!(stats["node_id"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(
        stats["queues"],
        json!([
            {"queue": "a", "enqueued": 7, "completed": 3, "failed": 3, "dead": 2},
            {"queue": "b", "enqueued": 5, "completed": 1, "failed": 1, "dead": 0},
            {"queue": "sched", "enqueued": 1, "completed": 0, "failed": 0, "dead": 0},
        ])
    );
    let series = stats["series"].as_array().expect("series");
    assert_eq!(series.len(), 300);
    let at = |p: &Value| Timestamp::parse_rfc3339(p["at"].as_str().expect("at")).expect("at");
    assert_eq!(
        at(&series[299]),
        w.t0.plus_ms(1_000),
        "ends with the current second"
    );
    assert_eq!(at(&series[0]), w.t0.plus_ms(-298_000));
    let keys = [
        "at",
        "enqueued",
        "started",
        "completed",
        "failed",
        "dead",
        "queue_latency_ms_avg",
        "queue_latency_ms_p95",
        "run_time_ms_avg",
    ];
    for p in series {
        let mut got: Vec<&str> = p
            .as_object()
            .expect("point")
            .keys()
            .map(String::as_str)
            .collect();
        got.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{p}");
    }
    let quiet = json!({"enqueued": 0, "started": 0, "completed": 0, "failed": 0, "dead": 0,
        "queue_latency_ms_avg": null, "queue_latency_ms_p95": null, "run_time_ms_avg": null});
    let counts_of = |p: &Value| {
        let mut p = p.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("at");
        }
        p
    };
    for p in &series[..298] {
        assert_eq!(counts_of(p), quiet, "quiet second {p}");
    }
    assert_eq!(
        counts_of(&series[298]),
        json!({"enqueued": 12, "started": 9, "completed": 3, "failed": 3, "dead": 2,
            "queue_latency_ms_avg": 0.0, "queue_latency_ms_p95": 0.0, "run_time_ms_avg": 0.0})
    );
    assert_eq!(
        counts_of(&series[299]),
        json!({"enqueued": 1, "started": 0, "completed": 1, "failed": 1, "dead": 0,
            "queue_latency_ms_avg": null, "queue_latency_ms_p95": null, "run_time_ms_avg": 1000.0})
    );
    // One queue's series.
    let only_b = s.get("/v1/stats?queue=b").await.expect(200).body;
    let series = only_b["series"].as_array().expect("series");
    assert_eq!(series.len(), 300);
    assert_eq!(
        (
            series[298]["enqueued"].clone(),
            series[298]["started"].clone()
        ),
        (json!(5), json!(3))
    );
    assert_eq!(
        (
            series[299]["completed"].clone(),
            series[299]["failed"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(
        only_b["queues"], stats["queues"],
        "totals cover every queue"
    );
    s.get("/v1/stats?queue=no%20such")
        .await
        .expect_error(400, "invalid_argument", Some("queue"));
    s.get("/v1/stats?queues=a")
        .await
        .expect_error(400, "invalid_argument", Some("queues"));
}

/// Every `hopper_*` metric named in `text`, by family: `_bucket`, `_count`, `_sum` and
/// `_total` suffixes removed.
fn metric_families_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("hopper_") {
        let start = i + pos;
        // Only whole identifiers: `xhopper_y` is not a metric name.
        let whole =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "hopper_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if whole {
            let mut name = &text[start..end];
            for suffix in ["_bucket", "_count", "_sum", "_total"] {
                if let Some(n) = name.strip_suffix(suffix) {
                    name = n;
                    break;
                }
            }
            out.insert(name.to_string());
        }
        i = end;
    }
    out
}

fn deploy_file(path: &str) -> String {
    let full = format!("{}/../../deploy/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"))
}

/// Every PromQL expression of the dashboard: each target's `expr`, and the template
/// variables' queries.
fn dashboard_exprs(dash: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dash["panels"].as_array().expect("panels").iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_string());
            }
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        match &v["query"] {
            Value::String(q) => out.push(q.clone()),
            Value::Object(o) => {
                if let Some(q) = o.get("query").and_then(Value::as_str) {
                    out.push(q.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn dashboard_and_alerts_use_only_exported_metrics() {
    // The dashboard: importable JSON with a Prometheus datasource input.
    let dash: Value = serde_json::from_str(&deploy_file("grafana/hopper-dashboard.json"))
        .expect("dashboard is JSON");
    assert!(
        dash["schemaVersion"].as_i64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().expect("panels") {
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "panel ids are unique"
        );
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
            assert!(
                t["expr"].as_str().is_some_and(|e| e.contains("hopper_")),
                "{t}"
            );
        }
    }
    let exprs = dashboard_exprs(&dash);
    assert!(exprs.len() >= 12, "{exprs:?}");

    // The alert rules: Prometheus rule groups, each rule with an expression, a duration, a
    // severity and a summary.
    let text = deploy_file("prometheus/hopper-alerts.yml");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("alerts are YAML");
    let doc = &docs[0];
    let groups = doc["groups"].as_vec().expect("groups");
    let mut alerts = BTreeSet::new();
    let mut rule_exprs = Vec::new();
    for g in groups {
        assert!(g["name"].as_str().is_some(), "group name");
        for r in g["rules"].as_vec().expect("rules") {
            let name = r["alert"].as_str().expect("alert name");
            assert!(alerts.insert(name.to_string()), "alert {name} repeats");
            let expr = r["expr"].as_str().expect("expr");
            assert!(r["for"].as_str().is_some(), "{name}: for");
            assert!(
                r["labels"]["severity"].as_str().is_some(),
                "{name}: severity"
            );
            assert!(
                r["annotations"]["summary"].as_str().is_some(),
                "{name}: summary"
            );
            rule_exprs.push(expr.to_string());
        }
    }
    for want in [
        "HopperBacklogGrowing",
        "HopperDeadLettersRising",
        "HopperNoWorkersForQueue",
        "HopperStoreLatencyHigh",
    ] {
        assert!(alerts.contains(want), "missing alert {want}: {alerts:?}");
    }

    // Every metric they use is exported after a workload.
    let (s, clock) = server().await;
    run_workload(&s, &clock).await;
    let m = scrape(&s).await;
    let mut used = BTreeSet::new();
    for e in exprs.iter().chain(&rule_exprs) {
        used.extend(metric_families_in(e));
    }
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        assert!(
            m.families.contains_key(name),
            "`{name}` is used by the dashboard or alerts but not exported:\n{}",
            m.text
        );
        assert!(
            m.has_samples_of(name),
            "`{name}` has no samples after the workload"
        );
    }
}

#[test]
fn metric_names_are_found_and_normalised() {
    let got = metric_families_in(
        "histogram_quantile(0.99, sum by (le) (rate(hopper_store_operation_duration_seconds_bucket[5m]))) \
         / increase(hopper_jobs_dead_total[15m]) + xhopper_nope + hopper_jobs{state=\"available\"}",
    );
    let want: BTreeSet<String> = [
        "hopper_store_operation_duration_seconds",
        "hopper_jobs_dead",
        "hopper_jobs",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}
