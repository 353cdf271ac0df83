//! Leasing: `job_lease_many`, what a lease records, the order jobs are handed out in,
//! batching, paused queues and namespaces.
//!
//! Semantics: only `available` jobs are leased; a lease makes the job `running`, counts an
//! attempt, grows `lease_seq` and hands out a fresh token; among the listed queues, served as
//! one, the highest priority goes first, then the earliest `available_at`, then the smallest
//! id; a paused queue hands out nothing while its running jobs keep their leases.

use std::collections::BTreeSet;

use hopper_store::JobLeaseParams;
use hopper_types::{Attempt, JobId, JobState};

use crate::Harness;
use crate::support::*;

/// A lease makes the job running and records worker, times, attempt, sequence and token.
pub async fn lease_marks_the_job_running(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue(r#"{"kind":"k","queue":"q"}"#).await.id;
    env.advance(10);
    let now = env.now();
    let jobs = env
        .lease_with(JobLeaseParams {
            namespace: NS.into(),
            queues: vec!["q".into()],
            worker_id: "host-1:pid-42".into(),
            max_jobs: 1,
            lease_ms: 45_000,
        })
        .await;
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j.id, id);
    assert_eq!(j.state, JobState::Running);
    assert_eq!(j.attempt, 1);
    assert_eq!(j.lease_seq, 1);
    assert!(!j.lease_token.as_ref().unwrap().0.is_empty());
    assert_eq!(j.lease_expires_at, Some(now.plus_ms(45_000)));
    assert_eq!(j.started_at, Some(now));
    assert_eq!(j.worker_id.as_deref(), Some("host-1:pid-42"));
    assert!(!j.cancel_requested);
    assert_eq!(j.finished_at, None);
    assert_eq!(
        j.attempts,
        [Attempt {
            lease_seq: 1,
            worker_id: "host-1:pid-42".into(),
            started_at: now,
            finished_at: None,
            outcome: None,
        }]
    );
    assert_same_job(&env.get(id).await, j);
    assert_eq!(
        env.history(id).await,
        [
            "- -> available (enqueue) by api",
            "available -> running (lease) by worker:host-1:pid-42",
        ]
    );
}

