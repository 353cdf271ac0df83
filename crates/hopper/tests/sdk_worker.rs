//! The SDK against a real server (the `hopper` binary): typed handlers, every `Outcome`, errors,
//! panics, bad args, timeouts, cancellation through heartbeats, leases kept (and cancels heard)
//! while jobs wait for a run slot, progress, graceful shutdown, the client's error codes and
//! idempotent enqueue, and the producer's traceparent (body field or header) in the handler.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Server, wait_job, wait_state};
use hopper_worker::{
    Backoff, BoxError, Client, EnqueueRequest, ErrorCode, Handler, Job, JobContext, JobState,
    Outcome, Worker,
};
use serde::Deserialize;
use serde_json::json;

const LONG: Duration = Duration::from_secs(30);
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// What the `act` handler should do.
#[derive(Debug, Deserialize)]
struct Act {
    what: String,
}

async fn act(ctx: JobContext, args: Act) -> anyhow::Result<Outcome> {
    Ok(match args.what.as_str() {
        "complete" => Outcome::complete_with(&json!({
            "attempt": ctx.attempt(),
            "lease_seq": ctx.lease_seq(),
            "traceparent": ctx.traceparent(),
        })),
        "fail" => Outcome::fail("transient"),
        "fail_permanently" => Outcome::FailPermanently {
            message: "never works".into(),
            kind: "bad_input".into(),
        },
        "retry_in" => Outcome::RetryIn(Duration::from_secs(3600)),
        "cancelled" => Outcome::Cancelled,
        "error" => return Err(anyhow::anyhow!("kaput").context("calling the API")),
        "panic" => panic!("oh no"),
        "sleep" => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Outcome::complete()
        }
        "progress" => {
            ctx.progress(&json!({"pct": 50})).await?;
            Outcome::complete()
        }
        "wait_for_cancel" => {
            ctx.cancelled().await;
            // Whatever a handler reports after a cancel, the job ends cancelled.
            Outcome::fail("stopped")
        }
        other => Outcome::fail_permanently(format!("unknown act {other}")),
    })
}

/// A handler as a type, with state.
struct Counter {
    runs: Arc<AtomicUsize>,
}

#[derive(Deserialize)]
struct Add {
    n: usize,
}

impl Handler for Counter {
    type Args = Add;
    async fn handle(&self, _ctx: JobContext, args: Add) -> Result<Outcome, BoxError> {
        let total = self.runs.fetch_add(args.n, Ordering::SeqCst) + args.n;
        Ok(Outcome::complete_with(&total))
    }
}

fn job(kind: &str, args: serde_json::Value) -> EnqueueRequest {
    let mut r = EnqueueRequest::new(kind, &args).unwrap();
    r.queue = Some("sdk".into());
    // Failed attempts wait an hour, so each test sees the state its outcome produced.
    r.backoff = Some(Backoff::Fixed {
        delay_ms: 3_600_000,
    });
    r
}

async fn enqueue(client: &Client, kind: &str, args: serde_json::Value) -> Job {
    client.enqueue(job(kind, args)).await.unwrap()
}

