//! API keys, namespace quotas, the audit log and webhooks: `api_key_*`, `namespace_*`,
//! `audit_*`, `webhook_*`.
//!
//! Semantics: a key is stored with the SHA-256 of its secret and never the secret, so nothing
//! the store answers (or holds) works as a key; a revoked key keeps its first revocation time.
//! Namespace quotas are replaced whole. The audit log numbers entries increasingly and lists
//! them newest first, filtered by namespace (`""` for actions outside any) and paged with a
//! `before` cursor. Every administrative write appends its audit entry atomically with the
//! change: a write that fails appends nothing. A webhook is deleted only through its own
//! namespace, and its cursor moves only by compare-and-set.

use std::collections::HashSet;
use std::fmt::Debug;

use hopper_store::StoreError;
use hopper_types::api_key::{
    ALL_NAMESPACES, ApiKey, GeneratedKey, Role, StoredApiKey, generate_key, hash_secret, hex,
    parse_key, secret_matches,
};
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use hopper_types::namespace::NamespaceSettings;
use hopper_types::webhook::Webhook;
use hopper_types::{JobState, Timestamp};
use serde_json::json;

use crate::Harness;
use crate::support::*;

/// The actor the tests record administrative calls as.
const ADMIN: &str = "00000000000000ad";

/// An audit entry of `action` on `target` in `namespace`, with details worth round-tripping.
fn entry(action: &str, namespace: &str, target: &str, at: Timestamp) -> NewAuditEntry {
    NewAuditEntry {
        at,
        actor: ADMIN.into(),
        action: action.into(),
        namespace: namespace.into(),
        target: target.into(),
        details: json!({"target": target, "n": 3, "nested": {"list": [1, "två", null]}}),
    }
}

/// A key with every optional field set, its secret the digest of `secret`.
fn full_key(id: &str, created_at: Timestamp, secret: &str) -> StoredApiKey {
    StoredApiKey {
        key: ApiKey {
            id: id.into(),
            name: format!("key {id}"),
            role: Role::Producer,
            namespaces: vec!["billing".into(), "search".into()],
            created_at,
            created_by: ADMIN.into(),
            expires_at: Some(created_at.plus_ms(86_400_000)),
            revoked_at: None,
            rate_limit_per_s: Some(250),
        },
        secret_hash: hash_secret(secret),
    }
}

/// A key with no optional field set.
fn bare_key(id: &str, created_at: Timestamp, secret: &str) -> StoredApiKey {
    StoredApiKey {
        key: ApiKey {
            id: id.into(),
            name: String::new(),
            role: Role::Viewer,
            namespaces: vec![ALL_NAMESPACES.into()],
            created_at,
            created_by: "bootstrap".into(),
            expires_at: None,
            revoked_at: None,
            rate_limit_per_s: None,
        },
        secret_hash: hash_secret(secret),
    }
}

fn webhook(id: &str, namespace: &str, cursor: i64) -> Webhook {
    Webhook {
        id: id.into(),
        namespace: namespace.into(),
        url: format!("https://example.test/hooks/{id}"),
        events: vec![JobState::Completed, JobState::Dead],
        secret: "5e".repeat(32),
        created_at: T0.plus_ms(cursor),
        cursor,
    }
}

/// Asserts the result is [`StoreError::AlreadyExists`].
#[track_caller]
fn assert_already_exists<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::AlreadyExists(_)) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

/// The whole audit log, newest first.
async fn audit_all(env: &Env) -> Vec<AuditEntry> {
    env.store()
        .audit_list(None, None, 10_000)
        .await
        .expect("audit_list")
}

/// Asserts `got` is `want` as appended (any seq).
#[track_caller]
fn assert_entry(got: &AuditEntry, want: &NewAuditEntry) {
    let numbered = AuditEntry {
        seq: got.seq,
        at: want.at,
        actor: want.actor.clone(),
        action: want.action.clone(),
        namespace: want.namespace.clone(),
        target: want.target.clone(),
        details: want.details.clone(),
    };
    assert_eq!(got, &numbered, "the audit entry is kept as appended");
}

