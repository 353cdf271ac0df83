//! The live event stream, `GET /v1/events` (SSE) and `/v1/events/ws`: order per job, filters,
//! resuming with `Last-Event-ID`, gaps, a stalled client that must not hold up a healthy one,
//! bad input, and shutdown with subscribers connected.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::{TestServer, test_config};

/// One message of a Server-Sent Events stream.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) id: Option<i64>,
    pub(crate) event: Option<String>,
    pub(crate) data: Value,
}

/// A minimal SSE reader over a streaming reqwest answer.
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: String,
    retry_seen: bool,
}

impl Sse {
    pub(crate) async fn open(server: &TestServer, query: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = server.client.get(server.url(&format!("/v1/events{query}")));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = req.send().await.expect("subscribe");
        assert_eq!(resp.status(), 200, "subscribing answers 200");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut sse = Sse {
            resp,
            buf: String::new(),
            retry_seen: false,
        };
        // The server's first bytes (`retry:`) mean the subscription is in place.
        while !sse.retry_seen {
            sse.fill(Duration::from_secs(5))
                .await
                .expect("the stream starts");
            sse.take_messages();
        }
        sse
    }

    // Reads one more chunk; false at the end of the stream.
    async fn fill(&mut self, within: Duration) -> Option<bool> {
        match tokio::time::timeout(within, self.resp.chunk()).await {
            Err(_) => None,
            Ok(Ok(Some(chunk))) => {
                self.buf
                    .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
                Some(true)
            }
            Ok(Ok(None)) | Ok(Err(_)) => Some(false),
        }
    }

    fn take_messages(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        // Complete messages end with a blank line; what follows the last one stays buffered.
        let Some(end) = self.buf.rfind("\n\n") else {
            return out;
        };
        let complete: String = self.buf.drain(..end + 2).collect();
        for block in complete.split_terminator("\n\n") {
            let (mut id, mut event, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().expect("numeric id"));
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).expect("data is JSON"));
                } else if line.starts_with("retry: ") {
                    self.retry_seen = true;
                }
            }
            if let Some(data) = data {
                out.push(Message { id, event, data });
            }
        }
        out
    }

    /// Messages until `n` of them satisfy `counted`, or `within` passes (then panics).
    pub(crate) async fn until(
        &mut self,
        within: Duration,
        n: usize,
        counted: impl Fn(&Message) -> bool,
    ) -> Vec<Message> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut count = 0;
        loop {
            let new = self.take_messages();
            count += new.iter().filter(|m| counted(m)).count();
            got.extend(new);
            if count >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.fill(left).await {
                Some(true) => {}
                Some(false) => panic!("the stream ended after {} messages", got.len()),
                None => panic!(
                    "timed out after {} messages ({count} of {n} counted); last: {:?}",
                    got.len(),
                    got.last()
                ),
            }
        }
    }
}

fn count_of(messages: &[Message], to: &str) -> usize {
    messages.iter().filter(|m| m.data["to"] == to).count()
}

async fn complete(server: &TestServer, id: &str, token: &str) {
    server
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": token, "result": {"ok": true}}),
        )
        .await
        .expect(200);
}

async fn enqueue_many(server: &TestServer, queue: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let jobs: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"kind": "bulk", "queue": queue, "args": {"i": i}}))
            .collect();
        server
            .post("/v1/jobs/batch", json!({ "jobs": jobs }))
            .await
            .expect(201);
    }
}

