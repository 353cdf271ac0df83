//! Property test over every endpoint that takes a JSON body: a real server (SQLite store, real
//! HTTP) is sent, per endpoint, bodies of five kinds:
//!
//! - the endpoint's valid body with fields replaced by random or boundary values, removed, or
//!   joined by unknown fields (this is what gets past the parser into validation and the store);
//! - near misses: an empty object with the endpoint's own field paths set to random values;
//! - fully random JSON documents;
//! - the valid body's text cut short or with bytes overwritten, and raw byte noise;
//! - no body at all, and bodies under a wrong or missing content type.
//!
//! Paths that name a job, workflow, queue, schedule or definition use a real one (made fresh
//! for the case when the endpoint changes it, e.g. a leased job for `complete`), a random UUID,
//! or noise.
//!
//! The property: no answer is a 5xx, every 4xx carries the api-v1 error body
//! `{"error":{"code":...,"message":...,"field"?}}` with a non-empty code and message, and the
//! server still answers `GET /healthz` after each endpoint's run. The key, session, namespace
//! and webhook endpoints run with an admin key (see `Server::authenticate`), the rest on an
//! open server. Two guards keep the table honest: `table_covers_every_body_route` fails when
//! `routes/mod.rs` gains a POST or PUT route the table lacks, and `templates_are_accepted`
//! when a template stops being a valid body (mutations must start from one that reaches the
//! handler's logic).
//!
//! `HOPPER_FUZZ_CASES` sets the cases per endpoint (default 512: about 15 s in a debug build on
//! two cores, plus the build); raise it to fuzz longer locally:
//! `HOPPER_FUZZ_CASES=2000 cargo test -p hopper-server --test fuzz_bodies`.
//!
//! `random_json.rs` is the older, narrower version of this test (job and lease endpoints only);
//! the strategies are copied rather than shared because each test file is its own binary.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[path = "strategies/mod.rs"]
mod strategies;

use hopper_server::{ServerConfig, serve};
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::SystemClock;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};
use strategies::arb_json;

// ---------------------------------------------------------------------------------------------
// The server under test.

/// Prefix of the queues of the jobs leased for the outcome endpoints: each case enqueues and
/// leases in a queue of its own, so it leases exactly its fresh job (not one an earlier case
/// released, failed or filled with odd progress). The dot, which the random names below
/// never contain, keeps fuzzed queue calls (pause, rate limits) away from it.
const LEASED_QUEUE: &str = "fixture.leased";
/// Schedule created at start, targeted by the schedule endpoints' real-name paths.
const SCHEDULE: &str = "fixture.sched";
/// Workflow definition created at start, targeted by the definition endpoints.
const DEFINITION: &str = "fixture.def";

/// A server on `127.0.0.1:0` over a fresh SQLite store, and a runtime to talk to it from the
/// synchronous proptest loop.
struct Server {
    rt: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    /// A client that never reuses a connection, for the retry in [`Server::send`].
    fresh: reqwest::Client,
    /// Requests that got no answer on a reused connection and were sent again.
    retries: AtomicU64,
    /// Names made unique per case (`$UNIQUE`), e.g. a new schedule's name.
    counter: AtomicU64,
    /// The admin key every request carries, once [`Server::authenticate`] made one.
    token: Option<String>,
    // The database lives as long as the server.
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let base = rt.block_on(async {
            let store = SqliteStore::open(SqliteConfig {
                data_dir: dir.path().to_path_buf(),
                // Nothing here must survive a power loss; relaxed keeps thousands of writes fast.
                durability: Durability::Relaxed,
                clock: Arc::new(SystemClock),
            })
            .expect("open store");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("local addr");
            tokio::spawn(serve(
                ServerConfig::default(),
                Arc::new(store),
                listener,
                std::future::pending(),
            ));
            format!("http://{addr}")
        });
        // A hung request is a finding too, so requests get a deadline; lease waits are capped
        // far below it (see `cap_wait`).
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let server = Server {
            rt,
            base,
            client,
            fresh,
            retries: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            token: None,
            _dir: dir,
        };
        server.fixture_call(
            Method::POST,
            "/v1/schedules",
            &json!({
                "name": SCHEDULE,
                "cron": "0 0 1 1 *",
                "job": {"kind": "fuzz.sched", "queue": "fuzz"},
                "paused": true
            }),
        );
        server.fixture_call(
            Method::PUT,
            &format!("/v1/workflows/definitions/{DEFINITION}"),
            &definition_template(),
        );
        server
    }

    /// Creates an admin key and sends it with every request from now on. The first key turns
    /// authentication on (until then every caller is an anonymous admin), so the key endpoints
    /// need it: a fuzzed `POST /v1/keys` that succeeds would otherwise lock the run out.
    fn authenticate(&mut self) {
        let created = self.fixture_call(
            Method::POST,
            "/v1/keys",
            &json!({"name": "fuzz admin", "role": "admin", "namespaces": ["*"]}),
        );
        let token = str_at(&created, "/token").unwrap_or_else(|e| panic!("admin key: {e}"));
        self.token = Some(token);
    }

    /// Sends one request; an error when no answer came (connection dropped, timeout).
    ///
    /// A request sent on a pooled keep-alive connection at the moment the server closes it
    /// (which it does after answering a request whose body it did not read, e.g. a 404) gets
    /// no answer: an HTTP race, not a server fault. Such a request is sent once more on a new
    /// connection, and only a second failure counts: a body that really kills the connection
    /// does so every time.
    fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), String> {
        self.rt.block_on(async {
            let first = self
                .send_on(
                    &self.client,
                    method.clone(),
                    path,
                    content_type,
                    body.clone(),
                )
                .await;
            match first {
                Err(e) if !e.is_timeout() && e.status().is_none() => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    self.send_on(&self.fresh, method, path, content_type, body)
                        .await
                        .map_err(|again| {
                            format!(
                                "no answer, twice: {:?}; then {:?}",
                                error_chain(&e),
                                error_chain(&again)
                            )
                        })
                }
                other => other.map_err(|e| format!("no answer: {:?}", error_chain(&e))),
            }
        })
    }

    async fn send_on(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), reqwest::Error> {
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, text))
    }

    /// A setup call that must succeed; answers its JSON.
    fn fixture_call(&self, method: Method, path: &str, body: &Value) -> Value {
        self.try_fixture_call(method.clone(), path, body)
            .unwrap_or_else(|e| panic!("fixture {method} {path}: {e}"))
    }

    fn try_fixture_call(&self, method: Method, path: &str, body: &Value) -> Result<Value, String> {
        let (status, text) = self.send(
            method,
            path,
            Some("application/json"),
            Some(body.to_string().into_bytes()),
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("answer is not JSON ({e}): {text}"))
    }

    fn healthy(&self) -> bool {
        matches!(self.send(Method::GET, "/healthz", None, None), Ok((200, _)))
    }

    fn unique(&self) -> String {
        format!("fuzz-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }
}

// ---------------------------------------------------------------------------------------------
// The endpoints.

/// What real object an endpoint's path and valid body need, made before each case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixture {
    /// Nothing (no path parameter, or a queue, schedule or definition made at start).
    None,
    /// A fresh available job: `{id}` and `$JOB_ID`.
    Job,
    /// A fresh job, cancelled (what `retry` takes).
    CancelledJob,
    /// A fresh job leased by a worker: `{id}`, `$JOB_ID` and `$TOKEN`.
    Leased,
    /// A fresh workflow run: `{id}` and `$WF_ID`.
    Workflow,
    /// A fresh workflow run, cancelled (what `retry` takes).
    CancelledWorkflow,
    /// A fresh viewer API key: `{id}` and its text as `$TOKEN`.
    Key,
}

