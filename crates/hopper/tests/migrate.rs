//! `hopper migrate` with the real binary: a store holding jobs in every state is copied, a
//! server on the copy answers exactly as the original did (jobs, histories, queues, keys,
//! leases), copying again adds nothing, and a store a server is running on is refused. API
//! keys made before a migration authenticate on the copy (revoked ones stay refused), quotas,
//! webhooks and the audit log come along, and a copied webhook delivers the copy's new events.
//!
//! `migrate_round_trips_through_postgres` needs PostgreSQL: it reads the server's URL from
//! `HOPPER_TEST_DATABASE_URL`, which `./scripts/test.sh` sets, and fails without it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{HOPPER, Server};
use hopper_worker::wire::{FailureReport, LeaseRequest, ListJobs};
use hopper_worker::{Backoff, Client, EnqueueRequest, JobId, JobState};
use serde_json::{Value, json};

/// The lease the running job holds: long enough to outlast the test, so nothing rescues it.
const LEASE_MS: u64 = 3_600_000;

/// A key given explicitly, to enqueue again on the copy.
const KEY: &str = "migrate-test-key";

/// What the source held that the test checks on the copy beyond the snapshot.
struct Made {
    /// The running job and its lease token.
    running: (JobId, String),
    /// The job created with [`KEY`].
    keyed: JobId,
}

fn req(kind: &str, queue: &str) -> EnqueueRequest {
    EnqueueRequest {
        queue: Some(queue.to_string()),
        // Retries wait an hour, so nothing moves while the test looks.
        backoff: Some(Backoff::Fixed {
            delay_ms: 3_600_000,
        }),
        tags: Some(vec!["migrate".to_string()]),
        ..EnqueueRequest::new(kind, &json!({"queue": queue, "n": [1, 2, 3]})).expect("request")
    }
}

/// The request enqueued with [`KEY`].
fn keyed_req() -> EnqueueRequest {
    EnqueueRequest {
        idempotency_key: Some(KEY.to_string()),
        meta: Some(serde_json::value::to_raw_value(&json!({"m": 1})).expect("meta")),
        ..req("keyed", "keys")
    }
}

/// Leases the one available job of `queue`.
async fn lease_one(client: &Client, queue: &str) -> (JobId, String) {
    let jobs = client
        .lease(&LeaseRequest {
            queues: vec![queue.to_string()],
            worker_id: "migrate-test".to_string(),
            max_jobs: 1,
            lease_ms: LEASE_MS,
            wait_ms: 0,
        })
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 1, "one job to lease in {queue}");
    let token = jobs[0]
        .lease_token
        .clone()
        .expect("a leased job has a token");
    (jobs[0].id, token.0)
}

async fn fail(client: &Client, job: &(JobId, String), retryable: bool) {
    let report = FailureReport {
        message: "boom".to_string(),
        kind: "error".to_string(),
        retryable,
    };
    client
        .fail(job.0, &job.1, &report, None)
        .await
        .expect("fail");
}

/// Fills the server with a job in every state a job can reach, an explicit idempotency key
/// (every job has one: the SDK makes them up), a paused queue holding a job, and a job with
/// several attempts of history.
async fn populate(client: &Client) -> Made {
    client
        .enqueue(req("k", "available"))
        .await
        .expect("enqueue");
    client
        .enqueue(EnqueueRequest {
            delay_ms: Some(3_600_000),
            ..req("k", "scheduled")
        })
        .await
        .expect("enqueue");
    client.enqueue(req("k", "running")).await.expect("enqueue");
    let running = lease_one(client, "running").await;

    client
        .enqueue(req("k", "retryable"))
        .await
        .expect("enqueue");
    let retryable = lease_one(client, "retryable").await;
    fail(client, &retryable, true).await;

    client
        .enqueue(req("k", "completed"))
        .await
        .expect("enqueue");
    let done = lease_one(client, "completed").await;
    client
        .complete(done.0, &done.1, &json!({"ok": true}))
        .await
        .expect("complete");

    client.enqueue(req("k", "dead")).await.expect("enqueue");
    let dead = lease_one(client, "dead").await;
    fail(client, &dead, false).await;

    let cancelled = client
        .enqueue(req("k", "cancelled"))
        .await
        .expect("enqueue");
    client.cancel(cancelled.id).await.expect("cancel");

    let keyed = client.enqueue(keyed_req()).await.expect("enqueue").id;

    client.pause_queue("paused").await.expect("pause");
    client.enqueue(req("k", "paused")).await.expect("enqueue");
    let limited: hopper_worker::QueueConfig =
        serde_json::from_value(json!({"concurrency": 3, "policy": "fair"})).expect("config");
    client
        .configure_queue("limited", &limited)
        .await
        .expect("configure");
    let yearly = serde_json::from_value(json!({
        "name": "new-year", "cron": "0 0 1 1 *", "timezone": "Europe/Berlin",
        "job": {"kind": "k", "queue": "celebrate"}
    }))
    .expect("schedule request");
    client.create_schedule(&yearly).await.expect("schedule");
    Made { running, keyed }
}

