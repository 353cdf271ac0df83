//! `hopper schedules` against a real server: create, list, get, pause, resume, trigger and
//! delete, in JSON and as text, how server errors reach the user, and a schedule firing in the
//! running server.

mod common;

use std::time::{Duration, Instant};

use common::Server;

#[test]
fn schedules_are_managed_from_the_command_line() {
    let server = Server::start();
    let created = server.cli_json(&[
        "schedules",
        "create",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--kind",
        "report",
        "--queue",
        "reports",
        "--args",
        r#"{"full": true}"#,
        "--misfire",
        "catch_up:3",
        "--jitter-ms",
        "1000",
    ]);
    assert_eq!(created["name"], "nightly");
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(created["job"]["args"], serde_json::json!({"full": true}));
    assert_eq!(
        created["misfire"],
        serde_json::json!({"policy": "catch_up", "max": 3})
    );
    assert_eq!(created["jitter_ms"], 1000);
    assert_eq!(created["next_fire_times"].as_array().unwrap().len(), 5);

    let text = server.cli(&[
        "schedules",
        "create",
        "hourly",
        "--cron",
        "@hourly",
        "--kind",
        "k",
    ]);
    assert!(text.status.success());
    assert!(
        String::from_utf8_lossy(&text.stdout).starts_with("schedule hourly created; next fire at "),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    let list = server.cli_json(&["schedules", "list"]);
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hourly", "nightly"]);
    let table = server.cli(&["schedules", "ls"]);
    let text = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(text.starts_with("NAME "), "{text}");
    assert!(
        text.contains("nightly") && text.contains("30 2 * * *") && text.contains("catch_up:3"),
        "{text}"
    );

    let shown = server.cli(&["schedules", "get", "nightly"]);
    let text = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(
        text.contains("Europe/Berlin") && text.contains("next fire times:"),
        "{text}"
    );

    assert_eq!(
        server.cli_json(&["schedules", "pause", "nightly"])["paused"],
        true
    );
    let resumed = server.cli_json(&["schedules", "resume", "nightly"]);
    assert_eq!(resumed["paused"], false);

    let job = server.cli_json(&["schedules", "trigger", "nightly"]);
    assert_eq!(job["kind"], "report");
    assert_eq!(job["queue"], "reports");
    assert_eq!(job["state"], "available");
    assert_eq!(job["meta"]["schedule"]["name"], "nightly");

    assert_eq!(
        server.cli_json(&["schedules", "delete", "nightly"])["deleted"],
        "nightly"
    );
    let gone = server.cli(&["schedules", "get", "nightly"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not_found"));
}

#[test]
fn schedule_errors_name_the_code_and_field() {
    let server = Server::start();
    let out = server.cli(&[
        "schedules",
        "create",
        "n",
        "--cron",
        "61 * * * *",
        "--kind",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid_argument") && err.contains("cron"),
        "{err}"
    );

    let out = server.cli(&[
        "schedules",
        "create",
        "n",
        "--cron",
        "@daily",
        "--kind",
        "k",
        "--timezone",
        "Mars/Base",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("timezone"), "{err}");

    let out = server.cli(&[
        "schedules",
        "create",
        "n",
        "--cron",
        "@daily",
        "--kind",
        "k",
        "--misfire",
        "often",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--misfire takes"));

    server.cli_json(&[
        "schedules",
        "create",
        "n",
        "--cron",
        "@daily",
        "--kind",
        "k",
    ]);
    let out = server.cli(&[
        "schedules",
        "create",
        "n",
        "--cron",
        "@daily",
        "--kind",
        "k",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_state"));
}

#[test]
fn a_schedule_fires_in_the_running_server() {
    let server = Server::start();
    server.cli_json(&[
        "schedules",
        "create",
        "often",
        "--cron",
        "* * * * * *",
        "--kind",
        "k",
        "--queue",
        "often",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = server.cli_json(&["jobs", "ls", "--queue", "often"]);
        let jobs = page["jobs"].as_array().unwrap();
        if jobs.len() >= 2 {
            for j in jobs {
                assert_eq!(j["meta"]["schedule"]["name"], "often");
                assert!(
                    j["idempotency_key"]
                        .as_str()
                        .unwrap()
                        .starts_with("schedule:often:")
                );
            }
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled jobs: {page}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let shown = server.cli_json(&["schedules", "get", "often"]);
    assert!(!shown["last_runs"].as_array().unwrap().is_empty());
}
