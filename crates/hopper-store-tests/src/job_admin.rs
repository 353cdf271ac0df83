//! Operator actions on one job: `job_cancel`, `job_retry`, `job_delete`.
//!
//! Semantics: cancel ends a waiting job at once and flags a running one (`cancel_requested`,
//! which its worker learns on the next heartbeat); retry starts a finished job over (attempt 0,
//! errors and attempts kept) and makes a scheduled or retryable one run now; only finished jobs
//! may be deleted, with their events. Any other (state, trigger) pair is `InvalidState` and
//! changes nothing.

use hopper_types::{JobId, JobState};

use crate::Harness;
use crate::support::*;

/// Cancelling a scheduled, available or retryable job makes it cancelled at once.
pub async fn cancel_waiting_jobs_ends_them_at_once(h: &dyn Harness) {
    let env = Env::new(h).await;
    for (i, st) in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Retryable,
    ]
    .into_iter()
    .enumerate()
    {
        let queue = format!("q{i}");
        let m = env.job_in_state(st, &queue).await;
        env.advance(5);
        let j = env.cancel(m.id).await.expect("cancel");
        assert_eq!(j.state, JobState::Cancelled, "cancel a {st} job");
        assert_eq!(j.finished_at, Some(env.now()));
        assert!(!j.cancel_requested);
        assert_same_job(&env.get(m.id).await, &j);
        assert_eq!(
            env.history(m.id).await.last().unwrap(),
            &format!("{st} -> cancelled (cancel) by api")
        );
        env.advance(10_000_000);
        env.promote().await;
        assert!(env.lease(&[&queue], 10).await.is_empty());
        assert_eq!(env.state(m.id).await, JobState::Cancelled);
    }
}

/// Cancelling a running job only flags it; the lease goes on until the worker reports.
pub async fn cancel_running_job_requests_cancellation(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    env.advance(5);
    let j = env.cancel(l.id).await.expect("cancel");
    assert_eq!(j.state, JobState::Running);
    assert!(j.cancel_requested);
    assert_eq!(j.lease_expires_at, l.job.lease_expires_at);
    assert_eq!(j.finished_at, None);
    assert_same_job(&env.get(l.id).await, &j);
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "running -> running (cancel_requested) by api"
    );
    assert!(
        env.heartbeat(&l, None)
            .await
            .expect("heartbeat")
            .cancel_requested
    );
}

/// Finished jobs cannot be cancelled.
pub async fn cancel_finished_job_is_invalid_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    for st in [JobState::Completed, JobState::Dead, JobState::Cancelled] {
        let m = env.job_in_state(st, &format!("q-{st}")).await;
        let before = env.snapshot(m.id).await;
        assert_invalid_state(env.cancel(m.id).await, st);
        env.assert_unchanged(&before, &format!("cancel a {st} job"))
            .await;
    }
}

/// Retrying a dead, completed or cancelled job makes it available now with attempt 0, keeping
/// its errors and attempts, and with no leftover cancel request.
pub async fn retry_finished_jobs_starts_over(h: &dyn Harness) {
    let env = Env::new(h).await;

    // Dead after two failed attempts.
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-dead","max_attempts":2,"backoff":{"kind":"fixed","delay_ms":0}}"#)
        .await;
    env.fail(&l, true).await.expect("fail");
    assert_eq!(env.promote().await, 1);
    let l = env.lease_one("q-dead").await;
    env.fail(&l, true).await.expect("fail");
    assert_eq!(env.state(l.id).await, JobState::Dead);
    env.advance(100);
    let j = env.retry(l.id).await.expect("retry");
    assert_eq!(j.state, JobState::Available);
    assert_eq!(j.attempt, 0);
    assert_eq!(j.available_at, env.now());
    assert_eq!(j.finished_at, None);
    assert_eq!(j.errors.len(), 2, "errors are kept");
    assert_eq!(j.attempts.len(), 2, "attempts are kept");
    assert_same_job(&env.get(l.id).await, &j);
    assert_eq!(
        env.history(l.id).await.last().unwrap(),
        "dead -> available (retry) by api"
    );
    let again = env.lease_one("q-dead").await;
    assert_eq!(
        (again.id, again.job.attempt, again.job.lease_seq),
        (l.id, 1, 3)
    );

    // Completed.
    let c = env.job_in_state(JobState::Completed, "q-done").await;
    let j = env.retry(c.id).await.expect("retry");
    assert_eq!(
        (j.state, j.attempt, j.finished_at),
        (JobState::Available, 0, None)
    );

    // Cancelled by its worker after a cancel request: the request does not survive the retry.
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","queue":"q-cl"}"#)
        .await;
    env.cancel(l.id).await.expect("cancel");
    env.report_cancelled(&l).await.expect("cancelled");
    let j = env.retry(l.id).await.expect("retry");
    assert_eq!((j.state, j.attempt), (JobState::Available, 0));
    assert!(
        !j.cancel_requested,
        "a retried job starts without a cancel request"
    );
    let again = env.lease_one("q-cl").await;
    assert!(
        !env.heartbeat(&again, None)
            .await
            .expect("heartbeat")
            .cancel_requested
    );
}