/// The seqs of a listing.
fn seqs(entries: &[AuditEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Keys are kept field for field with their digest, listed by creation time then id; an id
/// taken twice is refused and appends nothing; each creation's audit entry is in the log.
pub async fn api_key_insert_and_list_round_trip(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    // Creation order disagrees with id order, and two share a creation time.
    let keys = [
        full_key("00000000000000c3", T0, "secret-c3"),
        bare_key("00000000000000a1", T0.plus_ms(10), "secret-a1"),
        full_key("00000000000000b2", T0.plus_ms(10), "secret-b2"),
    ];
    let mut entries = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let e = entry("key.create", "", &k.key.id, T0.plus_ms(i as i64));
        s.api_key_insert(k.clone(), e.clone())
            .await
            .expect("insert");
        entries.push(e);
    }
    let want = vec![keys[0].clone(), keys[1].clone(), keys[2].clone()];
    assert_eq!(s.api_key_list().await.expect("list"), want);

    let log = audit_all(&env).await;
    assert_eq!(log.len(), 3, "one entry per creation");
    for (got, want) in log.iter().rev().zip(&entries) {
        assert_entry(got, want);
    }

    // The same id again, even with another secret: refused, and nothing of it is kept.
    let dup = full_key("00000000000000a1", T0.plus_ms(99), "another");
    assert_already_exists(
        s.api_key_insert(dup, entry("key.create", "", "00000000000000a1", T0))
            .await,
    );
    assert_eq!(s.api_key_list().await.expect("list"), want);
    assert_eq!(
        audit_all(&env).await,
        log,
        "a refused creation appends no audit entry"
    );
}

/// Revoking stamps the key once: a second revocation keeps the first time. An unknown key is
/// not found and appends nothing.
pub async fn api_key_revoke_keeps_the_first_time(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let k = full_key("0123456789abcdef", T0, "s");
    let other = bare_key("fedcba9876543210", T0, "t");
    for key in [&k, &other] {
        s.api_key_insert(key.clone(), entry("key.create", "", &key.key.id, T0))
            .await
            .expect("insert");
    }
    let first = T0.plus_ms(1_000);
    let revoke1 = entry("key.revoke", "", &k.key.id, first);
    let revoked = s
        .api_key_revoke(&k.key.id, first, revoke1.clone())
        .await
        .expect("revoke");
    let mut want = k.key.clone();
    want.revoked_at = Some(first);
    assert_eq!(revoked, want, "revoke answers the key, revoked");

    let revoke2 = entry("key.revoke", "", &k.key.id, first.plus_ms(5_000));
    let again = s
        .api_key_revoke(&k.key.id, first.plus_ms(5_000), revoke2.clone())
        .await
        .expect("revoke again");
    assert_eq!(
        again.revoked_at,
        Some(first),
        "the first revocation time stays"
    );

    let listed = s.api_key_list().await.expect("list");
    assert_eq!(
        listed,
        vec![
            StoredApiKey {
                key: want,
                secret_hash: k.secret_hash
            },
            other.clone()
        ],
        "only the revoked key changed, and only its revoked_at"
    );

    let log = audit_all(&env).await;
    assert_eq!(log.len(), 4, "two creations and two revocations");
    assert_entry(&log[0], &revoke2);
    assert_entry(&log[1], &revoke1);

    assert_not_found(
        s.api_key_revoke(
            "0000000000000000",
            first,
            entry("key.revoke", "", "0000000000000000", first),
        )
        .await,
    );
    assert_eq!(
        audit_all(&env).await,
        log,
        "revoking an unknown key appends no audit entry"
    );
}

/// Whatever the store answers about keys (lists, the audit log) holds neither a key nor its
/// secret part, and the digest it keeps does not work as a secret.
pub async fn the_store_never_holds_a_usable_key(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let generated: Vec<GeneratedKey> = (0..4).map(|_| generate_key()).collect();
    for (i, g) in generated.iter().enumerate() {
        let key = ApiKey {
            id: g.id.clone(),
            name: format!("key {i}"),
            role: Role::Admin,
            namespaces: vec![ALL_NAMESPACES.into()],
            created_at: T0.plus_ms(i as i64),
            created_by: "bootstrap".into(),
            expires_at: None,
            revoked_at: None,
            rate_limit_per_s: None,
        };
        // As an API would record a creation: the key as lists show it.
        let mut audit = entry("key.create", "", &g.id, key.created_at);
        audit.details = serde_json::to_value(&key).expect("encode key");
        s.api_key_insert(
            StoredApiKey {
                key,
                secret_hash: g.secret_hash,
            },
            audit,
        )
        .await
        .expect("insert");
    }
    s.api_key_revoke(
        &generated[0].id,
        T0.plus_ms(100),
        entry("key.revoke", "", &generated[0].id, T0.plus_ms(100)),
    )
    .await
    .expect("revoke");

    let keys = s.api_key_list().await.expect("list");
    let log = audit_all(&env).await;
    assert_eq!(keys.len(), generated.len());
    assert_eq!(log.len(), generated.len() + 1);
    // Everything read back, as text: each key as JSON, its digest as hex and as bytes, and
    // the whole audit log.
    let mut dump = String::new();
    for k in &keys {
        dump.push_str(&serde_json::to_string(&k.key).expect("encode key"));
        dump.push_str(&hex(&k.secret_hash));
        dump.push_str(&format!("{k:?}"));
    }
    dump.push_str(&serde_json::to_string(&log).expect("encode audit log"));

    for g in &generated {
        let (id, secret) = parse_key(&g.token).expect("a generated key parses");
        assert!(dump.contains(id), "the key {id} was read back");
        assert!(!dump.contains(&g.token), "a whole key was read back");
        assert!(!dump.contains(secret), "a key's secret part was read back");
        let stored = keys
            .iter()
            .find(|k| k.key.id == g.id)
            .expect("every key is listed");
        assert_eq!(stored.secret_hash, g.secret_hash, "the digest is kept");
        assert!(
            secret_matches(secret, &stored.secret_hash),
            "the kept digest checks the real secret"
        );
        assert_ne!(
            hex(&stored.secret_hash),
            secret,
            "the digest is not the secret"
        );
        assert!(
            !secret_matches(&hex(&stored.secret_hash), &stored.secret_hash),
            "the digest does not work as the secret"
        );
    }
}

/// Quotas are stored per namespace, replaced whole (an absent quota removes it), listed by
/// name, each change with its audit entry.
pub async fn namespace_put_replaces_and_lists_by_name(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    assert!(s.namespace_list().await.expect("list").is_empty());
    let settings = |name: &str, max: Option<u64>, rate: Option<u32>, at: i64| NamespaceSettings {
        name: name.into(),
        max_waiting_jobs: max,
        enqueue_per_s: rate,
        updated_at: T0.plus_ms(at),
    };
    let b = settings("billing", Some(10_000), Some(50), 0);
    let a = settings("analytics", None, Some(5), 1);
    let c = settings("crm", Some(1), None, 2);
    let mut puts = Vec::new();
    for n in [&b, &a, &c] {
        let e = entry("namespace.put", &n.name, &n.name, n.updated_at);
        let answered = s.namespace_put(n.clone(), e.clone()).await.expect("put");
        assert_eq!(&answered, n, "put answers what it stored");
        puts.push(e);
    }
    assert_eq!(
        s.namespace_list().await.expect("list"),
        vec![a.clone(), b.clone(), c.clone()],
        "by name"
    );

    // Replaced whole: the rate limit set before is gone, the new cap is kept.
    let b2 = settings("billing", Some(u64::from(u32::MAX) * 4), None, 9);
    let e = entry("namespace.put", "billing", "billing", b2.updated_at);
    assert_eq!(
        s.namespace_put(b2.clone(), e.clone())
            .await
            .expect("replace"),
        b2
    );
    puts.push(e);
    assert_eq!(
        s.namespace_list().await.expect("list"),
        vec![a, b2, c],
        "the replacement is listed in place of the first settings"
    );

    let log = audit_all(&env).await;
    assert_eq!(log.len(), puts.len(), "one entry per put");
    for (got, want) in log.iter().rev().zip(&puts) {
        assert_entry(got, want);
    }
}

/// Appended entries are numbered increasingly, answered as stored, and listed newest first.
pub async fn audit_append_numbers_increase_and_list_is_newest_first(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    assert!(audit_all(&env).await.is_empty());
    let mut appended = Vec::new();
    for i in 0..6 {
        let e = entry("queue.pause", "billing", &format!("q{i}"), T0.plus_ms(i));
        let got = s.audit_append(e.clone()).await.expect("append");
        assert_entry(&got, &e);
        appended.push(got);
    }
    assert!(
        appended.windows(2).all(|w| w[0].seq < w[1].seq),
        "seqs increase: {:?}",
        seqs(&appended)
    );
    let mut newest_first = appended.clone();
    newest_first.reverse();
    assert_eq!(audit_all(&env).await, newest_first);
}

/// `limit` bounds a listing, and `before` (exclusive) pages through the whole log.
pub async fn audit_list_pages_with_before_and_limit(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    for i in 0..7 {
        s.audit_append(entry("job.cancel", "billing", &format!("j{i}"), T0))
            .await
            .expect("append");
    }
    let all = audit_all(&env).await;
    assert_eq!(all.len(), 7);
    assert!(
        s.audit_list(None, None, 0).await.expect("list").is_empty(),
        "limit 0 lists nothing"
    );
    let top = s.audit_list(None, None, 3).await.expect("list");
    assert_eq!(seqs(&top), seqs(&all[..3]), "the newest `limit` entries");

    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = s.audit_list(None, before, 3).await.expect("page");
        assert!(page.len() <= 3, "a page holds at most limit entries");
        if let (Some(b), Some(first)) = (before, page.first()) {
            assert!(first.seq < b, "`before` is exclusive");
        }
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        paged.extend(page);
    }
    assert_eq!(
        paged, all,
        "the pages together are the whole log, once each"
    );
    assert!(
        s.audit_list(None, Some(all[6].seq), 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing is older than the oldest entry"
    );
}

/// A namespace filter lists only those namespaces' entries; entries outside any namespace
/// (`""`) only when `""` is listed; an empty filter lists nothing.
pub async fn audit_list_filters_by_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let mut seq_of = Vec::new();
    for (i, ns) in ["a", "", "b", "a", "", "c"].into_iter().enumerate() {
        let e = s
            .audit_append(entry("x.y", ns, &format!("t{i}"), T0.plus_ms(i as i64)))
            .await
            .expect("append");
        seq_of.push(e.seq);
    }
    let listed = |namespaces: &[&str], before: Option<i64>, limit: usize| {
        let names: Vec<String> = namespaces.iter().map(|n| n.to_string()).collect();
        async move {
            let got = s
                .audit_list(Some(&names), before, limit)
                .await
                .expect("list");
            got.iter().map(|e| e.seq).collect::<Vec<_>>()
        }
    };
    let s_ = |idx: &[usize]| idx.iter().map(|&i| seq_of[i]).collect::<Vec<_>>();
    assert_eq!(listed(&["a"], None, 100).await, s_(&[3, 0]));
    assert_eq!(listed(&[""], None, 100).await, s_(&[4, 1]));
    assert_eq!(listed(&["a", ""], None, 100).await, s_(&[4, 3, 1, 0]));
    assert_eq!(listed(&["b", "zzz"], None, 100).await, s_(&[2]));
    assert!(listed(&[], None, 100).await.is_empty(), "an empty filter");
    // Filter, cursor and limit together.
    assert_eq!(listed(&["a", ""], None, 2).await, s_(&[4, 3]));
    assert_eq!(listed(&["a", ""], Some(seq_of[3]), 2).await, s_(&[1, 0]));
    assert_eq!(listed(&["a", "c"], Some(seq_of[5]), 100).await, s_(&[3, 0]));
    assert_eq!(
        seqs(&audit_all(&env).await),
        s_(&[5, 4, 3, 2, 1, 0]),
        "no filter lists every namespace"
    );
}