/// Queues with nothing available, or not listed, hand out nothing and change nothing.
pub async fn lease_of_empty_or_unlisted_queues_is_empty(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue(r#"{"kind":"k","queue":"q1"}"#).await.id;
    let before = env.snapshot(id).await;
    assert!(env.lease(&["q2"], 10).await.is_empty());
    assert!(env.lease(&["q2", "q3", "Q1"], 10).await.is_empty());
    env.assert_unchanged(&before, "leasing other queues").await;
}

/// Scheduled, running, retryable and finished jobs are never leased.
pub async fn lease_takes_only_available_jobs(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut snaps = Vec::new();
    for st in REACHABLE_STATES {
        if st != JobState::Available {
            let m = env.job_in_state(st, "q").await;
            snaps.push(env.snapshot(m.id).await);
        }
    }
    assert!(env.lease(&["q"], 100).await.is_empty());
    for s in &snaps {
        env.assert_unchanged(s, "lease of a queue without available jobs")
            .await;
    }
}

/// Leases go to the highest priority, then the earliest `available_at`, then the smallest id,
/// across every listed queue as if they were one; unlisted queues wait.
pub async fn lease_orders_by_priority_then_available_at_then_id_across_queues(h: &dyn Harness) {
    let env = Env::new(h).await;
    let j1 = env
        .enqueue(r#"{"kind":"j1","queue":"q1","delay_ms":10}"#)
        .await
        .id;
    let j2 = env.enqueue(r#"{"kind":"j2","queue":"q2"}"#).await.id;
    let j3 = env.enqueue(r#"{"kind":"j3","queue":"q1"}"#).await.id;
    let j4 = env
        .enqueue(r#"{"kind":"j4","queue":"q2","priority":10,"delay_ms":5}"#)
        .await
        .id;
    let j5 = env
        .enqueue(r#"{"kind":"j5","queue":"q3","priority":100}"#)
        .await
        .id;
    let j6 = env
        .enqueue(r#"{"kind":"j6","queue":"q1","priority":10}"#)
        .await
        .id;
    let j7 = env
        .enqueue(r#"{"kind":"j7","queue":"q2","priority":-5}"#)
        .await
        .id;
    env.advance(10);
    assert_eq!(env.promote().await, 2);

    // j6 and j4 share priority 10: j6 became available first. Among priority 0, j2 and j3
    // became available together (j2 has the smaller id), j1 later.
    let mut order = Vec::new();
    for _ in 0..6 {
        order.push(leased(env.lease(&["q1", "q2"], 1).await.pop().expect("a job")).id);
    }
    assert_eq!(order, [j6, j4, j2, j3, j1, j7]);
    assert!(env.lease(&["q1", "q2"], 1).await.is_empty());
    assert_eq!(env.state(j5).await, JobState::Available);
}

/// A batch lease takes the first `max_jobs` jobs of that order.
pub async fn lease_batch_takes_the_first_jobs_in_order(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut ids = Vec::new();
    for p in [1, 5, 3, 5, 0, 2] {
        ids.push(
            env.enqueue(&format!(r#"{{"kind":"k","priority":{p}}}"#))
                .await
                .id,
        );
    }
    let first: BTreeSet<JobId> = env
        .lease(&["default"], 3)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(first, BTreeSet::from([ids[1], ids[3], ids[2]]));
    let rest: BTreeSet<JobId> = env
        .lease(&["default"], 10)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(rest, BTreeSet::from([ids[0], ids[4], ids[5]]));
}

/// A batch larger than what is available takes everything, then nothing.
pub async fn lease_batch_takes_what_there_is(h: &dyn Harness) {
    let env = Env::new(h).await;
    let a = env.enqueue(r#"{"kind":"k"}"#).await.id;
    let b = env.enqueue(r#"{"kind":"k"}"#).await.id;
    let got: BTreeSet<JobId> = env
        .lease(&["default"], 10)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, BTreeSet::from([a, b]));
    assert!(env.lease(&["default"], 10).await.is_empty());
}

/// Every lease grows `lease_seq`, hands out a new token and adds an attempt entry; `attempt`
/// counts only counted attempts.
pub async fn lease_again_grows_lease_seq_and_changes_token(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l1 = env
        .enqueue_and_lease(r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":0}}"#)
        .await;
    env.release(&l1).await.expect("release");
    let l2 = env.lease_one("default").await;
    assert_eq!((l2.job.lease_seq, l2.job.attempt), (2, 1));
    assert_ne!(l2.token, l1.token);
    env.fail(&l2, true).await.expect("fail");
    assert_eq!(env.promote().await, 1);
    let l3 = env.lease_one("default").await;
    assert_eq!((l3.job.lease_seq, l3.job.attempt), (3, 2));
    assert_ne!(l3.token, l2.token);
    assert_ne!(l3.token, l1.token);
    let seqs: Vec<i64> = env
        .get(l3.id)
        .await
        .attempts
        .iter()
        .map(|a| a.lease_seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

/// Pausing a queue stops its leases, the other listed queues still serve; resuming restarts it.
pub async fn paused_queue_hands_out_nothing_and_resume_restarts_it(h: &dyn Harness) {
    let env = Env::new(h).await;
    let a = env
        .enqueue(r#"{"kind":"k","queue":"q1","priority":9}"#)
        .await
        .id;
    let b = env.enqueue(r#"{"kind":"k","queue":"q2"}"#).await.id;
    let info = env
        .store()
        .queue_set_paused(NS, "q1", true)
        .await
        .expect("pause");
    assert!(info.paused);
    assert!(env.lease(&["q1"], 10).await.is_empty());
    let got: Vec<JobId> = env
        .lease(&["q1", "q2"], 10)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [b]);
    assert_eq!(env.state(a).await, JobState::Available);

    let info = env
        .store()
        .queue_set_paused(NS, "q1", false)
        .await
        .expect("resume");
    assert!(!info.paused);
    let got: Vec<JobId> = env
        .lease(&["q1", "q2"], 10)
        .await
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, [a]);
}

/// Running jobs of a paused queue keep their leases: heartbeats and outcomes still work.
pub async fn pause_keeps_running_leases_alive(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k","queue":"q"}"#).await;
    env.store()
        .queue_set_paused(NS, "q", true)
        .await
        .expect("pause");
    env.advance(1000);
    let hb = env
        .heartbeat(&l, None)
        .await
        .expect("heartbeat while paused");
    assert_eq!(hb.lease_expires_at, env.now().plus_ms(LEASE_MS));
    let j = env.complete(&l).await.expect("complete while paused");
    assert_eq!(j.state, JobState::Completed);
}

/// A worker of one namespace never leases another namespace's jobs.
pub async fn lease_is_per_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env.enqueue_in("a", r#"{"kind":"k","queue":"q"}"#).await.id;
    let mut p = lease_params(&["q"], 10);
    p.namespace = "b".into();
    assert!(env.lease_with(p.clone()).await.is_empty());
    p.namespace = "a".into();
    let got: Vec<JobId> = env.lease_with(p).await.iter().map(|j| j.id).collect();
    assert_eq!(got, [id]);
}
