//! Workflow definitions end to end: store and read them, start runs with parameters and a
//! logical date (idempotently), backfill 30 dates with a cap on running runs (twice submitted,
//! still 30 runs), and runs fired by a definition's cron expression. The workflow trigger is
//! driven by hand (`run_once`) over the server's store, on a manual clock where time matters.

use std::collections::HashSet;

use hopper_server::maintenance::{WorkflowTrigger, WorkflowTriggerConfig};
use hopper_types::{Limits, ManualClock, Timestamp};
use serde_json::{Value, json};

use crate::common::{TestServer, test_config};

/// A server with its background services off (the test runs the trigger), on `clock` if given.
async fn server(clock: Option<ManualClock>) -> TestServer {
    let mut config = test_config();
    config.maintenance.disabled = true;
    TestServer::start_with(config, clock).await
}

fn trigger(s: &TestServer) -> WorkflowTrigger {
    WorkflowTrigger::new(
        s.store.clone(),
        WorkflowTriggerConfig::default(),
        Limits::default(),
    )
}

fn report_definition() -> Value {
    json!({
        "params": {"table": "events", "limit": 10},
        "steps": [
            {"step": "extract", "job": {"kind": "extract", "queue": "etl",
                "args": {"table": "{{params.table}}", "day": "{{logical_date}}", "limit": "{{params.limit}}"}}},
            {"step": "load", "depends_on": ["extract"], "job": {"kind": "load", "queue": "etl"}}
        ]
    })
}

async fn runs_of(s: &TestServer, definition: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s
            .get(&format!("/v1/workflows?limit=500&cursor={cursor}"))
            .await
            .expect(200)
            .body;
        for w in page["workflows"].as_array().unwrap() {
            if w["definition"] == definition {
                all.push(w.clone());
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return all,
        }
    }
}

