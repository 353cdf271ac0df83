//! The client commands against a real server: enqueue, jobs, queues, workers, in JSON and as
//! tables, and how server errors reach the user.

mod common;

use common::Server;

#[test]
fn enqueue_then_inspect_cancel_retry_and_delete_a_job() {
    let server = Server::start();
    let job = server.cli_json(&[
        "enqueue",
        "send_email",
        "--args",
        r#"{"to": "a@b"}"#,
        "--queue",
        "mail",
        "--priority",
        "-3",
        "--tag",
        "welcome",
        "--delay-ms",
        "60000",
    ]);
    assert_eq!(job["state"], "scheduled");
    assert_eq!(job["priority"], -3);
    assert!(job["idempotency_key"].is_string(), "the SDK sets a key");
    let id = job["id"].as_str().unwrap().to_string();

    let page = server.cli_json(&["jobs", "ls", "--queue", "mail", "--state", "scheduled"]);
    assert_eq!(page["jobs"][0]["id"], id.as_str());
    let page = server.cli_json(&["jobs", "ls", "--tag", "nope"]);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);

    let table = server.cli(&["jobs", "ls"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("ID "), "{text}");
    assert!(text.contains(&id) && text.contains("send_email"), "{text}");

    let shown = server.cli(&["jobs", "show", &id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("welcome") && text.contains(r#"{"to": "a@b"}"#),
        "{text}"
    );

    let retried = server.cli_json(&["jobs", "retry", &id]);
    assert_eq!(retried["state"], "available");
    let cancelled = server.cli_json(&["jobs", "cancel", &id]);
    assert_eq!(cancelled["state"], "cancelled");
    let deleted = server.cli_json(&["jobs", "rm", &id]);
    assert_eq!(deleted["deleted"], id.as_str());

    let gone = server.cli(&["jobs", "show", &id]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not_found"));
}

#[test]
fn queues_pause_resume_retry_and_purge() {
    let server = Server::start();
    server.enqueue(&["k", "--queue", "q1"]);
    let queues = server.cli_json(&["queues", "ls"]);
    assert_eq!(queues["queues"][0]["name"], "q1");
    assert_eq!(queues["queues"][0]["counts"]["available"], 1);

    assert_eq!(server.cli_json(&["queues", "pause", "q1"])["paused"], true);
    let text = String::from_utf8_lossy(&server.cli(&["queues", "ls"]).stdout).to_string();
    assert!(
        text.lines().nth(1).unwrap().starts_with("q1     yes"),
        "{text}"
    );
    assert_eq!(
        server.cli_json(&["queues", "resume", "q1"])["paused"],
        false
    );

    assert_eq!(server.cli_json(&["queues", "retry", "q1"])["count"], 0);
    assert_eq!(
        server.cli_json(&["queues", "purge", "q1", "--state", "dead"])["count"],
        0
    );
    assert_eq!(
        server.cli_json(&["workers"])["workers"],
        serde_json::json!([])
    );
}

#[test]
fn errors_name_the_code_and_field() {
    let server = Server::start();
    let out = server.cli(&["enqueue", "k", "--queue", "not a queue"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_argument") && err.contains("queue"),
        "{err}"
    );

    let out = server.cli(&["enqueue", "k", "--args", "{nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--args must be valid JSON"));

    let out = server.cli(&["jobs", "show", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a job id"));

    let out = server.cli(&["jobs", "ls", "--state", "done"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--state takes"));
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let out = std::process::Command::new(common::HOPPER)
        .args(["--server", "http://127.0.0.1:1", "queues", "ls"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the Hopper server"));
}

#[test]
fn a_small_bench_runs_and_verifies_its_counts() {
    let out = std::process::Command::new(common::HOPPER)
        .args([
            "--json",
            "bench",
            "all",
            "--jobs",
            "300",
            "--durability",
            "relaxed",
        ])
        .env_remove("HOPPER_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["W1", "W2", "W3", "W4"]);
    for r in results {
        assert_eq!(r["jobs"], 300);
        assert!(r["jobs_per_sec"].as_f64().unwrap() > 0.0);
    }
    assert!(results[3]["latency"]["p99_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn queues_set_changes_only_the_flags_given_and_jobs_explain_says_why() {
    let server = Server::start();
    let q = server.cli_json(&[
        "queues",
        "set",
        "mail",
        "--concurrency",
        "1",
        "--rate",
        "100/1000/5",
    ]);
    assert_eq!(q["config"]["concurrency"], 1);
    assert_eq!(q["config"]["rate"]["burst"], 5);
    let q = server.cli_json(&[
        "queues", "set", "mail", "--policy", "fair", "--weight", "vip=3",
    ]);
    assert_eq!(q["config"]["concurrency"], 1, "untouched settings stay");
    assert_eq!(q["config"]["policy"], "fair");
    assert_eq!(q["config"]["fairness_weights"]["vip"], 3);
    let got = server.cli_json(&["queues", "get", "mail"]);
    assert_eq!(got["config"], q["config"]);
    let bad = server.cli(&["queues", "set", "mail", "--rate", "fast"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("LIMIT/PERIOD_MS"));

    let job = server.cli_json(&[
        "enqueue",
        "k",
        "--queue",
        "mail",
        "--concurrency-key",
        "c1",
        "--fairness-key",
        "vip",
        "--estimated-ms",
        "40",
    ]);
    assert_eq!(job["concurrency_key"], "c1");
    assert_eq!(job["fairness_key"], "vip");
    assert_eq!(job["estimated_ms"], 40);
    let id = job["id"].as_str().unwrap().to_string();
    let e = server.cli_json(&["jobs", "explain", &id]);
    assert_eq!(e["reasons"][0]["code"], "no_workers");
    let text = server.cli(&["jobs", "explain", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("No worker has asked"), "{text}");
}