/// Everything a client sees of a server's jobs and queues, as JSON: every job as
/// `GET /v1/jobs/{id}` answers it, its events (without their store-assigned `seq`), and every
/// queue with its pause and counts (without the age of its oldest job, which grows).
#[derive(Debug, PartialEq)]
struct Snapshot {
    jobs: BTreeMap<JobId, Value>,
    events: BTreeMap<JobId, Vec<Value>>,
    queues: Vec<Value>,
    schedules: Value,
}

async fn get_json(url: &str) -> Value {
    let answer = reqwest::get(url).await.expect("GET");
    assert!(
        answer.status().is_success(),
        "GET {url}: {}",
        answer.status()
    );
    answer.json().await.expect("JSON")
}

async fn snapshot(server: &Server) -> Snapshot {
    let client = server.client();
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list(&ListJobs {
                limit: Some(500),
                cursor: cursor.take(),
                ..ListJobs::default()
            })
            .await
            .expect("list");
        ids.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut jobs = BTreeMap::new();
    let mut events = BTreeMap::new();
    for id in ids {
        jobs.insert(id, get_json(&format!("{}/v1/jobs/{id}", server.url)).await);
        let mut evs = get_json(&format!("{}/v1/jobs/{id}/events", server.url)).await;
        let evs: Vec<Value> = evs["events"]
            .as_array_mut()
            .expect("events")
            .iter_mut()
            .map(|e| {
                e.as_object_mut().expect("an event object").remove("seq");
                e.take()
            })
            .collect();
        events.insert(id, evs);
    }
    let queues = client
        .queues()
        .await
        .expect("queues")
        .into_iter()
        .map(
            |q| json!({"name": q.name, "paused": q.paused, "counts": q.counts, "config": q.config}),
        )
        .collect();
    let schedules = get_json(&format!("{}/v1/schedules", server.url)).await;
    Snapshot {
        jobs,
        events,
        queues,
        schedules,
    }
}

/// Asserts the snapshot holds a job in every reachable state, the paused queue and the key.
fn assert_covers_every_state(s: &Snapshot) {
    let states: Vec<&str> = s
        .jobs
        .values()
        .map(|j| j["state"].as_str().expect("state"))
        .collect();
    for st in [
        "available",
        "scheduled",
        "running",
        "retryable",
        "completed",
        "dead",
        "cancelled",
    ] {
        assert!(
            states.contains(&st),
            "the source holds a {st} job: {states:?}"
        );
    }
    assert!(
        s.queues
            .iter()
            .any(|q| q["name"] == "paused" && q["paused"] == true),
        "the source has a paused queue: {:?}",
        s.queues
    );
    assert!(
        s.queues
            .iter()
            .any(|q| q["name"] == "limited" && q["config"]["concurrency"] == 3),
        "the source has a limited queue"
    );
    assert_eq!(s.schedules["schedules"][0]["name"], "new-year");
}

