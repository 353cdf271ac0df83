//! What the server's maintenance services ask of the store: promotion of due jobs
//! (`job_promote_due`, `job_next_due_at`), rescue of expired and timed-out leases
//! (`job_rescue_expired`), retention (`job_prune_finished`, `idempotency_key_prune`) and the
//! restart grace period (`job_max_outstanding_lease_ms`).
//!
//! Semantics: a scheduled or retryable job becomes available when the clock reaches its
//! `available_at`, not before; a running job whose lease expired, or whose attempt ran past
//! `timeout_ms`, ends as a failed attempt of kind `lease_expired` or `timeout` (retryable, dead
//! when out of attempts, cancelled when a cancel was requested); finished jobs are removed after
//! their state's retention, with their events, while their idempotency keys live on until
//! pruned themselves.

use hopper_store::{JobPruneParams, StoreError};
use hopper_types::{AttemptOutcome, JobState, Timestamp};

use crate::Harness;
use crate::support::*;

/// Far enough in the future to cover everything a test did.
const LATER: Timestamp = Timestamp(T0.0 + 10 * 365 * 24 * 3_600_000);

/// A scheduled job stays scheduled, and unleasable, until the clock reaches its `run_at`.
pub async fn promote_moves_a_scheduled_job_when_its_time_comes_not_before(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env
        .enqueue(r#"{"kind":"k","run_at":"2026-01-01T00:01:00Z"}"#)
        .await
        .id;
    env.advance(59_999);
    assert_eq!(env.promote().await, 0);
    assert!(env.lease(&["default"], 1).await.is_empty());
    assert_eq!(env.state(id).await, JobState::Scheduled);

    env.advance(1);
    assert_eq!(env.promote().await, 1);
    let j = env.get(id).await;
    assert_eq!(j.state, JobState::Available);
    assert_eq!(j.available_at, T0.plus_ms(60_000));
    assert_eq!(
        env.history(id).await.last().unwrap(),
        "scheduled -> available (promote) by system"
    );
    assert_eq!(env.events(id).await.last().unwrap().at, env.now());
    assert_eq!(env.promote().await, 0, "nothing left to promote");
    assert_eq!(env.lease_one("default").await.id, id);
}

/// A retryable job becomes available when its backoff has passed.
pub async fn promote_moves_due_retryable_jobs(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":5000}}"#)
        .await;
    env.fail(&l, true).await.expect("fail");
    env.advance(4999);
    assert_eq!(env.promote().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Retryable);
    env.advance(1);
    assert_eq!(env.promote().await, 1);
    assert_eq!(env.state(l.id).await, JobState::Available);
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "retryable -> available (promote) by system"
    );
}

/// `job_promote_due` moves at most `limit` jobs per call.
pub async fn promote_respects_limit(h: &dyn Harness) {
    let env = Env::new(h).await;
    for _ in 0..5 {
        env.enqueue(r#"{"kind":"k","delay_ms":100}"#).await;
    }
    env.advance(100);
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(env.store().job_promote_due(2).await.expect("promote"));
    }
    assert_eq!(counts, [2, 2, 1, 0]);
    assert_eq!(env.lease(&["default"], 10).await.len(), 5);
}