fn last_error(j: &Job) -> (&str, &str) {
    let e = j.errors.last().expect("an error was recorded");
    (e.kind.as_str(), e.message.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_reaches_the_server() {
    let server = Server::start();
    let client = server.client();
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .concurrency(4)
        .lease_ms(600)
        .cancel_grace(Duration::from_secs(2))
        .register("act", act)
        .register_handler("count", Counter { runs: runs.clone() })
        .build()
        .unwrap();
    let stats = worker.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));

    let mut completed = job("act", json!({"what": "complete"}));
    completed.traceparent = Some(TRACEPARENT.into());
    let completed = client.enqueue(completed).await.unwrap();
    let failed = enqueue(&client, "act", json!({"what": "fail"})).await;
    let permanent = enqueue(&client, "act", json!({"what": "fail_permanently"})).await;
    let retry_in = enqueue(&client, "act", json!({"what": "retry_in"})).await;
    let cancelled = enqueue(&client, "act", json!({"what": "cancelled"})).await;
    let errored = enqueue(&client, "act", json!({"what": "error"})).await;
    let panicked = enqueue(&client, "act", json!({"what": "panic"})).await;
    let progress = enqueue(&client, "act", json!({"what": "progress"})).await;
    let bad_args = enqueue(&client, "act", json!({"how": "complete"})).await;
    let unknown = enqueue(&client, "no_such_kind", json!({})).await;
    let counted = enqueue(&client, "count", json!({"n": 5})).await;
    let mut timed = job("act", json!({"what": "sleep"}));
    timed.timeout_ms = Some(1000);
    timed.max_attempts = Some(1);
    let timed = client.enqueue(timed).await.unwrap();

    let j = wait_state(&client, completed.id, JobState::Completed, LONG).await;
    let result: serde_json::Value = serde_json::from_str(j.result.unwrap().get()).unwrap();
    assert_eq!(
        result,
        json!({"attempt": 1, "lease_seq": 1, "traceparent": TRACEPARENT})
    );

    let j = wait_state(&client, failed.id, JobState::Retryable, LONG).await;
    assert_eq!(last_error(&j), ("error", "transient"));

    let j = wait_state(&client, permanent.id, JobState::Dead, LONG).await;
    assert_eq!(j.attempt, 1, "no retry for a permanent failure");
    assert_eq!(last_error(&j), ("bad_input", "never works"));

    let j = wait_state(&client, retry_in.id, JobState::Retryable, LONG).await;
    assert_eq!(last_error(&j).0, "retry");
    // The handler's delay, not the job's fixed backoff (which is also an hour: compare ends).
    let failed_at = j.attempts.last().and_then(|a| a.finished_at).unwrap();
    assert_eq!(j.available_at.millis_since(failed_at), 3_600_000);

    wait_state(&client, cancelled.id, JobState::Cancelled, LONG).await;

    let j = wait_state(&client, errored.id, JobState::Retryable, LONG).await;
    assert_eq!(last_error(&j).0, "error");
    assert_eq!(last_error(&j).1, "calling the API: kaput");

    let j = wait_state(&client, panicked.id, JobState::Retryable, LONG).await;
    assert_eq!(last_error(&j), ("panic", "the handler panicked: oh no"));

    let j = wait_state(&client, progress.id, JobState::Completed, LONG).await;
    assert_eq!(
        j.progress.map(|p| p.get().to_string()),
        Some(r#"{"pct":50}"#.into())
    );

    let j = wait_state(&client, bad_args.id, JobState::Dead, LONG).await;
    assert_eq!(last_error(&j).0, "invalid_args");

    let j = wait_state(&client, unknown.id, JobState::Retryable, LONG).await;
    assert_eq!(last_error(&j).0, "unknown_kind");

    let j = wait_state(&client, counted.id, JobState::Completed, LONG).await;
    assert_eq!(j.result.map(|r| r.get().to_string()), Some("5".into()));

    let j = wait_state(&client, timed.id, JobState::Dead, LONG).await;
    assert_eq!(last_error(&j).0, "timeout");

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.completed, 3, "{s:?}");
    assert_eq!(s.undelivered, 0, "{s:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_the_handler_through_its_heartbeat() {
    let server = Server::start();
    let client = server.client();
    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .lease_ms(600)
        .register("act", act)
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    let j = enqueue(&client, "act", json!({"what": "wait_for_cancel"})).await;
    wait_state(&client, j.id, JobState::Running, LONG).await;
    let flagged = client.cancel(j.id).await.unwrap();
    assert!(flagged.cancel_requested);
    let done = wait_state(&client, j.id, JobState::Cancelled, LONG).await;
    assert_eq!(
        done.attempts.last().and_then(|a| a.outcome),
        Some(hopper_types::AttemptOutcome::Cancelled)
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_short_jobs_and_releases_long_ones() {
    let server = Server::start();
    let client = server.client();
    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .concurrency(2)
        .grace_period(Duration::from_millis(500))
        .register("act", act)
        .register(
            "quick",
            |_ctx: JobContext, _args: serde_json::Value| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, std::convert::Infallible>(())
            },
        )
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    let long = enqueue(&client, "act", json!({"what": "sleep"})).await;
    let quick = enqueue(&client, "quick", json!(null)).await;
    wait_job(&client, quick.id, LONG, |j| j.state != JobState::Available).await;
    wait_state(&client, long.id, JobState::Running, LONG).await;

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops within its grace period")
        .unwrap()
        .unwrap();
    assert_eq!(
        client.get(quick.id).await.unwrap().state,
        JobState::Completed
    );
    let long = client.get(long.id).await.unwrap();
    assert_eq!(long.state, JobState::Available, "{long:#?}");
    assert_eq!(long.attempt, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_is_idempotent_and_errors_carry_their_code() {
    let server = Server::start();
    let client = server.client();
    let mut req = job("k", json!({"a": 1}));
    req.idempotency_key = Some("once".into());
    let first = client.enqueue(req.clone()).await.unwrap();
    let again = client.enqueue(req.clone()).await.unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.duplicate, Some(true));

    req.args = Some(serde_json::value::to_raw_value(&json!({"a": 2})).unwrap());
    let e = client.enqueue(req).await.unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::IdempotencyConflict));

    let mut bad = job("k", json!(null));
    bad.priority = Some(1_000_000);
    match client.enqueue(bad).await.unwrap_err() {
        hopper_worker::Error::Api(e) => {
            assert_eq!((e.status, &e.code), (400, &ErrorCode::InvalidArgument));
            assert_eq!(e.field.as_deref(), Some("priority"));
        }
        other => panic!("{other:?}"),
    }

    let batch = client
        .enqueue_batch(vec![job("k", json!(1)), job("k", json!(2))])
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|j| j.idempotency_key.is_some()));

    // Outcomes with a token that is not the job's are fenced off.
    let e = client
        .complete(first.id, "not-the-token", &json!(null))
        .await
        .unwrap_err();
    assert!(e.is_lease_lost(), "{e}");
}

