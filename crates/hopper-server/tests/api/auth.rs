//! Authentication and tenancy, end to end: every endpoint called with no key, a malformed,
//! revoked or expired key, a key of each role, and a key of another namespace answers exactly
//! as api-v1.md says (401 / 403 / 404 without leaking existence); the event stream shows a key
//! only its namespaces; keys are stored only as digests; quotas and rate limits answer 429 with
//! `Retry-After`; UI sessions need their CSRF token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use hopper_types::Clock;

use crate::common::{Resp, TestServer};

/// The namespace the matrix's data lives in.
const NS: &str = "tenant-a";

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
    namespace: Option<&str>,
) -> Resp {
    let mut req = s.client.request(method, s.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(ns) = namespace {
        req = req.header("x-hopper-namespace", ns);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    s.send(req).await
}

/// Creates a key through the API with `admin`'s authority (none while the server has no key).
async fn create_key(s: &TestServer, admin: Option<&str>, spec: Value) -> String {
    let r = call(s, Method::POST, "/v1/keys", Some(&spec), admin, None)
        .await
        .expect(201);
    r.body["token"].as_str().expect("token").to_string()
}

struct Keys {
    root: String,
    admin: String,
    producer: String,
    worker: String,
    viewer: String,
    other: String,
    revoked: String,
    expired: String,
}

/// A server with keys of every kind, on a manual clock (for expiry).
async fn server_with_keys() -> (TestServer, Keys) {
    let clock = TestServer::manual_clock();
    let s = TestServer::start_with(crate::common::test_config(), Some(clock.clone())).await;
    // While no key exists the API is open: the first admin key is made through it.
    let root = create_key(
        &s,
        None,
        json!({"name": "root", "role": "admin", "namespaces": ["*"]}),
    )
    .await;
    let root_ref = Some(root.as_str());
    let in_ns = |role: &str| json!({"name": role, "role": role, "namespaces": [NS]});
    let admin = create_key(&s, root_ref, in_ns("admin")).await;
    let producer = create_key(&s, root_ref, in_ns("producer")).await;
    let worker = create_key(&s, root_ref, in_ns("worker")).await;
    let viewer = create_key(&s, root_ref, in_ns("viewer")).await;
    let other = create_key(
        &s,
        root_ref,
        json!({"name": "other", "role": "admin", "namespaces": ["tenant-b"]}),
    )
    .await;
    let revoked = create_key(&s, root_ref, in_ns("admin")).await;
    let revoked_id = &revoked[4..20];
    call(
        &s,
        Method::POST,
        &format!("/v1/keys/{revoked_id}/revoke"),
        None,
        root_ref,
        None,
    )
    .await
    .expect(200);
    let soon = clock.now().plus_ms(1_000);
    let expired = create_key(
        &s,
        root_ref,
        json!({"name": "short", "role": "admin", "namespaces": [NS], "expires_at": soon}),
    )
    .await;
    clock.advance_ms(2_000);
    (
        s,
        Keys {
            root,
            admin,
            producer,
            worker,
            viewer,
            other,
            revoked,
            expired,
        },
    )
}

/// Real things in `NS` for the paths to name: a job (leased, so outcomes have a token), a
/// workflow run, a schedule, a definition, a backfill.
struct Fixtures {
    job: String,
    token: String,
    workflow: String,
    backfill: String,
}

async fn fixtures(s: &TestServer, k: &Keys) -> Fixtures {
    let admin = Some(k.admin.as_str());
    let job = call(
        s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k", "queue": "q"})),
        admin,
        None,
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let leased = call(
        s,
        Method::POST,
        "/v1/leases",
        Some(&json!({"queues": ["q"], "worker_id": "w"})),
        admin,
        None,
    )
    .await
    .expect(200);
    let token = leased.body["jobs"][0]["lease_token"]
        .as_str()
        .expect("leased")
        .to_string();
    let workflow = call(
        s,
        Method::POST,
        "/v1/workflows",
        Some(&json!({"steps": [{"step": "a", "job": {"kind": "k", "queue": "wf"}}]})),
        admin,
        None,
    )
    .await
    .expect(201)
    .body["workflow"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    call(
        s,
        Method::POST,
        "/v1/schedules",
        Some(&json!({"name": "s", "cron": "0 0 * * *", "job": {"kind": "k"}})),
        admin,
        None,
    )
    .await
    .expect(201);
    call(
        s,
        Method::PUT,
        "/v1/workflows/definitions/d",
        Some(&json!({"steps": [{"step": "a", "job": {"kind": "k", "queue": "wf"}}]})),
        admin,
        None,
    )
    .await
    .expect(200);
    let backfill = call(
        s,
        Method::POST,
        "/v1/workflows/definitions/d/backfill",
        Some(&json!({"from": "2026-01-01", "to": "2026-01-02"})),
        admin,
        None,
    )
    .await;
    assert!(backfill.status < 300, "{backfill:#?}");
    let backfill = backfill.body["backfill"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    Fixtures {
        job,
        token,
        workflow,
        backfill,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    Read,
    ReadAll,
    Enqueue,
    Cancel,
    Steps,
    Work,
    Admin,
}

impl Level {
    fn allows(self, role: &str) -> bool {
        match self {
            Level::Read | Level::ReadAll => true,
            Level::Enqueue | Level::Cancel => matches!(role, "admin" | "producer"),
            Level::Steps => matches!(role, "admin" | "producer" | "worker"),
            Level::Work => matches!(role, "admin" | "worker"),
            Level::Admin => role == "admin",
        }
    }
}

/// Every authenticated endpoint: method, path, body, level. Destructive calls come last so
/// earlier rows still find their fixtures.
fn endpoints(f: &Fixtures) -> Vec<(Method, String, Option<Value>, Level)> {
    use Level::*;
    let j = &f.job;
    let w = &f.workflow;
    let tok = json!({"lease_token": f.token});
    let none = None;
    vec![
        (Method::GET, "/v1/jobs".into(), none.clone(), Read),
        (Method::GET, format!("/v1/jobs/{j}"), none.clone(), Read),
        (
            Method::GET,
            format!("/v1/jobs/{j}/events"),
            none.clone(),
            Read,
        ),
        (
            Method::GET,
            format!("/v1/jobs/{j}/explain"),
            none.clone(),
            Read,
        ),
        (Method::GET, "/v1/queues".into(), none.clone(), Read),
        (Method::GET, "/v1/queues/q".into(), none.clone(), Read),
        (Method::GET, "/v1/schedules".into(), none.clone(), Read),
        (Method::GET, "/v1/schedules/s".into(), none.clone(), Read),
        (Method::GET, "/v1/workflows".into(), none.clone(), Read),
        (
            Method::GET,
            format!("/v1/workflows/{w}"),
            none.clone(),
            Read,
        ),
        (
            Method::GET,
            "/v1/workflows/definitions".into(),
            none.clone(),
            Read,
        ),
        (
            Method::GET,
            "/v1/workflows/definitions/d".into(),
            none.clone(),
            Read,
        ),
        (
            Method::GET,
            format!("/v1/workflows/backfills/{}", f.backfill),
            none.clone(),
            Read,
        ),
        (Method::GET, "/v1/workers".into(), none.clone(), Read),
        (Method::GET, "/v1/dead-letters".into(), none.clone(), Read),
        (Method::GET, "/v1/namespaces".into(), none.clone(), Read),
        (
            Method::GET,
            format!("/v1/namespaces/{NS}"),
            none.clone(),
            Read,
        ),
        (Method::GET, "/v1/stats".into(), none.clone(), ReadAll),
        (Method::GET, "/metrics".into(), none.clone(), ReadAll),
        (
            Method::POST,
            "/v1/jobs".into(),
            Some(json!({"kind": "k", "queue": "other"})),
            Enqueue,
        ),
        (
            Method::POST,
            "/v1/jobs/batch".into(),
            Some(json!({"jobs": [{"kind": "k", "queue": "other"}]})),
            Enqueue,
        ),
        (
            Method::POST,
            "/v1/workflows".into(),
            Some(json!({"steps": [{"step": "a", "job": {"kind": "k", "queue": "other"}}]})),
            Enqueue,
        ),
        (
            Method::POST,
            "/v1/workflows/definitions/d/runs".into(),
            Some(json!({})),
            Enqueue,
        ),
        (
            Method::POST,
            format!("/v1/workflows/{w}/steps"),
            Some(json!({"steps": [{"step": "b", "job": {"kind": "k", "queue": "other"}}]})),
            Steps,
        ),
        (
            Method::POST,
            "/v1/leases".into(),
            Some(json!({"queues": ["empty"], "worker_id": "w"})),
            Work,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/heartbeat"),
            Some(tok.clone()),
            Work,
        ),
        (
            Method::POST,
            "/v1/acks".into(),
            Some(json!({"acks": [{"id": j, "lease_token": "x", "outcome": "released"}]})),
            Work,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/release"),
            Some(tok.clone()),
            Work,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/cancelled"),
            Some(tok.clone()),
            Work,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/fail"),
            Some(json!({"lease_token": f.token, "error": {"message": "x"}})),
            Work,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/complete"),
            Some(tok.clone()),
            Work,
        ),
        (Method::GET, "/v1/keys".into(), none.clone(), Admin),
        (Method::GET, "/v1/audit".into(), none.clone(), Admin),
        (Method::GET, "/v1/webhooks".into(), none.clone(), Admin),
        (
            Method::PUT,
            format!("/v1/namespaces/{NS}"),
            Some(json!({})),
            Admin,
        ),
        (Method::PUT, "/v1/queues/q".into(), Some(json!({})), Admin),
        (
            Method::POST,
            "/v1/queues/q/pause".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/queues/q/resume".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/queues/q/retry".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::DELETE,
            "/v1/queues/q/jobs?state=completed".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/schedules".into(),
            Some(json!({"name": "s2", "cron": "0 0 * * *", "job": {"kind": "k"}})),
            Admin,
        ),
        (
            Method::PUT,
            "/v1/schedules/s".into(),
            Some(json!({"cron": "0 1 * * *", "job": {"kind": "k"}})),
            Admin,
        ),
        (
            Method::POST,
            "/v1/schedules/s/pause".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/schedules/s/resume".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/schedules/s/trigger".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::PUT,
            "/v1/workflows/definitions/d2".into(),
            Some(json!({"steps": [{"step": "a", "job": {"kind": "k"}}]})),
            Admin,
        ),
        (
            Method::POST,
            "/v1/workflows/definitions/d/backfill".into(),
            Some(json!({"from": "2026-02-01", "to": "2026-02-01"})),
            Admin,
        ),
        (
            Method::POST,
            "/v1/dead-letters/retry".into(),
            Some(json!({"queue": "q", "error": "x"})),
            Admin,
        ),
        (
            Method::POST,
            "/v1/jobs/bulk".into(),
            Some(json!({"action": "retry", "ids": [j]})),
            Admin,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/retry"),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            format!("/v1/workflows/{w}/cancel"),
            none.clone(),
            Cancel,
        ),
        (
            Method::POST,
            format!("/v1/jobs/{j}/cancel"),
            none.clone(),
            Cancel,
        ),
        (
            Method::POST,
            format!("/v1/workflows/{w}/retry"),
            none.clone(),
            Admin,
        ),
        (
            Method::POST,
            "/v1/dead-letters/purge".into(),
            Some(json!({"queue": "q", "error": "x"})),
            Admin,
        ),
        (
            Method::DELETE,
            "/v1/schedules/s2".into(),
            none.clone(),
            Admin,
        ),
        (
            Method::DELETE,
            "/v1/workflows/definitions/d2".into(),
            none.clone(),
            Admin,
        ),
        (Method::DELETE, format!("/v1/jobs/{j}"), none.clone(), Admin),
    ]
}

#[tokio::test]
async fn every_endpoint_answers_each_credential_as_specified() {
    let (s, k) = server_with_keys().await;
    let f = fixtures(&s, &k).await;
    let table = endpoints(&f);
    // Refusals first: nothing they do may change anything.
    let bad = [
        ("no key", None),
        ("malformed key", Some("hop_nonsense")),
        ("revoked key", Some(k.revoked.as_str())),
        ("expired key", Some(k.expired.as_str())),
    ];
    for (method, path, body, level) in &table {
        for (what, key) in bad {
            let r = call(&s, method.clone(), path, body.as_ref(), key, None).await;
            assert_eq!(r.status, 401, "{what}: {method} {path}: {r:#?}");
            assert_eq!(r.code(), "unauthenticated", "{what}: {method} {path}");
            assert_eq!(
                r.headers.get("www-authenticate").map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
        }
        for (role, key) in [
            ("viewer", &k.viewer),
            ("worker", &k.worker),
            ("producer", &k.producer),
        ] {
            if level.allows(role) && *level != Level::ReadAll {
                continue;
            }
            let r = call(&s, method.clone(), path, body.as_ref(), Some(key), None).await;
            assert_eq!(r.status, 403, "{role}: {method} {path}: {r:#?}");
            assert_eq!(r.code(), "permission_denied", "{role}: {method} {path}");
        }
        // A key of another namespace, naming this one: as if it did not exist.
        if *level != Level::ReadAll {
            let r = call(
                &s,
                method.clone(),
                path,
                body.as_ref(),
                Some(&k.other),
                Some(NS),
            )
            .await;
            assert_eq!(r.status, 404, "other namespace: {method} {path}: {r:#?}");
            assert_eq!(r.code(), "not_found");
        }
    }
    // Allowed calls are never refused for who makes them (they may still be 4xx for their
    // own reasons, e.g. a lease token that was used already).
    for (method, path, body, level) in &table {
        for (role, key) in [
            ("viewer", &k.viewer),
            ("worker", &k.worker),
            ("producer", &k.producer),
            ("admin", &k.admin),
            ("root", &k.root),
        ] {
            let allowed = match level {
                Level::ReadAll => role == "root",
                l => l.allows(if role == "root" { "admin" } else { role }),
            };
            if !allowed {
                continue;
            }
            let r = call(&s, method.clone(), path, body.as_ref(), Some(key), None).await;
            assert!(
                !matches!(r.status, 401 | 403) && r.status < 500,
                "{role}: {method} {path}: {r:#?}"
            );
        }
    }
}

#[tokio::test]
async fn another_namespace_sees_nothing_of_this_one() {
    let (s, k) = server_with_keys().await;
    let f = fixtures(&s, &k).await;
    let other = Some(k.other.as_str());
    // Named directly, in its own namespace: unknown.
    for path in [
        format!("/v1/jobs/{}", f.job),
        format!("/v1/jobs/{}/events", f.job),
        format!("/v1/jobs/{}/explain", f.job),
        format!("/v1/workflows/{}", f.workflow),
        "/v1/schedules/s".into(),
        "/v1/workflows/definitions/d".into(),
        format!("/v1/workflows/backfills/{}", f.backfill),
    ] {
        let r = call(&s, Method::GET, &path, None, other, None).await;
        assert_eq!(r.status, 404, "{path}: {r:#?}");
    }
    for (method, path) in [
        (Method::POST, format!("/v1/jobs/{}/cancel", f.job)),
        (Method::POST, format!("/v1/jobs/{}/retry", f.job)),
        (Method::DELETE, format!("/v1/jobs/{}", f.job)),
        (Method::POST, format!("/v1/workflows/{}/cancel", f.workflow)),
        (Method::DELETE, "/v1/schedules/s".into()),
    ] {
        let r = call(&s, method.clone(), &path, None, other, None).await;
        assert_eq!(r.status, 404, "{method} {path}: {r:#?}");
    }
    // Lists and searches show none of it.
    for path in [
        "/v1/jobs".to_string(),
        format!("/v1/jobs?q={}", f.job),
        "/v1/queues".into(),
        "/v1/workflows".into(),
        "/v1/schedules".into(),
        "/v1/workflows/definitions".into(),
        "/v1/workers".into(),
        "/v1/dead-letters".into(),
        "/v1/namespaces".into(),
        "/v1/audit".into(),
    ] {
        let r = call(&s, Method::GET, &path, None, other, None)
            .await
            .expect(200);
        let text = r.body.to_string();
        for secret in [f.job.as_str(), f.workflow.as_str(), NS, "\"q\"", "\"wf\""] {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
    }
    // A lease of the same queue name takes nothing from this namespace.
    call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k", "queue": "q"})),
        Some(&k.producer),
        None,
    )
    .await
    .expect(201);
    let r = call(
        &s,
        Method::POST,
        "/v1/leases",
        Some(&json!({"queues": ["q"], "worker_id": "w"})),
        other,
        None,
    )
    .await
    .expect(200);
    assert_eq!(r.body["jobs"], json!([]));
    // The owner still sees its job.
    call(
        &s,
        Method::GET,
        &format!("/v1/jobs/{}", f.job),
        None,
        Some(&k.viewer),
        None,
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn the_event_stream_shows_a_key_only_its_namespace() {
    let (s, k) = server_with_keys().await;
    let open = |key: &str| s.client.get(s.url("/v1/events")).bearer_auth(key).send();
    // Refused before any byte of the stream.
    let r = s
        .client
        .get(s.url("/v1/events"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(s.url(&format!("/v1/events?namespace={NS}")))
        .bearer_auth(&k.other)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);

    let mut mine = open(&k.viewer).await.expect("open");
    let mut theirs = open(&k.other).await.expect("open");
    assert_eq!(
        (mine.status().as_u16(), theirs.status().as_u16()),
        (200, 200)
    );
    let job = call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "secret-kind", "queue": "q"})),
        Some(&k.producer),
        None,
    )
    .await
    .expect(201);
    let id = job.body["id"].as_str().expect("id").to_string();
    // The owner's stream carries the enqueue.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&id) {
        let chunk = tokio::time::timeout_at(deadline, mine.chunk())
            .await
            .expect("the owner sees the event in time")
            .expect("read")
            .expect("open stream");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // A marker in the other namespace, enqueued after: once it arrives, anything of this
    // namespace would have arrived before it.
    let marker = call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "marker", "queue": "q"})),
        Some(&k.other),
        None,
    )
    .await
    .expect(201);
    let marker = marker.body["id"].as_str().expect("id").to_string();
    let mut other_seen = String::new();
    while !other_seen.contains(&marker) {
        let chunk = tokio::time::timeout_at(deadline, theirs.chunk())
            .await
            .expect("the other namespace sees its own event")
            .expect("read")
            .expect("open stream");
        other_seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!other_seen.contains(&id) && !other_seen.contains("secret-kind"));
    assert!(!other_seen.contains(NS), "{other_seen}");
}

#[tokio::test]
async fn the_store_holds_only_digests_of_keys() {
    let (s, k) = server_with_keys().await;
    let stored = s.store.api_key_list().await.expect("list");
    assert_eq!(stored.len(), 8);
    let all_text = format!("{stored:?}");
    for token in [&k.root, &k.admin, &k.producer, &k.viewer, &k.revoked] {
        let secret = &token[21..];
        assert!(!all_text.contains(secret), "the store holds a secret");
        // What the store holds does not work as a key.
        let row = stored
            .iter()
            .find(|r| r.key.id == token[4..20])
            .expect("stored");
        let forged = format!(
            "hop_{}_{}",
            row.key.id,
            hopper_types::api_key::hex(&row.secret_hash)
        );
        let r = call(&s, Method::GET, "/v1/jobs", None, Some(&forged), None).await;
        assert_eq!(r.status, 401);
    }
    // Listing keys through the API shows no secret either.
    let r = call(&s, Method::GET, "/v1/keys", None, Some(&k.root), None)
        .await
        .expect(200);
    let text = r.body.to_string();
    assert_eq!(r.body["keys"].as_array().map(Vec::len), Some(8));
    assert!(!text.contains(&k.admin[21..]) && !text.contains("secret_hash"));
    // A namespace admin lists only keys within its namespaces.
    let r = call(&s, Method::GET, "/v1/keys", None, Some(&k.admin), None)
        .await
        .expect(200);
    assert!(
        r.body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .all(|k| k["namespaces"] == json!([NS]))
    );
}

#[tokio::test]
async fn revocation_takes_effect_at_once_and_is_audited() {
    let (s, k) = server_with_keys().await;
    let worker_id = &k.worker[4..20];
    call(&s, Method::GET, "/v1/jobs", None, Some(&k.worker), None)
        .await
        .expect(200);
    // A namespace admin may not grant more than it holds.
    let r = call(
        &s,
        Method::POST,
        "/v1/keys",
        Some(&json!({"name": "x", "role": "viewer", "namespaces": ["tenant-b"]})),
        Some(&k.admin),
        None,
    )
    .await;
    assert_eq!((r.status, r.field()), (403, "namespaces[0]"));
    call(
        &s,
        Method::POST,
        &format!("/v1/keys/{worker_id}/revoke"),
        None,
        Some(&k.admin),
        None,
    )
    .await
    .expect(200);
    let r = call(&s, Method::GET, "/v1/jobs", None, Some(&k.worker), None).await;
    assert_eq!((r.status, r.code()), (401, "unauthenticated"));
    let audit = call(&s, Method::GET, "/v1/audit", None, Some(&k.root), None)
        .await
        .expect(200);
    let entries = audit.body["entries"].as_array().expect("entries");
    let revoke = entries
        .iter()
        .find(|e| e["action"] == "key.revoke" && e["target"] == worker_id)
        .expect("the revocation is audited");
    assert_eq!(revoke["actor"], k.admin[4..20]);
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "key.create" && e["actor"] == "anonymous")
    );
}