/// `job_next_due_at` is the earliest `available_at` of scheduled and retryable jobs, of any
/// namespace, and none when there are none.
pub async fn next_due_at_is_the_earliest_scheduled_or_retryable_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let next = || env.store().job_next_due_at();
    assert_eq!(next().await.expect("next due"), None);
    env.enqueue(r#"{"kind":"k"}"#).await;
    env.job_in_state(JobState::Running, "q-run").await;
    env.job_in_state(JobState::Completed, "q-done").await;
    assert_eq!(
        next().await.expect("next due"),
        None,
        "nothing waits for time"
    );

    let s = env.enqueue(r#"{"kind":"k","delay_ms":60000}"#).await.id;
    env.enqueue_in("a", r#"{"kind":"k","delay_ms":90000}"#)
        .await;
    assert_eq!(next().await.expect("next due"), Some(T0.plus_ms(60_000)));
    let l = env
        .enqueue_and_lease(
            r#"{"kind":"k","queue":"q-r","backoff":{"kind":"fixed","delay_ms":5000}}"#,
        )
        .await;
    env.fail(&l, true).await.expect("fail");
    assert_eq!(next().await.expect("next due"), Some(T0.plus_ms(5000)));

    env.advance(5000);
    assert_eq!(env.promote().await, 1);
    assert_eq!(next().await.expect("next due"), Some(T0.plus_ms(60_000)));
    env.cancel(s).await.expect("cancel");
    assert_eq!(next().await.expect("next due"), Some(T0.plus_ms(90_000)));
}

/// A lease is rescued once the clock reaches its end, not before: a failed attempt of kind
/// `lease_expired`, retried after the backoff; the old token is fenced off for good.
pub async fn rescue_waits_until_the_lease_expires(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(LEASE_MS - 1);
    assert_eq!(env.rescue().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Running);

    env.advance(1);
    assert_eq!(env.rescue().await, 1);
    let now = env.now();
    let j = env.get(l.id).await;
    assert_eq!(j.state, JobState::Retryable);
    assert_eq!(j.attempt, 1);
    assert_eq!(j.errors.len(), 1);
    assert_eq!(
        (
            j.errors[0].attempt,
            j.errors[0].kind.as_str(),
            j.errors[0].at
        ),
        (1, "lease_expired", now)
    );
    assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::LeaseExpired));
    assert_eq!(j.attempts[0].finished_at, Some(now));
    assert_eq!(j.lease_expires_at, None);
    assert_between(
        "default backoff after a rescue",
        j.available_at.millis_since(now),
        800,
        1200,
    );
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> retryable (lease_expired) by system"
    );
    assert_eq!(env.rescue().await, 0, "rescued once");

    let before = env.snapshot(l.id).await;
    assert_lease_lost(env.complete(&l).await);
    assert_lease_lost(env.heartbeat(&l, None).await);
    env.assert_unchanged(&before, "outcome of a rescued lease")
        .await;

    env.set_time(j.available_at);
    assert_eq!(env.promote().await, 1);
    let next = env.lease_one("default").await;
    assert_eq!((next.job.attempt, next.job.lease_seq), (2, 2));
    let before = env.snapshot(l.id).await;
    assert_lease_lost(env.fail(&l, false).await);
    env.assert_unchanged(&before, "the old token against the new lease")
        .await;
    env.complete(&next).await.expect("the new holder completes");
}

/// An attempt that ran for `timeout_ms` is rescued even while its lease is alive: kind
/// `timeout`.
pub async fn rescue_of_timed_out_attempt_is_kind_timeout(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue(r#"{"kind":"k","timeout_ms":2000}"#).await.id;
    let mut p = lease_params(&["default"], 1);
    p.lease_ms = 60_000;
    let l = leased(env.lease_with(p).await.pop().expect("leased"));
    assert_eq!(l.id, id);
    env.advance(1000);
    env.heartbeat(&l, None).await.expect("heartbeat");
    env.advance(999);
    assert_eq!(env.rescue().await, 0);
    env.advance(1);
    assert_eq!(env.rescue().await, 1);
    let j = env.get(id).await;
    assert_eq!(j.state, JobState::Retryable);
    assert_eq!(
        (
            j.errors[0].attempt,
            j.errors[0].kind.as_str(),
            j.errors[0].at
        ),
        (1, "timeout", env.now())
    );
    assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::Timeout));
    assert_eq!(
        env.history(id).await.last().unwrap(),
        "running -> retryable (timeout) by system"
    );
    assert_lease_lost(env.complete(&l).await);
}

/// A rescued job whose cancel was requested ends cancelled.
pub async fn rescue_of_a_cancel_requested_job_cancels_it(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.cancel(l.id).await.expect("cancel");
    env.advance(LEASE_MS);
    assert_eq!(env.rescue().await, 1);
    let j = env.get(l.id).await;
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(j.finished_at, Some(env.now()));
    assert_eq!(j.errors[0].kind, "lease_expired");
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> cancelled (lease_expired) by system"
    );
}