/// Jobs leased ahead of a free run slot are heartbeated while they wait: with handlers that
/// outlast the lease, a job waiting behind them must not lose its lease to the rescuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_jobs_waiting_for_a_slot_keep_their_leases() {
    let server = Server::start();
    let client = server.client();
    // Longer than the lease: the second job, leased with the first (the worker holds twice
    // its concurrency), waits more than a lease period for its turn.
    let run_time = Duration::from_millis(1500);
    let jobs = client
        .enqueue_batch((0..3).map(|i| job("slow", json!(i))).collect())
        .await
        .unwrap();
    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .concurrency(1)
        .lease_ms(1000)
        .register(
            "slow",
            move |_ctx: JobContext, _args: serde_json::Value| async move {
                tokio::time::sleep(run_time).await;
                Ok::<_, std::convert::Infallible>(())
            },
        )
        .build()
        .unwrap();
    let stats = worker.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));

    for j in &jobs {
        // Completed, or whatever a rescue left (retryable, an hour of backoff): either ends.
        let j = wait_job(&client, j.id, LONG, |j| {
            !matches!(j.state, JobState::Available | JobState::Running)
        })
        .await;
        assert_eq!(j.state, JobState::Completed, "{j:#?}");
        assert_eq!(j.attempt, 1, "{j:#?}");
        assert!(j.errors.is_empty(), "{j:#?}");
        assert_eq!(j.attempts.len(), 1, "{j:#?}");
    }

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.completed, 3, "{s:?}");
    assert_eq!(s.undelivered, 0, "{s:?}");
}