/// One endpoint that takes a JSON body.
struct Endpoint {
    method: Method,
    /// With `{id}` or `{name}` standing for the path parameter.
    path: &'static str,
    /// The real value of `{name}`, when the path has one.
    name: &'static str,
    fixture: Fixture,
    /// A valid body (placeholders such as `$TOKEN` are filled in per case).
    template: fn() -> Value,
    /// The body's field paths, dotted (`jobs.0.priority`), for near misses and mutations.
    fields: Vec<String>,
}

fn ep(
    method: Method,
    path: &'static str,
    fixture: Fixture,
    template: fn() -> Value,
    fields: Vec<String>,
) -> Endpoint {
    Endpoint {
        method,
        path,
        name: "",
        fixture,
        template,
        fields,
    }
}

fn named(mut e: Endpoint, name: &'static str) -> Endpoint {
    e.name = name;
    e
}

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The field paths of an `EnqueueRequest` under `prefix` (`""`, `job.`, `jobs.0.`, ...).
fn job_fields(prefix: &str) -> Vec<String> {
    [
        "kind",
        "queue",
        "args",
        "args.n",
        "priority",
        "run_at",
        "delay_ms",
        "max_attempts",
        "backoff",
        "backoff.kind",
        "backoff.base_ms",
        "backoff.cap_ms",
        "backoff.jitter",
        "backoff.delay_ms",
        "timeout_ms",
        "idempotency_key",
        "tags",
        "tags.0",
        "meta",
        "traceparent",
        "concurrency_key",
        "fairness_key",
        "estimated_ms",
    ]
    .iter()
    .map(|f| format!("{prefix}{f}"))
    .collect()
}

/// The field paths of a workflow `StepRequest` under `prefix`.
fn step_fields(prefix: &str) -> Vec<String> {
    let mut f = strs(&["step", "depends_on", "depends_on.0", "on_failure", "job"])
        .into_iter()
        .map(|f| format!("{prefix}{f}"))
        .collect::<Vec<_>>();
    f.extend(job_fields(&format!("{prefix}job.")));
    f
}

/// Keys a client might plausibly send to the endpoints whose body must be empty or `{}`.
fn empty_body_fields() -> Vec<String> {
    strs(&["reason", "force", "queue", "id", "all"])
}

fn job_template() -> Value {
    json!({
        "kind": "fuzz.kind",
        "queue": "fuzz",
        "args": {"n": 1, "s": "x"},
        "priority": 0,
        "delay_ms": 0,
        "max_attempts": 3,
        "backoff": {"kind": "exponential", "base_ms": 1000, "cap_ms": 60000, "jitter": 0.2},
        "timeout_ms": 30000,
        "idempotency_key": "$UNIQUE",
        "tags": ["fuzz"],
        "meta": {"m": true},
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "concurrency_key": "ck",
        "fairness_key": "fk",
        "estimated_ms": 100
    })
}

fn steps_template() -> Value {
    json!([
        {"step": "a", "job": {"kind": "fuzz.a", "queue": "fuzz", "args": {"x": 1}}},
        {"step": "b", "depends_on": ["a"], "on_failure": "continue",
         "job": {"kind": "fuzz.b", "queue": "fuzz"}}
    ])
}

fn definition_template() -> Value {
    json!({
        "steps": [
            {"step": "a", "job": {"kind": "fuzz.def", "queue": "fuzz",
              "args": {"p": "{{params.p}}", "d": "{{logical_date}}", "s": "at {{logical_date}}"}}},
            {"step": "b", "depends_on": ["a"], "job": {"kind": "fuzz.def2", "queue": "fuzz"}}
        ],
        "params": {"p": 1},
        "timezone": "UTC"
    })
}

fn schedule_template() -> Value {
    json!({
        "name": "$UNIQUE",
        "cron": "*/5 * * * *",
        "timezone": "UTC",
        "job": {"kind": "fuzz.sched", "queue": "fuzz", "args": {"a": 1}},
        "jitter_ms": 0,
        "misfire": {"policy": "catch_up", "max": 3},
        "paused": true
    })
}

fn schedule_fields() -> Vec<String> {
    let mut f = strs(&[
        "name",
        "cron",
        "timezone",
        "job",
        "jitter_ms",
        "misfire",
        "misfire.policy",
        "misfire.max",
        "paused",
    ]);
    f.extend(job_fields("job."));
    f
}

