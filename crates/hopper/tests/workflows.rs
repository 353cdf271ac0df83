//! Workflows against a real server (the `hopper` binary): the SDK's client submits runs whose
//! steps an SDK worker runs, each handler reading what its parents left it (results, and how
//! failed ones ended) and adding steps to its own run; `hopper workflows` submits a run from a
//! file, shows, cancels and lists it, in JSON and as text; and it stores a definition with a
//! parameter from a file, triggers it twice for one logical date (one run), backfills three
//! dates and follows the backfill.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;
use hopper_worker::{
    Client, EnqueueRequest, Error, JobContext, JobState, OnFailure, Outcome, StepRequest, Worker,
    WorkflowId, WorkflowRequest, WorkflowRun, WorkflowState,
};
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);
const QUEUE: &str = "wf";

fn job(kind: &str, args: Value) -> EnqueueRequest {
    let mut r = EnqueueRequest::new(kind, &args).expect("args encode");
    r.queue = Some(QUEUE.into());
    r.max_attempts = Some(1);
    r
}

fn step(
    name: &str,
    depends_on: &[&str],
    on_failure: OnFailure,
    job: EnqueueRequest,
) -> StepRequest {
    StepRequest {
        step: name.into(),
        depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
        on_failure,
        job,
    }
}

/// Answers its args.
async fn emit(_ctx: JobContext, args: Value) -> anyhow::Result<Outcome> {
    Ok(Outcome::complete_with(&args))
}

/// Doubles the `n` its parent `source` returned.
async fn double(ctx: JobContext, _args: Value) -> anyhow::Result<Outcome> {
    let source: Value = match ctx.parent("source") {
        Some(r) => r?,
        None => return Ok(Outcome::fail_permanently("no parent `source`")),
    };
    let n = source["n"].as_i64().unwrap_or_default();
    Ok(Outcome::complete_with(&json!({
        "n": n * 2,
        "step": ctx.workflow().map(|w| w.step.clone()),
        "parents": ctx.parents().map(|p| p.keys().cloned().collect::<Vec<_>>()),
    })))
}

/// Fails for good.
async fn boom(_ctx: JobContext, _args: Value) -> anyhow::Result<Outcome> {
    Ok(Outcome::fail_permanently("boom"))
}