#[tokio::test]
async fn administrative_actions_are_audited_with_actor_and_change() {
    let (s, k) = server_with_keys().await;
    fixtures(&s, &k).await;
    let admin = Some(k.admin.as_str());
    call(&s, Method::POST, "/v1/queues/q/pause", None, admin, None)
        .await
        .expect(200);
    // A waiting job of the producer's, cancelled by it, then purged by the admin.
    let waiting = call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k", "queue": "q2"})),
        Some(&k.producer),
        None,
    )
    .await
    .expect(201);
    let waiting = waiting.body["id"].as_str().expect("id").to_string();
    call(
        &s,
        Method::POST,
        &format!("/v1/jobs/{waiting}/cancel"),
        None,
        Some(&k.producer),
        None,
    )
    .await
    .expect(200);
    call(
        &s,
        Method::DELETE,
        "/v1/queues/q2/jobs?state=cancelled",
        None,
        admin,
        None,
    )
    .await
    .expect(200);
    let audit = call(&s, Method::GET, "/v1/audit?limit=500", None, admin, None)
        .await
        .expect(200);
    let entries = audit.body["entries"].as_array().expect("entries");
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:#?}"))
            .clone()
    };
    let pause = find("queue.pause");
    assert_eq!(
        (&pause["actor"], &pause["namespace"], &pause["target"]),
        (&json!(k.admin[4..20]), &json!(NS), &json!("q"))
    );
    let cancel = find("job.cancel");
    assert_eq!(cancel["actor"], k.producer[4..20]);
    assert_eq!(cancel["target"], waiting);
    assert_eq!(cancel["details"]["state"], "cancelled");
    let purge = find("queue.purge");
    assert_eq!(purge["details"]["state"], "cancelled");
    assert_eq!(purge["details"]["purged"], 1);
    // Newest first, and the other namespace's admin sees none of it.
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64())
    );
    let theirs = call(&s, Method::GET, "/v1/audit", None, Some(&k.other), None)
        .await
        .expect(200);
    assert_eq!(theirs.body["entries"], json!([]));
}