fn empty() -> Value {
    json!({})
}

fn lease_template() -> Value {
    json!({"queues": ["fuzz"], "worker_id": "fuzz-worker", "max_jobs": 1, "lease_ms": 30000, "wait_ms": 0})
}

fn dead_letter_template() -> Value {
    json!({"queue": "fuzz", "error": "boom"})
}

fn jobs_endpoints() -> Vec<Endpoint> {
    let mut batch = strs(&["jobs", "jobs.0", "jobs.1"]);
    batch.extend(job_fields("jobs.0."));
    batch.extend(job_fields("jobs.1."));
    vec![
        ep(
            Method::POST,
            "/v1/jobs",
            Fixture::None,
            job_template,
            job_fields(""),
        ),
        ep(
            Method::POST,
            "/v1/jobs/batch",
            Fixture::None,
            || json!({"jobs": [job_template(), {"kind": "fuzz.other"}]}),
            batch,
        ),
        ep(
            Method::POST,
            "/v1/jobs/bulk",
            Fixture::Job,
            || json!({"action": "cancel", "ids": ["$JOB_ID", "$OTHER_ID"]}),
            strs(&["action", "ids", "ids.0", "ids.1"]),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/cancel",
            Fixture::Job,
            empty,
            empty_body_fields(),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/retry",
            Fixture::CancelledJob,
            empty,
            empty_body_fields(),
        ),
    ]
}

fn worker_endpoints() -> Vec<Endpoint> {
    let token = || strs(&["lease_token"]);
    let mut acks = strs(&["acks", "acks.0", "acks.1"]);
    for i in ["0", "1"] {
        for f in [
            "id",
            "lease_token",
            "outcome",
            "result",
            "error",
            "error.message",
            "error.kind",
            "error.retryable",
            "retry_in_ms",
        ] {
            acks.push(format!("acks.{i}.{f}"));
        }
    }
    vec![
        ep(
            Method::POST,
            "/v1/leases",
            Fixture::None,
            lease_template,
            strs(&[
                "queues",
                "queues.0",
                "queues.1",
                "worker_id",
                "max_jobs",
                "lease_ms",
                "wait_ms",
            ]),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/heartbeat",
            Fixture::Leased,
            || json!({"lease_token": "$TOKEN", "lease_ms": 30000, "progress": {"pct": 50}}),
            strs(&["lease_token", "lease_ms", "progress", "progress.pct"]),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/complete",
            Fixture::Leased,
            || json!({"lease_token": "$TOKEN", "result": {"ok": true}}),
            strs(&["lease_token", "result", "result.ok"]),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/fail",
            Fixture::Leased,
            || {
                json!({"lease_token": "$TOKEN",
                       "error": {"message": "boom", "kind": "Boom", "retryable": true},
                       "retry_in_ms": 1000})
            },
            strs(&[
                "lease_token",
                "error",
                "error.message",
                "error.kind",
                "error.retryable",
                "retry_in_ms",
            ]),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/release",
            Fixture::Leased,
            || json!({"lease_token": "$TOKEN"}),
            token(),
        ),
        ep(
            Method::POST,
            "/v1/jobs/{id}/cancelled",
            Fixture::Leased,
            || json!({"lease_token": "$TOKEN"}),
            token(),
        ),
        ep(
            Method::POST,
            "/v1/acks",
            Fixture::Leased,
            || {
                json!({"acks": [
                    {"id": "$JOB_ID", "lease_token": "$TOKEN", "outcome": "completed", "result": {"ok": 1}},
                    {"id": "$OTHER_ID", "lease_token": "$TOKEN", "outcome": "failed",
                     "error": {"message": "boom"}, "retry_in_ms": 10}
                ]})
            },
            acks,
        ),
    ]
}

fn queue_endpoints() -> Vec<Endpoint> {
    let rate = |p: &str| {
        [
            p.to_string(),
            format!("{p}.limit"),
            format!("{p}.period_ms"),
            format!("{p}.burst"),
        ]
    };
    let mut config = strs(&[
        "paused",
        "policy",
        "concurrency",
        "key_concurrency",
        "fairness_weights",
        "fairness_weights.a",
        "retention",
        "retention.completed_ms",
        "retention.cancelled_ms",
        "retention.dead_ms",
    ]);
    config.extend(rate("rate"));
    config.extend(rate("key_rate"));
    let selector = || strs(&["queue", "error"]);
    vec![
        named(
            ep(
                Method::PUT,
                "/v1/queues/{name}",
                Fixture::None,
                || {
                    json!({
                        "paused": false,
                        "policy": "fair",
                        "concurrency": 10,
                        "key_concurrency": 2,
                        "rate": {"limit": 100, "period_ms": 1000, "burst": 10},
                        "key_rate": {"limit": 10, "period_ms": 1000},
                        "fairness_weights": {"a": 2},
                        "retention": {"completed_ms": 60000, "cancelled_ms": 60000, "dead_ms": 60000}
                    })
                },
                config,
            ),
            "fuzz",
        ),
        named(
            ep(
                Method::POST,
                "/v1/queues/{name}/pause",
                Fixture::None,
                empty,
                empty_body_fields(),
            ),
            "fuzz",
        ),
        named(
            ep(
                Method::POST,
                "/v1/queues/{name}/resume",
                Fixture::None,
                empty,
                empty_body_fields(),
            ),
            "fuzz",
        ),
        named(
            ep(
                Method::POST,
                "/v1/queues/{name}/retry",
                Fixture::None,
                empty,
                empty_body_fields(),
            ),
            "fuzz",
        ),
        ep(
            Method::POST,
            "/v1/dead-letters/retry",
            Fixture::None,
            dead_letter_template,
            selector(),
        ),
        ep(
            Method::POST,
            "/v1/dead-letters/purge",
            Fixture::None,
            dead_letter_template,
            selector(),
        ),
    ]
}

