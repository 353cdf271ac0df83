//! Workflow runs end to end over HTTP: submit, read, list, the results a leased step gets
//! from its parents, failure policies as a worker sees them, cancel, retry, dynamic fan-out,
//! and invalid workflows refused with a 400 naming the problem while nothing is stored.

use serde_json::{Value, json};

use crate::common::TestServer;

fn step(name: &str, deps: &[&str]) -> Value {
    json!({"step": name, "depends_on": deps, "job": {"kind": "k", "queue": name, "max_attempts": 1}})
}

async fn submit(s: &TestServer, steps: Value) -> Value {
    s.post("/v1/workflows", json!({"name": "pipeline", "steps": steps}))
        .await
        .expect(201)
        .body
}

/// Leases the step of queue `name` and completes it with `result`; answers the leased job.
async fn run_step(s: &TestServer, name: &str, result: Value) -> Value {
    let jobs = s.lease(name, "w1", 1).await;
    assert_eq!(jobs.len(), 1, "step {name} is leasable");
    let job = jobs[0].clone();
    let id = job["id"].as_str().unwrap();
    s.post(
        &format!("/v1/jobs/{id}/complete"),
        json!({"lease_token": job["lease_token"], "result": result}),
    )
    .await
    .expect(200);
    job
}

async fn get_run(s: &TestServer, id: &str) -> Value {
    s.get(&format!("/v1/workflows/{id}")).await.expect(200).body
}

