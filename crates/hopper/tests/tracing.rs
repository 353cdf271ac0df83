//! Tracing end to end, with the real binaries: `hopper server` and `hopper worker --exec`
//! exporting over OTLP/HTTP to a receiver this test runs (one trace from the producer's span
//! through the server's request span and the job's queue wait to the worker's handler span and
//! its command), JSON logs carrying job and trace ids, and no export at all without
//! `--otlp-endpoint`.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::{HOPPER, terminate, wait_state};
use hopper_worker::{Client, Job, JobState};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);
/// The producer's span: trace `4bf9...4736`, span `00f0...02b7`, sampled.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PRODUCER_SPAN: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Variables of the environment that could turn export on or change it behind a test's back.
const OTEL_VARS: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_SDK_DISABLED",
    "HOPPER_LOG_FORMAT",
];

/// One span as the receiver decoded it, with the service that sent it.
#[derive(Debug, Clone)]
struct GotSpan {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_id: String,
    start_ns: u64,
    end_ns: u64,
    attributes: HashMap<String, String>,
}

/// What the receiver got: every request (to any path), and the spans of `/v1/traces`.
#[derive(Debug, Default)]
struct Received {
    requests: usize,
    spans: Vec<GotSpan>,
}

/// A minimal OTLP/HTTP receiver on 127.0.0.1:0: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`; anything else is counted and answered 404.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .fallback(|State(got): State<Arc<Mutex<Received>>>| async move {
                lock(&got).requests += 1;
                StatusCode::NOT_FOUND
            })
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, got, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        lock(&self.got).requests
    }

    fn spans(&self) -> Vec<GotSpan> {
        lock(&self.got).spans.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn receive(State(got): State<Arc<Mutex<Received>>>, body: Bytes) -> StatusCode {
    let mut got = lock(&got);
    got.requests += 1;
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    for rs in req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| attr(&r.attributes, "service.name"))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.spans.push(GotSpan {
                    service: service.clone(),
                    name: s.name,
                    kind: s.kind,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_id: hex(&s.parent_span_id),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                    attributes: s
                        .attributes
                        .iter()
                        .filter_map(|kv| Some((kv.key.clone(), attr_text(kv)?)))
                        .collect(),
                });
            }
        }
    }
    // An empty body is an empty (successful) ExportTraceServiceResponse.
    StatusCode::OK
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(attr_text)
}

