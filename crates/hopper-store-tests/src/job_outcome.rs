//! Worker outcomes: `job_ack_many` (complete, fail, release, cancelled) and `job_heartbeat`.
//!
//! Semantics: complete keeps the result; a retryable failure with attempts left waits its
//! backoff (or `retry_in_ms`), otherwise the job is dead; release hands the job back without
//! counting the attempt; after a cancel request anything but complete ends the job cancelled.
//! Only the job's current token may report (fencing: `LeaseLost`, nothing changed); repeating
//! the outcome a token recorded answers the job unchanged, a different one is `InvalidState`.

use std::collections::BTreeSet;

use hopper_store::{AckOutcome, JobAck, JobHeartbeatParams, StoreError};
use hopper_types::lifecycle::Failure;
use hopper_types::{Attempt, AttemptOutcome, ErrorRecord, JobId, JobState};

use crate::Harness;
use crate::support::*;

/// Complete keeps the result, finishes the job and closes the attempt.
pub async fn complete_keeps_result_and_ends_the_lease(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(500);
    let j = env
        .ack(
            l.id,
            &l.token,
            AckOutcome::Completed {
                result: Some(raw(r#"{"rows": 3}"#)),
            },
        )
        .await
        .expect("complete");
    assert_eq!(j.state, JobState::Completed);
    assert_eq!(
        value(j.result.as_deref().unwrap()),
        serde_json::json!({"rows": 3})
    );
    assert_eq!(j.finished_at, Some(env.now()));
    assert_eq!(j.lease_expires_at, None);
    assert_eq!(j.attempt, 1);
    assert_eq!(
        j.attempts,
        [Attempt {
            lease_seq: 1,
            worker_id: WORKER.into(),
            started_at: T0,
            finished_at: Some(env.now()),
            outcome: Some(AttemptOutcome::Completed),
        }]
    );
    assert!(j.errors.is_empty());
    assert_same_job(&env.get(l.id).await, &j);
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> completed (complete) by worker:w1"
    );
    assert!(
        env.lease(&["default"], 10).await.is_empty(),
        "never leased again"
    );
}

/// A retryable failure with attempts left keeps the error and waits a fixed backoff.
pub async fn fail_with_attempts_left_is_retryable_after_fixed_backoff(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":1500}}"#)
        .await;
    env.advance(100);
    let now = env.now();
    let j = env
        .fail_with(
            &l,
            Failure {
                kind: "smtp_down".into(),
                message: "421 try later".into(),
                retryable: true,
                retry_in_ms: None,
            },
        )
        .await
        .expect("fail");
    assert_eq!(j.state, JobState::Retryable);
    assert_eq!(j.available_at, now.plus_ms(1500));
    assert_eq!(
        j.errors,
        [ErrorRecord {
            attempt: 1,
            at: now,
            kind: "smtp_down".into(),
            message: "421 try later".into(),
        }]
    );
    assert_eq!(j.attempt, 1);
    assert_eq!(j.finished_at, None);
    assert_eq!(j.lease_expires_at, None);
    assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::Failed));
    assert_eq!(j.attempts[0].finished_at, Some(now));
    assert_same_job(&env.get(l.id).await, &j);
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> retryable (fail) by worker:w1"
    );

    assert!(env.lease(&["default"], 1).await.is_empty());
    env.advance(1499);
    assert_eq!(env.promote().await, 0);
    env.advance(1);
    assert_eq!(env.promote().await, 1);
    let again = env.lease_one("default").await;
    assert_eq!((again.id, again.job.attempt), (l.id, 2));
}

/// Fails `l` and returns how long the job waits (available_at − now).
async fn fail_and_measure(env: &Env, l: &Leased) -> i64 {
    let now = env.now();
    let j = env.fail(l, true).await.expect("fail");
    assert_eq!(j.state, JobState::Retryable);
    j.available_at.millis_since(now)
}