/// A cancel requested for a job still waiting for a run slot reaches it through the heartbeat
/// of its wait: the job ends cancelled without its handler ever running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_reaches_a_job_waiting_for_a_slot() {
    let server = Server::start();
    let client = server.client();
    let jobs = client
        .enqueue_batch(vec![job("block", json!(0)), job("block", json!(1))])
        .await
        .unwrap();
    // The jobs whose handler started, in order.
    let started = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = started.clone();
    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .concurrency(1)
        .lease_ms(600)
        .register("block", move |ctx: JobContext, _args: serde_json::Value| {
            record.lock().unwrap().push(ctx.id());
            async move {
                ctx.cancelled().await;
                Ok::<_, std::convert::Infallible>(Outcome::Cancelled)
            }
        })
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    // Both leased (running for the server): one runs, the other waits for the one slot.
    for j in &jobs {
        wait_state(&client, j.id, JobState::Running, LONG).await;
    }
    let deadline = std::time::Instant::now() + LONG;
    let runner = loop {
        if let Some(&id) = started.lock().unwrap().first() {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no handler started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let waiter = jobs.iter().map(|j| j.id).find(|&id| id != runner).unwrap();

    client.cancel(waiter).await.unwrap();
    let done = wait_state(&client, waiter, JobState::Cancelled, LONG).await;
    assert_eq!(
        done.attempts.last().and_then(|a| a.outcome),
        Some(hopper_types::AttemptOutcome::Cancelled)
    );
    assert_eq!(
        *started.lock().unwrap(),
        vec![runner],
        "the waiting job never ran"
    );
    assert_eq!(client.get(runner).await.unwrap().state, JobState::Running);

    client.cancel(runner).await.unwrap();
    wait_state(&client, runner, JobState::Cancelled, LONG).await;
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// A `traceparent` given at enqueue as a header reaches `ctx.traceparent()` of jobs that name
/// none of their own, single and batched; a job's own field wins over the header; a malformed
/// header is ignored, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_header_reaches_the_handler() {
    const HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let server = Server::start();
    let client = server.client();
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value, traceparent: &str| {
        http.post(format!("{}{path}", server.url))
            .header("traceparent", traceparent)
            .json(&body)
            .send()
    };
    let complete = json!({"kind": "act", "queue": "sdk", "args": {"what": "complete"}});
    let mut own = complete.clone();
    own["traceparent"] = json!(TRACEPARENT);

    let resp = post("/v1/jobs", complete.clone(), HEADER).await.unwrap();
    assert_eq!(resp.status(), 201);
    let from_header: Job = resp.json().await.unwrap();
    let resp = post("/v1/jobs", own.clone(), HEADER).await.unwrap();
    let own_field: Job = resp.json().await.unwrap();
    let resp = post("/v1/jobs", complete.clone(), "00-not-a-trace-01")
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let bad_header: Job = resp.json().await.unwrap();
    let resp = post("/v1/jobs/batch", json!({"jobs": [complete, own]}), HEADER)
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let batch: serde_json::Value = resp.json().await.unwrap();
    let batch: Vec<Job> = serde_json::from_value(batch["jobs"].clone()).unwrap();

    let worker = Worker::builder(client.clone())
        .queues(["sdk"])
        .register("act", act)
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    for (job, expected) in [
        (&from_header, Some(HEADER)),
        (&own_field, Some(TRACEPARENT)),
        (&bad_header, None),
        (&batch[0], Some(HEADER)),
        (&batch[1], Some(TRACEPARENT)),
    ] {
        assert_eq!(job.traceparent.as_deref(), expected, "{job:#?}");
        let done = wait_state(&client, job.id, JobState::Completed, LONG).await;
        let result: serde_json::Value = serde_json::from_str(done.result.unwrap().get()).unwrap();
        assert_eq!(result["traceparent"], json!(expected), "{result}");
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