/// Adds a step `child` to its run that waits for it and for `flaky`.
async fn fan(ctx: JobContext, _args: Value) -> anyhow::Result<Outcome> {
    let child = step(
        "child",
        &["fan", "flaky"],
        OnFailure::CancelDependents,
        job("report", json!({})),
    );
    match ctx.add_steps(vec![child]).await {
        Ok(added) => Ok(Outcome::complete_with(&json!({"added": added.len()}))),
        Err(e @ Error::NotAStep(_)) => Ok(Outcome::fail_permanently(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Answers everything its parents left it.
async fn report(ctx: JobContext, _args: Value) -> anyhow::Result<Outcome> {
    let parents: BTreeMap<String, Value> = ctx
        .parents()
        .map(|p| {
            p.iter()
                .map(|(name, result)| {
                    let v = result
                        .as_ref()
                        .and_then(|r| serde_json::from_str(r.get()).ok())
                        .unwrap_or(Value::Null);
                    (name.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let flaky: Option<Value> = ctx.parent::<Option<Value>>("flaky").transpose()?.flatten();
    Ok(Outcome::complete_with(&json!({
        "parents": parents,
        "failed": ctx.failed_parents(),
        "flaky_result": flaky,
        "not_a_parent": ctx.parent::<Value>("nope").is_none(),
    })))
}

/// Polls a run until it has finished.
async fn wait_run(client: &Client, id: WorkflowId) -> WorkflowRun {
    let deadline = Instant::now() + LONG;
    loop {
        let run = client.workflow(id).await.expect("get workflow");
        if run.workflow.state.is_finished() {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} did not finish in {LONG:?}: {run:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn result_of(run: &WorkflowRun, step: &str) -> Value {
    let job = run.step(step).unwrap_or_else(|| panic!("no step {step}"));
    let raw = job.result.as_ref().map_or("null", |r| r.get());
    serde_json::from_str(raw).expect("a JSON result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_receive_what_their_parents_left_them() {
    let server = Server::start();
    let client = server.client();
    let worker = Worker::builder(client.clone())
        .queues([QUEUE])
        .concurrency(4)
        .register("emit", emit)
        .register("double", double)
        .register("boom", boom)
        .register("fan", fan)
        .register("report", report)
        .build()
        .unwrap();
    let stats = worker.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));

    // Two steps: the second gets the first's result.
    let submitted = client
        .submit_workflow(&WorkflowRequest {
            name: Some("two steps".into()),
            steps: vec![
                step(
                    "double",
                    &["source"],
                    OnFailure::CancelDependents,
                    job("double", json!({})),
                ),
                step(
                    "source",
                    &[],
                    OnFailure::CancelDependents,
                    job("emit", json!({"n": 21})),
                ),
            ],
        })
        .await
        .unwrap();
    assert_eq!(submitted.workflow.state, WorkflowState::Running);
    assert_eq!(submitted.steps.len(), 2);
    assert_eq!(
        submitted.step("double").map(|j| j.state),
        Some(JobState::Pending),
        "a step waits for its parents"
    );
    let run = wait_run(&client, submitted.workflow.id).await;
    assert_eq!(run.workflow.state, WorkflowState::Completed, "{run:#?}");
    assert_eq!(
        result_of(&run, "double"),
        json!({"n": 42, "step": "double", "parents": ["source"]})
    );

    // A failed parent under `continue`, and a step added by a running step.
    let submitted = client
        .submit_workflow(&WorkflowRequest {
            name: None,
            steps: vec![
                step("flaky", &[], OnFailure::Continue, job("boom", json!({}))),
                step(
                    "fan",
                    &[],
                    OnFailure::CancelDependents,
                    job("fan", json!({})),
                ),
            ],
        })
        .await
        .unwrap();
    let run = wait_run(&client, submitted.workflow.id).await;
    assert_eq!(
        run.workflow.state,
        WorkflowState::Failed,
        "a failure under `continue` fails the run: {run:#?}"
    );
    assert_eq!(run.workflow.steps, 3, "`child` was added");
    assert_eq!(result_of(&run, "fan"), json!({"added": 1}));
    assert_eq!(
        run.step("child").map(|j| j.state),
        Some(JobState::Completed)
    );
    assert_eq!(
        result_of(&run, "child"),
        json!({
            "parents": {"fan": {"added": 1}, "flaky": null},
            "failed": {"flaky": {"state": "dead", "error": "boom"}},
            "flaky_result": null,
            "not_a_parent": true,
        })
    );

    // Only a step can add steps.
    let plain = client.enqueue(job("fan", json!({}))).await.unwrap();
    let plain = common::wait_state(&client, plain.id, JobState::Dead, LONG).await;
    let message = &plain.errors.last().expect("an error").message;
    assert!(
        message.contains("is not a step of a workflow run"),
        "{message}"
    );

    // Lists, cancels and retries through the client.
    let page = client
        .workflows(Some(WorkflowState::Completed), Some(10), None)
        .await
        .unwrap();
    assert_eq!(page.workflows.len(), 1);
    assert_eq!(page.workflows[0].name.as_deref(), Some("two steps"));
    let e = client
        .cancel_workflow(run.workflow.id)
        .await
        .expect_err("a finished run cannot be cancelled");
    assert_eq!(e.code(), Some(&hopper_worker::ErrorCode::InvalidState));
    let retried = client.retry_workflow(run.workflow.id).await.unwrap();
    assert_eq!(retried.state, WorkflowState::Running);
    let again = wait_run(&client, run.workflow.id).await;
    assert_eq!(
        again.workflow.state,
        WorkflowState::Failed,
        "boom fails again"
    );

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    assert_eq!(stats.snapshot().undelivered, 0);
}

#[test]
fn workflows_are_managed_from_the_command_line() {
    let server = Server::start();
    let file = server.dir.path().join("etl.json");
    std::fs::write(
        &file,
        json!({
            "name": "etl",
            "steps": [
                {"step": "extract", "job": {"kind": "extract", "queue": "cli-wf"}},
                {"step": "transform", "depends_on": ["extract"],
                 "job": {"kind": "transform", "queue": "cli-wf"}},
                {"step": "load", "depends_on": ["transform", "extract"], "on_failure": "continue",
                 "job": {"kind": "load", "queue": "cli-wf", "args": {"table": "t"}}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let file = file.to_str().expect("a UTF-8 path");

    let submitted = server.cli_json(&["workflows", "submit", file]);
    assert_eq!(submitted["workflow"]["name"], "etl");
    assert_eq!(submitted["workflow"]["state"], "running");
    let id = submitted["workflow"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let steps = submitted["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["workflow"]["step"], "extract");
    assert_eq!(steps[0]["state"], "available");
    assert_eq!(steps[2]["workflow"]["waiting_on"], 2);
    assert_eq!(steps[2]["state"], "pending");

    let text = server.cli(&["workflows", "submit", file]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.starts_with("workflow run ") && text.contains("3 steps"),
        "{text}"
    );

    let got = server.cli_json(&["workflows", "get", &id]);
    assert_eq!(got["workflow"]["id"], id.as_str());
    assert_eq!(got["workflow"]["steps"], 3);
    assert_eq!(
        got["steps"][1]["workflow"]["depends_on"],
        json!(["extract"])
    );

    let shown = server.cli(&["workflows", "get", &id]);
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(text.contains("etl") && text.contains("running"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("STEP"))
        .unwrap_or_else(|| panic!("no steps table: {text}"));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        &columns[..6],
        ["STEP", "STATE", "KIND", "QUEUE", "WAITING_ON", "DEPENDS_ON"]
    );
    let load = text
        .lines()
        .find(|l| l.starts_with("load "))
        .unwrap_or_else(|| panic!("no load row: {text}"));
    assert!(
        load.contains("pending") && load.contains("transform,extract"),
        "{load}"
    );

    let cancelled = server.cli_json(&["workflows", "cancel", &id]);
    assert_eq!(cancelled["id"], id.as_str());
    assert_eq!(
        cancelled["state"], "cancelled",
        "no step was running, so the run ends at once"
    );
    let again = server.cli(&["workflows", "cancel", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("invalid_state"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let list = server.cli_json(&["workflows", "list", "--state", "cancelled"]);
    let runs = list["workflows"].as_array().expect("workflows");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], id.as_str());
    let all = server.cli_json(&["workflows", "list", "--limit", "10"]);
    assert_eq!(all["workflows"].as_array().map(Vec::len), Some(2));
    let table = server.cli(&["workflows", "ls"]);
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.contains(&id) && text.contains("cancelled"), "{text}");

    let retried = server.cli_json(&["workflows", "retry", &id]);
    assert_eq!(retried["state"], "running");

    let bad = server.cli(&["workflows", "list", "--state", "done"]);
    assert_eq!(bad.status.code(), Some(1));
    let missing = server.cli(&["workflows", "get", "0190f5c6-0000-7000-8000-000000000001"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not_found"));
}

#[test]
fn definitions_are_triggered_and_backfilled_from_the_command_line() {
    let server = Server::start();
    let file = server.dir.path().join("nightly.json");
    std::fs::write(
        &file,
        json!({
            "params": {"table": "users"},
            "cron": "0 3 * * *",
            "steps": [
                {"step": "export", "job": {"kind": "export", "queue": "cli-def",
                 "args": {"table": "{{params.table}}", "day": "{{logical_date}}"}}},
                {"step": "notify", "depends_on": ["export"],
                 "job": {"kind": "notify", "queue": "cli-def"}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let file = file.to_str().expect("a UTF-8 path");

    let stored = server.cli_json(&["workflows", "define", "nightly", file]);
    assert_eq!(stored["name"], "nightly");
    assert_eq!(stored["params"], json!({"table": "users"}));
    assert_eq!(stored["cron"], "0 3 * * *");
    assert!(stored["next_fire_at"].is_string(), "{stored}");
    let text = server.cli(&["workflows", "define", "nightly", file]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("nightly stored: 2 steps, 1 parameter, cron `0 3 * * *`"),
        "{text}"
    );

    let listed = server.cli_json(&["workflows", "definitions"]);
    assert_eq!(listed["definitions"][0]["name"], "nightly");
    let table = server.cli(&["workflows", "definitions"]);
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(text.starts_with("NAME "), "{text}");
    assert!(
        text.lines().next().is_some_and(|h| h.contains("NEXT FIRE")),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("nightly "))
        .unwrap_or_else(|| panic!("no nightly row: {text}"));
    assert!(row.contains(" 2 ") && row.contains("0 3 * * *"), "{row}");
    let shown = server.cli_json(&["workflows", "definition", "nightly"]);
    assert_eq!(shown["steps"][1]["depends_on"], json!(["export"]));
    let shown = server.cli(&["workflows", "definition", "nightly"]);
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        text.contains(r#"{"table":"users"}"#) && text.contains("{{params.table}}"),
        "{text}"
    );

    // Twice for one logical date: one run.
    let trigger = [
        "workflows",
        "trigger",
        "nightly",
        "--param",
        "table=orders",
        "--logical-date",
        "2026-11-30",
    ];
    let first = server.cli_json(&trigger);
    assert_eq!(first["created"], true);
    assert_eq!(first["workflow"]["definition"], "nightly");
    assert_eq!(first["workflow"]["logical_date"], "2026-11-30");
    assert_eq!(
        first["steps"][0]["args"],
        json!({"table": "orders", "day": "2026-11-30"})
    );
    let again = server.cli_json(&trigger);
    assert_eq!(again["created"], false);
    assert_eq!(again["workflow"]["id"], first["workflow"]["id"]);
    let text = server.cli(&trigger);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("already exists"), "{text}");
    let runs = server.cli_json(&["workflows", "list"]);
    assert_eq!(runs["workflows"].as_array().map(Vec::len), Some(1));

    // Three dates, one of which has its run already.
    let backfill = [
        "workflows",
        "backfill",
        "nightly",
        "--from",
        "2026-11-28",
        "--to",
        "2026-11-30",
        "--max-running",
        "3",
        "--param",
        "table=\"events\"",
    ];
    let started = server.cli_json(&backfill);
    assert_eq!(started["created"], true);
    assert_eq!(started["backfill"]["definition"], "nightly");
    assert_eq!(started["backfill"]["max_running"], 3);
    assert_eq!(started["backfill"]["params"], json!({"table": "events"}));
    assert_eq!(started["progress"]["dates"], 3);
    let id = started["backfill"]["id"]
        .as_str()
        .expect("backfill id")
        .to_string();
    let same = server.cli_json(&backfill);
    assert_eq!(same["created"], false);
    assert_eq!(same["backfill"]["id"], id.as_str());

    let deadline = Instant::now() + LONG;
    let status = loop {
        let status = server.cli_json(&["workflows", "backfill-status", &id]);
        if status["progress"]["created"] == 3 {
            break status;
        }
        assert!(Instant::now() < deadline, "backfill stalled: {status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["backfill"]["id"], id.as_str());
    assert!(status.get("created").is_none(), "{status}");
    assert_eq!(
        status["progress"],
        json!({"dates": 3, "created": 3, "running": 3, "completed": 0, "failed": 0})
    );
    let runs = server.cli_json(&["workflows", "list"]);
    let mut dates: Vec<&str> = runs["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .filter_map(|w| w["logical_date"].as_str())
        .collect();
    dates.sort_unstable();
    assert_eq!(dates, ["2026-11-28", "2026-11-29", "2026-11-30"]);
    let text = server.cli(&["workflows", "backfill-status", &id]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("2026-11-28 to 2026-11-30 (3)") && text.contains("3 of 3"),
        "{text}"
    );

    let bad = server.cli(&["workflows", "trigger", "nightly", "--param", "nokey"]);
    assert_eq!(bad.status.code(), Some(1));
    let bad = server.cli(&[
        "workflows",
        "backfill",
        "nightly",
        "--from",
        "2026-12-02",
        "--to",
        "2026-12-01",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_argument"));

    let deleted = server.cli(&["workflows", "undefine", "nightly"]);
    assert!(deleted.status.success());
    let missing = server.cli(&["workflows", "definition", "nightly"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not_found"));
    let listed = server.cli_json(&["workflows", "definitions"]);
    assert_eq!(listed["definitions"], json!([]));
}