/// `hopper migrate --json --from FROM --to TO`, to completion.
fn migrate(from: &str, to: &str) -> Output {
    Command::new(HOPPER)
        .args([
            "--json",
            "migrate",
            "--from",
            from,
            "--to",
            to,
            "--batch-size",
            "3",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hopper migrate")
}

/// Runs a migration that must succeed; returns its JSON report.
fn migrate_ok(from: &str, to: &str) -> Value {
    let out = migrate(from, to);
    assert!(
        out.status.success(),
        "hopper migrate --from {from} --to {to} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "migrate's report is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["source"], report["destination"], "{report}");
    report
}

/// Runs a migration that must be refused because a server runs on `from`.
fn assert_refused_while_running(from: &str, to: &str) {
    let out = migrate(from, to);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "migrate from a live store must fail");
    assert!(
        stderr.contains("another Hopper server is using") || stderr.contains("is running on"),
        "the refusal says a server is running: {stderr}"
    );
}

/// Checks a server on a copy: the same snapshot as the source, the running job's worker
/// completes it with its old token, the key answers a duplicate, the paused queue holds its
/// job back.
async fn assert_copy_behaves(copy: &Server, want: &Snapshot, made: &Made) {
    let got = snapshot(copy).await;
    assert_eq!(got.jobs.len(), want.jobs.len(), "every job was copied");
    for (id, job) in &want.jobs {
        assert_eq!(got.jobs.get(id), Some(job), "job {id} on the copy");
        assert_eq!(got.events.get(id), want.events.get(id), "events of {id}");
    }
    assert_eq!(got.queues, want.queues, "queues and their counts");

    let client = copy.client();
    let again = client.enqueue(keyed_req()).await.expect("enqueue");
    assert_eq!(
        (again.id, again.duplicate),
        (made.keyed, Some(true)),
        "the idempotency key came along"
    );
    let leased = client
        .lease(&LeaseRequest {
            queues: vec!["paused".to_string()],
            worker_id: "migrate-test".to_string(),
            max_jobs: 10,
            lease_ms: LEASE_MS,
            wait_ms: 0,
        })
        .await
        .expect("lease");
    assert!(leased.is_empty(), "the paused queue stays paused");
    let (id, token) = &made.running;
    let done = client
        .complete(*id, token, &json!({"after": "migration"}))
        .await
        .expect("the worker completes its job on the copy with its old token");
    assert_eq!(done.state, JobState::Completed);
}

/// A source data directory filled by a real server (stopped on return), its snapshot, and
/// what was made. A server started on it first proves that migrate refuses a live source.
async fn filled_source(root: &Path) -> (Snapshot, Made) {
    let src = root.join("source");
    let server = Server::start_at(&src);
    let made = populate(&server.client()).await;
    let snap = snapshot(&server).await;
    assert_covers_every_state(&snap);

    let refused_dest = root.join("refused");
    assert_refused_while_running(path(&src), path(&refused_dest));
    assert!(server.stop().success(), "the source server stops cleanly");
    (snap, made)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_every_job_between_data_directories() {
    let root = tempfile::tempdir().expect("temp dir");
    let (want, made) = filled_source(root.path()).await;
    let (src, dst) = (root.path().join("source"), root.path().join("dest"));

    let report = migrate_ok(path(&src), &format!("sqlite:{}", path(&dst)));
    assert_eq!(report["jobs_copied"], want.jobs.len() as u64, "{report}");
    let again = migrate_ok(path(&src), path(&dst));
    assert_eq!(
        again["jobs_copied"], 0,
        "a second run adds nothing: {again}"
    );
    assert_eq!(again["destination"], report["destination"], "{again}");

    let copy = Server::start_at(&dst);
    assert_copy_behaves(&copy, &want, &made).await;
    assert!(copy.stop().success());
}

#[test]
fn migrate_of_a_missing_source_fails_and_creates_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let (src, dst) = (root.path().join("nope"), root.path().join("dest"));
    let out = migrate(path(&src), path(&dst));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no Hopper database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!src.exists() && !dst.exists(), "nothing was created");
}

/// REQUIRES POSTGRESQL: run through `./scripts/test.sh`, which starts one and sets
/// `HOPPER_TEST_DATABASE_URL`; without it this test fails on purpose rather than pass
/// untested.
///
/// SQLite → PostgreSQL → SQLite: the final copy answers exactly as the original did, and a
/// PostgreSQL store a server runs on is refused as a source. Then the source gets API keys, a
/// quota and a webhook, and migrating it again to PostgreSQL brings them along: a key made
/// before the migration authenticates there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_round_trips_through_postgres() {
    let Ok(admin_url) = std::env::var("HOPPER_TEST_DATABASE_URL") else {
        panic!(
            "HOPPER_TEST_DATABASE_URL is not set: this test needs PostgreSQL; run it through \
             ./scripts/test.sh, which starts a throwaway server and sets the variable"
        );
    };
    let db = pg::TestDatabase::create(&admin_url).await;

    let root = tempfile::tempdir().expect("temp dir");
    let (want, made) = filled_source(root.path()).await;
    let (src, back) = (root.path().join("source"), root.path().join("back"));

    let report = migrate_ok(path(&src), &db.url);
    assert_eq!(report["jobs_copied"], want.jobs.len() as u64, "{report}");
    let again = migrate_ok(path(&src), &db.url);
    assert_eq!(
        again["jobs_copied"], 0,
        "a second run adds nothing: {again}"
    );

    // A server on the PostgreSQL copy holds the maintenance lease, so it is refused as a
    // source until it stops (it takes the lease within a second of starting).
    let on_pg = Server::start_on_postgres(&db.url);
    let scratch = root.path().join("scratch");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = migrate(&db.url, path(&scratch));
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("is running on"), "{stderr}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "migrate from a PostgreSQL store with a running server was never refused"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        snapshot(&on_pg).await,
        want,
        "the server on PostgreSQL sees the same"
    );
    assert!(on_pg.stop().success());

    let report = migrate_ok(&db.url, path(&back));
    assert_eq!(report["jobs_copied"], want.jobs.len() as u64, "{report}");
    let copy = Server::start_at(&back);
    assert_copy_behaves(&copy, &want, &made).await;
    assert!(copy.stop().success());

    // Keys turn authentication on, so they come last, when no check above needs to go
    // without one. The copy resumes where it stopped: only the new rows are added.
    let secured = secure_source(&src).await;
    let report = migrate_ok(path(&src), &db.url);
    assert_eq!(report["jobs_copied"], 0, "{report}");
    assert_eq!(report["destination"]["api_keys"], 2, "{report}");
    assert_eq!(report["destination"]["namespaces"], 1, "{report}");
    assert_eq!(report["destination"]["webhooks"], 1, "{report}");
    let on_pg = Server::start_on_postgres(&db.url);
    assert_security_copied(&on_pg, &secured).await;
    assert!(on_pg.stop().success());
    db.drop_now().await;
}