/// Webhooks are listed by id, per namespace or all; an id taken twice is refused; a delete
/// through another namespace finds nothing and deletes nothing; each change is audited and a
/// refused one appends nothing.
pub async fn webhook_insert_list_and_delete_by_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    let hooks = [
        webhook("h3", "a", 0),
        webhook("h1", "a", 5),
        webhook("h2", "b", 7),
    ];
    for hook in &hooks {
        s.webhook_insert(
            hook.clone(),
            entry("webhook.create", &hook.namespace, &hook.id, T0),
        )
        .await
        .expect("insert");
    }
    let [h3, h1, h2] = hooks;
    assert_eq!(
        s.webhook_list(Some("a")).await.expect("list"),
        vec![h1.clone(), h3.clone()]
    );
    assert_eq!(
        s.webhook_list(Some("b")).await.expect("list"),
        vec![h2.clone()]
    );
    assert!(s.webhook_list(Some("c")).await.expect("list").is_empty());
    assert_eq!(
        s.webhook_list(None).await.expect("list"),
        vec![h1.clone(), h2.clone(), h3.clone()],
        "every namespace's, by id"
    );
    let log = audit_all(&env).await;
    assert_eq!(log.len(), 3, "one entry per creation");

    assert_already_exists(
        s.webhook_insert(
            webhook("h1", "b", 0),
            entry("webhook.create", "b", "h1", T0),
        )
        .await,
    );
    assert_not_found(
        s.webhook_delete("b", "h1", entry("webhook.delete", "b", "h1", T0))
            .await,
    );
    assert_not_found(
        s.webhook_delete("a", "nope", entry("webhook.delete", "a", "nope", T0))
            .await,
    );
    assert_eq!(
        s.webhook_list(None).await.expect("list"),
        vec![h1.clone(), h2.clone(), h3.clone()],
        "refused calls change no webhook"
    );
    assert_eq!(audit_all(&env).await, log, "refused calls append nothing");

    let del = entry("webhook.delete", "a", "h1", T0.plus_ms(1));
    s.webhook_delete("a", "h1", del.clone())
        .await
        .expect("delete");
    assert_eq!(s.webhook_list(Some("a")).await.expect("list"), vec![h3]);
    assert_entry(&audit_all(&env).await[0], &del);
    assert_not_found(
        s.webhook_delete("a", "h1", entry("webhook.delete", "a", "h1", T0))
            .await,
    );
}