fn attr_text(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(n) => Some(n.to_string()),
        AnyValue::BoolValue(b) => Some(b.to_string()),
        AnyValue::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `hopper` child whose stderr lines are collected as they come.
struct Proc {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Reads stderr until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `hopper ARGS` with `env` on top of the test's environment less [`OTEL_VARS`].
    fn spawn(args: &[&str], env: &[(&str, &str)], stdout: Stdio) -> Proc {
        let mut cmd = Command::new(HOPPER);
        cmd.args(args)
            .env_remove("HOPPER_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        for var in OTEL_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hopper");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lock(&sink).push(line);
            }
        });
        Proc {
            child: Some(child),
            stderr,
            reader: Some(reader),
        }
    }

    /// `hopper server` on a free port of 127.0.0.1 in `dir`; returns it and its URL.
    fn server(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
        let data = dir.join("data");
        let mut args = vec![
            "server",
            "--bind",
            "127.0.0.1:0",
            "--durability",
            "relaxed",
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        let mut p = Proc::spawn(&args, env, Stdio::piped());
        let stdout = p
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the announcement");
        let url = line
            .trim()
            .strip_prefix("hopper listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}: {:?}", p.stderr()))
            .to_string();
        (p, url)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// The names of its threads.
    fn threads(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        std::fs::read_dir(dir)
            .expect("list threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_string())
            .collect()
    }

    /// SIGTERM; asserts a clean exit.
    fn stop(mut self) -> Vec<String> {
        let mut child = self.child.take().expect("running");
        let status = terminate(&mut child, LONG);
        // The process has exited, so its stderr is closed and the reader has the last line.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let stderr = self.stderr();
        assert!(status.success(), "exit {status}: {stderr:#?}");
        stderr
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the batch processor's thread runs in `p`, waiting up to `within` for it: a thread
/// names itself once it first runs (and the kernel cuts names to 15 bytes).
fn has_export_thread(p: &Proc, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if p.threads().iter().any(|t| t.starts_with("OpenTelemetry")) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Enqueues through raw HTTP, with a `traceparent` header when given.
async fn enqueue(url: &str, body: Value, traceparent: Option<&str>) -> Job {
    let mut req = reqwest::Client::new()
        .post(format!("{url}/v1/jobs"))
        .json(&body);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let resp = req.send().await.expect("enqueue");
    assert_eq!(resp.status(), 201);
    resp.json().await.expect("the job")
}

/// The exec worker's command for kind `tp`: prints the `TRACEPARENT` it was given.
const PRINT_TRACEPARENT: &str = r#"tp=sh -c 'printf %s "$TRACEPARENT"'"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_producer_to_the_command() {
    let receiver = Receiver::start().await;
    let endpoint = receiver.url();
    let dir = tempfile::tempdir().unwrap();
    // Quiet logs must not quiet the traces.
    let (server, url) = Proc::server(dir.path(), &["--otlp-endpoint", &endpoint], &[]);
    assert!(has_export_thread(&server, LONG), "{:?}", server.threads());

    let job = enqueue(
        &url,
        json!({"kind": "tp", "queue": "traced"}),
        Some(TRACEPARENT),
    )
    .await;
    assert_eq!(job.traceparent.as_deref(), Some(TRACEPARENT));

    let worker = Proc::spawn(
        &[
            "worker",
            "--exec",
            "--queues",
            "traced",
            "--command",
            PRINT_TRACEPARENT,
        ],
        &[
            ("HOPPER_URL", url.as_str()),
            // Through the environment this time.
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ],
        Stdio::null(),
    );
    let client = Client::new(&url).unwrap();
    let done = wait_state(&client, job.id, JobState::Completed, LONG).await;
    assert!(has_export_thread(&worker, LONG), "{:?}", worker.threads());
    // The command continues the worker's handler span: same trace, new parent.
    let seen: String = serde_json::from_str(done.result.as_ref().unwrap().get()).unwrap();
    let (seen_trace, command_parent) = match seen.split('-').collect::<Vec<_>>()[..] {
        ["00", trace, parent, "01"] => (trace.to_string(), parent.to_string()),
        _ => panic!("TRACEPARENT of the command: {seen:?}"),
    };
    assert_eq!(seen_trace, TRACE_ID);
    assert_ne!(command_parent, PRODUCER_SPAN);

    // Shutdown flushes what the batch processors still hold.
    worker.stop();
    server.stop();
    let spans: Vec<GotSpan> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == TRACE_ID)
        .collect();
    let find = |service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.name == name)
            .unwrap_or_else(|| panic!("no {name} span from {service} in {spans:#?}"))
    };
    let id = job.id.to_string();

    let request = find("hopper-server", "POST /v1/jobs");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.parent_id, PRODUCER_SPAN);
    assert_eq!(request.attributes["http.route"], "/v1/jobs");
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.response.status_code"], "201");
    assert_eq!(request.attributes["job_id"], id);
    assert!(!request.attributes["request_id"].is_empty());

    let wait = find("hopper-server", "job.queue_wait");
    assert_eq!(wait.parent_id, PRODUCER_SPAN);
    assert_eq!(wait.attributes["job_id"], id);
    assert_eq!(wait.attributes["queue"], "traced");
    // From availability (the enqueue) to the lease.
    let available_ns = u64::try_from(job.available_at.as_millis()).unwrap() * 1_000_000;
    assert_eq!(wait.start_ns, available_ns);
    assert!(wait.end_ns >= wait.start_ns, "{wait:?}");

    let handler = find("hopper-worker", "job");
    assert_eq!(handler.parent_id, PRODUCER_SPAN);
    assert_eq!(handler.attributes["job_id"], id);
    assert_eq!(handler.attributes["trace_id"], TRACE_ID);
    assert_eq!(handler.attributes["kind"], "tp");
    assert_eq!(handler.attributes["outcome"], "completed");
    assert_eq!(handler.span_id, command_parent, "the command's parent");
    assert!(
        handler.start_ns >= wait.end_ns - 1_000_000,
        "{handler:?} {wait:?}"
    );

    // The worker's lease and ack requests carried no traceparent: their server spans are roots
    // of traces of their own, not part of this one.
    assert!(
        spans.iter().all(|s| s.name != "POST /v1/leases"),
        "{spans:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_job_and_trace_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = Proc::server(
        dir.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "info,hopper_server=debug")],
    );
    let job = enqueue(
        &url,
        json!({"kind": "tp", "queue": "logged", "traceparent": TRACEPARENT}),
        None,
    )
    .await;
    let worker = Proc::spawn(
        &[
            "worker",
            "--log-format",
            "json",
            "--exec",
            "--queues",
            "logged",
            "--command",
            PRINT_TRACEPARENT,
        ],
        &[
            ("HOPPER_URL", url.as_str()),
            ("RUST_LOG", "info,hopper_worker=debug"),
        ],
        Stdio::null(),
    );
    let client = Client::new(&url).unwrap();
    let done = wait_state(&client, job.id, JobState::Completed, LONG).await;
    // Without export, the command gets the job's own traceparent.
    assert_eq!(
        done.result.as_ref().map(|r| r.get().to_string()),
        Some(format!("\"{TRACEPARENT}\""))
    );
    let worker_lines = worker.stop();
    let server_lines = server.stop();
    let id = job.id.to_string();

    for (who, lines) in [("server", &server_lines), ("worker", &worker_lines)] {
        assert!(!lines.is_empty(), "the {who} logged nothing");
        let parsed: Vec<Value> = lines
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{who} line is not JSON ({e}): {l}"))
            })
            .collect();
        assert!(parsed.iter().all(Value::is_object), "{lines:#?}");
        let line_of = |message: &str| {
            parsed
                .iter()
                .find(|l| l["message"] == message && l["job_id"] == id.as_str())
                .unwrap_or_else(|| {
                    panic!("no {message:?} line of the job from the {who}: {lines:#?}")
                })
        };
        let line = if who == "server" {
            let leased = line_of("job leased");
            assert_eq!(leased["trace_id"], TRACE_ID);
            line_of("job enqueued")
        } else {
            // The worker's line names the job itself; the trace id comes from its `job` span.
            let line = line_of("job finished");
            assert_eq!(line["span"], "job");
            assert_eq!(line["outcome"], "completed");
            line
        };
        assert_eq!(line["trace_id"], TRACE_ID, "{line}");
        assert_eq!(line["level"], "DEBUG");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_exported_without_an_endpoint() {
    let receiver = Receiver::start().await;
    // A variable this binary does not read: had anything built an exporter from the
    // environment's defaults, it would send here.
    let traces = format!("{}/v1/traces", receiver.url());
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
        ("RUST_LOG", "info"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = Proc::server(dir.path(), &[], &env);
    let job = enqueue(
        &url,
        json!({"kind": "tp", "queue": "dark"}),
        Some(TRACEPARENT),
    )
    .await;
    // The header still reaches the job: recording it needs no exporter.
    assert_eq!(job.traceparent.as_deref(), Some(TRACEPARENT));
    let mut worker_env = env.to_vec();
    worker_env.push(("HOPPER_URL", url.as_str()));
    let worker = Proc::spawn(
        &[
            "worker",
            "--exec",
            "--queues",
            "dark",
            "--command",
            PRINT_TRACEPARENT,
        ],
        &worker_env,
        Stdio::null(),
    );
    let client = Client::new(&url).unwrap();
    let done = wait_state(&client, job.id, JobState::Completed, LONG).await;
    assert_eq!(
        done.result.as_ref().map(|r| r.get().to_string()),
        Some(format!("\"{TRACEPARENT}\""))
    );
    for p in [&server, &worker] {
        assert!(!has_export_thread(p, Duration::ZERO), "{:?}", p.threads());
    }
    worker.stop();
    let lines = server.stop();
    assert!(
        !lines.iter().any(|l| l.contains("exporting traces")),
        "{lines:#?}"
    );
    assert_eq!(receiver.requests(), 0, "{:#?}", receiver.spans());
}