#[tokio::test]
async fn events_arrive_in_order_per_job_and_only_for_the_filter() {
    let server = TestServer::start().await;
    let mut all = Sse::open(&server, "?queue=ev", None).await;
    let mut done_only = Sse::open(&server, "?queue=ev&type=completed,dead", None).await;

    server
        .enqueue(json!({"kind": "other", "queue": "elsewhere"}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let (id, token) = server.enqueue_and_lease("ev", "mail").await;
        complete(&server, &id, &token).await;
        ids.push(id);
    }
    let got = all
        .until(Duration::from_secs(10), 10, |m| m.data["to"] == "completed")
        .await;
    assert!(
        got.iter().all(|m| m.data["queue"] == "ev"),
        "only the filtered queue"
    );
    let seqs: Vec<i64> = got
        .iter()
        .map(|m| m.id.expect("every event has an id"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {seqs:?}"
    );
    for m in &got {
        assert_eq!(m.data["seq"].as_i64(), m.id, "the id is the seq");
        assert_eq!(m.data["type"], m.data["to"]);
        assert_eq!(m.data["kind"], "mail");
        assert_eq!(m.data["namespace"], "default");
    }
    let mut per_job: HashMap<String, Vec<String>> = HashMap::new();
    for m in &got {
        per_job
            .entry(m.data["job_id"].as_str().unwrap().to_string())
            .or_default()
            .push(format!(
                "{}>{}:{}",
                m.data["from"].as_str().unwrap_or("-"),
                m.data["to"].as_str().unwrap(),
                m.data["reason"].as_str().unwrap()
            ));
    }
    for id in &ids {
        assert_eq!(
            per_job[id],
            vec![
                "->available:enqueue",
                "available>running:lease",
                "running>completed:complete"
            ],
            "events of {id} in order"
        );
    }
    // The same history as the job's own event log.
    let log = server
        .get(&format!("/v1/jobs/{}/events", ids[0]))
        .await
        .expect(200);
    let log_seqs: Vec<i64> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let stream_seqs: Vec<i64> = got
        .iter()
        .filter(|m| m.data["job_id"] == ids[0].as_str())
        .map(|m| m.id.unwrap())
        .collect();
    assert_eq!(log_seqs, stream_seqs);

    let done = done_only.until(Duration::from_secs(10), 10, |_| true).await;
    assert!(done.iter().all(|m| m.data["type"] == "completed"));

    // One job's events only.
    let mut one = Sse::open(&server, &format!("?job_id={}", ids[3]), Some(0)).await;
    let mine = one.until(Duration::from_secs(10), 3, |_| true).await;
    assert!(mine.iter().all(|m| m.data["job_id"] == ids[3].as_str()));
}

#[tokio::test]
async fn resume_with_last_event_id_delivers_exactly_what_was_missed() {
    let server = TestServer::start().await;
    let mut steady = Sse::open(&server, "", None).await;
    let mut first = Sse::open(&server, "", None).await;
    enqueue_many(&server, "r", 5).await;
    let seen = first.until(Duration::from_secs(10), 5, |_| true).await;
    let last = seen.last().unwrap().id.unwrap();
    drop(first);

    // While disconnected: more transitions.
    enqueue_many(&server, "r", 5).await;
    let leased = server.lease("r", "w1", 4).await;
    for j in &leased {
        complete(
            &server,
            j["id"].as_str().unwrap(),
            j["lease_token"].as_str().unwrap(),
        )
        .await;
    }
    let everything = steady
        .until(Duration::from_secs(10), 4, |m| m.data["to"] == "completed")
        .await;
    let missed: Vec<i64> = everything
        .iter()
        .filter_map(|m| m.id)
        .filter(|s| *s > last)
        .collect();
    assert_eq!(missed.len(), 5 + 4 + 4);

    let mut resumed = Sse::open(&server, "", Some(last)).await;
    let got = resumed
        .until(Duration::from_secs(10), missed.len(), |_| true)
        .await;
    assert_eq!(
        got.iter().map(|m| m.id.unwrap()).collect::<Vec<_>>(),
        missed,
        "exactly the events after Last-Event-ID, in order"
    );
    assert!(got.iter().all(|m| m.event.is_none()), "no gap");

    // `after=` does the same where a header cannot be set; the header wins over it.
    let mut by_query = Sse::open(&server, &format!("?after={last}"), None).await;
    let q = by_query
        .until(Duration::from_secs(10), missed.len(), |_| true)
        .await;
    assert_eq!(q.first().unwrap().id, Some(missed[0]));
    let mut both = Sse::open(&server, "?after=0", Some(missed[5])).await;
    let b = both.until(Duration::from_secs(10), 1, |_| true).await;
    assert_eq!(b[0].id, Some(missed[6]));
}

#[tokio::test]
async fn resume_from_before_the_history_reports_a_gap_then_continues() {
    let mut config = test_config();
    config.events.history = 5;
    let server = TestServer::start_with(config, None).await;
    let mut live = Sse::open(&server, "", None).await;
    enqueue_many(&server, "g", 12).await;
    let all = live.until(Duration::from_secs(10), 12, |_| true).await;
    let first = all[0].id.unwrap();

    let mut old = Sse::open(&server, "", Some(first)).await;
    let got = old.until(Duration::from_secs(10), 6, |_| true).await;
    assert_eq!(got[0].event.as_deref(), Some("gap"), "a gap comes first");
    assert_eq!(got[0].data["after"].as_i64(), Some(first));
    let rest: Vec<i64> = got[1..].iter().map(|m| m.id.unwrap()).collect();
    let want: Vec<i64> = all[7..].iter().map(|m| m.id.unwrap()).collect();
    assert_eq!(rest, want, "then the history it still has");
}

/// Jobs in [`burst`]: 20,000 events, several MB, more than socket buffers hold.
const JOBS: usize = 10_000;

/// Enqueues [`JOBS`] jobs and leases them all.
async fn burst(server: &TestServer) {
    enqueue_many(server, "burst", JOBS).await;
    for _ in 0..JOBS / 1000 {
        let r = server
            .post(
                "/v1/leases",
                json!({"queues": ["burst"], "worker_id": "w", "max_jobs": 1000, "lease_ms": 600_000}),
            )
            .await
            .expect(200);
        assert_eq!(r.body["jobs"].as_array().unwrap().len(), 1000);
    }
}

/// An event-stream subscriber that reads nothing, with a tiny receive window.
async fn stalled_subscriber(server: &TestServer) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut stalled = socket.connect(addr).await.expect("connect");
    stalled
        .write_all(b"GET /v1/events HTTP/1.1\r\nhost: hopper\r\n\r\n")
        .await
        .unwrap();
    stalled
}

#[tokio::test]
async fn a_stalled_subscriber_does_not_hold_up_shutdown() {
    let mut config = test_config();
    config.shutdown_timeout_ms = 500;
    let server = TestServer::start_with(config, None).await;
    let _stalled = stalled_subscriber(&server).await;
    let mut healthy = Sse::open(&server, "", None).await;
    burst(&server).await;
    healthy
        .until(Duration::from_secs(60), JOBS, |m| m.data["to"] == "running")
        .await;
    let t = Instant::now();
    // `stop` itself fails the test after 10 s.
    server.stop().await.expect("the server stops cleanly");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_client_does_not_delay_a_healthy_one() {
    let mut config = test_config();
    // Small buffers, so the stalled subscriber falls behind both for sure.
    config.events.history = 1_000;
    config.events.channel = 4;
    let server = TestServer::start_with(config, None).await;

    let mut stalled = stalled_subscriber(&server).await;
    let mut healthy = Sse::open(&server, "", None).await;
    // Let the stalled request reach the server before the burst starts.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    burst(&server).await;
    let produced = started.elapsed();
    let got = healthy
        .until(Duration::from_secs(60), JOBS, |m| m.data["to"] == "running")
        .await;
    let delivered = started.elapsed();
    assert_eq!(count_of(&got, "available"), JOBS, "nothing skipped");
    assert!(
        got.iter().all(|m| m.event.is_none()),
        "no gap for the healthy one"
    );
    assert!(
        delivered < produced + Duration::from_secs(20),
        "the healthy client got everything {:?} after the last change",
        delivered - produced
    );
    // The server answers other calls while the stalled client sits there.
    server.get("/healthz").await.expect(200);

    // Now the stalled client reads: it was skipped ahead (a gap) rather than served 40k events.
    let mut raw = Vec::new();
    let read_all = async {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // Look only at the new bytes (and the few before them a marker may span).
                    let from = raw.len().saturating_sub(16);
                    raw.extend_from_slice(&buf[..n]);
                    if raw[from..].windows(10).any(|w| w == b"event: gap") {
                        break;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), read_all).await;
    assert!(
        raw.windows(10).any(|w| w == b"event: gap"),
        "the stalled client was told it missed events ({} bytes read)",
        raw.len()
    );
}

#[tokio::test]
async fn websocket_carries_the_same_events() {
    let server = TestServer::start().await;
    let url = format!(
        "{}/v1/events/ws?queue=ws",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect");
    let mut sse = Sse::open(&server, "?queue=ws", None).await;
    // The socket's subscription exists once the upgrade is answered.
    let (id, token) = server.enqueue_and_lease("ws", "mail").await;
    complete(&server, &id, &token).await;
    let from_sse = sse.until(Duration::from_secs(10), 3, |_| true).await;
    let mut from_ws = Vec::new();
    while from_ws.len() < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no error");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            from_ws.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
        }
    }
    assert_eq!(
        from_ws,
        from_sse.iter().map(|m| m.data.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn bad_subscriptions_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    for (query, field) in [
        ("?type=bogus", "type"),
        ("?job_id=nope", "job_id"),
        ("?after=-1", "after"),
        ("?after=x", "after"),
        ("?queue=bad%20name", "queue"),
        ("?wat=1", "wat"),
    ] {
        server
            .get(&format!("/v1/events{query}"))
            .await
            .expect_error(400, "invalid_argument", Some(field));
        server
            .get(&format!("/v1/events/ws{query}"))
            .await
            .expect_error(400, "invalid_argument", Some(field));
    }
    // A plain GET of the WebSocket endpoint is told what it speaks.
    server
        .get("/v1/events/ws")
        .await
        .expect_error(400, "invalid_argument", Some("upgrade"));
    server
        .send(
            server
                .client
                .get(server.url("/v1/events"))
                .header("last-event-id", "abc"),
        )
        .await
        .expect_error(400, "invalid_argument", Some("Last-Event-ID"));
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = TestServer::start().await;
    let mut sse = Sse::open(&server, "", None).await;
    let stopped = tokio::spawn(server.stop());
    assert_eq!(
        sse.fill(Duration::from_secs(10)).await,
        Some(false),
        "the stream ends when the server stops"
    );
    stopped
        .await
        .expect("join")
        .expect("the server stops cleanly");
}