/// Promotes the job when due and leases it again.
async fn wait_and_lease(env: &Env, id: JobId) -> Leased {
    let due = env.get(id).await.available_at;
    env.set_time(due);
    assert_eq!(env.promote().await, 1);
    let l = env.lease_one("default").await;
    assert_eq!(l.id, id);
    l
}

/// Exponential backoff doubles per attempt, each delay within its jitter bounds.
pub async fn fail_backoff_is_exponential_within_jitter_bounds(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut l = env
        .enqueue_and_lease(
            r#"{"kind":"k","backoff":{"kind":"exponential","base_ms":10000,"cap_ms":1000000,"jitter":0.5}}"#,
        )
        .await;
    for (attempt, nominal) in [(1, 10_000), (2, 20_000), (3, 40_000)] {
        let d = fail_and_measure(&env, &l).await;
        assert_between(
            &format!("delay after attempt {attempt}"),
            d,
            nominal / 2,
            nominal * 3 / 2,
        );
        l = wait_and_lease(&env, l.id).await;
    }
}

/// The exponential delay stops growing at `cap_ms`.
pub async fn fail_backoff_is_capped(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut l = env
        .enqueue_and_lease(
            r#"{"kind":"k","backoff":{"kind":"exponential","base_ms":10000,"cap_ms":15000,"jitter":0}}"#,
        )
        .await;
    let mut delays = Vec::new();
    for _ in 0..3 {
        delays.push(fail_and_measure(&env, &l).await);
        l = wait_and_lease(&env, l.id).await;
    }
    assert_eq!(delays, [10_000, 15_000, 15_000]);
}

/// Without a policy, the first retry waits 1 s ± 20 %.
pub async fn fail_default_backoff_is_one_second_within_jitter(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let d = fail_and_measure(&env, &l).await;
    assert_between("default delay after attempt 1", d, 800, 1200);
}

/// Jitter is random per failure, so jobs that failed together do not retry together.
pub async fn fail_backoff_jitter_spreads_retries(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut delays = BTreeSet::new();
    for _ in 0..12 {
        let l = env
            .enqueue_and_lease(r#"{"kind":"k","backoff":{"kind":"exponential","base_ms":1000000}}"#)
            .await;
        let d = fail_and_measure(&env, &l).await;
        assert_between("delay", d, 800_000, 1_200_000);
        delays.insert(d);
    }
    assert!(
        delays.len() >= 10,
        "12 failures at the same moment should retry at different times, got {delays:?}"
    );
}

/// `retry_in_ms` from the worker replaces the backoff policy.
pub async fn fail_retry_in_ms_overrides_backoff(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":60000}}"#)
        .await;
    let now = env.now();
    let j = env
        .fail_with(
            &l,
            Failure {
                retry_in_ms: Some(250),
                ..failure(true)
            },
        )
        .await
        .expect("fail");
    assert_eq!(j.state, JobState::Retryable);
    assert_eq!(j.available_at, now.plus_ms(250));
}

/// A non-retryable failure sends the job to the dead-letter queue at once.
pub async fn fail_not_retryable_is_dead(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(7);
    let j = env.fail(&l, false).await.expect("fail");
    assert_eq!(j.state, JobState::Dead);
    assert_eq!(j.finished_at, Some(env.now()));
    assert_eq!(j.errors.len(), 1);
    assert_eq!(
        (j.errors[0].attempt, j.errors[0].kind.as_str()),
        (1, "error")
    );
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> dead (fail) by worker:w1"
    );
    env.advance(10_000_000);
    assert_eq!(env.promote().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Dead);
}

