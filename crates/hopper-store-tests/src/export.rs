//! Copying a store: `export_jobs`, `export_idempotency_keys`, `export_queues`,
//! `export_audit`, `import`, `totals` (what `hopper migrate` is built on).
//!
//! Semantics: an export pages through every row of every namespace in a stable order (jobs by
//! id, each with its whole history oldest first; keys by namespace then key), so a copy can
//! move any amount of data page by page. An import puts rows in exactly as exported: a job
//! keeps every field, running jobs keep their lease tokens (their workers complete them after
//! the move), histories keep their order (events get the destination's own sequence numbers,
//! after all it had), keys keep answering duplicates, queues keep their pause. It is atomic,
//! never overwrites a row that is already present (a job with its events, a key, a queue), and
//! answers how many jobs were new, so running a copy again adds nothing. `totals` counts rows,
//! to verify a copy.
//!
//! API keys, namespace quotas and webhooks are exported whole by their list calls; the audit
//! log pages by seq, oldest first. They import exactly as exported: keys with their digests,
//! expiry and revocation (a revoked key stays revoked), webhooks with their cursors (the event
//! log's next seq moves past every imported cursor, so new events are dispatched), audit
//! entries at their own seqs (entries appended later number after them). A key, quota or
//! webhook already present is kept as it is; an audit entry whose seq holds a different entry
//! is appended with a fresh seq, once.

use std::time::Duration;

use hopper_store::{IdempotencyKeyRecord, ImportBatch, JobRecord, QueueRecord, Store, StoreTotals};
use hopper_types::api_key::{ApiKey, Role, StoredApiKey, hash_secret};
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use hopper_types::namespace::NamespaceSettings;
use hopper_types::webhook::Webhook;
use hopper_types::{Job, JobEvent, JobId, JobState, QueueConfig, Timestamp};
use serde_json::json;

use crate::Harness;
use crate::support::*;

/// The namespace besides the default one that the populated stores use.
const OTHER: &str = "other";

/// The idempotency key used in both namespaces.
const KEY: &str = "kept";

/// The enqueue request carrying [`KEY`].
const KEYED: &str = r#"{"kind":"k","queue":"keys","idempotency_key":"kept","args":{"a":[1,2]},"tags":["t"],"meta":{"m":1}}"#;

/// The actor the security rows are recorded as (a key id).
const ADMIN: &str = "00000000000000ad";

/// An audit entry with details worth round-tripping.
fn audit_entry(action: &str, namespace: &str, target: &str, at: Timestamp) -> NewAuditEntry {
    NewAuditEntry {
        at,
        actor: ADMIN.into(),
        action: action.into(),
        namespace: namespace.into(),
        target: target.into(),
        details: json!({"target": target, "nested": {"list": [1, "två", null]}}),
    }
}

/// A stored entry as `audit_entry` makes it, numbered `seq`.
fn numbered(seq: i64, e: NewAuditEntry) -> AuditEntry {
    AuditEntry {
        seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        namespace: e.namespace,
        target: e.target,
        details: e.details,
    }
}

/// A key of both test namespaces with an expiry and a rate limit, its secret's digest made
/// from its id.
fn api_key(id: &str, role: Role, created_at: Timestamp) -> StoredApiKey {
    StoredApiKey {
        key: ApiKey {
            id: id.into(),
            name: format!("key {id}"),
            role,
            namespaces: vec![NS.into(), OTHER.into()],
            created_at,
            created_by: ADMIN.into(),
            expires_at: Some(created_at.plus_ms(86_400_000)),
            revoked_at: None,
            rate_limit_per_s: Some(50),
        },
        secret_hash: hash_secret(&format!("secret of {id}")),
    }
}

/// A webhook of `namespace` on completed and dead jobs.
fn webhook(id: &str, namespace: &str, created_at: Timestamp, cursor: i64) -> Webhook {
    Webhook {
        id: id.into(),
        namespace: namespace.into(),
        url: format!("https://example.test/hooks/{id}"),
        events: vec![JobState::Completed, JobState::Dead],
        secret: "ab".repeat(32),
        created_at,
        cursor,
    }
}

/// Gives the store API keys (one revoked), quotas in both namespaces, a webhook whose cursor
/// is the event log's end, and the audit entries those writes append plus one more. Time
/// moves between steps.
async fn populate_security(env: &Env) {
    let store = env.store();
    let admin = api_key("00000000000000a1", Role::Admin, env.now());
    store
        .api_key_insert(
            admin,
            audit_entry("key.create", "", "00000000000000a1", env.now()),
        )
        .await
        .expect("insert key");
    env.advance(10);
    let mut viewer = api_key("00000000000000b2", Role::Viewer, env.now());
    viewer.key.expires_at = None;
    viewer.key.rate_limit_per_s = None;
    store
        .api_key_insert(
            viewer,
            audit_entry("key.create", "", "00000000000000b2", env.now()),
        )
        .await
        .expect("insert key");
    env.advance(10);
    store
        .api_key_revoke(
            "00000000000000b2",
            env.now(),
            audit_entry("key.revoke", "", "00000000000000b2", env.now()),
        )
        .await
        .expect("revoke key");
    env.advance(10);
    for (ns, max_waiting_jobs, enqueue_per_s) in
        [(NS, Some(1_000), Some(20)), (OTHER, None, Some(5))]
    {
        store
            .namespace_put(
                NamespaceSettings {
                    name: ns.into(),
                    max_waiting_jobs,
                    enqueue_per_s,
                    updated_at: env.now(),
                },
                audit_entry("namespace.put", ns, ns, env.now()),
            )
            .await
            .expect("put quotas");
        env.advance(10);
    }
    let cursor = store.events_last_seq().await.expect("last seq");
    store
        .webhook_insert(
            webhook("0190aaaabbbbccccddddeeeeffff0001", OTHER, env.now(), cursor),
            audit_entry(
                "webhook.create",
                OTHER,
                "0190aaaabbbbccccddddeeeeffff0001",
                env.now(),
            ),
        )
        .await
        .expect("insert webhook");
    env.advance(10);
    store
        .audit_append(audit_entry("queue.pause", NS, "paused", env.now()))
        .await
        .expect("append");
    env.advance(10);
}

