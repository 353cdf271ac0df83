//! Queues and workers: `queue_list`, `queue_get`, `queue_set_paused`, `queue_retry_dead`,
//! `queue_purge`, `worker_running_list`.
//!
//! Semantics: queues exist implicitly (an unknown one is empty and not paused, never an error);
//! a listing shows every queue that has jobs or configuration, with a count for every state;
//! retrying a queue's dead letters makes them available with attempt 0; purging deletes the
//! jobs of one finished state, and refuses any other state.

use std::collections::BTreeMap;

use hopper_store::{JobLeaseParams, QueueInfo, StoreError, WorkerRunning};
use hopper_types::{JobId, JobState, QueueConfig};

use crate::Harness;
use crate::support::*;

/// Counts with every state present, as given (zero elsewhere).
fn counts(nonzero: &[(JobState, u64)]) -> BTreeMap<JobState, u64> {
    let mut m: BTreeMap<JobState, u64> = JobState::ALL.into_iter().map(|s| (s, 0)).collect();
    for (s, n) in nonzero {
        m.insert(*s, *n);
    }
    m
}

/// A queue listing names every queue with jobs, in name order, with exact counts per state.
pub async fn queue_list_counts_jobs_per_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    for st in [
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
        JobState::Scheduled,
        JobState::Available,
        JobState::Available,
    ] {
        env.job_in_state(st, "alpha").await;
    }
    env.enqueue(r#"{"kind":"k","queue":"beta"}"#).await;
    env.enqueue_in("other", r#"{"kind":"k","queue":"gamma"}"#)
        .await;

    let queues = env.store().queue_list(NS).await.expect("queues");
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(
        queues[0].counts,
        counts(&[
            (JobState::Scheduled, 1),
            (JobState::Available, 2),
            (JobState::Running, 1),
            (JobState::Retryable, 1),
            (JobState::Completed, 1),
            (JobState::Dead, 1),
            (JobState::Cancelled, 1),
        ])
    );
    assert_eq!(queues[1].counts, counts(&[(JobState::Available, 1)]));
    assert!(queues.iter().all(|q| !q.paused));
    assert_eq!(
        env.store().queue_get(NS, "alpha").await.expect("queue"),
        queues[0]
    );

    let other = env.store().queue_list("other").await.expect("queues");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].name, "gamma");
    assert!(
        env.store()
            .queue_list("nobody")
            .await
            .expect("queues")
            .is_empty()
    );
}