fn schedule_endpoints() -> Vec<Endpoint> {
    let action = |path: &'static str| {
        named(
            ep(
                Method::POST,
                path,
                Fixture::None,
                empty,
                empty_body_fields(),
            ),
            SCHEDULE,
        )
    };
    vec![
        ep(
            Method::POST,
            "/v1/schedules",
            Fixture::None,
            schedule_template,
            schedule_fields(),
        ),
        named(
            ep(
                Method::PUT,
                "/v1/schedules/{name}",
                Fixture::None,
                || {
                    let mut s = schedule_template();
                    if let Some(o) = s.as_object_mut() {
                        // When replacing, the name may be left out (it is the path's).
                        o.remove("name");
                    }
                    s
                },
                schedule_fields(),
            ),
            SCHEDULE,
        ),
        action("/v1/schedules/{name}/pause"),
        action("/v1/schedules/{name}/resume"),
        action("/v1/schedules/{name}/trigger"),
    ]
}

fn workflow_endpoints() -> Vec<Endpoint> {
    let mut submit = strs(&["name", "steps", "steps.0", "steps.1"]);
    submit.extend(step_fields("steps.0."));
    submit.extend(step_fields("steps.1."));
    let mut add = strs(&["steps", "steps.0"]);
    add.extend(step_fields("steps.0."));
    let mut definition = strs(&[
        "steps", "steps.0", "steps.1", "params", "params.p", "cron", "timezone",
    ]);
    definition.extend(step_fields("steps.0."));
    definition.extend(step_fields("steps.1."));
    vec![
        ep(
            Method::POST,
            "/v1/workflows",
            Fixture::None,
            || json!({"name": "fuzz-wf", "steps": steps_template()}),
            submit,
        ),
        ep(
            Method::POST,
            "/v1/workflows/{id}/cancel",
            Fixture::Workflow,
            empty,
            empty_body_fields(),
        ),
        ep(
            Method::POST,
            "/v1/workflows/{id}/retry",
            Fixture::CancelledWorkflow,
            empty,
            empty_body_fields(),
        ),
        ep(
            Method::POST,
            "/v1/workflows/{id}/steps",
            Fixture::Workflow,
            || {
                json!({"steps": [{"step": "$UNIQUE", "depends_on": ["a"], "on_failure": "ignore",
                                  "job": {"kind": "fuzz.c", "queue": "fuzz"}}]})
            },
            add,
        ),
        named(
            ep(
                Method::PUT,
                "/v1/workflows/definitions/{name}",
                Fixture::None,
                definition_template,
                definition,
            ),
            DEFINITION,
        ),
        named(
            ep(
                Method::POST,
                "/v1/workflows/definitions/{name}/runs",
                Fixture::None,
                || json!({"params": {"p": 2}, "logical_date": "$UNIQUE"}),
                strs(&["params", "params.p", "params.q", "logical_date"]),
            ),
            DEFINITION,
        ),
        named(
            ep(
                Method::POST,
                "/v1/workflows/definitions/{name}/backfill",
                Fixture::None,
                || json!({"from": "2024-01-01", "to": "2024-01-03", "params": {"p": 3}, "max_running": 2}),
                strs(&["from", "to", "params", "params.p", "max_running"]),
            ),
            DEFINITION,
        ),
    ]
}