/// Retrying a scheduled or retryable job makes it available now, attempt unchanged.
pub async fn retry_waiting_jobs_runs_them_now(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = env.job_in_state(JobState::Scheduled, "q-s").await;
    let r = env.job_in_state(JobState::Retryable, "q-r").await;
    env.advance(5);
    for (m, st, attempt) in [(s, JobState::Scheduled, 0), (r, JobState::Retryable, 1)] {
        let j = env.retry(m.id).await.expect("retry");
        assert_eq!(j.state, JobState::Available, "retry a {st} job");
        assert_eq!(j.available_at, env.now());
        assert_eq!(j.attempt, attempt);
        assert_eq!(
            env.history(m.id).await.last().unwrap(),
            &format!("{st} -> available (retry) by api")
        );
    }
    assert_eq!(env.lease(&["q-s", "q-r"], 10).await.len(), 2);
}

/// Retrying an available or running job is refused.
pub async fn retry_available_or_running_job_is_invalid_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    for st in [JobState::Available, JobState::Running] {
        let m = env.job_in_state(st, &format!("q-{st}")).await;
        let before = env.snapshot(m.id).await;
        assert_invalid_state(env.retry(m.id).await, st);
        env.assert_unchanged(&before, &format!("retry a {st} job"))
            .await;
    }
}

/// Deleting a finished job removes it and its events.
pub async fn delete_finished_job_removes_it_and_its_events(h: &dyn Harness) {
    let env = Env::new(h).await;
    let keep = env.enqueue(r#"{"kind":"k","queue":"keep"}"#).await.id;
    for st in [JobState::Completed, JobState::Dead, JobState::Cancelled] {
        let m = env.job_in_state(st, &format!("q-{st}")).await;
        env.delete(m.id).await.expect("delete");
        env.assert_gone(m.id).await;
        assert_not_found(env.delete(m.id).await);
    }
    assert_eq!(env.list_all(&list_params()).await, [keep]);
    assert_eq!(env.events(keep).await.len(), 1);
}

/// Jobs that are not finished cannot be deleted.
pub async fn delete_unfinished_job_is_invalid_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    for st in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
    ] {
        let m = env.job_in_state(st, &format!("q-{st}")).await;
        let before = env.snapshot(m.id).await;
        assert_invalid_state(env.delete(m.id).await, st);
        env.assert_unchanged(&before, &format!("delete a {st} job"))
            .await;
    }
}

/// Deleting an unknown job is `NotFound`.
pub async fn delete_unknown_job_is_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert_not_found(env.delete(JobId::new()).await);
    assert_not_found(env.cancel(JobId::new()).await);
    assert_not_found(env.retry(JobId::new()).await);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Admin {
    Cancel,
    Retry,
    Delete,
}

/// What the state table says `action` does to a job in `state`: the new state, `None` for
/// "gone", or `Err` for `InvalidState`.
fn table(state: JobState, action: Admin) -> Result<Option<JobState>, ()> {
    use JobState::*;
    match (action, state) {
        (Admin::Cancel, Scheduled | Available | Retryable | Pending) => Ok(Some(Cancelled)),
        (Admin::Cancel, Running) => Ok(Some(Running)),
        (Admin::Retry, Dead | Cancelled | Completed | Scheduled | Retryable) => Ok(Some(Available)),
        (Admin::Delete, Completed | Dead | Cancelled) => Ok(None),
        _ => Err(()),
    }
}

/// Cancel, retry and delete on a job of every state: allowed pairs move it as the semantics
/// table says, every other pair is `InvalidState` and changes nothing.
pub async fn admin_triggers_follow_the_state_table(h: &dyn Harness) {
    let env = Env::new(h).await;
    for st in REACHABLE_STATES {
        for action in [Admin::Cancel, Admin::Retry, Admin::Delete] {
            let what = format!("{action:?} a {st} job");
            let m = env.job_in_state(st, &format!("q-{st}-{action:?}")).await;
            let before = env.snapshot(m.id).await;
            let got = match action {
                Admin::Cancel => env.cancel(m.id).await.map(|j| Some(j.state)),
                Admin::Retry => env.retry(m.id).await.map(|j| Some(j.state)),
                Admin::Delete => env.delete(m.id).await.map(|()| None),
            };
            match table(st, action) {
                Ok(Some(to)) => {
                    assert_eq!(got, Ok(Some(to)), "{what}");
                    assert_eq!(env.state(m.id).await, to, "{what}");
                    assert_eq!(
                        env.events(m.id).await.len(),
                        before.events.len() + 1,
                        "{what}: one event"
                    );
                }
                Ok(None) => {
                    assert_eq!(got, Ok(None), "{what}");
                    env.assert_gone(m.id).await;
                }
                Err(()) => {
                    assert_invalid_state(got, st);
                    env.assert_unchanged(&before, &what).await;
                }
            }
        }
    }
}

/// Cancel, retry and delete name the job's namespace; from another one the job is not found.
pub async fn admin_on_another_namespace_is_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue_in("a", r#"{"kind":"k"}"#).await.id;
    let in_b = job_ref_in("b", id);
    assert_not_found(env.store().job_cancel(&in_b, API).await);
    assert_not_found(env.store().job_retry(&in_b, API).await);
    assert_not_found(env.store().job_delete(&in_b).await);
    let j = env
        .store()
        .job_get(&job_ref_in("a", id))
        .await
        .expect("get");
    assert_eq!(j.state, JobState::Available);
    let cancelled = env
        .store()
        .job_cancel(&job_ref_in("a", id), API)
        .await
        .expect("cancel in its namespace");
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_not_found(env.store().job_delete(&in_b).await);
}