fn step_state(run: &Value, name: &str) -> String {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["workflow"]["step"] == name)
        .map(|j| j["state"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[tokio::test]
async fn a_diamond_passes_each_parents_result_to_the_join() {
    let s = TestServer::start().await;
    let r = submit(
        &s,
        json!([
            step("join", &["left", "right"]),
            step("left", &["root"]),
            step("right", &["root"]),
            step("root", &[])
        ]),
    )
    .await;
    assert_eq!(r["workflow"]["state"], "running");
    assert_eq!(r["workflow"]["name"], "pipeline");
    assert_eq!(r["steps"].as_array().unwrap().len(), 4);
    let id = r["workflow"]["id"].as_str().unwrap().to_string();
    assert_eq!(step_state(&r, "join"), "pending");
    assert!(s.lease("join", "w1", 1).await.is_empty());

    let root = run_step(&s, "root", json!({"rows": 10})).await;
    assert!(root.get("parents").is_none(), "a root step has no parents");
    let left = run_step(&s, "left", json!("L")).await;
    assert_eq!(left["parents"], json!({"root": {"rows": 10}}));
    assert_eq!(left["workflow"]["step"], "left");
    run_step(&s, "right", json!(["R"])).await;
    let join = run_step(&s, "join", json!(null)).await;
    assert_eq!(join["parents"], json!({"left": "L", "right": ["R"]}));
    assert!(join.get("failed_parents").is_none());

    let run = get_run(&s, &id).await;
    assert_eq!(run["workflow"]["state"], "completed");
    assert!(run["workflow"]["finished_at"].is_string());
    let listed = s
        .get("/v1/workflows?state=completed")
        .await
        .expect(200)
        .body;
    assert_eq!(listed["workflows"][0]["id"], id.as_str());
    assert!(
        s.get("/v1/workflows?state=running").await.expect(200).body["workflows"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn failure_policies_as_the_worker_sees_them() {
    let s = TestServer::start().await;
    let r = submit(
        &s,
        json!([
            {"step": "flaky", "on_failure": "continue", "job": {"kind": "k", "queue": "flaky", "max_attempts": 1}},
            {"step": "fragile", "job": {"kind": "k", "queue": "fragile", "max_attempts": 1}},
            step("report", &["flaky"]),
            step("never", &["fragile"]),
        ]),
    )
    .await;
    let id = r["workflow"]["id"].as_str().unwrap().to_string();
    for name in ["flaky", "fragile"] {
        let job = s.lease(name, "w1", 1).await.remove(0);
        s.post(
            &format!("/v1/jobs/{}/fail", job["id"].as_str().unwrap()),
            json!({"lease_token": job["lease_token"], "error": {"message": format!("{name} broke")}}),
        )
        .await
        .expect(200);
    }
    let run = get_run(&s, &id).await;
    assert_eq!(
        step_state(&run, "never"),
        "cancelled",
        "cancel_dependents by default"
    );
    let report = run_step(&s, "report", json!("done")).await;
    assert_eq!(report["parents"], json!({"flaky": null}));
    assert_eq!(report["failed_parents"]["flaky"]["state"], "dead");
    assert_eq!(report["failed_parents"]["flaky"]["error"], "flaky broke");
    let run = get_run(&s, &id).await;
    assert_eq!(run["workflow"]["state"], "failed");
    assert_eq!(run["workflow"]["failed_steps"], 2);

    // Retry: the failed steps start over, the completed one is kept.
    let retried = s
        .post(&format!("/v1/workflows/{id}/retry"), json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(retried["state"], "running");
    let run = get_run(&s, &id).await;
    assert_eq!(step_state(&run, "report"), "completed");
    assert_eq!(step_state(&run, "never"), "pending");
    run_step(&s, "flaky", json!(1)).await;
    run_step(&s, "fragile", json!(2)).await;
    run_step(&s, "never", json!(3)).await;
    assert_eq!(get_run(&s, &id).await["workflow"]["state"], "completed");
    s.post(&format!("/v1/workflows/{id}/retry"), json!({}))
        .await
        .expect_error(409, "invalid_state", None);
}

#[tokio::test]
async fn cancel_stops_what_has_not_finished() {
    let s = TestServer::start().await;
    let r = submit(&s, json!([step("a", &[]), step("b", &["a"])])).await;
    let id = r["workflow"]["id"].as_str().unwrap().to_string();
    let a = s.lease("a", "w1", 1).await.remove(0);
    let w = s
        .post(&format!("/v1/workflows/{id}/cancel"), json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(
        (w["state"].as_str(), w["cancel_requested"].as_bool()),
        (Some("running"), Some(true))
    );
    assert_eq!(step_state(&get_run(&s, &id).await, "b"), "cancelled");
    let a_id = a["id"].as_str().unwrap();
    let hb = s
        .post(
            &format!("/v1/jobs/{a_id}/heartbeat"),
            json!({"lease_token": a["lease_token"]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(hb["cancel_requested"], true, "the running step learns it");
    s.post(
        &format!("/v1/jobs/{a_id}/cancelled"),
        json!({"lease_token": a["lease_token"]}),
    )
    .await
    .expect(200);
    assert_eq!(get_run(&s, &id).await["workflow"]["state"], "cancelled");
    s.post(&format!("/v1/workflows/{id}/cancel"), json!({}))
        .await
        .expect_error(409, "invalid_state", None);
}

#[tokio::test]
async fn a_running_step_fans_out_and_the_fan_in_fires_after_the_last_child() {
    let s = TestServer::start().await;
    let r = submit(&s, json!([step("split", &[])])).await;
    let id = r["workflow"]["id"].as_str().unwrap().to_string();
    let split = s.lease("split", "w1", 1).await.remove(0);
    let mut steps: Vec<Value> = (0..10)
        .map(|i| json!({"step": format!("part{i}"), "job": {"kind": "k", "queue": "parts", "args": {"i": i}}}))
        .collect();
    let parts: Vec<String> = (0..10).map(|i| format!("part{i}")).collect();
    steps.push(
        json!({"step": "merge", "depends_on": parts, "job": {"kind": "k", "queue": "merge"}}),
    );
    let added = s
        .post(
            &format!("/v1/workflows/{id}/steps"),
            json!({"steps": steps}),
        )
        .await
        .expect(201)
        .body;
    assert_eq!(added["steps"].as_array().unwrap().len(), 11);
    let split_id = split["id"].as_str().unwrap();
    s.post(
        &format!("/v1/jobs/{split_id}/complete"),
        json!({"lease_token": split["lease_token"]}),
    )
    .await
    .expect(200);
    let parts = s.lease("parts", "w1", 10).await;
    assert_eq!(parts.len(), 10);
    for (n, p) in parts.iter().rev().enumerate() {
        assert!(
            s.lease("merge", "w1", 1).await.is_empty(),
            "merge waits ({n} parts done)"
        );
        let i = p["args"]["i"].clone();
        s.post(
            &format!("/v1/jobs/{}/complete", p["id"].as_str().unwrap()),
            json!({"lease_token": p["lease_token"], "result": i}),
        )
        .await
        .expect(200);
    }
    let merge = s.lease("merge", "w1", 1).await.remove(0);
    let got: Vec<i64> = (0..10)
        .map(|i| merge["parents"][format!("part{i}")].as_i64().unwrap())
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<i64>>());
    s.post(
        &format!("/v1/workflows/{id}/steps"),
        json!({"steps": [step("split", &[])]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("steps[0].step"));
}

#[tokio::test]
async fn invalid_workflows_are_refused_naming_the_problem_and_store_nothing() {
    let s = TestServer::start().await;
    let many: Vec<Value> = (0..10_001)
        .map(|i| json!({"step": format!("s{i}"), "job": {"kind": "k"}}))
        .collect();
    for (steps, field, words) in [
        (
            json!([step("a", &["c"]), step("b", &["a"]), step("c", &["b"])]),
            "depends_on",
            "cycle",
        ),
        (
            json!([step("a", &["ghost"])]),
            "steps[0].depends_on[0]",
            "ghost",
        ),
        (
            json!([step("a", &[]), step("a", &[])]),
            "steps[1].step",
            "twice",
        ),
        (json!(many), "steps", "at most"),
        (json!([]), "steps", "at least one"),
        (
            json!([{"step": "a", "job": {"kind": "k", "priority": 1_000_000}}]),
            "steps[0].job.priority",
            "",
        ),
    ] {
        let e = s
            .post("/v1/workflows", json!({"steps": steps}))
            .await
            .expect(400)
            .body;
        let got = e["error"]["field"].as_str().unwrap_or_default();
        assert!(got.contains(field), "field {got} should name {field}");
        assert_eq!(e["error"]["code"], "invalid_argument");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(words),
            "{e}"
        );
    }
    s.post(
        "/v1/workflows",
        json!({"steps": [step("a", &[])], "extra": 1}),
    )
    .await
    .expect(400);
    assert!(
        s.get("/v1/workflows").await.expect(200).body["workflows"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        s.get("/v1/jobs").await.expect(200).body["jobs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no step was stored"
    );
    s.get("/v1/workflows/not-a-uuid")
        .await
        .expect_error(400, "invalid_argument", Some("id"));
    s.get("/v1/workflows/0190a6a0-0000-7000-8000-000000000000")
        .await
        .expect_error(404, "not_found", None);
    s.get("/v1/workflows?state=sleepy")
        .await
        .expect_error(400, "invalid_argument", Some("state"));
}