/// A rescued job without attempts left is dead, whether its lease expired or it timed out.
pub async fn rescue_without_attempts_left_is_dead(h: &dyn Harness) {
    let env = Env::new(h).await;
    let expired = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q1","max_attempts":1}"#)
        .await;
    let id = env
        .enqueue(r#"{"kind":"k","queue":"q2","max_attempts":1,"timeout_ms":1000}"#)
        .await
        .id;
    let timed_out = env.lease_one("q2").await;
    assert_eq!(timed_out.id, id);
    env.advance(LEASE_MS);
    assert_eq!(env.rescue().await, 2);
    for (l, kind) in [(&expired, "lease_expired"), (&timed_out, "timeout")] {
        let j = env.get(l.id).await;
        assert_eq!(j.state, JobState::Dead, "{kind}");
        assert_eq!(j.finished_at, Some(env.now()));
        assert_eq!(j.errors[0].kind, kind);
    }
}

/// Heartbeats keep a lease from being rescued; the lease that got none is rescued alone.
pub async fn rescue_spares_leases_kept_alive_by_heartbeats(h: &dyn Harness) {
    let env = Env::new(h).await;
    let alive = env.enqueue_and_lease(r#"{"kind":"k","queue":"q1"}"#).await;
    let silent = env.enqueue_and_lease(r#"{"kind":"k","queue":"q2"}"#).await;
    env.advance(20_000);
    env.heartbeat(&alive, None).await.expect("heartbeat");
    env.advance(10_000);
    assert_eq!(env.rescue().await, 1);
    assert_eq!(env.state(silent.id).await, JobState::Retryable);
    assert_eq!(env.state(alive.id).await, JobState::Running);
    env.advance(20_000);
    assert_eq!(env.rescue().await, 1);
    assert_eq!(env.state(alive.id).await, JobState::Retryable);
}

/// `job_rescue_expired` ends at most `limit` leases per call.
pub async fn rescue_respects_limit(h: &dyn Harness) {
    let env = Env::new(h).await;
    for _ in 0..5 {
        env.enqueue(r#"{"kind":"k"}"#).await;
    }
    assert_eq!(env.lease(&["default"], 5).await.len(), 5);
    env.advance(LEASE_MS);
    let mut counts = Vec::new();
    for limit in [2, 2, 10, 10] {
        let rescued = env.store().job_rescue_expired(limit).await.expect("rescue");
        counts.push(rescued.len());
    }
    assert_eq!(counts, [2, 2, 1, 0]);
}

fn prune(completed: Timestamp, cancelled: Timestamp, dead: Timestamp) -> JobPruneParams {
    JobPruneParams {
        completed_before: completed,
        cancelled_before: cancelled,
        dead_before: dead,
        limit: 100,
        queue: None,
    }
}

/// Each finished state has its own cutoff, compared with `finished_at` ("before" is strict);
/// jobs that are not finished are never pruned.
pub async fn prune_removes_finished_jobs_per_state_retention(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut waiting = Vec::new();
    for st in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
    ] {
        waiting.push(env.job_in_state(st, &format!("q-{st}")).await.id);
    }
    env.set_time(T0.plus_ms(1000));
    let completed = env.job_in_state(JobState::Completed, "q-c").await.id;
    env.set_time(T0.plus_ms(2000));
    let cancelled = env.job_in_state(JobState::Cancelled, "q-x").await.id;
    env.set_time(T0.plus_ms(3000));
    let dead = env.job_in_state(JobState::Dead, "q-d").await.id;
    env.set_time(LATER);

    let store = env.store();
    let at = |ms| T0.plus_ms(ms);
    assert_eq!(
        store
            .job_prune_finished(prune(at(1000), at(2000), at(3000)))
            .await,
        Ok(0)
    );
    assert_eq!(
        store
            .job_prune_finished(prune(at(1001), at(2000), at(3000)))
            .await,
        Ok(1)
    );
    env.assert_gone(completed).await;
    assert_eq!(env.state(cancelled).await, JobState::Cancelled);
    assert_eq!(
        store
            .job_prune_finished(prune(LATER, at(2001), at(3000)))
            .await,
        Ok(1)
    );
    env.assert_gone(cancelled).await;
    assert_eq!(env.state(dead).await, JobState::Dead);
    assert_eq!(
        store
            .job_prune_finished(prune(LATER, LATER, at(3001)))
            .await,
        Ok(1)
    );
    env.assert_gone(dead).await;
    assert_eq!(
        store.job_prune_finished(prune(LATER, LATER, LATER)).await,
        Ok(0)
    );
    let mut left = env.list_all(&list_params()).await;
    left.sort();
    assert_eq!(left, waiting);
}

/// A pruned job's events go with it; its idempotency key stays remembered.
pub async fn prune_removes_events_and_keeps_idempotency_keys(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","idempotency_key":"kept","args":{"n":1}}"#)
        .await;
    env.complete(&l).await.expect("complete");
    assert_eq!(
        env.store()
            .job_prune_finished(prune(LATER, LATER, LATER))
            .await,
        Ok(1)
    );
    env.assert_gone(l.id).await;
    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"kept","args":{"n":1}}"#,
        )])
        .await
        .expect("insert");
    assert_eq!(
        (r[0].id, r[0].duplicate, r[0].job.is_none()),
        (l.id, true, true)
    );
    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"kept","args":{"n":2}}"#,
        )])
        .await;
    assert_eq!(
        r.map(|v| v.len()),
        Err(StoreError::IdempotencyConflict {
            index: 0,
            existing: l.id
        })
    );
}