/// API keys, the UI session, namespace settings and webhooks; run with an admin key (see
/// [`Server::authenticate`]).
fn admin_endpoints() -> Vec<Endpoint> {
    vec![
        ep(
            Method::POST,
            "/v1/keys",
            Fixture::None,
            || {
                json!({"name": "$UNIQUE", "role": "producer", "namespaces": ["default"],
                       "expires_at": "2999-01-01T00:00:00Z", "rate_limit_per_s": 10})
            },
            strs(&[
                "name",
                "role",
                "namespaces",
                "namespaces.0",
                "namespaces.1",
                "expires_at",
                "rate_limit_per_s",
            ]),
        ),
        ep(
            Method::POST,
            "/v1/keys/{id}/revoke",
            Fixture::Key,
            empty,
            empty_body_fields(),
        ),
        ep(
            Method::POST,
            "/v1/session",
            Fixture::Key,
            || json!({"key": "$TOKEN"}),
            strs(&["key"]),
        ),
        named(
            ep(
                Method::PUT,
                "/v1/namespaces/{name}",
                Fixture::None,
                || json!({"max_waiting_jobs": 100000, "enqueue_per_s": 1000}),
                strs(&["max_waiting_jobs", "enqueue_per_s"]),
            ),
            "fuzz-ns",
        ),
        ep(
            Method::POST,
            "/v1/webhooks",
            Fixture::None,
            // Port 9 (discard) on loopback: a delivery, if one is attempted, goes nowhere.
            || json!({"url": "http://127.0.0.1:9/hook", "events": ["dead", "completed"]}),
            strs(&["url", "events", "events.0", "events.1"]),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Values chosen to sit on the edges validation has to get right: integer and float limits,
/// dates far out of range, cron expressions that never fire, names too long, placeholders for
/// real ids, and numbers `serde_json::Value` cannot hold (raw text, see `RAW`).
fn boundary_values() -> Vec<Value> {
    let nested = (0..70).fold(json!(1), |v, _| json!([v]));
    let mut v = vec![
        json!(0),
        json!(1),
        json!(-1),
        json!(2),
        json!(100),
        json!(1000),
        json!(60_000),
        json!(60_001),
        json!(3_600_000),
        json!(i32::MAX),
        json!(i64::from(i32::MAX) + 1),
        json!(i32::MIN),
        json!(i64::from(i32::MIN) - 1),
        json!(u32::MAX),
        json!(u64::from(u32::MAX) + 1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(i64::MAX - 1),
        json!(u64::MAX),
        json!(9_007_199_254_740_993_i64),
        json!(30_i64 * 24 * 3_600_000 + 1),
        json!(0.5),
        json!(-0.5),
        json!(1.0),
        json!(1e300),
        json!(-1e300),
        json!(f64::MIN_POSITIVE),
        json!(true),
        json!(false),
        Value::Null,
        json!(""),
        json!(" "),
        json!("\u{0}"),
        json!("\n"),
        json!("é"),
        json!("💥"),
        json!("a b"),
        json!("a/b"),
        json!(".."),
        json!("fuzz"),
        json!("default"),
        json!("a".repeat(128)),
        json!("a".repeat(129)),
        json!("x".repeat(9_000)),
        json!("x".repeat(70_000)),
        json!("2024-01-01"),
        json!("2024-02-30"),
        json!("0000-01-01"),
        json!("9999-12-31"),
        json!("+262143-12-31"),
        json!("-262144-01-01"),
        json!("2024-01-01T00:00:00Z"),
        json!("1970-01-01T00:00:00Z"),
        json!("1969-12-31T23:59:59.999999999Z"),
        json!("9999-12-31T23:59:59.999999999Z"),
        json!("2024-01-01T00:00:00+14:00"),
        json!("2024-01-01T00:00:00-99:99"),
        json!("now"),
        json!("* * * * *"),
        json!("* * * * * *"),
        json!("*/0 * * * *"),
        json!("0 0 31 2 *"),
        json!("0 0 30 2 *"),
        json!("0 0 29 2 1"),
        json!("59 59 23 31 12 * 2099"),
        json!("@yearly"),
        json!("@reboot"),
        json!("60 24 32 13 8"),
        json!("1-0 * * * *"),
        json!("0-59/100000 * * * *"),
        json!("UTC"),
        json!("Europe/Paris"),
        json!("America/St_Johns"),
        json!("Nope/Zone"),
        json!("+05:00"),
        json!("http://127.0.0.1:9/x"),
        json!("https://"),
        json!("ftp://127.0.0.1/"),
        json!("file:///etc/passwd"),
        json!("00-00000000000000000000000000000000-0000000000000000-00"),
        json!("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        json!("{{params.p}}"),
        json!("{{params.missing}}"),
        json!("{{logical_date}}"),
        json!("{{"),
        json!("exponential"),
        json!("fixed"),
        json!("retry"),
        json!("cancel"),
        json!("delete"),
        json!("completed"),
        json!("failed"),
        json!("released"),
        json!("cancelled"),
        json!("dead"),
        json!("available"),
        json!("priority"),
        json!("fair"),
        json!("shortest_first"),
        json!("skip"),
        json!("run_once"),
        json!("catch_up"),
        json!("continue"),
        json!("ignore"),
        json!("cancel_dependents"),
        json!("admin"),
        json!("producer"),
        json!("a"),
        json!("b"),
        json!([]),
        json!([""]),
        json!(["a", "a"]),
        json!(["a", "b"]),
        json!(["b"]),
        json!(["fuzz", "default"]),
        json!({}),
        json!({"kind": "fixed", "delay_ms": -1}),
        json!({"kind": "exponential", "base_ms": i64::MAX, "cap_ms": i64::MAX, "jitter": 1.0}),
        json!({"kind": "exponential", "jitter": -0.1}),
        json!({"kind": "linear"}),
        json!({"policy": "catch_up", "max": u32::MAX}),
        json!({"policy": "catch_up"}),
        json!({"limit": 0, "period_ms": 0}),
        json!({"limit": u32::MAX, "period_ms": i64::MAX, "burst": u32::MAX}),
        json!({"step": "a", "job": {"kind": "k"}}),
        json!({"step": "z", "depends_on": ["z"], "job": {"kind": "k"}}),
        json!({"message": "m"}),
        json!({"kind": "k"}),
        nested,
    ];
    v.extend(RAW.iter().map(|(name, _)| json!(name)));
    v.extend(
        ["$JOB_ID", "$TOKEN", "$WF_ID", "$OTHER_ID", "$UNIQUE"]
            .iter()
            .map(|p| json!(p)),
    );
    v
}

/// Placeholders replaced, quotes and all, by raw JSON text no `Value` can carry: integers past
/// u64, exponents past f64, negative zero, a duplicate key.
const RAW: &[(&str, &str)] = &[
    ("$BIGNUM", "123456789012345678901234567890"),
    ("$NEG_BIGNUM", "-123456789012345678901234567890"),
    ("$HUGE_EXP", "1e999"),
    ("$TINY_EXP", "1e-999"),
    ("$NEG_ZERO", "-0"),
    ("$DUP_KEY", "{\"a\":1,\"a\":2}"),
];

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(boundary_values()),
        2 => arb_json(),
        1 => (0i64..200).prop_map(|n| json!(n)),
        1 => "[A-Za-z0-9_.:-]{1,20}".prop_map(Value::String),
    ]
}

/// One change to a body.
#[derive(Debug, Clone)]
enum Mutation {
    /// Set the field at this dotted path, creating what leads to it.
    Set(String, Value),
    /// Replace the valid value at this path by one of the same JSON type (a number by a
    /// number, a string by a string), so the body passes the parser and meets validation.
    Typed(String, Typed),
    /// Remove the field at this path.
    Remove(String),
    /// Add a field no request struct has next to the one at this path.
    Unknown(String, String, Value),
}

/// Candidates for a [`Mutation::Typed`], one per JSON type; the template's value picks which.
#[derive(Debug, Clone)]
struct Typed {
    int: Value,
    float: f64,
    string: Value,
    boolean: bool,
}

impl Typed {
    fn like(&self, old: Option<&Value>) -> Value {
        match old {
            Some(Value::Number(n)) if n.is_f64() => json!(self.float),
            Some(Value::Number(_)) => self.int.clone(),
            Some(Value::Bool(_)) => json!(self.boolean),
            _ => self.string.clone(),
        }
    }
}

fn arb_typed() -> impl Strategy<Value = Typed> {
    let ints: Vec<Value> = boundary_values()
        .into_iter()
        .filter(|v| v.is_i64() || v.is_u64())
        .collect();
    let strings: Vec<Value> = boundary_values()
        .into_iter()
        .filter(Value::is_string)
        .collect();
    (
        prop_oneof![
            3 => prop::sample::select(ints),
            1 => any::<i64>().prop_map(|n| json!(n)),
            1 => (-5i64..100_000).prop_map(|n| json!(n)),
        ],
        prop_oneof![
            Just(0.0),
            Just(1.0),
            Just(-0.0),
            Just(1.0000001),
            Just(-1e-9),
            Just(f64::MAX),
            (-2.0f64..2.0),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ],
        prop_oneof![
            3 => prop::sample::select(strings),
            1 => "[A-Za-z0-9_.:-]{1,20}".prop_map(Value::String),
            1 => ".{0,40}".prop_map(Value::String),
        ],
        any::<bool>(),
    )
        .prop_map(|(int, float, string, boolean)| Typed {
            int,
            float,
            string,
            boolean,
        })
}

/// How a case's body is made.
#[derive(Debug, Clone)]
enum BodyGen {
    /// The valid body, changed.
    Mutated(Vec<Mutation>),
    /// An empty object with the endpoint's field paths set to random values.
    NearMiss(Vec<(String, Value)>),
    /// Any JSON document.
    Random(Value),
    /// The valid body's text, cut at `cut` (when given) with some bytes overwritten.
    Corrupted {
        cut: Option<Index>,
        flips: Vec<(Index, u8)>,
    },
    /// Random bytes.
    Noise(Vec<u8>),
    /// No body.
    Empty,
}

fn arb_body(fields: Vec<String>) -> impl Strategy<Value = BodyGen> {
    let field = prop::sample::select(fields);
    let mutation = prop_oneof![
        4 => (field.clone(), arb_value()).prop_map(|(f, v)| Mutation::Set(f, v)),
        4 => (field.clone(), arb_typed()).prop_map(|(f, t)| Mutation::Typed(f, t)),
        1 => field.clone().prop_map(Mutation::Remove),
        1 => (field.clone(), "[a-z_]{1,12}", arb_value())
            .prop_map(|(f, k, v)| Mutation::Unknown(f, k, v)),
    ];
    prop_oneof![
        10 => prop::collection::vec(mutation, 1..4).prop_map(BodyGen::Mutated),
        4 => prop::collection::vec((field, arb_value()), 0..8).prop_map(BodyGen::NearMiss),
        2 => arb_json().prop_map(BodyGen::Random),
        1 => (
            proptest::option::of(any::<Index>()),
            prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
        )
            .prop_map(|(cut, flips)| BodyGen::Corrupted { cut, flips }),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(BodyGen::Noise),
        1 => Just(BodyGen::Empty),
    ]
}

/// Which `{id}` or `{name}` a case's path carries.
#[derive(Debug, Clone)]
enum PathArg {
    /// The fixture's real object.
    Real,
    /// A well-formed UUID that names nothing (or, by chance, a name).
    Uuid(u128),
    /// Anything that fits in one path segment.
    Noise(String),
}

fn arb_path_arg() -> impl Strategy<Value = PathArg> {
    prop_oneof![
        6 => Just(PathArg::Real),
        1 => any::<u128>().prop_map(PathArg::Uuid),
        2 => prop_oneof![
            "[A-Za-z0-9._:~-]{0,140}",
            // Escapes that decode to invalid UTF-8, NUL, a slash or a space.
            prop::sample::select(vec!["%FF", "%00", "a%2Fb", "%20", "%C3%A9", "%", "%zz", "."])
                .prop_map(str::to_string),
            "[^/?#%]{1,20}",
        ]
        .prop_map(PathArg::Noise),
    ]
}

#[derive(Debug, Clone, Copy)]
enum ContentType {
    Json,
    JsonCharset,
    VendorJson,
    Plain,
    Form,
    Missing,
}

impl ContentType {
    fn header(self) -> Option<&'static str> {
        match self {
            ContentType::Json => Some("application/json"),
            ContentType::JsonCharset => Some("application/json; charset=utf-8"),
            ContentType::VendorJson => Some("application/vnd.hopper+json"),
            ContentType::Plain => Some("text/plain"),
            ContentType::Form => Some("application/x-www-form-urlencoded"),
            ContentType::Missing => None,
        }
    }
}

fn arb_content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        16 => Just(ContentType::Json),
        1 => Just(ContentType::JsonCharset),
        1 => Just(ContentType::VendorJson),
        1 => Just(ContentType::Plain),
        1 => Just(ContentType::Form),
        1 => Just(ContentType::Missing),
    ]
}