/// A retryable failure of the last allowed attempt is dead; every attempt's error is kept.
pub async fn fail_without_attempts_left_is_dead(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(
            r#"{"kind":"k","max_attempts":2,"backoff":{"kind":"fixed","delay_ms":0}}"#,
        )
        .await;
    assert_eq!(
        env.fail(&l, true).await.expect("fail").state,
        JobState::Retryable
    );
    let l = wait_and_lease(&env, l.id).await;
    let j = env.fail(&l, true).await.expect("fail");
    assert_eq!(j.state, JobState::Dead);
    assert_eq!(j.attempt, 2);
    assert_eq!(
        j.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
}

/// Release hands the job back `available` at once and does not count the attempt, however
/// often it happens.
pub async fn release_hands_back_without_counting_the_attempt(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = env
        .enqueue_and_lease(r#"{"kind":"k","max_attempts":1}"#)
        .await;
    env.advance(10);
    let j = env.release(&first).await.expect("release");
    assert_eq!(j.state, JobState::Available);
    assert_eq!(j.attempt, 0);
    assert_eq!(j.lease_seq, 1);
    assert_eq!(j.lease_expires_at, None);
    assert_eq!(j.finished_at, None);
    assert!(j.errors.is_empty());
    assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::Released));
    assert_eq!(j.attempts[0].finished_at, Some(env.now()));
    assert_same_job(&env.get(first.id).await, &j);
    assert_eq!(
        env.history(first.id).await.last().unwrap(),
        "running -> available (release) by worker:w1"
    );

    for _ in 0..3 {
        let l = env.lease_one("default").await;
        assert_eq!(l.job.attempt, 1, "released attempts are not counted");
        env.release(&l).await.expect("release");
    }
    let l = env.lease_one("default").await;
    assert_eq!((l.job.attempt, l.job.lease_seq), (1, 5));
    assert_eq!(env.get(l.id).await.attempts.len(), 5);
    // max_attempts 1 still allows this one counted attempt.
    assert_eq!(
        env.fail(&l, true).await.expect("fail").state,
        JobState::Dead
    );
}

/// After a cancel request, the worker's `cancelled` outcome ends the job cancelled.
pub async fn cancel_requested_then_cancelled_outcome_is_cancelled(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.cancel(l.id).await.expect("cancel");
    env.advance(3);
    let j = env.report_cancelled(&l).await.expect("cancelled");
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(j.finished_at, Some(env.now()));
    assert_eq!(j.attempts[0].outcome, Some(AttemptOutcome::Cancelled));
    assert_eq!(
        env.history(l.id).await[2..],
        [
            "running -> running (cancel_requested) by api",
            "running -> cancelled (cancelled) by worker:w1",
        ]
    );
}

/// After a cancel request, a retryable failure with attempts left still ends the job cancelled.
pub async fn cancel_requested_then_fail_is_cancelled(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.cancel(l.id).await.expect("cancel");
    let j = env.fail(&l, true).await.expect("fail");
    assert_eq!(j.state, JobState::Cancelled);
    assert_eq!(j.errors.len(), 1, "the error is kept");
    assert_eq!(j.finished_at, Some(env.now()));
    env.advance(10_000_000);
    assert_eq!(env.promote().await, 0);
}

/// After a cancel request, a release ends the job cancelled instead of making it available.
pub async fn cancel_requested_then_release_is_cancelled(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.cancel(l.id).await.expect("cancel");
    let j = env.release(&l).await.expect("release");
    assert_eq!(j.state, JobState::Cancelled);
    assert!(env.lease(&["default"], 1).await.is_empty());
}

/// A job that completes despite a cancel request is completed: the work was done.
pub async fn cancel_requested_then_complete_is_completed(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.cancel(l.id).await.expect("cancel");
    let j = env.complete(&l).await.expect("complete");
    assert_eq!(j.state, JobState::Completed);
    assert!(j.result.is_some());
}

/// The worker-side triggers of the suite.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    Complete,
    Fail,
    Release,
    Cancelled,
    Heartbeat,
}

const TRIGGERS: [Trigger; 5] = [
    Trigger::Complete,
    Trigger::Fail,
    Trigger::Release,
    Trigger::Cancelled,
    Trigger::Heartbeat,
];

/// Applies `t` with `token`; a successful outcome answers the job as stored.
async fn apply(env: &Env, t: Trigger, id: JobId, token: &str) -> Result<(), StoreError> {
    apply_marked(env, t, id, token).await.map(|_| ())
}

