//! Flow control: queue configuration, concurrency limits (global and per key), rates, fair
//! queues, shortest job first, per-queue retention, and limits holding under concurrent
//! leases. Time moves only by the test's clock.

use std::collections::BTreeMap;

use hopper_store::{AckOutcome, JobAck, JobPruneParams};
use hopper_types::{Job, JobState, QueueConfig, Retention};

use crate::Harness;
use crate::support::*;

fn config(json: &str) -> QueueConfig {
    let c: QueueConfig = serde_json::from_str(json).expect("test config parses");
    c.validate().expect("test config is valid");
    c
}

async fn configure(env: &Env, queue: &str, json: &str) {
    env.store()
        .queue_configure(NS, queue, config(json))
        .await
        .expect("configure");
}

async fn enqueue_n(env: &Env, n: usize, json: &str) {
    let jobs = (0..n).map(|_| new_job(json)).collect();
    env.insert(jobs).await.expect("insert");
}

fn keys(jobs: &[Job], f: impl Fn(&Job) -> Option<String>) -> Vec<String> {
    jobs.iter().map(|j| f(j).unwrap_or_default()).collect()
}

async fn complete_all(env: &Env, jobs: &[Job]) {
    let acks = jobs
        .iter()
        .map(|j| JobAck {
            job: job_ref(j.id),
            lease_token: j.lease_token.clone().expect("token").0,
            outcome: AckOutcome::Completed { result: None },
        })
        .collect();
    for r in env.store().job_ack_many(acks).await.expect("acks") {
        r.expect("ack applies");
    }
}

