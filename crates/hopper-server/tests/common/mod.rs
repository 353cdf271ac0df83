//! Test support shared by the end-to-end suites: start a real server (`hopper_server::serve`) on
//! `127.0.0.1:0` over a real store, and talk to it over HTTP.
//!
//! Use it from a test binary with `#[path = "../common/mod.rs"] mod common;`; the binary's
//! root names the backend every server of it runs on, as `const BACKEND: common::Backend`:
//! a SQLite file in a temporary directory, or a fresh database on the PostgreSQL server the
//! test command started. The same test modules run against both.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use hopper_server::{ServerConfig, ServerError};
use hopper_store::Store;
use hopper_store_postgres::{PgConfig, PgStore};
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::{Clock, ManualClock, SystemClock, Timestamp};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server and a client for it. Dropping it stops the server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client with no default timeout (long polls take as long as they take).
    pub client: reqwest::Client,
    /// The store behind the server, for checks and for driving maintenance by hand.
    pub store: Arc<dyn Store>,
    /// The clock, when the server was started on a manual one.
    pub clock: Option<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    // Kept so the database lives as long as the server.
    _dir: Option<tempfile::TempDir>,
}

/// The storage backends the suites run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Opens a new, empty store of the test binary's backend on `clock`; the directory (SQLite
/// only) must outlive the store.
pub async fn open_store(clock: Arc<dyn Clock>) -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match crate::BACKEND {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(SqliteConfig {
                data_dir: dir.path().to_path_buf(),
                // Tests do not survive power loss anyway; relaxed keeps them fast.
                durability: Durability::Relaxed,
                clock,
            })
            .expect("open store");
            (Arc::new(store), Some(dir))
        }
        Backend::Postgres => {
            let mut config =
                PgConfig::new(hopper_store_postgres::testing::fresh_database_url().await);
            config.pool_size = 8;
            config.clock = clock;
            let store = PgStore::connect(config).await.expect("connect store");
            (Arc::new(store), None)
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when empty, a string when not JSON).
    pub body: Value,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The field of an error body.
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }

    /// Panics with the whole answer unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        self
    }

    /// Asserts an error answer with this status, code and field.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str, field: Option<&str>) -> Resp {
        assert_eq!(self.status, status, "unexpected answer: {self:#?}");
        assert_eq!(self.code(), code, "unexpected answer: {self:#?}");
        if let Some(f) = field {
            assert_eq!(self.field(), f, "unexpected answer: {self:#?}");
        }
        assert!(self.body["error"]["message"].is_string(), "{self:#?}");
        self
    }
}

/// A configuration for tests: the defaults.
pub fn test_config() -> ServerConfig {
    ServerConfig::default()
}

impl TestServer {
    /// A server with the default configuration and the system clock.
    pub async fn start() -> TestServer {
        TestServer::start_with(test_config(), None).await
    }

    /// A server with `config`, on `clock` when given (else the system clock).
    pub async fn start_with(config: ServerConfig, clock: Option<ManualClock>) -> TestServer {
        let clock_arc: Arc<dyn Clock> = match &clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let (store, dir) = open_store(clock_arc).await;
        let mut s = TestServer::start_on(config, store).await;
        s.clock = clock;
        s._dir = dir;
        s
    }

    /// Another server over an existing `store` (as another node sharing one database).
    pub async fn start_on(config: ServerConfig, store: Arc<dyn Store>) -> TestServer {
        let clock = None;
        let dir = None;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hopper_server::serve(
            config,
            store.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            clock,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A manual clock starting at a fixed, recent time.
    pub fn manual_clock() -> ManualClock {
        ManualClock::new(Timestamp(1_800_000_000_000))
    }

    /// Begins shutdown without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the server and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        self.begin_stop();
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops within 10 s")
            .expect("server task did not panic")
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a prepared request and collects the answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// `POST path` with a raw body and an optional content type.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Resp {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.send(req).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.client.delete(self.url(path))).await
    }

    /// Enqueues `job` and returns the created job.
    pub async fn enqueue(&self, job: Value) -> Value {
        self.post("/v1/jobs", job).await.expect(201).body
    }

    /// Leases up to `max` jobs of `queue` for `worker` without waiting.
    pub async fn lease(&self, queue: &str, worker: &str, max: u32) -> Vec<Value> {
        let r = self
            .post(
                "/v1/leases",
                json!({"queues": [queue], "worker_id": worker, "max_jobs": max}),
            )
            .await
            .expect(200);
        r.body["jobs"].as_array().cloned().unwrap_or_default()
    }

    /// Enqueues one job of `kind` in `queue` and leases it; returns (id, token).
    pub async fn enqueue_and_lease(&self, queue: &str, kind: &str) -> (String, String) {
        let job = self.enqueue(json!({"kind": kind, "queue": queue})).await;
        let leased = self.lease(queue, "w-test", 1).await;
        assert_eq!(leased.len(), 1, "leased {leased:?}");
        assert_eq!(leased[0]["id"], job["id"]);
        (
            job["id"].as_str().expect("id").to_string(),
            leased[0]["lease_token"]
                .as_str()
                .expect("token")
                .to_string(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_stop();
    }
}