/// `job_prune_finished` removes at most `limit` jobs per call.
pub async fn prune_respects_limit(h: &dyn Harness) {
    let env = Env::new(h).await;
    for _ in 0..5 {
        let id = env.enqueue(r#"{"kind":"k"}"#).await.id;
        env.cancel(id).await.expect("cancel");
    }
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(
            env.store()
                .job_prune_finished(JobPruneParams {
                    limit: 2,
                    ..prune(LATER, LATER, LATER)
                })
                .await
                .expect("prune"),
        );
    }
    assert_eq!(counts, [2, 2, 1, 0]);
    assert!(env.list_all(&list_params()).await.is_empty());
}

/// Keys created before the cutoff are forgotten (at most `limit` per call); their jobs stay,
/// and a forgotten key may be used again for other content.
pub async fn idempotency_key_prune_forgets_old_keys(h: &dyn Harness) {
    let env = Env::new(h).await;
    let keyed = |k: &str, n: i32| {
        new_job(&format!(
            r#"{{"kind":"k","idempotency_key":"{k}","args":{n}}}"#
        ))
    };
    let mut ids = vec![env.insert_one(keyed("k1", 1)).await.id];
    env.set_time(T0.plus_ms(1000));
    ids.push(env.insert_one(keyed("k2", 1)).await.id);
    env.set_time(T0.plus_ms(2000));
    for k in ["k3", "k4", "k5"] {
        ids.push(env.insert_one(keyed(k, 1)).await.id);
    }
    let store = env.store();
    assert_eq!(store.idempotency_key_prune(T0, 100).await, Ok(0));
    assert_eq!(store.idempotency_key_prune(T0.plus_ms(1), 100).await, Ok(1));

    // k1 is forgotten, k2 is not.
    assert!(matches!(
        env.insert(vec![keyed("k2", 2)]).await,
        Err(StoreError::IdempotencyConflict { .. })
    ));

    let cutoff = T0.plus_ms(2001);
    let mut counts = Vec::new();
    for _ in 0..3 {
        counts.push(store.idempotency_key_prune(cutoff, 2).await.expect("prune"));
    }
    assert_eq!(counts, [2, 2, 0]);

    let mut listed = env.list_all(&list_params()).await;
    listed.sort();
    assert_eq!(listed, ids, "pruning keys deletes no job");
    for k in ["k1", "k2", "k3", "k4", "k5"] {
        let r = env
            .insert(vec![keyed(k, 2)])
            .await
            .expect("the key is free");
        assert!(!r[0].duplicate, "{k}");
    }
}

/// The longest `lease_ms` among running jobs of any namespace, heartbeats included; 0 when
/// nothing runs.
pub async fn max_outstanding_lease_is_the_longest_running_lease(h: &dyn Harness) {
    let env = Env::new(h).await;
    let max = || env.store().job_max_outstanding_lease_ms();
    assert_eq!(max().await, Ok(0));
    env.enqueue(r#"{"kind":"k","queue":"q1"}"#).await;
    env.enqueue_in("b", r#"{"kind":"k","queue":"q2"}"#).await;
    let short = env.lease_one("q1").await;
    assert_eq!(max().await, Ok(LEASE_MS));
    let mut p = lease_params(&["q2"], 1);
    p.namespace = "b".into();
    p.lease_ms = 120_000;
    let long = leased(env.lease_with(p).await.pop().expect("leased"));
    assert_eq!(max().await, Ok(120_000));
    env.ack_in(
        "b",
        long.id,
        &long.token,
        hopper_store::AckOutcome::Completed { result: None },
    )
    .await
    .expect("complete");
    assert_eq!(max().await, Ok(LEASE_MS));
    env.heartbeat(&short, Some(200_000))
        .await
        .expect("heartbeat");
    assert_eq!(max().await, Ok(200_000));
    env.release(&short).await.expect("release");
    assert_eq!(max().await, Ok(0));
}