// ---------------------------------------------------------------------------------------------
// Building and sending a case.

/// The real objects one case works on.
#[derive(Debug, Default)]
struct Ctx {
    /// The real `{id}`.
    id: String,
    job_id: String,
    token: String,
    wf_id: String,
    /// A fresh UUID naming nothing.
    other_id: String,
}

fn make_ctx(server: &Server, fixture: Fixture, other: u128) -> Result<Ctx, String> {
    let mut ctx = Ctx {
        other_id: uuid::Uuid::from_u128(other).to_string(),
        ..Ctx::default()
    };
    match fixture {
        Fixture::None => {}
        Fixture::Job | Fixture::CancelledJob => {
            let job = server.try_fixture_call(
                Method::POST,
                "/v1/jobs",
                &json!({"kind": "fuzz.fixture", "queue": "fuzz"}),
            )?;
            ctx.job_id = str_at(&job, "/id")?;
            ctx.id = ctx.job_id.clone();
            if fixture == Fixture::CancelledJob {
                let path = format!("/v1/jobs/{}/cancel", ctx.id);
                server.try_fixture_call(Method::POST, &path, &json!({}))?;
            }
        }
        Fixture::Leased => {
            let queue = format!("{LEASED_QUEUE}.{}", server.unique());
            server.try_fixture_call(
                Method::POST,
                "/v1/jobs",
                &json!({"kind": "fuzz.fixture", "queue": queue}),
            )?;
            let leased = server.try_fixture_call(
                Method::POST,
                "/v1/leases",
                &json!({"queues": [queue], "worker_id": "fixture", "max_jobs": 1,
                        "lease_ms": 60000, "wait_ms": 0}),
            )?;
            ctx.job_id = str_at(&leased, "/jobs/0/id")?;
            ctx.token = str_at(&leased, "/jobs/0/lease_token")?;
            ctx.id = ctx.job_id.clone();
        }
        Fixture::Workflow | Fixture::CancelledWorkflow => {
            let run = server.try_fixture_call(
                Method::POST,
                "/v1/workflows",
                &json!({"name": "fixture", "steps": steps_template()}),
            )?;
            ctx.wf_id = str_at(&run, "/workflow/id")?;
            ctx.id = ctx.wf_id.clone();
            if fixture == Fixture::CancelledWorkflow {
                let path = format!("/v1/workflows/{}/cancel", ctx.id);
                server.try_fixture_call(Method::POST, &path, &json!({}))?;
            }
        }
        Fixture::Key => {
            let key = server.try_fixture_call(
                Method::POST,
                "/v1/keys",
                &json!({"name": "fixture", "role": "viewer", "namespaces": ["default"]}),
            )?;
            ctx.id = str_at(&key, "/key/id")?;
            ctx.token = str_at(&key, "/token")?;
        }
    }
    Ok(ctx)
}