/// The cursor moves only from the value the mover saw; an unknown webhook moves nothing.
pub async fn webhook_advance_is_a_compare_and_set(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.store();
    s.webhook_insert(webhook("h", "a", 10), entry("webhook.create", "a", "h", T0))
        .await
        .expect("insert");
    s.webhook_insert(webhook("g", "a", 10), entry("webhook.create", "a", "g", T0))
        .await
        .expect("insert");
    assert!(s.webhook_advance("h", 10, 25).await.expect("advance"));
    assert!(
        !s.webhook_advance("h", 10, 30).await.expect("stale"),
        "a stale expected cursor moves nothing"
    );
    assert!(s.webhook_advance("h", 25, 26).await.expect("advance"));
    assert!(!s.webhook_advance("nope", 10, 11).await.expect("unknown"));
    let cursors: Vec<(String, i64)> = s
        .webhook_list(None)
        .await
        .expect("list")
        .into_iter()
        .map(|w| (w.id, w.cursor))
        .collect();
    assert_eq!(
        cursors,
        vec![("g".to_string(), 10), ("h".to_string(), 26)],
        "only the advanced webhook moved"
    );
}

/// Eight nodes advancing one webhook from the same cursor: exactly one moves it.
pub async fn concurrent_webhook_advances_from_one_cursor_move_it_once(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.store()
        .webhook_insert(webhook("h", "a", 10), entry("webhook.create", "a", "h", T0))
        .await
        .expect("insert");
    let tasks: Vec<_> = (0..8i64)
        .map(|i| {
            let store = env.store_arc();
            tokio::spawn(async move { (i, store.webhook_advance("h", 10, 100 + i).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (i, moved) = t.await.expect("task");
        if moved.expect("advance") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one advance wins: {winners:?}");
    let hooks = env.store().webhook_list(Some("a")).await.expect("list");
    assert_eq!(
        hooks.iter().map(|w| w.cursor).collect::<HashSet<_>>(),
        HashSet::from([100 + winners[0]]),
        "the cursor is the winner's"
    );
}