#[tokio::test]
async fn quotas_refuse_with_retry_after() {
    let (s, k) = server_with_keys().await;
    let admin = Some(k.admin.as_str());
    call(
        &s,
        Method::PUT,
        &format!("/v1/namespaces/{NS}"),
        Some(&json!({"max_waiting_jobs": 3})),
        admin,
        None,
    )
    .await
    .expect(200);
    for _ in 0..3 {
        call(
            &s,
            Method::POST,
            "/v1/jobs",
            Some(&json!({"kind": "k"})),
            admin,
            None,
        )
        .await
        .expect(201);
    }
    let r = call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k"})),
        admin,
        None,
    )
    .await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{r:#?}");
    assert!(r.headers.get("retry-after").is_some());
    // A batch that would cross the line is refused whole.
    let r = call(
        &s,
        Method::POST,
        "/v1/jobs/batch",
        Some(&json!({"jobs": [{"kind": "k"}]})),
        admin,
        None,
    )
    .await;
    assert_eq!(r.status, 429);
    // Another namespace is not held back.
    call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k"})),
        Some(&k.other),
        None,
    )
    .await
    .expect(201);

    // An enqueue rate: a second's worth passes, the next waits.
    call(
        &s,
        Method::PUT,
        &format!("/v1/namespaces/{NS}"),
        Some(&json!({"enqueue_per_s": 2})),
        admin,
        None,
    )
    .await
    .expect(200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = call(
            &s,
            Method::POST,
            "/v1/jobs",
            Some(&json!({"kind": "k"})),
            admin,
            None,
        )
        .await;
        statuses.push(r.status);
        if r.status == 429 {
            let wait: u64 = r.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("secs");
            assert!((1..=1).contains(&wait), "{wait}");
        }
    }
    assert_eq!(statuses, vec![201, 201, 429]);
    // Bad quotas are refused naming the field.
    let r = call(
        &s,
        Method::PUT,
        &format!("/v1/namespaces/{NS}"),
        Some(&json!({"enqueue_per_s": 0})),
        admin,
        None,
    )
    .await;
    assert_eq!((r.status, r.field()), (400, "enqueue_per_s"));
}