/// Like [`apply`], answering the `duplicate` mark of the returned job (none for a heartbeat).
async fn apply_marked(
    env: &Env,
    t: Trigger,
    id: JobId,
    token: &str,
) -> Result<Option<bool>, StoreError> {
    let outcome = match t {
        Trigger::Complete => AckOutcome::Completed {
            result: Some(raw(r#"{"ok":true}"#)),
        },
        Trigger::Fail => AckOutcome::Failed(failure(true)),
        Trigger::Release => AckOutcome::Released,
        Trigger::Cancelled => AckOutcome::Cancelled,
        Trigger::Heartbeat => {
            return env
                .store()
                .job_heartbeat(JobHeartbeatParams {
                    job: job_ref(id),
                    lease_token: token.to_string(),
                    lease_ms: None,
                    progress: Some(raw("1")),
                })
                .await
                .map(|_| None);
        }
    };
    let mut j = env.ack(id, token, outcome).await?;
    let mark = j.duplicate.take();
    assert_same_job(&j, &env.get(id).await);
    Ok(mark)
}

/// A token that was never handed out changes nothing.
pub async fn outcome_with_a_bogus_token_is_lease_lost(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let before = env.snapshot(l.id).await;
    for t in TRIGGERS {
        for token in ["bogus", ""] {
            assert_lease_lost(apply(&env, t, l.id, token).await);
            env.assert_unchanged(&before, &format!("{t:?} with token {token:?}"))
                .await;
        }
    }
}

/// The token of an earlier lease is fenced off: the current holder's lease is untouched.
pub async fn outcome_with_a_stale_token_is_lease_lost(h: &dyn Harness) {
    let env = Env::new(h).await;
    let old = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.release(&old).await.expect("release");
    let current = env.lease_one("default").await;
    let before = env.snapshot(old.id).await;
    for t in TRIGGERS {
        assert_lease_lost(apply(&env, t, old.id, &old.token).await);
        env.assert_unchanged(&before, &format!("{t:?} with a stale token"))
            .await;
    }
    env.heartbeat(&current, None)
        .await
        .expect("the holder heartbeats");
    assert_eq!(
        env.complete(&current)
            .await
            .expect("the holder completes")
            .state,
        JobState::Completed
    );
}

/// Repeating the outcome a token recorded answers Ok with the job, and changes nothing, even
/// later.
pub async fn repeated_outcome_is_ok_and_changes_nothing(h: &dyn Harness) {
    let env = Env::new(h).await;
    for (t, want, cancel_first) in [
        (Trigger::Complete, JobState::Completed, false),
        (Trigger::Fail, JobState::Retryable, false),
        (Trigger::Release, JobState::Available, false),
        (Trigger::Cancelled, JobState::Cancelled, true),
    ] {
        let queue = format!("q-{t:?}");
        let l = env
            .enqueue_and_lease(&format!(r#"{{"kind":"k","queue":"{queue}"}}"#))
            .await;
        if cancel_first {
            env.cancel(l.id).await.expect("cancel");
        }
        let first = apply_marked(&env, t, l.id, &l.token)
            .await
            .expect("first report");
        assert_eq!(first, None, "a first report is not marked as a repeat");
        assert_eq!(env.state(l.id).await, want);
        let before = env.snapshot(l.id).await;
        env.advance(1000);
        for _ in 0..2 {
            let mark = apply_marked(&env, t, l.id, &l.token)
                .await
                .unwrap_or_else(|e| panic!("repeated {t:?}: {e:?}"));
            // Callers (metrics, audit) must be able to tell a repeat from a fresh outcome.
            assert_eq!(mark, Some(true), "repeated {t:?} is marked duplicate");
            env.assert_unchanged(&before, &format!("repeated {t:?}"))
                .await;
        }
    }

    // A non-retryable failure repeated.
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-dead"}"#)
        .await;
    env.fail(&l, false).await.expect("fail");
    let before = env.snapshot(l.id).await;
    let j = env.fail(&l, false).await.expect("repeated fail");
    assert_eq!(j.state, JobState::Dead);
    env.assert_unchanged(&before, "repeated dead fail").await;
}

/// Another outcome than the one a token recorded is `InvalidState`, and changes nothing.
pub async fn different_outcome_for_a_token_is_invalid_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.complete(&l).await.expect("complete");
    let before = env.snapshot(l.id).await;
    for t in [Trigger::Fail, Trigger::Release, Trigger::Cancelled] {
        assert_invalid_state(apply(&env, t, l.id, &l.token).await, JobState::Completed);
        env.assert_unchanged(&before, &format!("{t:?} after complete"))
            .await;
    }
}

/// What a worker trigger must answer on a job that is not running.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The token recorded this very outcome: Ok, unchanged.
    Repeat,
    /// The token recorded another outcome.
    Invalid(JobState),
    /// The token is not (or no longer) the job's.
    Lost,
}

/// Worker triggers on jobs that are not running, however they got there: every pair answers
/// as the state table and the fencing rules say, and none changes anything.
pub async fn outcomes_on_jobs_that_are_not_running_follow_the_state_table(h: &dyn Harness) {
    let env = Env::new(h).await;
    // (how the job got there, its state, the token to use, what the token recorded)
    let mut cases: Vec<(&str, JobId, String, Option<Trigger>)> = Vec::new();

    let s = env.job_in_state(JobState::Scheduled, "q-s").await;
    cases.push(("scheduled, never leased", s.id, "bogus".into(), None));
    let a = env.job_in_state(JobState::Available, "q-a").await;
    cases.push(("available, never leased", a.id, "bogus".into(), None));
    let c = env.job_in_state(JobState::Cancelled, "q-c").await;
    cases.push(("cancelled while waiting", c.id, "bogus".into(), None));
    for (t, queue) in [
        (Trigger::Release, "q-rel"),
        (Trigger::Fail, "q-fail"),
        (Trigger::Complete, "q-done"),
    ] {
        let l = env
            .enqueue_and_lease(&format!(
                r#"{{"kind":"k","queue":"{queue}","backoff":{{"kind":"fixed","delay_ms":60000}}}}"#
            ))
            .await;
        apply(&env, t, l.id, &l.token).await.expect("outcome");
        cases.push(("after an outcome", l.id, l.token, Some(t)));
    }
    let dead = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-dead"}"#)
        .await;
    env.fail(&dead, false).await.expect("fail");
    cases.push((
        "dead by a failure",
        dead.id,
        dead.token,
        Some(Trigger::Fail),
    ));
    let cl = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-cl"}"#)
        .await;
    env.cancel(cl.id).await.expect("cancel");
    env.report_cancelled(&cl).await.expect("cancelled");
    cases.push((
        "cancelled by its worker",
        cl.id,
        cl.token,
        Some(Trigger::Cancelled),
    ));
    let ex = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-exp"}"#)
        .await;
    env.advance(LEASE_MS);
    assert_eq!(env.rescue().await, 1);
    cases.push(("rescued after its lease expired", ex.id, ex.token, None));

    for (how, id, token, recorded) in cases {
        let state = env.state(id).await;
        assert_ne!(state, JobState::Running);
        let before = env.snapshot(id).await;
        for t in TRIGGERS {
            let expect = match recorded {
                _ if t == Trigger::Heartbeat => Expect::Lost,
                None => Expect::Lost,
                Some(r) if r == t => Expect::Repeat,
                Some(_) => Expect::Invalid(state),
            };
            let got = apply(&env, t, id, &token).await;
            let what = format!("{t:?} on a {state} job ({how})");
            match expect {
                Expect::Repeat => got.unwrap_or_else(|e| panic!("{what}: expected Ok, got {e:?}")),
                Expect::Invalid(s) => assert_invalid_state(got, s),
                Expect::Lost => assert_lease_lost(got),
            }
            env.assert_unchanged(&before, &what).await;
        }
    }
}

/// A heartbeat moves the lease's end to now + `lease_ms` (or the lease's own length), records
/// no transition, and keeps the rescuer away.
pub async fn heartbeat_extends_the_lease(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let events = env.events(l.id).await;
    env.advance(10_000);
    let hb = env.heartbeat(&l, None).await.expect("heartbeat");
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(LEASE_MS));
    assert!(!hb.cancel_requested);
    assert_eq!(
        env.get(l.id).await.lease_expires_at,
        Some(env.now().plus_ms(LEASE_MS))
    );
    env.advance(10_000);
    let hb = env.heartbeat(&l, Some(120_000)).await.expect("heartbeat");
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(120_000));
    let j = env.get(l.id).await;
    assert_eq!(j.lease_expires_at, Some(env.now().plus_ms(120_000)));
    assert_eq!((j.state, j.attempt, j.lease_seq), (JobState::Running, 1, 1));
    assert_eq!(
        env.events(l.id).await,
        events,
        "a heartbeat is not a transition"
    );

    env.advance(119_999);
    assert_eq!(env.rescue().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Running);
}

