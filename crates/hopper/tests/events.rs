//! The live event stream from the client side: `hopper events` prints transitions as they
//! happen, and the SDK's `EventStream` resumes after a server restart without losing or
//! repeating an event.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{HOPPER, Server};
use hopper_worker::{EnqueueRequest, EventFilter, JobState, LeaseRequest, StreamMessage};

fn job(kind: &str, queue: &str) -> EnqueueRequest {
    EnqueueRequest {
        kind: kind.to_string(),
        queue: Some(queue.to_string()),
        ..EnqueueRequest::default()
    }
}

#[tokio::test]
async fn hopper_events_prints_each_transition_of_the_filtered_queue() {
    let server = Server::start();
    let client = server.client();
    client.enqueue(job("other", "elsewhere")).await.unwrap();
    let j = client.enqueue(job("mail", "q")).await.unwrap();
    let leased = client
        .lease(&LeaseRequest {
            queues: vec!["q".into()],
            worker_id: "w1".into(),
            max_jobs: 1,
            lease_ms: 30_000,
            wait_ms: 0,
        })
        .await
        .unwrap();
    let token = leased[0].lease_token.clone().unwrap();
    client
        .complete(j.id, &token.0, &serde_json::json!({"ok": true}))
        .await
        .unwrap();

    // From the start of the history, so nothing depends on when the command connects.
    let out = Command::new(HOPPER)
        .args([
            "--json", "events", "--queue", "q", "--after", "0", "--count", "3",
        ])
        .env("HOPPER_URL", &server.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run hopper events");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let seen: Vec<(&str, &str)> = lines
        .iter()
        .map(|e| (e["to"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("available", "enqueue"),
            ("running", "lease"),
            ("completed", "complete")
        ]
    );
    assert!(lines.iter().all(|e| e["job_id"] == j.id.to_string()));

    // Text mode, following on from the last event seen, so no timing matters.
    let last = lines[2]["seq"].as_i64().unwrap().to_string();
    let mut child = Command::new(HOPPER)
        .args([
            "events",
            "--type",
            "available",
            "--count",
            "1",
            "--after",
            &last,
        ])
        .env("HOPPER_URL", &server.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hopper events");
    let later = client.enqueue(job("late", "q")).await.unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&later.id.to_string())
            && line.contains("q/late")
            && line.contains("- → available"),
        "{line}"
    );
    assert!(child.wait().unwrap().success());

    let bad = server.cli(&["events", "--type", "bogus"]);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn the_sdk_stream_resumes_across_a_server_restart_without_loss_or_repeat() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_at(data.path());
    let addr = server.url.trim_start_matches("http://").to_string();
    let client = server.client();
    let mut stream = client
        .events(&EventFilter::default())
        .await
        .expect("subscribe");
    let a = client.enqueue(job("a", "q")).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("in time")
        .expect("an event");
    let StreamMessage::Event(first) = first else {
        panic!("expected an event, got {first:?}")
    };
    assert_eq!(first.job_id, a.id);

    // Restart on the same address; two jobs are enqueued before the stream reconnects (it
    // waits at least the server's one-second retry).
    assert!(server.stop().success());
    let server = Server::start_at_bind(data.path(), &addr);
    let client = server.client();
    let b = client.enqueue(job("b", "q")).await.unwrap();
    let c = client.enqueue(job("c", "q")).await.unwrap();

    let mut got = Vec::new();
    while got.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("in time")
            .expect("the stream reconnects")
        {
            StreamMessage::Event(e) => got.push(e),
            StreamMessage::Gap { after } => panic!("no gap expected (after {after})"),
        }
    }
    assert_eq!(
        got.iter().map(|e| (e.job_id, e.to)).collect::<Vec<_>>(),
        vec![(b.id, JobState::Available), (c.id, JobState::Available)],
        "exactly the events missed while away, in order"
    );
    assert!(got[0].seq > first.seq);
    assert_eq!(stream.last_seq(), Some(got[1].seq));
}