#[tokio::test]
async fn a_key_rate_limit_answers_429_with_retry_after() {
    let (s, k) = server_with_keys().await;
    let limited = create_key(
        &s,
        Some(&k.root),
        json!({"name": "slow", "role": "viewer", "namespaces": [NS], "rate_limit_per_s": 3}),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = call(&s, Method::GET, "/v1/queues", None, Some(&limited), None).await;
        if r.status == 429 {
            assert_eq!(r.code(), "rate_limited");
            assert_eq!(r.headers["retry-after"], "1");
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // Other keys are not slowed.
    call(&s, Method::GET, "/v1/queues", None, Some(&k.viewer), None)
        .await
        .expect(200);
}

#[tokio::test]
async fn ui_sessions_need_the_csrf_token_to_change_anything() {
    let (s, k) = server_with_keys().await;
    let r = s
        .send(
            s.client
                .post(s.url("/v1/session"))
                .json(&json!({"key": k.admin})),
        )
        .await
        .expect(200);
    let cookies: Vec<String> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("hopper_session="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    assert!(!session.contains("Secure"), "plain HTTP: not Secure");
    let pair = |c: &str| c.split(';').next().expect("pair").to_string();
    let csrf_pair = pair(
        cookies
            .iter()
            .find(|c| c.starts_with("hopper_csrf="))
            .expect("csrf"),
    );
    let csrf = csrf_pair.trim_start_matches("hopper_csrf=").to_string();
    let jar = format!("{}; {}", pair(session), csrf_pair);

    // Reading with the cookie alone works.
    let r = s
        .send(s.client.get(s.url("/v1/jobs")).header("cookie", &jar))
        .await;
    assert_eq!(r.status, 200, "{r:#?}");
    // Changing anything without the token is refused, and changes nothing.
    let r = s
        .send(
            s.client
                .post(s.url("/v1/jobs"))
                .header("cookie", &jar)
                .json(&json!({"kind": "forged"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "permission_denied"));
    let r = s
        .send(
            s.client
                .post(s.url("/v1/jobs"))
                .header("cookie", &jar)
                .header("x-csrf-token", "not-the-token")
                .json(&json!({"kind": "forged"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let listed = call(
        &s,
        Method::GET,
        "/v1/jobs?kind=forged",
        None,
        Some(&k.admin),
        None,
    )
    .await
    .expect(200);
    assert_eq!(listed.body["jobs"], json!([]));
    // With it, the page's call goes through.
    let r = s
        .send(
            s.client
                .post(s.url("/v1/jobs"))
                .header("cookie", &jar)
                .header("x-csrf-token", &csrf)
                .json(&json!({"kind": "fine"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:#?}");
    // A wrong key does not log in; logging out clears the cookies.
    let r = s
        .send(
            s.client
                .post(s.url("/v1/session"))
                .json(&json!({"key": k.revoked})),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .send(s.client.delete(s.url("/v1/session")))
        .await
        .expect(204);
    assert!(
        r.headers
            .get_all("set-cookie")
            .iter()
            .all(|c| c.to_str().expect("ascii").contains("Max-Age=0"))
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (s, k) = server_with_keys().await;
    for (path, key) in [
        ("/v1/jobs", Some(k.viewer.as_str())),
        ("/v1/jobs", None),
        ("/healthz", None),
        ("/", None),
        ("/ui/js/main.js", None),
    ] {
        let r = call(&s, Method::GET, path, None, key, None).await;
        let h = |n: &str| {
            r.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
    }
}

#[tokio::test]
async fn revoking_a_key_ends_its_open_event_stream() {
    let mut config = crate::common::test_config();
    config.events.keepalive_ms = 100;
    let s = TestServer::start_with(config, None).await;
    let root = create_key(
        &s,
        None,
        json!({"name": "root", "role": "admin", "namespaces": ["*"]}),
    )
    .await;
    let viewer = create_key(
        &s,
        Some(&root),
        json!({"name": "v", "role": "viewer", "namespaces": [NS]}),
    )
    .await;
    let mut stream = s
        .client
        .get(s.url("/v1/events"))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("open");
    assert_eq!(stream.status().as_u16(), 200);
    stream
        .chunk()
        .await
        .expect("read")
        .expect("the stream starts");
    call(
        &s,
        Method::POST,
        &format!("/v1/keys/{}/revoke", &viewer[4..20]),
        None,
        Some(&root),
        None,
    )
    .await
    .expect(200);
    // Keep-alives flow until the key is found revoked; then the stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while stream.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream of a revoked key ended");
}

#[tokio::test]
async fn the_event_streams_answer_each_credential_as_specified() {
    let (s, k) = server_with_keys().await;
    // Only the status matters here: an accepted stream never ends, so its body is not read.
    let status = |path: &'static str, key: Option<String>, ns: Option<&'static str>| {
        let mut req = s.client.get(s.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(ns) = ns {
            req = req.header("x-hopper-namespace", ns);
        }
        async move { req.send().await.expect("sent").status().as_u16() }
    };
    for path in ["/v1/events", "/v1/events/ws"] {
        for key in [
            None,
            Some("hop_x".to_string()),
            Some(k.revoked.clone()),
            Some(k.expired.clone()),
        ] {
            assert_eq!(status(path, key.clone(), None).await, 401, "{path} {key:?}");
        }
        assert_eq!(
            status(path, Some(k.other.clone()), Some(NS)).await,
            404,
            "{path}"
        );
    }
    // Every role may follow its namespace (the WebSocket route wants an upgrade: 400 without
    // one, after authorization).
    for key in [&k.viewer, &k.worker, &k.producer, &k.admin] {
        assert_eq!(status("/v1/events", Some(key.clone()), None).await, 200);
        assert_eq!(status("/v1/events/ws", Some(key.clone()), None).await, 400);
    }
}

#[tokio::test]
async fn metrics_gauges_follow_the_namespace_asked_for() {
    let (s, k) = server_with_keys().await;
    call(
        &s,
        Method::POST,
        "/v1/jobs",
        Some(&json!({"kind": "k", "queue": "metered"})),
        Some(&k.producer),
        None,
    )
    .await
    .expect(201);
    let text = |r: reqwest::Response| async move { r.text().await.expect("text") };
    let scrape = |path: &str| s.client.get(s.url(path)).bearer_auth(&k.root).send();
    let own = text(
        scrape(&format!("/metrics?namespace={NS}"))
            .await
            .expect("sent"),
    )
    .await;
    let gauge = r#"hopper_jobs{queue="metered",state="available"} 1"#;
    assert!(own.contains(gauge), "{own}");
    // The default namespace's gauges do not hold it (the counters, node-wide, do).
    let default = text(scrape("/metrics").await.expect("sent")).await;
    assert!(
        !default.contains(r#"hopper_jobs{queue="metered""#),
        "{default}"
    );
    // A key scoped to the namespace still may not read node-wide metrics.
    let r = call(&s, Method::GET, "/metrics", None, Some(&k.admin), None).await;
    assert_eq!(r.status, 403);
}
