//! The exec worker end to end: the real `hopper` binary as server, CLI and worker.

mod common;

use std::time::Duration;

use common::{Server, read_pid, wait_dead, wait_state};
use hopper_worker::JobState;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_templated_command_completes_with_its_stdout() {
    let server = Server::start();
    let id = server.enqueue(&["greet", "--args", r#"{"name": "big world"}"#]);
    let mut worker = server.spawn_worker(&["--exec", "--command", "greet=echo hello {name}"]);
    let job = wait_state(&server.client(), id, JobState::Completed, LONG).await;
    assert_eq!(
        job.result.map(|r| r.get().to_string()),
        Some(r#""hello big world\n""#.to_string())
    );
    assert!(worker.terminate(LONG).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_dead_after_max_attempts() {
    let server = Server::start();
    let id = server.enqueue(&["boom", "--max-attempts", "2"]);
    let mut worker = server.spawn_worker(&[
        "--exec",
        "--command",
        r#"boom=sh -c "echo broken >&2; exit 3""#,
    ]);
    // The second attempt waits for the default backoff (about a second).
    let job = wait_state(&server.client(), id, JobState::Dead, LONG).await;
    assert_eq!(job.attempt, 2);
    assert_eq!(job.errors.len(), 2);
    for e in &job.errors {
        assert_eq!(e.kind, "command_failed");
        assert_eq!(e.message, "exit status 3: broken");
    }
    assert!(worker.terminate(LONG).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_whole_process_group() {
    let server = Server::start();
    let pidfile = server.dir.path().join("grandchild.pid");
    let args = serde_json::json!({ "pidfile": pidfile }).to_string();
    let id = server.enqueue(&[
        "slow",
        "--args",
        &args,
        "--timeout-ms",
        "1000",
        "--max-attempts",
        "1",
    ]);
    let mut worker = server.spawn_worker(&[
        "--exec",
        "--command",
        r#"slow=sh -c 'sleep 60 & echo $! > "$0"; wait' {pidfile}"#,
    ]);
    let grandchild = read_pid(&pidfile, LONG);
    let job = wait_state(&server.client(), id, JobState::Dead, LONG).await;
    assert_eq!(job.errors.last().map(|e| e.kind.as_str()), Some("timeout"));
    assert!(
        wait_dead(grandchild, Duration::from_secs(5)),
        "the command's child {grandchild} outlived the timeout"
    );
    assert!(worker.terminate(LONG).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_the_running_command() {
    let server = Server::start();
    let pidfile = server.dir.path().join("cmd.pid");
    let args = serde_json::json!({ "pidfile": pidfile }).to_string();
    let id = server.enqueue(&["slow", "--args", &args]);
    // A short lease means a heartbeat (and so the cancel) every 200 ms.
    let mut worker = server.spawn_worker(&[
        "--exec",
        "--lease-ms",
        "600",
        "--command",
        r#"slow=sh -c 'sleep 60 & echo $! > "$0"; wait' {pidfile}"#,
    ]);
    let pid = read_pid(&pidfile, LONG);
    let out = server.cli(&["jobs", "cancel", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = wait_state(&server.client(), id, JobState::Cancelled, LONG).await;
    assert!(job.finished_at.is_some());
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "the command survived"
    );
    assert!(worker.terminate(LONG).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_job_finish_then_exits_0() {
    let server = Server::start();
    let id = server.enqueue(&["nap"]);
    let mut worker =
        server.spawn_worker(&["--exec", "--command", "nap=sh -c 'sleep 1.5; echo rested'"]);
    let client = server.client();
    wait_state(&client, id, JobState::Running, LONG).await;
    let status = worker.terminate(LONG);
    assert!(
        status.success(),
        "worker exit {status}: {}",
        worker.stderr()
    );
    let job = client.get(id).await.unwrap();
    assert_eq!(job.state, JobState::Completed, "{job:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_the_grace_period_releases_the_job_and_exits_0() {
    let server = Server::start();
    let pidfile = server.dir.path().join("cmd.pid");
    let args = serde_json::json!({ "pidfile": pidfile }).to_string();
    let id = server.enqueue(&["slow", "--args", &args]);
    let mut worker = server.spawn_worker(&[
        "--exec",
        "--grace-period-secs",
        "1",
        "--command",
        r#"slow=sh -c 'sleep 60 & echo $! > "$0"; wait' {pidfile}"#,
    ]);
    let pid = read_pid(&pidfile, LONG);
    let status = worker.terminate(LONG);
    assert!(
        status.success(),
        "worker exit {status}: {}",
        worker.stderr()
    );
    let job = server.client().get(id).await.unwrap();
    assert_eq!(job.state, JobState::Available, "{job:#?}");
    assert_eq!(job.attempt, 0, "a released attempt is not counted");
    assert!(
        wait_dead(pid, Duration::from_secs(5)),
        "the command survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_command_runs_only_with_the_flag_and_warns() {
    let server = Server::start();
    let out = server.cli(&["worker", "--exec"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to run"));

    let args = serde_json::json!({
        "cmd": ["sh", "-c", "echo $GREETING from $HOPPER_JOB_KIND"],
        "env": {"GREETING": "hi"},
    })
    .to_string();
    let id = server.enqueue(&["adhoc", "--args", &args]);
    let mut worker = server.spawn_worker(&["--exec", "--allow-any-command"]);
    let job = wait_state(&server.client(), id, JobState::Completed, LONG).await;
    assert_eq!(
        job.result.map(|r| r.get().to_string()),
        Some(r#""hi from adhoc\n""#.to_string())
    );
    assert!(worker.terminate(LONG).success());
    assert!(worker.stderr().contains("warning: --allow-any-command"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn args_that_do_not_fit_the_template_fail_for_good() {
    let server = Server::start();
    let id = server.enqueue(&["greet", "--args", r#"{"nom": "x"}"#]);
    let mut worker = server.spawn_worker(&["--exec", "--command", "greet=echo {name}"]);
    let job = wait_state(&server.client(), id, JobState::Dead, LONG).await;
    assert_eq!(job.attempt, 1);
    assert_eq!(job.errors[0].kind, "invalid_args");
    assert!(job.errors[0].message.contains("args.name is missing"));
    assert!(worker.terminate(LONG).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_server_exits_0() {
    let server = Server::start();
    server.enqueue(&["k"]);
    assert!(server.stop().success());
}

/// The command gets the job's traceparent as `TRACEPARENT`, whether the producer gave it as
/// the job's field or as the enqueue request's header; a job without one gives none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_gets_the_jobs_traceparent() {
    const FIELD: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let server = Server::start();
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for (body, header) in [
        (
            serde_json::json!({"kind": "tp", "traceparent": FIELD}),
            None,
        ),
        (serde_json::json!({"kind": "tp"}), Some(HEADER)),
        (serde_json::json!({"kind": "tp"}), None),
    ] {
        let mut req = http.post(format!("{}/v1/jobs", server.url)).json(&body);
        if let Some(h) = header {
            req = req.header("traceparent", h);
        }
        let job: hopper_worker::Job = req.send().await.unwrap().json().await.unwrap();
        ids.push(job.id);
    }
    let mut worker = server.spawn_worker(&[
        "--exec",
        "--command",
        r#"tp=sh -c 'printf %s "$TRACEPARENT"'"#,
    ]);
    let client = server.client();
    for (id, expected) in ids.into_iter().zip([FIELD, HEADER, ""]) {
        let job = wait_state(&client, id, JobState::Completed, LONG).await;
        assert_eq!(
            job.result.map(|r| r.get().to_string()),
            Some(format!("\"{expected}\"")),
            "{}",
            worker.stderr()
        );
    }
    assert!(worker.terminate(LONG).success());
}