/// `oldest_available_age_ms` is how long the queue's oldest available job has waited.
pub async fn queue_list_reports_oldest_available_age(h: &dyn Harness) {
    let env = Env::new(h).await;
    let age = async |name: &str| {
        env.store()
            .queue_get(NS, name)
            .await
            .expect("queue")
            .oldest_available_age_ms
    };
    env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    env.advance(2000);
    env.enqueue(r#"{"kind":"k","queue":"q"}"#).await;
    env.advance(3000);
    assert_eq!(age("q").await, Some(5000));
    env.lease_one("q").await;
    assert_eq!(age("q").await, Some(3000));
    env.lease_one("q").await;
    assert_eq!(age("q").await, None, "running jobs do not wait");
    assert_eq!(age("empty").await, None);
}

/// An unknown queue is empty and not paused, never an error.
pub async fn queue_get_of_an_unknown_queue_is_empty(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue(r#"{"kind":"k","queue":"known"}"#).await;
    assert_eq!(
        env.store().queue_get(NS, "unknown").await,
        Ok(QueueInfo {
            name: "unknown".into(),
            paused: false,
            counts: counts(&[]),
            oldest_available_age_ms: None,
            config: QueueConfig::default(),
        })
    );
}

/// Pausing and resuming answer the queue; a paused queue is listed even without jobs.
pub async fn queue_pause_and_resume(h: &dyn Harness) {
    let env = Env::new(h).await;
    let store = env.store();
    let paused = store
        .queue_set_paused(NS, "fresh", true)
        .await
        .expect("pause");
    assert_eq!(
        paused,
        QueueInfo {
            name: "fresh".into(),
            paused: true,
            counts: counts(&[]),
            oldest_available_age_ms: None,
            config: QueueConfig {
                paused: true,
                ..Default::default()
            },
        }
    );
    assert_eq!(
        store.queue_list(NS).await.expect("queues"),
        std::slice::from_ref(&paused)
    );
    assert_eq!(store.queue_set_paused(NS, "fresh", true).await, Ok(paused));
    assert!(store.queue_get(NS, "fresh").await.expect("queue").paused);

    let resumed = store
        .queue_set_paused(NS, "fresh", false)
        .await
        .expect("resume");
    assert!(!resumed.paused);
    assert!(!store.queue_get(NS, "fresh").await.expect("queue").paused);
    env.enqueue(r#"{"kind":"k","queue":"fresh"}"#).await;
    assert_eq!(env.lease(&["fresh"], 1).await.len(), 1);
}

/// Pausing a queue in one namespace leaves the same-named queue of another one running.
pub async fn queue_pause_is_per_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue_in("a", r#"{"kind":"k","queue":"q"}"#).await;
    let b = env.enqueue_in("b", r#"{"kind":"k","queue":"q"}"#).await.id;
    env.store()
        .queue_set_paused("a", "q", true)
        .await
        .expect("pause");
    assert!(!env.store().queue_get("b", "q").await.expect("queue").paused);
    let lease_in = |ns: &str| JobLeaseParams {
        namespace: ns.into(),
        ..lease_params(&["q"], 10)
    };
    assert!(env.lease_with(lease_in("a")).await.is_empty());
    let got: Vec<JobId> = env
        .lease_with(lease_in("b"))
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [b]);
}

/// Retrying a queue's dead letters makes each available with attempt 0; other queues,
/// namespaces and states are untouched.
pub async fn queue_retry_dead_retries_only_that_queues_dead_jobs(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut dead = Vec::new();
    for _ in 0..3 {
        dead.push(env.job_in_state(JobState::Dead, "q").await.id);
    }
    let untouched = [
        env.job_in_state(JobState::Completed, "q").await.id,
        env.job_in_state(JobState::Cancelled, "q").await.id,
        env.job_in_state(JobState::Available, "q").await.id,
        env.job_in_state(JobState::Dead, "other").await.id,
    ];
    let mut snaps = Vec::new();
    for id in &untouched {
        snaps.push(env.snapshot(*id).await);
    }
    let l = env.enqueue_in("b", r#"{"kind":"k","queue":"q"}"#).await.id;
    let leased_b = leased(
        env.lease_with(JobLeaseParams {
            namespace: "b".into(),
            ..lease_params(&["q"], 1)
        })
        .await
        .pop()
        .expect("leased"),
    );
    assert_eq!(leased_b.id, l);
    env.ack_in(
        "b",
        l,
        &leased_b.token,
        hopper_store::AckOutcome::Failed(failure(false)),
    )
    .await
    .expect("fail");

    env.advance(10);
    assert_eq!(env.store().queue_retry_dead(NS, "q", "admin").await, Ok(3));
    for id in &dead {
        let j = env.get(*id).await;
        assert_eq!((j.state, j.attempt), (JobState::Available, 0));
        assert_eq!(j.available_at, env.now());
        assert_eq!(j.errors.len(), 1, "errors are kept");
        assert_eq!(
            env.history(*id).await.last().unwrap(),
            "dead -> available (retry) by admin"
        );
    }
    for s in &snaps {
        env.assert_unchanged(s, "queue retry of another job").await;
    }
    let b = env.store().job_get(&job_ref_in("b", l)).await.expect("get");
    assert_eq!(b.state, JobState::Dead);
    assert_eq!(env.store().queue_retry_dead(NS, "q", "admin").await, Ok(0));
}

/// Purging deletes every job of the queue in one finished state, with their events.
pub async fn queue_purge_deletes_one_finished_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    let dead = [
        env.job_in_state(JobState::Dead, "q").await.id,
        env.job_in_state(JobState::Dead, "q").await.id,
    ];
    let completed = env.job_in_state(JobState::Completed, "q").await.id;
    let available = env.job_in_state(JobState::Available, "q").await.id;
    let other_dead = env.job_in_state(JobState::Dead, "other").await.id;

    assert_eq!(
        env.store().queue_purge(NS, "q", JobState::Dead).await,
        Ok(2)
    );
    for id in dead {
        env.assert_gone(id).await;
    }
    assert_eq!(env.state(completed).await, JobState::Completed);
    assert_eq!(env.state(available).await, JobState::Available);
    assert_eq!(env.state(other_dead).await, JobState::Dead);
    assert_eq!(
        env.store().queue_purge("b", "q", JobState::Completed).await,
        Ok(0)
    );
    assert_eq!(env.state(completed).await, JobState::Completed);
    assert_eq!(
        env.store().queue_purge(NS, "q", JobState::Completed).await,
        Ok(1)
    );
    env.assert_gone(completed).await;
    assert_eq!(
        env.store().queue_purge(NS, "q", JobState::Cancelled).await,
        Ok(0)
    );
}

/// Purging a state that is not finished is an invalid argument and deletes nothing.
pub async fn queue_purge_refuses_unfinished_states(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut ids = Vec::new();
    for st in [
        JobState::Scheduled,
        JobState::Running,
        JobState::Retryable,
        JobState::Available,
    ] {
        ids.push(env.job_in_state(st, "q").await.id);
    }
    for st in [
        JobState::Pending,
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
    ] {
        match env.store().queue_purge(NS, "q", st).await {
            Err(StoreError::InvalidArgument { .. }) => {}
            other => panic!("purge of {st}: expected InvalidArgument, got {other:?}"),
        }
    }
    let mut listed = env.list_all(&list_params()).await;
    listed.sort();
    assert_eq!(listed, ids);
}

/// Running jobs are counted per worker, with the queues they come from, per namespace.
pub async fn worker_running_list_counts_running_jobs_per_worker(h: &dyn Harness) {
    let env = Env::new(h).await;
    for q in ["q1", "q1", "q1", "q2", "q3"] {
        env.enqueue(&format!(r#"{{"kind":"k","queue":"{q}"}}"#))
            .await;
    }
    env.enqueue_in("b", r#"{"kind":"k","queue":"q1"}"#).await;
    let as_worker = |w: &str, queues: &[&str], n: usize, ns: &str| JobLeaseParams {
        namespace: ns.into(),
        worker_id: w.into(),
        ..lease_params(queues, n)
    };
    assert_eq!(
        env.lease_with(as_worker("w1", &["q1"], 2, NS)).await.len(),
        2
    );
    assert_eq!(
        env.lease_with(as_worker("w1", &["q2"], 1, NS)).await.len(),
        1
    );
    assert_eq!(
        env.lease_with(as_worker("w2", &["q1"], 1, NS)).await.len(),
        1
    );
    let done = leased(
        env.lease_with(as_worker("w3", &["q3"], 1, NS))
            .await
            .pop()
            .unwrap(),
    );
    env.complete(&done).await.expect("complete");
    assert_eq!(
        env.lease_with(as_worker("w4", &["q1"], 1, "b")).await.len(),
        1
    );

    let mut workers = env.store().worker_running_list(NS).await.expect("workers");
    workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    for w in &mut workers {
        w.queues.sort();
    }
    assert_eq!(
        workers,
        [
            WorkerRunning {
                worker_id: "w1".into(),
                queues: vec!["q1".into(), "q2".into()],
                running: 3,
            },
            WorkerRunning {
                worker_id: "w2".into(),
                queues: vec!["q1".into()],
                running: 1,
            },
        ]
    );
}