/// An error and its sources, outermost first: reqwest's own message rarely says what the
/// connection did.
fn error_chain(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut at = e.source();
    while let Some(s) = at {
        out.push(s.to_string());
        at = s.source();
    }
    out
}

fn str_at(v: &Value, pointer: &str) -> Result<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no string at {pointer} in {v}"))
}

/// Sets the field at dotted `path`, turning what is in the way into objects or arrays.
fn set_path(v: &mut Value, path: &[&str], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *v = new;
        return;
    };
    if let Ok(i) = first.parse::<usize>() {
        if !v.is_array() {
            *v = Value::Array(Vec::new());
        }
        if let Value::Array(a) = v {
            while a.len() <= i {
                a.push(Value::Null);
            }
            set_path(&mut a[i], rest, new);
        }
        return;
    }
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    if let Value::Object(o) = v {
        set_path(o.entry(first.to_string()).or_insert(Value::Null), rest, new);
    }
}

/// Removes the field at dotted `path`, if it is there.
fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for p in parents {
        let next = match at {
            Value::Object(o) => o.get_mut(*p),
            Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    match at {
        Value::Object(o) => {
            o.remove(*last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

/// The case's body bytes (`None`: send no body), placeholders filled in.
fn render(ep: &Endpoint, how: &BodyGen, ctx: &Ctx, unique: &str) -> Option<Vec<u8>> {
    let doc = match how {
        BodyGen::Mutated(muts) => {
            let mut v = (ep.template)();
            for m in muts {
                match m {
                    Mutation::Set(f, new) => set_path(&mut v, &segments(f), new.clone()),
                    Mutation::Typed(f, t) => {
                        let new = t.like(v.pointer(&format!("/{}", f.replace('.', "/"))));
                        set_path(&mut v, &segments(f), new);
                    }
                    Mutation::Remove(f) => remove_path(&mut v, &segments(f)),
                    Mutation::Unknown(f, key, new) => {
                        let mut p = segments(f);
                        p.pop();
                        p.push(key.as_str());
                        set_path(&mut v, &p, new.clone());
                    }
                }
            }
            v
        }
        BodyGen::NearMiss(kv) => {
            let mut v = json!({});
            for (f, new) in kv {
                set_path(&mut v, &segments(f), new.clone());
            }
            v
        }
        BodyGen::Random(v) => v.clone(),
        BodyGen::Corrupted { cut, flips } => {
            let mut bytes = fill(&(ep.template)().to_string(), ctx, unique).into_bytes();
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if !bytes.is_empty() {
                for (at, b) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = *b;
                }
            }
            return Some(bytes);
        }
        BodyGen::Noise(b) => return Some(b.clone()),
        BodyGen::Empty => return None,
    };
    let mut doc = doc;
    if ep.path == "/v1/leases" {
        cap_wait(&mut doc);
    }
    Some(fill(&doc.to_string(), ctx, unique).into_bytes())
}

/// A valid lease `wait_ms` long-polls up to 60 s when no job is there; a long poll is correct
/// behaviour but would make the run take minutes, so waits are cut to 100 ms.
fn cap_wait(doc: &mut Value) {
    if let Some(w) = doc.get_mut("wait_ms")
        && w.as_f64().is_some_and(|ms| ms > 100.0 && ms <= 60_000.0)
    {
        *w = json!(100);
    }
}

/// Replaces the quoted placeholders in JSON text by real ids and raw numbers.
fn fill(text: &str, ctx: &Ctx, unique: &str) -> String {
    let mut out = text.to_string();
    for (name, value) in [
        ("$JOB_ID", &ctx.job_id),
        ("$TOKEN", &ctx.token),
        ("$WF_ID", &ctx.wf_id),
        ("$OTHER_ID", &ctx.other_id),
    ] {
        out = out.replace(&format!("\"{name}\""), &format!("\"{value}\""));
    }
    out = out.replace("\"$UNIQUE\"", &format!("\"{unique}\""));
    for (name, raw) in RAW {
        out = out.replace(&format!("\"{name}\""), raw);
    }
    out
}

fn url_path(ep: &Endpoint, arg: &PathArg, ctx: &Ctx) -> String {
    let value = match arg {
        PathArg::Real if ep.path.contains("{id}") => ctx.id.clone(),
        PathArg::Real => ep.name.to_string(),
        PathArg::Uuid(n) => uuid::Uuid::from_u128(*n).to_string(),
        PathArg::Noise(s) => s.clone(),
    };
    ep.path.replace("{id}", &value).replace("{name}", &value)
}

/// Checks one answer: below 500, and a 4xx is the error body.
fn check_answer(status: u16, text: &str) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("server error {status}: {text}"));
    }
    if (400..500).contains(&status) {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("{status} body is not JSON ({e})"))?;
        let nonempty = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if !nonempty("/error/code") || !nonempty("/error/message") {
            return Err(format!("{status} without a code and message"));
        }
        match v.pointer("/error/field") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(other) => return Err(format!("{status} with a non-string field {other}")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The runner.

fn cases() -> u32 {
    match std::env::var("HOPPER_FUZZ_CASES") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("HOPPER_FUZZ_CASES must be a number, not {s:?}")),
        Err(_) => 512,
    }
}

/// Runs the property over each endpoint of a group on one server, with an admin key when
/// `authenticated`, and prints how the answers spread over status codes (`--nocapture`), to
/// see how deep the bodies got.
fn fuzz(endpoints: Vec<Endpoint>, authenticated: bool) {
    let mut server = Server::start();
    if authenticated {
        server.authenticate();
    }
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        // A failure reruns the case for every shrink step; a few hundred is plenty to get a
        // readable body and keeps a failing run from taking minutes.
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    };
    for ep in &endpoints {
        let mut runner = TestRunner::new(config.clone());
        let strategy = (
            arb_path_arg(),
            arb_body(ep.fields.clone()),
            arb_content_type(),
            any::<u128>(),
        );
        let statuses = RefCell::new(BTreeMap::<u16, u32>::new());
        let result = runner.run(&strategy, |(arg, body, ct, other)| {
            let ctx = make_ctx(&server, ep.fixture, other).map_err(TestCaseError::fail)?;
            let unique = server.unique();
            let path = url_path(ep, &arg, &ctx);
            let bytes = render(ep, &body, &ctx, &unique);
            let shown = bytes.as_deref().map(|b| {
                String::from_utf8_lossy(b)
                    .chars()
                    .take(2_000)
                    .collect::<String>()
            });
            let (status, text) = server
                .send(ep.method.clone(), &path, ct.header(), bytes)
                .map_err(|e| TestCaseError::fail(format!("{} {path}: {e}", ep.method)))?;
            *statuses.borrow_mut().entry(status).or_default() += 1;
            check_answer(status, &text).map_err(|e| {
                TestCaseError::fail(format!(
                    "{} {path} (content-type {:?}) body {shown:?}: {e}",
                    ep.method,
                    ct.header()
                ))
            })
        });
        if let Err(e) = result {
            panic!("{} {}: {e}", ep.method, ep.path);
        }
        eprintln!(
            "{} {}: {:?} (sent again after a closed connection: {})",
            ep.method,
            ep.path,
            statuses.borrow(),
            server.retries.swap(0, Ordering::Relaxed)
        );
        assert!(
            server.healthy(),
            "{} {}: /healthz did not answer 200 afterwards",
            ep.method,
            ep.path
        );
    }
}