/// What [`populate`] made, to check after a copy.
struct Populated {
    /// The job in `running`, with its token (queue `q2`).
    running: Leased,
    /// A running job whose worker reported progress (queue `progress`).
    progressing: Leased,
    /// The job created with [`KEY`] in the default namespace.
    keyed: JobId,
    /// The job created with [`KEY`] in [`OTHER`].
    keyed_other: JobId,
}

/// Fills a store with a job in every reachable state (queue `q<i>` for the i-th of
/// [`REACHABLE_STATES`]), a keyed job with tags and meta, a running job with progress, a
/// paused queue holding an available job, and a second namespace with its own key, jobs and
/// paused queue. Time moves between steps so timestamps differ.
async fn populate(env: &Env) -> Populated {
    let mut running = None;
    for (i, st) in REACHABLE_STATES.into_iter().enumerate() {
        let made = env.job_in_state(st, &format!("q{i}")).await;
        if st == JobState::Running {
            running = Some(Leased {
                id: made.id,
                token: made.token.expect("a running job has a token"),
                job: env.get(made.id).await,
            });
        }
        env.advance(10);
    }
    let keyed = env.enqueue(KEYED).await.id;
    env.advance(10);
    let progressing = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"progress","timeout_ms":3600000}"#)
        .await;
    env.store()
        .job_heartbeat(hopper_store::JobHeartbeatParams {
            job: job_ref(progressing.id),
            lease_token: progressing.token.clone(),
            lease_ms: Some(2 * LEASE_MS),
            progress: Some(raw(r#"{"pct":50}"#)),
        })
        .await
        .expect("heartbeat");
    env.store()
        .queue_set_paused(NS, "paused", true)
        .await
        .expect("pause");
    env.enqueue(r#"{"kind":"k","queue":"paused"}"#).await;
    env.advance(10);
    let keyed_other = env.enqueue_in(OTHER, KEYED).await.id;
    env.enqueue_in(OTHER, r#"{"kind":"k","queue":"q"}"#).await;
    env.store()
        .queue_set_paused(OTHER, "stopped", true)
        .await
        .expect("pause");
    for (ns, name, json) in [
        (
            NS,
            "nightly",
            r#"{"cron":"0 3 * * *","timezone":"Europe/Berlin","job":{"kind":"k"}}"#,
        ),
        (
            OTHER,
            "often",
            r#"{"cron":"*/5 * * * *","job":{"kind":"k"},"paused":true}"#,
        ),
    ] {
        let req: hopper_types::schedule::ScheduleRequest =
            serde_json::from_str(json).expect("test schedule parses");
        let (_, definition) = req
            .validate(Some(name), ns, &hopper_types::Limits::default())
            .expect("test schedule is valid");
        env.store()
            .schedule_create(hopper_store::ScheduleCreate {
                namespace: ns.to_string(),
                name: name.to_string(),
                definition,
            })
            .await
            .expect("create schedule");
    }
    env.advance(10);
    populate_security(env).await;
    Populated {
        running: running.expect("REACHABLE_STATES holds running"),
        progressing,
        keyed,
        keyed_other,
    }
}

/// Pages through every job of `store`, `page` at a time, checking the paging contract.
async fn export_all_jobs(store: &dyn Store, page: usize) -> Vec<JobRecord> {
    let mut all: Vec<JobRecord> = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let got = store.export_jobs(after, page).await.expect("export_jobs");
        assert!(got.len() <= page, "a page holds at most limit jobs");
        let Some(last) = got.last() else {
            return all;
        };
        let ids: Vec<JobId> = got.iter().map(|r| r.job.id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "a page is in ascending id order: {ids:?}"
        );
        if let Some(a) = after {
            assert!(ids[0] > a, "`after` is exclusive: {} after {a}", ids[0]);
        }
        after = Some(last.job.id);
        all.extend(got);
    }
    panic!("export_jobs never reached an empty page");
}

/// Pages through every idempotency key of `store`, `page` at a time.
async fn export_all_keys(store: &dyn Store, page: usize) -> Vec<IdempotencyKeyRecord> {
    let mut all: Vec<IdempotencyKeyRecord> = Vec::new();
    let mut after: Option<(String, String)> = None;
    for _ in 0..10_000 {
        let got = store
            .export_idempotency_keys(after.clone(), page)
            .await
            .expect("export_idempotency_keys");
        assert!(got.len() <= page, "a page holds at most limit keys");
        let Some(last) = got.last() else {
            return all;
        };
        after = Some((last.namespace.clone(), last.key.clone()));
        all.extend(got);
    }
    panic!("export_idempotency_keys never reached an empty page");
}

/// Pages through the whole audit log of `store`, `page` at a time, checking the paging
/// contract.
async fn export_all_audit(store: &dyn Store, page: usize) -> Vec<AuditEntry> {
    let mut all: Vec<AuditEntry> = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let got = store.export_audit(after, page).await.expect("export_audit");
        assert!(got.len() <= page, "a page holds at most limit entries");
        let Some(last) = got.last() else {
            return all;
        };
        let seqs: Vec<i64> = got.iter().map(|e| e.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a page is oldest first: {seqs:?}"
        );
        if let Some(a) = after {
            assert!(seqs[0] > a, "`after` is exclusive: {} after {a}", seqs[0]);
        }
        after = Some(last.seq);
        all.extend(got);
    }
    panic!("export_audit never reached an empty page");
}

/// Everything of `store`, as `hopper migrate` reads it (small pages, to exercise paging).
async fn export_all(store: &dyn Store) -> ImportBatch {
    ImportBatch {
        jobs: export_all_jobs(store, 3).await,
        idempotency_keys: export_all_keys(store, 2).await,
        queues: store.export_queues().await.expect("export_queues"),
        schedules: store.export_schedules().await.expect("export_schedules"),
        workflows: export_all_workflows(store).await,
        workflow_definitions: store
            .export_workflow_definitions()
            .await
            .expect("export_workflow_definitions"),
        backfills: store.backfill_list(None, false).await.expect("backfills"),
        api_keys: store.api_key_list().await.expect("api_key_list"),
        namespaces: store.namespace_list().await.expect("namespace_list"),
        audit: export_all_audit(store, 2).await,
        webhooks: store.webhook_list(None).await.expect("webhook_list"),
    }
}

/// Every workflow run with its edges, two per page.
async fn export_all_workflows(store: &dyn Store) -> Vec<hopper_store::WorkflowRecord> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .export_workflows(after, 2)
            .await
            .expect("export_workflows");
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last.workflow.id);
        all.extend(page);
    }
}