/// The security settings a source was given before a migration: the keys' texts, the
/// webhook's id, and what an admin saw of keys, quotas, webhooks and the audit log.
struct Secured {
    /// An admin key's text.
    admin: String,
    /// A revoked key's text.
    revoked: String,
    /// The webhook (of `default`, on completed jobs).
    webhook: String,
    /// `GET` of each of [`SECURITY_VIEWS`] with the admin key.
    views: Vec<Value>,
}

/// What an admin sees of the security settings.
const SECURITY_VIEWS: [&str; 4] = ["/v1/keys", "/v1/namespaces", "/v1/webhooks", "/v1/audit"];

/// `method url` with a JSON `body`, as `key` when given: the status and the JSON answer (null
/// when there is none).
async fn call(
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method.clone(), url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("an answer body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET` of every security view with `admin`.
async fn security_views(base: &str, admin: &str) -> Vec<Value> {
    let mut views = Vec::new();
    for path in SECURITY_VIEWS {
        let (status, view) = call(
            reqwest::Method::GET,
            &format!("{base}{path}"),
            Some(admin),
            None,
        )
        .await;
        assert_eq!(status, 200, "GET {path}: {view}");
        views.push(view);
    }
    views
}

/// Gives the (stopped) source in `dir` an admin key (made anonymously: the store has none
/// yet, so this turns authentication on), a revoked viewer key, quotas for `default` and a
/// webhook, through a server it stops again.
async fn secure_source(dir: &Path) -> Secured {
    use reqwest::Method;

    let server = Server::start_at(dir);
    let url = |path: &str| format!("{}{path}", server.url);
    let (status, made) = call(
        Method::POST,
        &url("/v1/keys"),
        None,
        Some(json!({"name": "migrate-admin", "role": "admin", "namespaces": ["*"]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let admin = made["token"].as_str().expect("the key's text").to_string();
    let (status, made) = call(
        Method::POST,
        &url("/v1/keys"),
        Some(&admin),
        Some(json!({"name": "migrate-viewer", "role": "viewer", "namespaces": ["default"]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let revoked = made["token"].as_str().expect("the key's text").to_string();
    let id = made["key"]["id"].as_str().expect("the key's id");
    let (status, answer) = call(
        Method::POST,
        &url(&format!("/v1/keys/{id}/revoke")),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        Method::PUT,
        &url("/v1/namespaces/default"),
        Some(&admin),
        Some(json!({"max_waiting_jobs": 100_000})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // Deliveries there fail (nothing listens, and it is no public address), which is all
    // the same to the test: it looks for the deliveries being made, not their outcome.
    let (status, made) = call(
        Method::POST,
        &url("/v1/webhooks"),
        Some(&admin),
        Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["completed"]})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let webhook = made["id"].as_str().expect("the webhook's id").to_string();
    let views = security_views(&server.url, &admin).await;
    assert!(server.stop().success(), "the source server stops cleanly");
    Secured {
        admin,
        revoked,
        webhook,
        views,
    }
}

/// Checks a server on a copy of a secured source: the same keys, quotas, webhooks and audit
/// log; requests without a key or with the revoked one are refused, the admin key works; and
/// the webhook delivers the copy's next completion, and nothing of the copied history.
async fn assert_security_copied(server: &Server, want: &Secured) {
    use reqwest::Method;

    assert_eq!(
        security_views(&server.url, &want.admin).await,
        want.views,
        "keys, quotas, webhooks and the audit log came along"
    );
    let jobs = format!("{}/v1/jobs", server.url);
    let (status, _) = call(Method::GET, &jobs, None, None).await;
    assert_eq!(status, 401, "authentication stays on");
    let (status, _) = call(Method::GET, &jobs, Some(&want.revoked), None).await;
    assert_eq!(status, 401, "the revoked key stays revoked");
    let (status, answer) = call(Method::GET, &jobs, Some(&want.admin), None).await;
    assert_eq!(
        status, 200,
        "the key made before the migration works: {answer}"
    );

    let client = Client::with_credentials(&server.url, Some(&want.admin), None).expect("client");
    client.enqueue(req("k", "hooked")).await.expect("enqueue");
    let done = lease_one(&client, "hooked").await;
    client
        .complete(done.0, &done.1, &json!({"ok": true}))
        .await
        .expect("complete");
    let (status, events) = call(
        Method::GET,
        &format!("{}/v1/jobs/{}/events", server.url, done.0),
        Some(&want.admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{events}");
    let completed = events["events"]
        .as_array()
        .and_then(|e| e.last())
        .and_then(|e| e["seq"].as_i64())
        .expect("the completion's seq");
    let deliveries = format!("{}/v1/webhooks/{}/deliveries", server.url, want.webhook);
    // The dispatcher runs on the node that holds the maintenance lease, taken within a second
    // or so of starting.
    let deadline = Instant::now() + Duration::from_secs(20);
    let made = loop {
        let (status, answer) = call(Method::GET, &deliveries, Some(&want.admin), None).await;
        assert_eq!(status, 200, "{answer}");
        let made = answer["deliveries"].as_array().cloned().unwrap_or_default();
        if !made.is_empty() {
            break made;
        }
        assert!(
            Instant::now() < deadline,
            "the copied webhook never delivered the completion"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ids: Vec<&str> = made
        .iter()
        .filter_map(|d| d["delivery_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [format!("{}:{completed}", want.webhook)],
        "one delivery, of the new completion; none of the copied history"
    );
}

/// A uniquely named database on the test server, dropped at the end (or when the test fails).
mod pg {
    use sqlx::Connection;

    pub struct TestDatabase {
        admin_url: String,
        name: String,
        /// The URL of the new database.
        pub url: String,
        dropped: bool,
    }

    /// `url` with its database (the path) replaced by `name`.
    fn with_database(url: &str, name: &str) -> String {
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let (head, query) = match url.find('?') {
            Some(q) => url.split_at(q),
            None => (url, ""),
        };
        let authority_end = head[after_scheme..]
            .find('/')
            .map_or(head.len(), |i| after_scheme + i);
        format!("{}/{name}{query}", &head[..authority_end])
    }

    impl TestDatabase {
        pub async fn create(admin_url: &str) -> TestDatabase {
            let name = format!("hopper_migrate_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("connect to HOPPER_TEST_DATABASE_URL");
            // The name is ours (hex digits), never outside input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await
                .expect("create the test database");
            conn.close().await.ok();
            TestDatabase {
                url: with_database(admin_url, &name),
                admin_url: admin_url.to_string(),
                name,
                dropped: false,
            }
        }

        async fn drop_database(admin_url: &str, name: &str) {
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
                let sql = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                {
                    eprintln!("dropping test database {name}: {e}");
                }
                conn.close().await.ok();
            }
        }

        pub async fn drop_now(mut self) {
            Self::drop_database(&self.admin_url, &self.name).await;
            self.dropped = true;
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if self.dropped {
                return;
            }
            // A failed test unwinds here inside the runtime, where nothing can be awaited: drop
            // the database from a thread with a runtime of its own.
            let (admin, name) = (self.admin_url.clone(), self.name.clone());
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(TestDatabase::drop_database(&admin, &name));
                }
            })
            .join();
        }
    }

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