/// Progress reported with a heartbeat is kept until the next progress replaces it.
pub async fn heartbeat_records_progress(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let beat = |progress: Option<&str>| {
        env.store().job_heartbeat(JobHeartbeatParams {
            job: job_ref(l.id),
            lease_token: l.token.clone(),
            lease_ms: None,
            progress: progress.map(raw),
        })
    };
    beat(Some(r#"{"done": 40, "of": 100}"#))
        .await
        .expect("heartbeat");
    let progress = |j: hopper_types::Job| j.progress.as_deref().map(value);
    assert_eq!(
        progress(env.get(l.id).await),
        Some(serde_json::json!({"done": 40, "of": 100}))
    );
    beat(None).await.expect("heartbeat");
    assert_eq!(
        progress(env.get(l.id).await),
        Some(serde_json::json!({"done": 40, "of": 100})),
        "a heartbeat without progress keeps the last"
    );
    beat(Some(r#""almost""#)).await.expect("heartbeat");
    assert_eq!(
        progress(env.get(l.id).await),
        Some(serde_json::json!("almost"))
    );
    let done = env.complete(&l).await.expect("complete");
    assert_eq!(progress(done), Some(serde_json::json!("almost")));
}

/// The heartbeat answer tells the worker a cancel was requested; the lease is still renewed.
pub async fn heartbeat_reports_cancel_requested(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    assert!(
        !env.heartbeat(&l, None)
            .await
            .expect("heartbeat")
            .cancel_requested
    );
    let j = env.cancel(l.id).await.expect("cancel");
    assert_eq!((j.state, j.cancel_requested), (JobState::Running, true));
    env.advance(1000);
    let hb = env.heartbeat(&l, None).await.expect("heartbeat");
    assert!(hb.cancel_requested);
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(LEASE_MS));
}

/// Once an attempt ran for `timeout_ms`, its heartbeats are refused and change nothing.
pub async fn heartbeat_is_refused_after_the_attempt_timed_out(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut p = lease_params(&["default"], 1);
    p.lease_ms = 60_000;
    let id = env.enqueue(r#"{"kind":"k","timeout_ms":2000}"#).await.id;
    let l = leased(env.lease_with(p).await.pop().expect("leased"));
    assert_eq!(l.id, id);
    env.advance(1999);
    env.heartbeat(&l, None).await.expect("in time");
    env.advance(1);
    let before = env.snapshot(id).await;
    assert_lease_lost(env.heartbeat(&l, None).await);
    env.assert_unchanged(&before, "heartbeat after the timeout")
        .await;
}

/// A lease that expired but was not rescued yet (e.g. the server was down) is still the
/// worker's: its heartbeat renews it, and the rescuer then leaves it alone.
pub async fn heartbeat_renews_an_expired_lease_not_yet_rescued(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(LEASE_MS + 15_000);
    let hb = env
        .heartbeat(&l, None)
        .await
        .expect("the token is still the job's current one");
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(LEASE_MS));
    assert_eq!(env.rescue().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Running);
}

/// An outcome reported after the lease expired, but before it was rescued, is accepted.
pub async fn complete_after_lease_expiry_before_rescue_succeeds(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(LEASE_MS + 15_000);
    let j = env.complete(&l).await.expect("complete");
    assert_eq!(j.state, JobState::Completed);
    assert_eq!(env.rescue().await, 0);
    assert_eq!(env.state(l.id).await, JobState::Completed);
}

/// `job_ack_many` applies each ack on its own, in request order, answering each in its place.
pub async fn ack_many_answers_each_ack_alone_in_order(h: &dyn Harness) {
    let env = Env::new(h).await;
    for _ in 0..3 {
        env.enqueue(r#"{"kind":"k"}"#).await;
    }
    let mut jobs: Vec<Leased> = env
        .lease(&["default"], 3)
        .await
        .into_iter()
        .map(leased)
        .collect();
    jobs.sort_by_key(|l| l.id);
    let (a, b, c) = (&jobs[0], &jobs[1], &jobs[2]);
    let b_before = env.snapshot(b.id).await;
    let ack = |l: &Leased, token: &str, outcome| JobAck {
        job: job_ref(l.id),
        lease_token: token.to_string(),
        outcome,
    };
    let unknown = JobAck {
        job: job_ref(JobId::new()),
        lease_token: "t".into(),
        outcome: AckOutcome::Released,
    };
    let results = env
        .store()
        .job_ack_many(vec![
            ack(a, &a.token, AckOutcome::Completed { result: None }),
            ack(b, "bogus", AckOutcome::Completed { result: None }),
            ack(c, &c.token, AckOutcome::Failed(failure(false))),
            unknown,
            ack(a, &a.token, AckOutcome::Released),
        ])
        .await
        .expect("ack call");
    assert_eq!(results.len(), 5);
    let summary: Vec<Result<(JobId, JobState), StoreError>> = results
        .into_iter()
        .map(|r| r.map(|j| (j.id, j.state)))
        .collect();
    assert_eq!(summary[0], Ok((a.id, JobState::Completed)));
    assert_eq!(summary[1], Err(StoreError::LeaseLost));
    assert_eq!(summary[2], Ok((c.id, JobState::Dead)));
    assert_eq!(summary[3], Err(StoreError::NotFound));
    assert!(
        matches!(
            summary[4],
            Err(StoreError::InvalidState {
                state: JobState::Completed,
                ..
            })
        ),
        "release after complete in the same call: {:?}",
        summary[4]
    );
    env.assert_unchanged(&b_before, "the refused ack").await;
    assert_eq!(env.state(a.id).await, JobState::Completed);
}

/// Outcomes and heartbeats name the job's namespace; from another one the job is not found.
pub async fn outcome_for_a_job_of_another_namespace_is_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue_in("a", r#"{"kind":"k","queue":"q"}"#).await.id;
    let mut p = lease_params(&["q"], 1);
    p.namespace = "a".into();
    let l = leased(env.lease_with(p).await.pop().expect("leased"));
    assert_eq!(l.id, id);

    assert_not_found(
        env.ack_in("b", l.id, &l.token, AckOutcome::Completed { result: None })
            .await,
    );
    assert_not_found(
        env.store()
            .job_heartbeat(JobHeartbeatParams {
                job: job_ref_in("b", l.id),
                lease_token: l.token.clone(),
                lease_ms: None,
                progress: None,
            })
            .await,
    );
    let j = env
        .store()
        .job_get(&job_ref_in("a", l.id))
        .await
        .expect("get");
    assert_eq!(j.state, JobState::Running);
    let j = env
        .ack_in("a", l.id, &l.token, AckOutcome::Completed { result: None })
        .await
        .expect("complete in its namespace");
    assert_eq!(j.state, JobState::Completed);
}