/// Every id of every namespace, by `job_list`, ascending.
async fn all_ids(env: &Env, namespaces: &[&str]) -> Vec<JobId> {
    let mut ids = Vec::new();
    for ns in namespaces {
        ids.extend(
            env.list_all(&hopper_store::JobListParams {
                namespace: ns.to_string(),
                ..list_params()
            })
            .await,
        );
    }
    ids.sort();
    ids
}

/// One event without its store-assigned sequence number: job, from, to, at, actor, reason.
type Transition = (JobId, Option<JobState>, JobState, Timestamp, String, String);

/// A history without the store-assigned sequence numbers, which differ between stores.
fn transitions(events: &[JobEvent]) -> Vec<Transition> {
    events
        .iter()
        .map(|e| {
            (
                e.job_id,
                e.from,
                e.to,
                e.at,
                e.actor.clone(),
                e.reason.clone(),
            )
        })
        .collect()
}

/// Asserts `events` are in strictly increasing seq order.
#[track_caller]
fn assert_seq_ascending(events: &[JobEvent]) {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "events are oldest first: {seqs:?}"
    );
}

/// Asserts two exported jobs are the same: every field, the lease token included, and the
/// same history.
#[track_caller]
fn assert_same_record(got: &JobRecord, want: &JobRecord) {
    assert_same_job(&got.job, &want.job);
    assert_eq!(
        got.job.lease_token, want.job.lease_token,
        "lease token of {}",
        want.job.id
    );
    assert_eq!(
        transitions(&got.events),
        transitions(&want.events),
        "history of {}",
        want.job.id
    );
    assert_seq_ascending(&got.events);
}

/// A fresh store of `h` whose clock reads the same as `src`'s.
async fn fresh_like(h: &dyn Harness, src: &Env) -> Env {
    let dst = Env::new(h).await;
    dst.set_time(src.now());
    dst
}

/// Queue records in (namespace, name) order (the contract leaves their order open).
fn sorted_queues(mut queues: Vec<QueueRecord>) -> Vec<QueueRecord> {
    queues.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    queues
}

/// `totals`.
async fn totals(env: &Env) -> StoreTotals {
    env.store().totals().await.expect("totals")
}

/// Pages of an export cover every job of every namespace once, by id, each as `job_get`
/// answers it (its lease token included) with its whole history.
pub async fn export_pages_through_every_job_in_id_order_with_events(h: &dyn Harness) {
    let env = Env::new(h).await;
    let made = populate(&env).await;
    let ids = all_ids(&env, &[NS, OTHER]).await;
    assert!(ids.len() >= 12, "populate made jobs in both namespaces");

    let exported = export_all_jobs(env.store(), 3).await;
    assert_eq!(
        exported.iter().map(|r| r.job.id).collect::<Vec<_>>(),
        ids,
        "every job once, ascending"
    );
    for rec in &exported {
        let r = job_ref_in(&rec.job.namespace, rec.job.id);
        let stored = env.store().job_get(&r).await.expect("get");
        assert_same_job(&rec.job, &stored);
        let events = env.store().job_events(&r).await.expect("events");
        assert!(!events.is_empty(), "every job has its enqueue event");
        assert_eq!(rec.events, events, "history of {}", rec.job.id);
    }
    for l in [&made.running, &made.progressing] {
        let rec = exported
            .iter()
            .find(|r| r.job.id == l.id)
            .expect("exported");
        assert_eq!(
            rec.job.lease_token.as_ref().map(|t| t.0.as_str()),
            Some(l.token.as_str()),
            "a running job is exported with its lease token"
        );
    }
    let other: Vec<&JobRecord> = exported
        .iter()
        .filter(|r| r.job.namespace == OTHER)
        .collect();
    assert_eq!(other.len(), 2, "the other namespace is exported too");

    let one_page = env
        .store()
        .export_jobs(None, 1000)
        .await
        .expect("export_jobs");
    assert_eq!(one_page.len(), ids.len(), "a large page holds everything");
    let last = *ids.last().expect("jobs");
    assert!(
        env.store()
            .export_jobs(Some(last), 10)
            .await
            .expect("export_jobs")
            .is_empty(),
        "nothing after the last id"
    );
    let from_middle = env
        .store()
        .export_jobs(Some(ids[4]), 2)
        .await
        .expect("export_jobs");
    assert_eq!(
        from_middle.iter().map(|r| r.job.id).collect::<Vec<_>>(),
        ids[5..7],
        "a page starts right after `after`"
    );
}

