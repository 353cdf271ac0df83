//! Long-poll wake-ups: `Store::signals`.
//!
//! Semantics: an idle worker waiting for a queue must get a newly available job at once, with
//! no polling interval. So every commit that makes jobs available in a queue (insert,
//! promotion, release, retry, a queue's retry of dead jobs) wakes the listeners of that
//! (namespace, queue), after the commit: the woken worker's lease finds the job.

use std::time::Duration;

use hopper_types::JobState;

use crate::Harness;
use crate::support::*;

/// How long a wake-up may take before the test calls it missing (generous for slow CI; a
/// correct store wakes within milliseconds).
const WAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Arms a listener on `queue` of `namespace`, runs `action`, and answers whether the listener
/// was woken.
async fn wakes(env: &Env, namespace: &str, queue: &str, action: impl Future<Output = ()>) -> bool {
    let listener = env
        .store()
        .signals()
        .listen(namespace, &[queue.to_string()]);
    let ((), wait) = listener.wait_after(async || {}).await;
    action.await;
    tokio::time::timeout(WAKE_TIMEOUT, wait).await.is_ok()
}

/// An insert wakes the listeners of its queue and namespace; the woken worker finds the job.
pub async fn insert_wakes_listeners_of_its_queue(h: &dyn Harness) {
    let env = Env::new(h).await;
    let woke = wakes(&env, NS, "q", async {
        env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    })
    .await;
    assert!(woke, "insert into q wakes q's listener");
    assert_eq!(env.lease(&["q"], 1).await.len(), 1);

    let woke = wakes(&env, "a", "q", async {
        env.enqueue_in("a", r#"{"kind":"k","queue":"q"}"#).await;
    })
    .await;
    assert!(woke, "insert into namespace a wakes a's listener");

    // A batch wakes every queue it fills.
    let woke = wakes(&env, NS, "q2", async {
        env.insert(vec![
            new_job(r#"{"kind":"k","queue":"q1"}"#),
            new_job(r#"{"kind":"k","queue":"q2"}"#),
        ])
        .await
        .expect("insert");
    })
    .await;
    assert!(woke, "the second queue of a batch is woken");
}

/// Promotion of due jobs wakes their queue.
pub async fn promote_wakes_listeners(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue(r#"{"kind":"k","queue":"q","delay_ms":100}"#)
        .await;
    env.advance(100);
    let woke = wakes(&env, NS, "q", async {
        assert_eq!(env.promote().await, 1);
    })
    .await;
    assert!(woke, "promotion wakes the queue");
    assert_eq!(env.lease(&["q"], 1).await.len(), 1);
}

/// A release hands the job back and wakes its queue.
pub async fn release_wakes_listeners(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k","queue":"q"}"#).await;
    let woke = wakes(&env, NS, "q", async {
        env.release(&l).await.expect("release");
    })
    .await;
    assert!(woke, "release wakes the queue");
    assert_eq!(env.lease_one("q").await.id, l.id);
}

/// Retrying a dead job, or hurrying a scheduled one, wakes its queue.
pub async fn retry_wakes_listeners(h: &dyn Harness) {
    let env = Env::new(h).await;
    let dead = env.job_in_state(JobState::Dead, "q").await;
    let woke = wakes(&env, NS, "q", async {
        env.retry(dead.id).await.expect("retry");
    })
    .await;
    assert!(woke, "retry of a dead job wakes the queue");
    assert_eq!(env.lease_one("q").await.id, dead.id);

    let scheduled = env.job_in_state(JobState::Scheduled, "q").await;
    let woke = wakes(&env, NS, "q", async {
        env.retry(scheduled.id).await.expect("retry");
    })
    .await;
    assert!(woke, "retry of a scheduled job wakes the queue");
}

/// Retrying a queue's dead jobs wakes the queue.
pub async fn queue_retry_dead_wakes_listeners(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.job_in_state(JobState::Dead, "q").await;
    let woke = wakes(&env, NS, "q", async {
        assert_eq!(env.store().queue_retry_dead(NS, "q", API).await, Ok(1));
    })
    .await;
    assert!(woke, "queue retry wakes the queue");
    assert_eq!(env.lease(&["q"], 1).await.len(), 1);
}
