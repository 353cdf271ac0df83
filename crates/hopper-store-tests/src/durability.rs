//! Restarts: closing a store and opening the same database again (`close`, `ping`).
//!
//! Semantics: a successful change is on stable storage, so a restarted server sees every job,
//! event, idempotency key and queue setting as it was; workers that kept running through the
//! restart still hold their leases and may heartbeat and complete with their tokens. A closed
//! store accepts no more changes.

use hopper_store::StoreError;
use hopper_types::JobState;

use crate::Harness;
use crate::support::*;

/// Every job, event, key, queue setting and due time is the same after a restart.
pub async fn data_survives_reopening(h: &dyn Harness) {
    let mut env = Env::new(h).await;
    for (i, st) in REACHABLE_STATES.into_iter().enumerate() {
        env.job_in_state(st, &format!("q{i}")).await;
        env.advance(10);
    }
    let keyed = env
        .enqueue(r#"{"kind":"k","queue":"keys","idempotency_key":"kept","args":{"a": [1, 2]},"tags":["t"],"meta":{"m":1}}"#)
        .await;
    let progress = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"progress"}"#)
        .await;
    env.store()
        .job_heartbeat(hopper_store::JobHeartbeatParams {
            job: job_ref(progress.id),
            lease_token: progress.token.clone(),
            lease_ms: None,
            progress: Some(raw(r#"{"pct":50}"#)),
        })
        .await
        .expect("heartbeat");
    env.store()
        .queue_set_paused(NS, "paused", true)
        .await
        .expect("pause");
    env.enqueue(r#"{"kind":"k","queue":"paused"}"#).await;
    env.enqueue_in("other", r#"{"kind":"k"}"#).await;

    let ids = env.list_all(&list_params()).await;
    let mut snaps = Vec::new();
    for id in &ids {
        snaps.push(env.snapshot(*id).await);
    }
    let queues = env.store().queue_list(NS).await.expect("queues");
    let other = env.store().queue_list("other").await.expect("queues");
    let due = env.store().job_next_due_at().await.expect("next due");
    let last_seq = snaps
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.seq))
        .max()
        .unwrap();

    env.reopen().await;

    assert_eq!(env.list_all(&list_params()).await, ids);
    for s in &snaps {
        env.assert_unchanged(s, "after reopening").await;
    }
    assert_eq!(env.store().queue_list(NS).await.expect("queues"), queues);
    assert_eq!(
        env.store().queue_list("other").await.expect("queues"),
        other
    );
    assert_eq!(env.store().job_next_due_at().await.expect("next due"), due);
    assert!(env.lease(&["paused"], 1).await.is_empty(), "still paused");
    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","queue":"keys","idempotency_key":"kept","args":{"a":[1,2]}}"#,
        )])
        .await
        .expect("insert");
    assert_eq!(
        (r[0].id, r[0].duplicate),
        (keyed.id, true),
        "the key is remembered"
    );

    let fresh = env.enqueue(r#"{"kind":"k","queue":"after"}"#).await;
    let seq = env.events(fresh.id).await[0].seq;
    assert!(
        seq > last_seq,
        "event seq keeps growing: {seq} after {last_seq}"
    );
}

/// Leases outlive a restart: the holder heartbeats and completes with its token, and the
/// restart grace period still knows the lease's length.
pub async fn lease_tokens_survive_reopening(h: &dyn Harness) {
    let mut env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let failing = env.enqueue_and_lease(r#"{"kind":"k","queue":"f"}"#).await;
    env.reopen().await;
    assert_eq!(
        env.store().job_max_outstanding_lease_ms().await,
        Ok(LEASE_MS)
    );
    env.advance(1000);
    let hb = env
        .heartbeat(&l, None)
        .await
        .expect("heartbeat after restart");
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(LEASE_MS));
    assert_eq!(
        env.complete(&l)
            .await
            .expect("complete after restart")
            .state,
        JobState::Completed
    );
    assert_lease_lost(env.complete(&leased_with_token(&failing, "bogus")).await);
    assert_eq!(
        env.fail(&failing, true)
            .await
            .expect("fail after restart")
            .state,
        JobState::Retryable
    );
}

fn leased_with_token(l: &Leased, token: &str) -> Leased {
    Leased {
        token: token.to_string(),
        ..l.clone()
    }
}

/// After `close`, changes are refused as `Unavailable` (safe to retry elsewhere).
pub async fn closed_store_refuses_changes(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue(r#"{"kind":"k"}"#).await;
    env.store().close().await.expect("close");
    match env.insert(vec![new_job(r#"{"kind":"k"}"#)]).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("insert after close: expected Unavailable, got {other:?}"),
    }
}

/// `ping` answers while the store is open.
pub async fn ping_answers(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert_eq!(env.store().ping().await, Ok(()));
}