#[tokio::test]
async fn definitions_are_stored_and_runs_take_parameters_and_a_logical_date() {
    let s = server(None).await;
    let d = s
        .send(
            s.client
                .put(s.url("/v1/workflows/definitions/report"))
                .json(&report_definition()),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(d["name"], "report");
    assert_eq!(
        s.get("/v1/workflows/definitions").await.expect(200).body["definitions"][0]["name"],
        "report"
    );

    let r = s
        .post(
            "/v1/workflows/definitions/report/runs",
            json!({"params": {"limit": 99}, "logical_date": "2026-11-29"}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(r["workflow"]["definition"], "report");
    assert_eq!(r["workflow"]["logical_date"], "2026-11-29");
    let extract = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["workflow"]["step"] == "extract")
        .unwrap();
    assert_eq!(
        extract["args"],
        json!({"table": "events", "day": "2026-11-29", "limit": 99})
    );
    // The same logical date again: the same run, nothing new.
    let again = s
        .post(
            "/v1/workflows/definitions/report/runs",
            json!({"logical_date": "2026-11-29"}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(again["workflow"]["id"], r["workflow"]["id"]);
    assert_eq!(runs_of(&s, "report").await.len(), 1);
    // Without a body: now as logical date.
    let now = s
        .post("/v1/workflows/definitions/report/runs", json!({}))
        .await
        .expect(201)
        .body;
    assert!(
        now["workflow"]["logical_date"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    for (body, field) in [
        (
            json!({"steps": [{"step": "a", "depends_on": ["a"], "job": {"kind": "k"}}]}),
            "steps[0].depends_on",
        ),
        (
            json!({"steps": [{"step": "a", "job": {"kind": "k", "args": {"x": "{{params.nope}}"}}}]}),
            "steps[0].job.args",
        ),
        (
            json!({"cron": "every day", "steps": [{"step": "a", "job": {"kind": "k"}}]}),
            "cron",
        ),
    ] {
        s.send(
            s.client
                .put(s.url("/v1/workflows/definitions/bad"))
                .json(&body),
        )
        .await
        .expect_error(400, "invalid_argument", Some(field));
    }
    s.get("/v1/workflows/definitions/bad")
        .await
        .expect_error(404, "not_found", None);
    s.post("/v1/workflows/definitions/nope/runs", json!({}))
        .await
        .expect_error(404, "not_found", None);
    s.delete("/v1/workflows/definitions/report")
        .await
        .expect(204);
    s.get("/v1/workflows/definitions/report")
        .await
        .expect_error(404, "not_found", None);
    assert_eq!(
        runs_of(&s, "report").await.len(),
        2,
        "runs outlive their definition"
    );
}

/// Completes every leasable step of queue `etl`; answers how many.
async fn work_once(s: &TestServer) -> usize {
    let jobs = s.lease("etl", "w1", 1000).await;
    for j in &jobs {
        s.post(
            &format!("/v1/jobs/{}/complete", j["id"].as_str().unwrap()),
            json!({"lease_token": j["lease_token"], "result": j["args"]}),
        )
        .await
        .expect(200);
    }
    jobs.len()
}

#[tokio::test]
async fn a_backfill_of_30_dates_makes_30_runs_once_never_more_than_the_cap_running() {
    let s = server(None).await;
    s.send(
        s.client
            .put(s.url("/v1/workflows/definitions/report"))
            .json(&report_definition()),
    )
    .await
    .expect(200);
    // One date already has its run: the backfill makes none for it.
    s.post(
        "/v1/workflows/definitions/report/runs",
        json!({"logical_date": "2026-11-05"}),
    )
    .await
    .expect(201);
    let body = json!({"from": "2026-11-01", "to": "2026-11-30", "max_running": 3});
    let b = s
        .post("/v1/workflows/definitions/report/backfill", body.clone())
        .await
        .expect(201)
        .body;
    assert_eq!(b["progress"]["dates"], 30);
    assert_eq!(b["progress"]["created"], 1);
    let id = b["backfill"]["id"].as_str().unwrap().to_string();
    let t = trigger(&s);
    let mut max_running = 0;
    for round in 0..100 {
        t.run_once().await.expect("trigger pass");
        let running = runs_of(&s, "report")
            .await
            .iter()
            .filter(|w| w["state"] == "running")
            .count();
        max_running = max_running.max(running);
        assert!(running <= 3, "round {round}: {running} runs running, cap 3");
        // Submitting again changes nothing, whenever it happens.
        let again = s
            .post("/v1/workflows/definitions/report/backfill", body.clone())
            .await
            .expect(200)
            .body;
        assert_eq!(again["backfill"]["id"], id.as_str());
        if work_once(&s).await == 0 && running == 0 {
            break;
        }
    }
    assert_eq!(max_running, 3, "the cap was reached");
    let runs = runs_of(&s, "report").await;
    assert_eq!(runs.len(), 30);
    let dates: HashSet<&str> = runs
        .iter()
        .map(|w| w["logical_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates.len(), 30);
    assert!(runs.iter().all(|w| w["state"] == "completed"));
    let progress = s
        .get(&format!("/v1/workflows/backfills/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(
        progress["progress"],
        json!({"dates": 30, "created": 30, "running": 0, "completed": 30, "failed": 0})
    );
    assert!(progress["backfill"]["finished_at"].is_string());
    // A finished backfill submitted again still makes nothing.
    s.post("/v1/workflows/definitions/report/backfill", body)
        .await
        .expect(200);
    t.run_once().await.expect("trigger pass");
    assert_eq!(runs_of(&s, "report").await.len(), 30);

    for (body, field) in [
        (json!({"from": "2026-11-02", "to": "2026-11-01"}), "to"),
        (json!({"from": "yesterday", "to": "2026-11-01"}), "from"),
        (
            json!({"from": "2026-11-01", "to": "2026-11-02", "max_running": 0}),
            "max_running",
        ),
    ] {
        s.post("/v1/workflows/definitions/report/backfill", body)
            .await
            .expect_error(400, "invalid_argument", Some(field));
    }
}

#[tokio::test]
async fn a_definitions_cron_starts_one_run_per_tick() {
    let start = Timestamp::parse_rfc3339("2026-11-30T10:00:30Z").unwrap();
    let clock = ManualClock::new(start);
    let s = server(Some(clock.clone())).await;
    let mut d = report_definition();
    d["cron"] = json!("* * * * *");
    let stored = s
        .send(
            s.client
                .put(s.url("/v1/workflows/definitions/minutely"))
                .json(&d),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(stored["next_fire_at"], "2026-11-30T10:01:00.000Z");
    let t = trigger(&s);
    assert_eq!(t.run_once().await.unwrap().started, 0, "nothing due yet");
    clock.advance_ms(30_000);
    assert_eq!(t.run_once().await.unwrap().started, 1);
    assert_eq!(t.run_once().await.unwrap().started, 0, "a tick fires once");
    // Three minutes missed: the tick on time runs, and of the late ones only the latest (like
    // a schedule's `run_once`).
    clock.advance_ms(180_000);
    assert_eq!(t.run_once().await.unwrap().started, 2);
    let mut dates: Vec<String> = runs_of(&s, "minutely")
        .await
        .iter()
        .map(|w| w["logical_date"].as_str().unwrap().to_string())
        .collect();
    dates.sort();
    assert_eq!(
        dates,
        vec![
            "2026-11-30T10:01:00.000Z",
            "2026-11-30T10:03:00.000Z",
            "2026-11-30T10:04:00.000Z"
        ]
    );
    let after = s
        .get("/v1/workflows/definitions/minutely")
        .await
        .expect(200)
        .body;
    assert_eq!(after["next_fire_at"], "2026-11-30T10:05:00.000Z");
}