#[test]
fn job_bodies() {
    fuzz(jobs_endpoints(), false);
}

#[test]
fn worker_bodies() {
    fuzz(worker_endpoints(), false);
}

#[test]
fn queue_and_dead_letter_bodies() {
    fuzz(queue_endpoints(), false);
}

#[test]
fn schedule_bodies() {
    fuzz(schedule_endpoints(), false);
}

#[test]
fn workflow_bodies() {
    fuzz(workflow_endpoints(), false);
}

#[test]
fn admin_bodies() {
    fuzz(admin_endpoints(), true);
}

/// The table above must cover every JSON-body route the server has: a new POST or PUT route
/// in `routes/mod.rs` fails this until it is added (or listed here as bodiless).
#[test]
fn table_covers_every_body_route() {
    let all: Vec<Endpoint> = [
        jobs_endpoints(),
        worker_endpoints(),
        queue_endpoints(),
        schedule_endpoints(),
        workflow_endpoints(),
        admin_endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let covered = |method: &str, path: &str| {
        all.iter()
            .any(|e| e.method.as_str() == method && e.path == path)
    };
    let source = include_str!("../src/routes/mod.rs");
    let mut missing = Vec::new();
    for (method, path) in body_routes(source) {
        if !covered(&method, &path) {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes taking a body that fuzz_bodies.rs does not fuzz: {missing:?}"
    );
}

/// The `(METHOD, path)` of every `post(...)`/`.put(...)` in the route table's source. The
/// parse is textual: it pairs each `.route("PATH", ...)` with the handlers that follow it.
fn body_routes(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in source.split(".route(").skip(1) {
        let Some(path) = chunk
            .trim_start()
            .strip_prefix('"')
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        // The handlers run up to the next route (or the end of the table).
        let handlers = chunk.split(".fallback(").next().unwrap_or(chunk);
        for (method, marker) in [("POST", "post("), ("PUT", "put(")] {
            if handlers.contains(marker) {
                out.push((method.to_string(), path.to_string()));
            }
        }
    }
    out
}

/// Every endpoint's template, unchanged and on its real path, is accepted: the mutations
/// start from a body that reaches the handler's logic, not from one the parser already
/// refuses.
#[test]
fn templates_are_accepted() {
    for (group, authenticated) in [
        (jobs_endpoints(), false),
        (worker_endpoints(), false),
        (queue_endpoints(), false),
        (schedule_endpoints(), false),
        (workflow_endpoints(), false),
        (admin_endpoints(), true),
    ] {
        let mut server = Server::start();
        if authenticated {
            server.authenticate();
        }
        for ep in &group {
            let ctx = make_ctx(&server, ep.fixture, 7).expect("fixture");
            let path = url_path(ep, &PathArg::Real, &ctx);
            let body = render(ep, &BodyGen::Mutated(Vec::new()), &ctx, &server.unique());
            let (status, text) = server
                .send(ep.method.clone(), &path, Some("application/json"), body)
                .expect("answer");
            assert!(
                (200..300).contains(&status),
                "{} {path}: {status} {text}",
                ep.method
            );
        }
    }
}