/// A configuration is stored whole, shown by get and list, kept by pause and resume, and
/// replaced whole by the next configure.
pub async fn queue_configure_stores_and_replaces_the_whole_config(h: &dyn Harness) {
    let env = Env::new(h).await;
    let store = env.store();
    let c = config(
        r#"{"policy":"fair","concurrency":4,"key_concurrency":1,
            "rate":{"limit":10,"period_ms":1000,"burst":2},
            "key_rate":{"limit":1,"period_ms":60000},
            "fairness_weights":{"vip":3},"retention":{"completed_ms":5000}}"#,
    );
    let got = store
        .queue_configure(NS, "q", c.clone())
        .await
        .expect("configure");
    assert_eq!(got.config, c);
    assert!(!got.paused);
    assert_eq!(store.queue_get(NS, "q").await.expect("get").config, c);
    let listed = store.queue_list(NS).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].config, c);

    let paused = store.queue_set_paused(NS, "q", true).await.expect("pause");
    assert!(paused.paused && paused.config.paused);
    assert_eq!(paused.config.concurrency, Some(4), "pause keeps the limits");
    let resumed = store
        .queue_set_paused(NS, "q", false)
        .await
        .expect("resume");
    assert_eq!(resumed.config, c);

    let replaced = store
        .queue_configure(NS, "q", config(r#"{"concurrency":1}"#))
        .await
        .expect("configure");
    assert_eq!(replaced.config, config(r#"{"concurrency":1}"#));
    let exported = store.export_queues().await.expect("export");
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].config, config(r#"{"concurrency":1}"#));
}

/// At most `concurrency` jobs of the queue run at once; finishing one frees a slot.
pub async fn flow_global_concurrency_caps_running_jobs(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"concurrency":2}"#).await;
    enqueue_n(&env, 5, r#"{"kind":"k","queue":"q"}"#).await;
    let first = env.lease(&["q"], 10).await;
    assert_eq!(first.len(), 2);
    assert!(env.lease(&["q"], 10).await.is_empty(), "the cap is reached");
    complete_all(&env, &first[..1]).await;
    assert_eq!(env.lease(&["q"], 10).await.len(), 1, "one slot freed");
    assert!(env.lease(&["q"], 10).await.is_empty());
    // Lifting the limit hands out the rest at once.
    configure(&env, "q", "{}").await;
    assert_eq!(env.lease(&["q"], 10).await.len(), 2);
}

/// Per-key concurrency: a key at its cap waits, other keys and unkeyed jobs go ahead even
/// behind a long backlog of the blocked key.
pub async fn flow_key_concurrency_holds_back_only_the_full_key(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"key_concurrency":1}"#).await;
    enqueue_n(
        &env,
        30,
        r#"{"kind":"k","queue":"q","concurrency_key":"a","priority":5}"#,
    )
    .await;
    enqueue_n(&env, 2, r#"{"kind":"k","queue":"q","concurrency_key":"b"}"#).await;
    env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    let got = env.lease(&["q"], 10).await;
    let mut ks = keys(&got, |j| j.concurrency_key.clone());
    ks.sort();
    assert_eq!(ks, ["", "a", "b"], "one per key, unkeyed jobs unlimited");
    assert!(env.lease(&["q"], 10).await.is_empty(), "a and b are full");
    let a = got
        .iter()
        .find(|j| j.concurrency_key.as_deref() == Some("a"));
    complete_all(&env, &[a.expect("a job of a").clone()]).await;
    let next = env.lease(&["q"], 10).await;
    assert_eq!(keys(&next, |j| j.concurrency_key.clone()), ["a"]);
}

/// A rate hands out `limit` starts per period (a full bucket first), then one per refill,
/// and tells waiting workers when the next token comes.
pub async fn flow_rate_limits_starts_per_period(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"rate":{"limit":4,"period_ms":1000}}"#).await;
    enqueue_n(&env, 20, r#"{"kind":"k","queue":"q"}"#).await;
    assert_eq!(env.lease(&["q"], 10).await.len(), 4, "the full bucket");
    assert!(env.lease(&["q"], 10).await.is_empty());
    let q = ["q".to_string()];
    assert_eq!(
        env.store().signals().held_until(NS, &q),
        Some(env.now().plus_ms(250)),
        "the next token is due in a quarter period"
    );
    env.advance(249);
    assert!(env.lease(&["q"], 10).await.is_empty());
    env.advance(1);
    assert_eq!(env.lease(&["q"], 10).await.len(), 1);
    env.advance(500);
    assert_eq!(env.lease(&["q"], 10).await.len(), 2);
    env.advance(10_000);
    assert_eq!(
        env.lease(&["q"], 10).await.len(),
        4,
        "never more than the burst"
    );
}

/// A per-key rate gives each key its own bucket.
pub async fn flow_key_rate_is_per_key(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"key_rate":{"limit":2,"period_ms":60000}}"#).await;
    enqueue_n(&env, 5, r#"{"kind":"k","queue":"q","concurrency_key":"a"}"#).await;
    enqueue_n(&env, 5, r#"{"kind":"k","queue":"q","concurrency_key":"b"}"#).await;
    let got = env.lease(&["q"], 10).await;
    let mut ks = keys(&got, |j| j.concurrency_key.clone());
    ks.sort();
    assert_eq!(ks, ["a", "a", "b", "b"]);
    assert!(env.lease(&["q"], 10).await.is_empty());
    env.advance(30_000);
    assert_eq!(
        env.lease(&["q"], 10).await.len(),
        2,
        "one token per key refilled"
    );
}

/// A fair queue serves keys in turn: a key with ten jobs is not starved by one with a
/// hundred enqueued before it; weights give proportional turns.
pub async fn flow_fair_queue_serves_keys_in_turn(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(
        &env,
        "q",
        r#"{"policy":"fair","fairness_weights":{"big":2}}"#,
    )
    .await;
    enqueue_n(
        &env,
        100,
        r#"{"kind":"k","queue":"q","fairness_key":"big"}"#,
    )
    .await;
    enqueue_n(
        &env,
        10,
        r#"{"kind":"k","queue":"q","fairness_key":"small"}"#,
    )
    .await;
    let mut served = Vec::new();
    for _ in 0..6 {
        let got = env.lease(&["q"], 1).await;
        served.extend(keys(&got, |j| j.fairness_key.clone()));
    }
    let small = served.iter().filter(|k| *k == "small").count();
    assert_eq!(small, 2, "weight 2 against 1 over six leases: {served:?}");
    let batch = env.lease(&["q"], 6).await;
    let small = batch
        .iter()
        .filter(|j| j.fairness_key.as_deref() == Some("small"))
        .count();
    assert_eq!(small, 2, "a batch is fair too");
}

/// Shortest first: within a priority, the smallest estimate goes first, jobs without one last.
pub async fn flow_shortest_first_orders_by_estimate(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"policy":"shortest_first"}"#).await;
    env.enqueue(r#"{"kind":"k","queue":"q","estimated_ms":900}"#)
        .await;
    env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    env.enqueue(r#"{"kind":"k","queue":"q","estimated_ms":10}"#)
        .await;
    env.enqueue(r#"{"kind":"k","queue":"q","estimated_ms":99999,"priority":1}"#)
        .await;
    let got = env.lease(&["q"], 4).await;
    let est: Vec<_> = got.iter().map(|j| j.estimated_ms).collect();
    assert_eq!(est, [Some(99999), Some(10), Some(900), None]);
}

/// Every limit at once: the tightest one wins for each start.
pub async fn flow_limits_compose(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(
        &env,
        "q",
        r#"{"policy":"fair","concurrency":3,"key_concurrency":2,
            "rate":{"limit":100,"period_ms":1000}}"#,
    )
    .await;
    enqueue_n(
        &env,
        10,
        r#"{"kind":"k","queue":"q","concurrency_key":"a","fairness_key":"t1"}"#,
    )
    .await;
    enqueue_n(
        &env,
        10,
        r#"{"kind":"k","queue":"q","concurrency_key":"a","fairness_key":"t2"}"#,
    )
    .await;
    let got = env.lease(&["q"], 10).await;
    assert_eq!(
        got.len(),
        2,
        "key a allows two though the queue allows three"
    );
    configure(
        &env,
        "q",
        r#"{"concurrency":3,"rate":{"limit":1,"period_ms":1000}}"#,
    )
    .await;
    assert_eq!(
        env.lease(&["q"], 10).await.len(),
        1,
        "the rate allows one more"
    );
}

/// Limits hold when many leases race: never more running than the cap.
pub async fn flow_concurrent_leases_respect_the_cap(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "q", r#"{"concurrency":7,"key_concurrency":2}"#).await;
    for key in ["a", "b", "c", "d", "e"] {
        let json = format!(r#"{{"kind":"k","queue":"q","concurrency_key":"{key}"}}"#);
        enqueue_n(&env, 10, &json).await;
    }
    let store = env.store_arc();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut p = lease_params(&["q"], 3);
                p.worker_id = format!("w{i}");
                store.job_lease_many(p).await.expect("lease")
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    assert_eq!(all.len(), 7, "exactly the cap");
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for j in &all {
        *per_key
            .entry(j.concurrency_key.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n <= 2), "{per_key:?}");
    let q = env.store().queue_get(NS, "q").await.expect("get");
    assert_eq!(q.counts.get(&JobState::Running).copied(), Some(7));
}

/// A queue with its own retention is pruned by it, and the server-wide pass leaves it alone.
pub async fn prune_follows_a_queues_own_retention(h: &dyn Harness) {
    let env = Env::new(h).await;
    let c = QueueConfig {
        retention: Retention {
            completed_ms: Some(1_000),
            ..Default::default()
        },
        ..QueueConfig::default()
    };
    env.store()
        .queue_configure(NS, "short", c)
        .await
        .expect("configure");
    let a = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"short"}"#)
        .await;
    env.complete(&a).await.expect("complete");
    let b = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"long"}"#)
        .await;
    env.complete(&b).await.expect("complete");
    env.advance(2_000);
    let cutoff = env.now().plus_ms(-1_000);
    let global = JobPruneParams {
        completed_before: env.now(),
        cancelled_before: env.now(),
        dead_before: env.now(),
        limit: 100,
        queue: None,
    };
    assert_eq!(env.store().job_prune_finished(global).await, Ok(1));
    assert_eq!(
        env.state(a.id).await,
        JobState::Completed,
        "left to its own pass"
    );
    env.assert_gone(b.id).await;
    let own = JobPruneParams {
        completed_before: cutoff,
        cancelled_before: cutoff,
        dead_before: cutoff,
        limit: 100,
        queue: Some((NS.to_string(), "short".to_string())),
    };
    assert_eq!(env.store().job_prune_finished(own).await, Ok(1));
    env.assert_gone(a.id).await;
    let listed = env
        .store()
        .queue_list_custom_retention()
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "short");
}

/// `job_explain` counts the jobs that lease before a job in its queue's order (within its
/// key in a fair queue) and carries the queue's limits and running counts.
pub async fn explain_counts_the_jobs_ahead_and_the_running(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    env.advance(1);
    let second = env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    env.advance(1);
    env.enqueue(r#"{"kind":"k","queue":"q","priority":9}"#)
        .await;
    let w = env
        .store()
        .job_explain(&job_ref(second.id))
        .await
        .expect("explain");
    assert_eq!(w.ahead, 2, "the urgent job and the older one");
    let w = env
        .store()
        .job_explain(&job_ref(first.id))
        .await
        .expect("explain");
    assert_eq!(w.ahead, 1);

    configure(
        &env,
        "f",
        r#"{"policy":"fair","concurrency":5,"key_concurrency":2}"#,
    )
    .await;
    enqueue_n(&env, 3, r#"{"kind":"k","queue":"f","fairness_key":"big"}"#).await;
    env.advance(1);
    let small = env
        .enqueue(r#"{"kind":"k","queue":"f","fairness_key":"small","concurrency_key":"c"}"#)
        .await;
    let w = env
        .store()
        .job_explain(&job_ref(small.id))
        .await
        .expect("explain");
    assert_eq!(w.ahead, 0, "first of its own key");
    assert_eq!(w.flow.config.concurrency, Some(5));
    env.enqueue(r#"{"kind":"k","queue":"f","fairness_key":"x","concurrency_key":"c"}"#)
        .await;
    configure(&env, "f", r#"{"concurrency":5,"key_concurrency":2}"#).await;
    let running = env.lease(&["f"], 10).await;
    assert_eq!(running.len(), 5);
    let waiting = env
        .enqueue(r#"{"kind":"k","queue":"f","concurrency_key":"c"}"#)
        .await;
    let w = env
        .store()
        .job_explain(&job_ref(waiting.id))
        .await
        .expect("explain");
    assert_eq!(w.flow.running, 5);
    assert_eq!(w.flow.running_by_key.get("c"), Some(&2));

    configure(&env, "s", r#"{"policy":"shortest_first"}"#).await;
    env.enqueue(r#"{"kind":"k","queue":"s","estimated_ms":5}"#)
        .await;
    let long = env
        .enqueue(r#"{"kind":"k","queue":"s","estimated_ms":500}"#)
        .await;
    env.enqueue(r#"{"kind":"k","queue":"s","estimated_ms":50}"#)
        .await;
    let w = env
        .store()
        .job_explain(&job_ref(long.id))
        .await
        .expect("explain");
    assert_eq!(w.ahead, 2, "both shorter jobs go first");
    assert_not_found(
        env.store()
            .job_explain(&job_ref(hopper_types::JobId::new()))
            .await,
    );
}

/// Flow state of idle keys is forgotten (it means the same as none), so it stays as small as
/// the keys active lately, and leases behave as before.
pub async fn flow_state_of_idle_keys_is_pruned(h: &dyn Harness) {
    let env = Env::new(h).await;
    configure(&env, "f", r#"{"policy":"fair"}"#).await;
    env.enqueue(r#"{"kind":"k","queue":"f","fairness_key":"a"}"#)
        .await;
    enqueue_n(&env, 3, r#"{"kind":"k","queue":"f","fairness_key":"b"}"#).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        order.extend(keys(&env.lease(&["f"], 1).await, |j| {
            j.fairness_key.clone()
        }));
    }
    assert_eq!(order, ["a", "b", "b", "b"]);
    // a fell behind the clock: its time is the same as none. b is ahead and stays.
    assert_eq!(env.store().queue_flow_prune(NS, "f", None).await, Ok(1));
    assert_eq!(env.store().queue_flow_prune(NS, "f", None).await, Ok(0));
    enqueue_n(&env, 2, r#"{"kind":"k","queue":"f","fairness_key":"a"}"#).await;
    enqueue_n(&env, 2, r#"{"kind":"k","queue":"f","fairness_key":"b"}"#).await;
    let next = env.lease(&["f"], 1).await;
    assert_eq!(
        keys(&next, |j| j.fairness_key.clone()),
        ["a"],
        "a rejoins at the clock"
    );

    configure(&env, "r", r#"{"key_rate":{"limit":1,"period_ms":1000}}"#).await;
    enqueue_n(&env, 2, r#"{"kind":"k","queue":"r","concurrency_key":"c"}"#).await;
    assert_eq!(env.lease(&["r"], 5).await.len(), 1);
    let refilled_before = |env: &Env| Some(env.now().plus_ms(-1000));
    assert_eq!(
        env.store()
            .queue_flow_prune(NS, "r", refilled_before(&env))
            .await,
        Ok(0),
        "the bucket is still refilling"
    );
    env.advance(1001);
    assert_eq!(
        env.store()
            .queue_flow_prune(NS, "r", refilled_before(&env))
            .await,
        Ok(1)
    );
    assert_eq!(
        env.lease(&["r"], 5).await.len(),
        1,
        "a forgotten bucket is full"
    );
    assert!(env.lease(&["r"], 5).await.is_empty());
}