/// Keys are exported by (namespace, key), every field as stored, including keys that outlive
/// their deleted job.
pub async fn export_idempotency_keys_pages_in_namespace_key_order(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut want = Vec::new();
    for (ns, key) in [
        (NS, "k03"),
        (OTHER, "k02"),
        (NS, "k01"),
        (NS, "k05"),
        (OTHER, "k09"),
        (NS, "k02"),
    ] {
        let json = format!(r#"{{"kind":"k","idempotency_key":"{key}","args":{{"n":"{key}"}}}}"#);
        let job = env.enqueue_in(ns, &json).await;
        want.push(IdempotencyKeyRecord {
            namespace: ns.to_string(),
            key: key.to_string(),
            job_id: job.id,
            fingerprint: new_job_in(ns, &json).fingerprint(),
            created_at: env.now(),
        });
        env.advance(100);
    }
    // A key outlives its job: still exported after the job is deleted.
    let gone = want[2].job_id;
    env.cancel(gone).await.expect("cancel");
    env.delete(gone).await.expect("delete");
    want.sort_by(|a, b| (&a.namespace, &a.key).cmp(&(&b.namespace, &b.key)));

    assert_eq!(export_all_keys(env.store(), 2).await, want);
    assert_eq!(export_all_keys(env.store(), 100).await, want);
    let after = env
        .store()
        .export_idempotency_keys(Some((NS.to_string(), "k02".to_string())), 2)
        .await
        .expect("export_idempotency_keys");
    assert_eq!(after, want[2..4], "a page starts right after `after`");
    let after = env
        .store()
        .export_idempotency_keys(Some((NS.to_string(), "zzz".to_string())), 10)
        .await
        .expect("export_idempotency_keys");
    assert_eq!(
        after,
        want[4..],
        "the cursor orders by namespace first, then key"
    );
}

/// Every configured queue of every namespace is exported with its pause and last change;
/// queues that merely hold jobs have no configuration to export.
pub async fn export_queues_lists_every_configured_queue(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(
        env.store()
            .export_queues()
            .await
            .expect("queues")
            .is_empty()
    );
    env.enqueue(r#"{"kind":"k","queue":"plain"}"#).await;
    let paused_at = env.now();
    env.store()
        .queue_set_paused(NS, "p1", true)
        .await
        .expect("pause");
    env.store()
        .queue_set_paused(OTHER, "p2", true)
        .await
        .expect("pause");
    env.advance(500);
    env.store()
        .queue_set_paused(OTHER, "p2", false)
        .await
        .expect("resume");
    let got = sorted_queues(env.store().export_queues().await.expect("queues"));
    assert_eq!(
        got,
        [
            QueueRecord {
                namespace: NS.to_string(),
                name: "p1".to_string(),
                config: QueueConfig {
                    paused: true,
                    ..Default::default()
                },
                updated_at: paused_at,
            },
            QueueRecord {
                namespace: OTHER.to_string(),
                name: "p2".to_string(),
                config: QueueConfig::default(),
                updated_at: paused_at.plus_ms(500),
            },
        ]
    );
}

/// `totals` counts jobs, events, keys and configured queues of every namespace.
pub async fn totals_count_every_row(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert_eq!(totals(&env).await, StoreTotals::default());
    env.enqueue(KEYED).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.complete(&l).await.expect("complete");
    env.enqueue_in(OTHER, r#"{"kind":"k","idempotency_key":"x"}"#)
        .await;
    env.store()
        .queue_set_paused(OTHER, "q", true)
        .await
        .expect("pause");
    assert_eq!(
        totals(&env).await,
        StoreTotals {
            jobs: 3,
            events: 1 + 3 + 1,
            idempotency_keys: 2,
            queues: 1,
            schedules: 0,
            ..StoreTotals::default()
        }
    );
    // Each security write appends its audit entry too.
    populate_security(&env).await;
    assert_eq!(
        totals(&env).await,
        StoreTotals {
            jobs: 3,
            events: 1 + 3 + 1,
            idempotency_keys: 2,
            queues: 1,
            api_keys: 2,
            namespaces: 2,
            audit: 2 + 1 + 2 + 1 + 1,
            webhooks: 1,
            ..StoreTotals::default()
        }
    );
}

/// The audit log pages out oldest first by seq, every namespace (and entries outside any),
/// each entry as `audit_list` answers it.
pub async fn export_audit_pages_through_the_log_oldest_first(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert!(export_all_audit(env.store(), 2).await.is_empty());
    for (i, ns) in [NS, OTHER, "", NS, OTHER].into_iter().enumerate() {
        env.store()
            .audit_append(audit_entry("queue.pause", ns, &format!("q{i}"), env.now()))
            .await
            .expect("append");
        env.advance(10);
    }
    let mut want = env
        .store()
        .audit_list(None, None, 100)
        .await
        .expect("audit_list");
    want.reverse();
    assert_eq!(want.len(), 5);
    assert_eq!(export_all_audit(env.store(), 2).await, want);
    assert_eq!(export_all_audit(env.store(), 100).await, want);
    let after = env
        .store()
        .export_audit(Some(want[1].seq), 2)
        .await
        .expect("export_audit");
    assert_eq!(after, want[2..4], "a page starts right after `after`");
    assert!(
        env.store()
            .export_audit(Some(want[4].seq), 10)
            .await
            .expect("export_audit")
            .is_empty(),
        "nothing after the last seq"
    );
}

/// Keys (digests, expiry and revocation), quotas, the audit log (every seq) and webhooks
/// (cursors) come along; entries appended later number after the copied ones, and new events
/// are past every copied cursor. Copying again changes nothing.
pub async fn import_reproduces_keys_quotas_audit_and_webhooks(h: &dyn Harness) {
    let src = Env::new(h).await;
    src.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    populate_security(&src).await;
    let batch = export_all(src.store()).await;
    assert_eq!(batch.api_keys.len(), 2);
    assert!(
        batch.api_keys.iter().any(|k| k.key.revoked_at.is_some()),
        "a revoked key is exported"
    );
    assert_eq!(batch.namespaces.len(), 2);
    assert_eq!(batch.webhooks.len(), 1);
    assert_eq!(batch.audit.len(), 7);
    let dst = fresh_like(h, &src).await;

    dst.store().import(batch.clone()).await.expect("import");
    let copied = export_all(dst.store()).await;
    assert_eq!(
        copied.api_keys, batch.api_keys,
        "keys with their digests, expiry and revocation"
    );
    assert_eq!(copied.namespaces, batch.namespaces);
    assert_eq!(copied.audit, batch.audit, "every entry at its own seq");
    assert_eq!(
        copied.webhooks, batch.webhooks,
        "webhooks with their cursors"
    );
    assert_eq!(totals(&dst).await, totals(&src).await);

    // Keys stay as they were: the revoked one refused, the other still within its expiry.
    let revoked = copied
        .api_keys
        .iter()
        .find(|k| k.key.id == "00000000000000b2")
        .expect("copied");
    assert!(revoked.key.unusable_at(dst.now()).is_some());
    let admin = copied
        .api_keys
        .iter()
        .find(|k| k.key.id == "00000000000000a1")
        .expect("copied");
    assert!(admin.key.unusable_at(dst.now()).is_none());

    // Copying again adds and changes nothing.
    dst.store()
        .import(batch.clone())
        .await
        .expect("import again");
    assert_eq!(totals(&dst).await, totals(&src).await);
    let again = export_all(dst.store()).await;
    assert_eq!(again.api_keys, batch.api_keys);
    assert_eq!(again.audit, batch.audit);
    assert_eq!(again.webhooks, batch.webhooks);

    let last = batch.audit.last().expect("entries").seq;
    let appended = dst
        .store()
        .audit_append(audit_entry("queue.resume", NS, "paused", dst.now()))
        .await
        .expect("append");
    assert!(
        appended.seq > last,
        "appended after the copied entries: {} after {last}",
        appended.seq
    );
    let cursor = batch.webhooks[0].cursor;
    let job = dst.enqueue_in(OTHER, r#"{"kind":"k","queue":"q"}"#).await;
    let seq = dst
        .store()
        .job_events(&job_ref_in(OTHER, job.id))
        .await
        .expect("events")[0]
        .seq;
    assert!(seq > cursor, "a new event is past the webhook's cursor");
    let feed = dst
        .store()
        .events_after(cursor, 100)
        .await
        .expect("events_after");
    assert!(
        feed.iter().any(|r| r.seq == seq),
        "the webhook's dispatcher reads the new event"
    );
}

/// Imported audit seqs are kept whatever they are (gaps, far from 1), and later entries number
/// after them; a webhook's cursor beyond the event log's end moves the log past it, so its
/// first new event is not skipped.
pub async fn import_keeps_audit_seqs_and_cursors_beyond_the_logs_end(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    let entries: Vec<AuditEntry> = [7, 40, 1_000]
        .into_iter()
        .map(|seq| {
            numbered(
                seq,
                audit_entry("job.cancel", NS, &format!("j{seq}"), T0.plus_ms(seq)),
            )
        })
        .collect();
    let hook = webhook("0190aaaabbbbccccddddeeeeffff0002", NS, env.now(), 5_000);
    env.store()
        .import(ImportBatch {
            audit: entries.clone(),
            webhooks: vec![hook.clone()],
            ..ImportBatch::default()
        })
        .await
        .expect("import");
    assert_eq!(export_all_audit(env.store(), 2).await, entries);
    assert_eq!(
        env.store().webhook_list(None).await.expect("webhooks"),
        [hook]
    );
    let appended = env
        .store()
        .audit_append(audit_entry("job.retry", NS, "j", env.now()))
        .await
        .expect("append");
    assert!(appended.seq > 1_000, "after 1000: {}", appended.seq);

    let job = env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    let seq = env.events(job.id).await[0].seq;
    assert!(seq > 5_000, "the event log moved past the cursor: {seq}");
    let feed = env
        .store()
        .events_after(5_000, 10)
        .await
        .expect("events_after");
    assert_eq!(
        feed.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [seq],
        "the webhook's dispatcher reads the new event, and only it"
    );
}

/// Into a store with its own keys, quotas, webhooks and audit log: what is present is kept
/// (a key, a namespace's quotas, a webhook's cursor); an entry present at its seq is skipped,
/// one whose seq holds another entry is appended with a new seq, a free seq is kept, and
/// importing again adds nothing.
pub async fn import_merges_security_rows_into_a_store_with_its_own(h: &dyn Harness) {
    let env = Env::new(h).await;
    let store = env.store();
    let own_key = api_key("00000000000000c3", Role::Admin, env.now());
    store
        .api_key_insert(
            own_key.clone(),
            audit_entry("key.create", "", "own", env.now()),
        )
        .await
        .expect("insert key");
    env.advance(10);
    let own_quotas = NamespaceSettings {
        name: NS.into(),
        max_waiting_jobs: Some(1),
        enqueue_per_s: None,
        updated_at: env.now(),
    };
    store
        .namespace_put(
            own_quotas.clone(),
            audit_entry("namespace.put", NS, NS, env.now()),
        )
        .await
        .expect("put quotas");
    env.advance(10);
    let own_hook = webhook("0190aaaabbbbccccddddeeeeffff0003", NS, env.now(), 3);
    store
        .webhook_insert(
            own_hook.clone(),
            audit_entry("webhook.create", NS, "own", env.now()),
        )
        .await
        .expect("insert webhook");
    env.advance(10);
    let own_log = export_all_audit(store, 10).await;
    assert_eq!(own_log.len(), 3);

    let mut same_id_key = api_key("00000000000000c3", Role::Viewer, env.now());
    same_id_key.key.name = "imported".into();
    let new_key = api_key("00000000000000d4", Role::Worker, env.now());
    let other_quotas = NamespaceSettings {
        name: OTHER.into(),
        max_waiting_jobs: Some(7),
        enqueue_per_s: Some(3),
        updated_at: env.now(),
    };
    let mut same_id_hook = own_hook.clone();
    same_id_hook.url = "https://example.test/imported".into();
    same_id_hook.cursor = 0;
    let new_hook = webhook("0190aaaabbbbccccddddeeeeffff0004", OTHER, env.now(), 2);
    let free_seq = own_log[2].seq + 100;
    let displaced = numbered(
        own_log[1].seq,
        audit_entry("imported.one", OTHER, "x", env.now()),
    );
    let kept = numbered(free_seq, audit_entry("imported.two", OTHER, "y", env.now()));
    let batch = ImportBatch {
        api_keys: vec![same_id_key, new_key.clone()],
        namespaces: vec![
            NamespaceSettings {
                max_waiting_jobs: Some(999),
                ..own_quotas.clone()
            },
            other_quotas.clone(),
        ],
        webhooks: vec![same_id_hook, new_hook.clone()],
        audit: vec![own_log[0].clone(), displaced.clone(), kept.clone()],
        ..ImportBatch::default()
    };
    store.import(batch.clone()).await.expect("import");

    assert_eq!(
        store.api_key_list().await.expect("keys"),
        [own_key, new_key],
        "the key present is kept as it was"
    );
    assert_eq!(
        store.namespace_list().await.expect("quotas"),
        [own_quotas, other_quotas],
        "the namespace's own quotas are kept"
    );
    assert_eq!(
        store.webhook_list(None).await.expect("webhooks"),
        [own_hook, new_hook],
        "the webhook present keeps its url and cursor"
    );
    let log = export_all_audit(store, 10).await;
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(
        log[..3],
        own_log[..],
        "the store's own entries are untouched"
    );
    assert_eq!(log[3], kept, "a free seq is kept");
    assert!(log[4].seq > free_seq, "a displaced entry is appended last");
    assert_eq!(
        log[4],
        AuditEntry {
            seq: log[4].seq,
            ..displaced
        }
    );

    let totals_after = totals(&env).await;
    store.import(batch).await.expect("import again");
    assert_eq!(totals(&env).await, totals_after, "nothing is added again");
    assert_eq!(export_all_audit(store, 10).await, log);
}

/// An import into an empty store reproduces the source: every job field for field with its
/// history, lease tokens that still complete, keys that still answer duplicates, paused
/// queues, queue counts, due times and lease lengths.
pub async fn import_into_a_fresh_store_reproduces_everything(h: &dyn Harness) {
    let src = Env::new(h).await;
    let made = populate(&src).await;
    let batch = export_all(src.store()).await;
    let dst = fresh_like(h, &src).await;

    let n = dst.store().import(batch.clone()).await.expect("import");
    assert_eq!(n, batch.jobs.len() as u64, "every job was new");
    assert_eq!(totals(&dst).await, totals(&src).await);

    for want in &batch.jobs {
        let r = job_ref_in(&want.job.namespace, want.job.id);
        let got = dst.store().job_get(&r).await.expect("imported job");
        assert_same_job(&got, &want.job);
        let events = dst.store().job_events(&r).await.expect("events");
        assert_eq!(transitions(&events), transitions(&want.events));
        assert_seq_ascending(&events);
    }
    let copied = export_all(dst.store()).await;
    assert_eq!(copied.jobs.len(), batch.jobs.len());
    for (got, want) in copied.jobs.iter().zip(&batch.jobs) {
        assert_same_record(got, want);
    }
    assert_eq!(copied.idempotency_keys, batch.idempotency_keys);
    let as_json = |s: &[hopper_types::schedule::Schedule]| {
        serde_json::to_value(s).expect("schedules serialize")
    };
    assert_eq!(batch.schedules.len(), 2);
    assert_eq!(
        as_json(&copied.schedules),
        as_json(&batch.schedules),
        "schedules with their cursors, pauses and next fire times"
    );
    assert_eq!(
        sorted_queues(copied.queues),
        sorted_queues(batch.queues.clone())
    );
    for ns in [NS, OTHER] {
        assert_eq!(
            dst.store().queue_list(ns).await.expect("queues"),
            src.store().queue_list(ns).await.expect("queues"),
            "queues of {ns}: names, pause, counts and ages"
        );
    }
    assert_eq!(
        dst.store().job_next_due_at().await.expect("next due"),
        src.store().job_next_due_at().await.expect("next due")
    );
    let longest = src.store().job_max_outstanding_lease_ms().await;
    assert!(longest.as_ref().is_ok_and(|ms| *ms > 0));
    assert_eq!(
        dst.store().job_max_outstanding_lease_ms().await,
        longest,
        "lease lengths came along"
    );

    // Keys answer duplicates, per namespace.
    for (ns, id) in [(NS, made.keyed), (OTHER, made.keyed_other)] {
        let r = dst
            .insert(vec![new_job_in(ns, KEYED)])
            .await
            .expect("insert");
        assert_eq!((r[0].id, r[0].duplicate), (id, true), "key of {ns}");
    }
    // Paused queues stay paused; others hand out their available jobs.
    assert!(dst.lease(&["paused"], 10).await.is_empty(), "still paused");
    let avail = dst.lease_one("q1").await;
    dst.complete(&avail).await.expect("complete");
    // The worker of a running job finishes it on the new store with its old token.
    let hb = dst
        .heartbeat(&made.running, None)
        .await
        .expect("heartbeat with the old token");
    assert!(!hb.cancel_requested);
    let done = dst
        .complete(&made.running)
        .await
        .expect("complete with the old token");
    assert_eq!(done.state, JobState::Completed);
    // Expiry works as before: the progressing job is rescued when its lease runs out.
    let expires = lease_expiry(&dst, made.progressing.id).await;
    dst.set_time(expires.plus_ms(-1));
    assert_eq!(dst.rescue().await, 0, "not before its lease expires");
    dst.set_time(expires);
    assert_eq!(dst.rescue().await, 1, "rescued when its lease expires");
    // New events sort after every imported one.
    let last_seq = batch
        .jobs
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| e.seq)
        .max()
        .expect("events");
    let imported_max = copied
        .jobs
        .iter()
        .flat_map(|r| r.events.iter())
        .map(|e| e.seq)
        .max()
        .expect("events");
    let fresh = dst.enqueue(r#"{"kind":"k","queue":"after"}"#).await;
    let seq = dst.events(fresh.id).await[0].seq;
    assert!(
        seq > imported_max,
        "event seq keeps growing after an import: {seq} after {imported_max} (source had {last_seq})"
    );
}

/// When the job's current lease runs out.
async fn lease_expiry(env: &Env, id: JobId) -> Timestamp {
    let job: Job = env.get(id).await;
    assert_eq!(job.state, JobState::Running);
    job.lease_expires_at.expect("a running job has a lease")
}

/// Importing what is already there adds nothing: a copy that stopped half way runs again to
/// the same end, and a third run changes nothing.
pub async fn import_of_the_same_rows_again_adds_nothing(h: &dyn Harness) {
    let src = Env::new(h).await;
    populate(&src).await;
    let batch = export_all(src.store()).await;
    let dst = fresh_like(h, &src).await;

    let half = batch.jobs.len() / 2;
    let first = ImportBatch {
        jobs: batch.jobs[..half].to_vec(),
        idempotency_keys: batch.idempotency_keys[..1].to_vec(),
        queues: batch.queues[..1].to_vec(),
        schedules: batch.schedules[..1].to_vec(),
        ..ImportBatch::default()
    };
    assert_eq!(dst.store().import(first).await, Ok(half as u64));
    assert_eq!(
        dst.store().import(batch.clone()).await,
        Ok((batch.jobs.len() - half) as u64),
        "only the jobs not yet copied are new"
    );
    let want = totals(&src).await;
    assert_eq!(totals(&dst).await, want);
    let counts = dst.store().queue_list(NS).await.expect("queues");
    assert_eq!(counts, src.store().queue_list(NS).await.expect("queues"));

    assert_eq!(dst.store().import(batch.clone()).await, Ok(0));
    assert_eq!(totals(&dst).await, want, "the same rows again add nothing");
    assert_eq!(
        dst.store().queue_list(NS).await.expect("queues"),
        counts,
        "nor do they count twice"
    );
    let copied = export_all(dst.store()).await;
    for (got, want) in copied.jobs.iter().zip(&batch.jobs) {
        assert_same_record(got, want);
    }
}

/// A row already present is kept as it is: a job (and its history), a key, a queue's pause.
pub async fn import_never_overwrites_rows_already_present(h: &dyn Harness) {
    let env = Env::new(h).await;
    let job = env.enqueue(KEYED).await;
    env.store()
        .queue_set_paused(NS, "keys", true)
        .await
        .expect("pause");
    let before = env.snapshot(job.id).await;
    let totals_before = totals(&env).await;

    let mut rec = export_all_jobs(env.store(), 10).await.remove(0);
    rec.job.kind = "changed".to_string();
    rec.job.state = JobState::Cancelled;
    rec.events.push(rec.events[0].clone());
    let batch = ImportBatch {
        jobs: vec![rec],
        idempotency_keys: vec![IdempotencyKeyRecord {
            namespace: NS.to_string(),
            key: KEY.to_string(),
            job_id: JobId::new(),
            fingerprint: "0".repeat(64),
            created_at: env.now(),
        }],
        queues: vec![QueueRecord {
            namespace: NS.to_string(),
            name: "keys".to_string(),
            config: QueueConfig::default(),
            updated_at: env.now(),
        }],
        schedules: Vec::new(),
        ..ImportBatch::default()
    };
    assert_eq!(env.store().import(batch).await, Ok(0), "nothing new");
    env.assert_unchanged(&before, "import of a present job")
        .await;
    assert_eq!(totals(&env).await, totals_before);
    let q = env.store().queue_get(NS, "keys").await.expect("queue");
    assert!(q.paused, "the queue's own setting is kept");
    assert_eq!(q.counts[&JobState::Available], 1);
    let r = env.insert(vec![new_job(KEYED)]).await.expect("insert");
    assert_eq!(
        (r[0].id, r[0].duplicate),
        (job.id, true),
        "the key still names its own job"
    );
}

/// An import that gives a queue available jobs wakes its waiting workers, who then lease them.
pub async fn import_wakes_listeners_of_queues_it_fills(h: &dyn Harness) {
    let src = Env::new(h).await;
    let job = src.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    let batch = export_all(src.store()).await;
    let dst = fresh_like(h, &src).await;

    let listener = dst.store().signals().listen(NS, &["q".to_string()]);
    let ((), wait) = listener.wait_after(async || {}).await;
    assert_eq!(dst.store().import(batch).await, Ok(1));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_ok(),
        "the import woke q's listener"
    );
    assert_eq!(dst.lease_one("q").await.id, job.id);
}

/// Workflow runs, their edges, definitions and backfills come along: a run copied half done
/// finishes on the new store, its pending join released by the parents that complete there.
pub async fn import_reproduces_workflows_that_finish_on_the_new_store(h: &dyn Harness) {
    use hopper_types::workflow::{WorkflowRequest, validate_steps};
    use hopper_types::workflow_definition::{Backfill, DefinitionRequest};
    use hopper_types::workflow_run::WorkflowState;

    let src = Env::new(h).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let req: WorkflowRequest = serde_json::from_str(
            r#"{"steps": [{"step": "a", "job": {"kind": "k", "queue": "wa"}},
                          {"step": "b", "depends_on": ["a"], "job": {"kind": "k", "queue": "wb"}},
                          {"step": "c", "depends_on": ["a"], "job": {"kind": "k", "queue": "wb"}},
                          {"step": "d", "depends_on": ["b", "c"], "job": {"kind": "k", "queue": "wd"}}]}"#,
        )
        .expect("request");
        let steps = validate_steps(
            req.steps,
            &|_| false,
            0,
            NS,
            &hopper_types::Limits::default(),
        )
        .expect("valid");
        let run = src
            .store()
            .workflow_insert(hopper_store::WorkflowInsert {
                id: hopper_types::JobId::new(),
                namespace: NS.into(),
                name: None,
                steps,
                actor: API.into(),
                definition: None,
            })
            .await
            .expect("insert");
        ids.push(run.workflow.id);
    }
    for _ in 0..3 {
        let a = src.lease_one("wa").await;
        src.complete(&a).await.expect("complete a");
    }
    let d: DefinitionRequest = serde_json::from_str(
        r#"{"cron": "@daily", "steps": [{"step": "a", "job": {"kind": "k"}}]}"#,
    )
    .expect("definition");
    src.store()
        .workflow_definition_put(
            d.validate("daily", NS, &hopper_types::Limits::default(), src.now())
                .expect("valid"),
        )
        .await
        .expect("put");
    src.store()
        .backfill_create(Backfill {
            id: hopper_types::JobId::new(),
            namespace: NS.into(),
            definition: "daily".into(),
            from: "2026-01-01".into(),
            to: "2026-01-03".into(),
            params: serde_json::Map::new(),
            max_running: 2,
            created_at: src.now(),
            finished_at: None,
        })
        .await
        .expect("backfill");

    let batch = export_all(src.store()).await;
    assert_eq!(batch.workflows.len(), 3);
    assert!(batch.workflows.iter().all(|w| w.edges.len() == 4));
    let dst = fresh_like(h, &src).await;
    dst.store().import(batch.clone()).await.expect("import");
    assert_eq!(totals(&dst).await, totals(&src).await);
    // Again: nothing is added or overwritten.
    dst.store().import(batch).await.expect("import again");
    assert_eq!(totals(&dst).await, totals(&src).await);
    for id in &ids {
        let (s, d) = (
            src.store().workflow_get(NS, id).await.expect("source run"),
            dst.store().workflow_get(NS, id).await.expect("copied run"),
        );
        assert_eq!(d.workflow, s.workflow);
        assert_eq!(d.steps.len(), 4);
    }
    assert_eq!(
        dst.store()
            .workflow_definition_get(NS, "daily")
            .await
            .expect("definition")
            .next_fire_at,
        src.store()
            .workflow_definition_get(NS, "daily")
            .await
            .expect("definition")
            .next_fire_at
    );
    assert_eq!(
        dst.store()
            .backfill_list(None, true)
            .await
            .expect("backfills")
            .len(),
        1
    );

    // The copied runs finish on the new store: b and c release d, d completes the run.
    for _ in 0..6 {
        let l = dst.lease_one("wb").await;
        dst.complete(&l).await.expect("complete");
    }
    for _ in 0..3 {
        let l = dst.lease_one("wd").await;
        dst.complete(&l).await.expect("complete d");
    }
    for id in &ids {
        let run = dst.store().workflow_get(NS, id).await.expect("run");
        assert_eq!(run.workflow.state, WorkflowState::Completed);
    }
}
