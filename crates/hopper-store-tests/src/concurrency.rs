//! Many tasks against one store at the same moment (spawned on the multi-threaded runtime,
//! released together by a barrier).
//!
//! Semantics: concurrent enqueues of one idempotency key create exactly one job; batches stay
//! atomic under contention; a job is never leased to two workers at once; concurrent
//! reports of outcomes for one lease apply exactly one; a rescue racing a completion leaves
//! exactly one of them applied.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use hopper_store::{AckOutcome, JobAck, JobInsertParams, Store, StoreError};
use hopper_types::{JobId, JobState};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

/// Runs `n` copies of `f(i, store)` at once and returns their results in task order.
async fn all_at_once<T, F, Fut>(env: &Env, n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut set = JoinSet::new();
    for i in 0..n {
        let fut = f(i, env.store_arc());
        let barrier = barrier.clone();
        set.spawn(async move {
            barrier.wait().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<(usize, T)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

/// 50 concurrent enqueues with one key and the same content create exactly one job; every
/// other answer is a duplicate naming it.
pub async fn concurrent_enqueues_of_one_key_create_one_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let results = all_at_once(&env, 50, |_, store| async move {
        store
            .job_insert_many(JobInsertParams {
                jobs: vec![new_job(
                    r#"{"kind":"charge","idempotency_key":"order-42","args":{"cents":990}}"#,
                )],
                actor: API.into(),
            })
            .await
    })
    .await;
    let mut created = Vec::new();
    let mut ids = BTreeSet::new();
    for r in results {
        let mut r = r.expect("every enqueue succeeds");
        assert_eq!(r.len(), 1);
        let ins = r.pop().unwrap();
        ids.insert(ins.id);
        if !ins.duplicate {
            created.push(ins.id);
        }
    }
    assert_eq!(created.len(), 1, "exactly one enqueue created the job");
    assert_eq!(ids.len(), 1, "every answer names the same job");
    assert_eq!(env.list_all(&list_params()).await, created);
    assert_eq!(env.events(created[0]).await.len(), 1);
}

/// Concurrent batches that share keys (in different orders) all succeed and create one job
/// per key.
pub async fn concurrent_batches_sharing_keys_create_one_job_per_key(h: &dyn Harness) {
    let env = Env::new(h).await;
    let results = all_at_once(&env, 20, |i, store| async move {
        let a = new_job(r#"{"kind":"k","idempotency_key":"a"}"#);
        let b = new_job(r#"{"kind":"k","idempotency_key":"b"}"#);
        let own = new_job(&format!(r#"{{"kind":"k","idempotency_key":"own-{i}"}}"#));
        let jobs = if i % 2 == 0 {
            vec![a, b, own]
        } else {
            vec![b, a, own]
        };
        store
            .job_insert_many(JobInsertParams {
                jobs,
                actor: API.into(),
            })
            .await
    })
    .await;
    let mut by_key: HashMap<String, BTreeSet<JobId>> = HashMap::new();
    let mut created = 0;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("batch {i}: {e:?}"));
        assert_eq!(r.len(), 3);
        let keys = if i % 2 == 0 { ["a", "b"] } else { ["b", "a"] };
        for (k, ins) in keys.iter().zip(&r) {
            by_key.entry(k.to_string()).or_default().insert(ins.id);
        }
        assert!(!r[2].duplicate, "own key of batch {i}");
        created += r.iter().filter(|i| !i.duplicate).count();
    }
    assert_eq!(by_key["a"].len(), 1);
    assert_eq!(by_key["b"].len(), 1);
    assert_eq!(created, 22);
    assert_eq!(env.list_all(&list_params()).await.len(), 22);
}

/// Eight workers leasing from the same queues at once never get the same job; every job is
/// leased exactly once.
pub async fn concurrent_leases_never_hand_out_a_job_twice(h: &dyn Harness) {
    let env = Env::new(h).await;
    let jobs: Vec<_> = (0..200)
        .map(|i| {
            new_job(&format!(
                r#"{{"kind":"k","queue":"q{}","priority":{}}}"#,
                i % 2,
                i % 3
            ))
        })
        .collect();
    let all: BTreeSet<JobId> = jobs.iter().map(|j| j.id).collect();
    env.insert(jobs).await.expect("insert");

    let per_worker = all_at_once(&env, 8, |w, store| async move {
        let mut got = Vec::new();
        loop {
            let mut p = lease_params(&["q0", "q1"], 1 + w % 4);
            p.worker_id = format!("w{w}");
            let jobs = store.job_lease_many(p).await.expect("lease");
            if jobs.is_empty() {
                return got;
            }
            for j in jobs {
                let token = j.lease_token.clone().expect("token").0;
                if j.id.0.as_u128() % 2 == 0 {
                    let r = store
                        .job_ack_many(vec![JobAck {
                            job: job_ref(j.id),
                            lease_token: token,
                            outcome: AckOutcome::Completed { result: None },
                        }])
                        .await
                        .expect("ack");
                    assert!(r[0].is_ok(), "complete {}: {:?}", j.id, r[0]);
                }
                got.push((j.id, j.lease_seq));
            }
        }
    })
    .await;

    let mut seen = BTreeSet::new();
    for (id, seq) in per_worker.into_iter().flatten() {
        assert!(seen.insert(id), "job {id} was leased twice");
        assert_eq!(seq, 1);
    }
    assert_eq!(seen, all);
    for id in all.iter().take(20) {
        let j = env.get(*id).await;
        assert_eq!((j.attempt, j.lease_seq, j.attempts.len()), (1, 1, 1));
    }
}

/// Concurrent reports for one lease: one outcome wins, its repeats are Ok, the other outcome
/// is refused, and the job records a single transition.
pub async fn concurrent_repeats_of_one_outcome_apply_once(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"k"}"#).await;
    let results = all_at_once(&env, 12, |i, store| {
        let (id, token) = (l.id, l.token.clone());
        async move {
            let outcome = if i % 2 == 0 {
                AckOutcome::Completed { result: None }
            } else {
                AckOutcome::Failed(failure(false))
            };
            let mut r = store
                .job_ack_many(vec![JobAck {
                    job: job_ref(id),
                    lease_token: token,
                    outcome,
                }])
                .await
                .expect("ack");
            r.pop().unwrap().map(|j| j.state)
        }
    })
    .await;
    let end = env.state(l.id).await;
    let winner_parity = match end {
        JobState::Completed => 0,
        JobState::Dead => 1,
        other => panic!("ended {other}"),
    };
    for (i, r) in results.into_iter().enumerate() {
        if i % 2 == winner_parity {
            assert_eq!(r, Ok(end), "report {i}");
        } else {
            assert!(
                matches!(r, Err(StoreError::InvalidState { state, .. }) if state == end),
                "report {i}: {r:?}"
            );
        }
    }
    let out_of_running = env
        .events(l.id)
        .await
        .iter()
        .filter(|e| e.from == Some(JobState::Running))
        .count();
    assert_eq!(out_of_running, 1);
}

/// Completions racing a rescue of the same expired leases: each job ends exactly one way, and
/// the rescuer's count matches the completions that lost.
pub async fn rescue_racing_complete_applies_exactly_one(h: &dyn Harness) {
    let env = Env::new(h).await;
    for _ in 0..20 {
        env.enqueue(r#"{"kind":"k"}"#).await;
    }
    let leased: Vec<Leased> = env
        .lease(&["default"], 20)
        .await
        .into_iter()
        .map(leased)
        .collect();
    assert_eq!(leased.len(), 20);
    env.advance(LEASE_MS);

    let work = Arc::new(leased.clone());
    let results = all_at_once(&env, 21, |i, store| {
        let work = work.clone();
        async move {
            if i == 20 {
                let rescued = store.job_rescue_expired(1000).await.expect("rescue");
                return Race::Rescued(rescued.len() as u64);
            }
            let l = &work[i];
            let mut r = store
                .job_ack_many(vec![JobAck {
                    job: job_ref(l.id),
                    lease_token: l.token.clone(),
                    outcome: AckOutcome::Completed { result: None },
                }])
                .await
                .expect("ack");
            Race::Completed(r.pop().unwrap().map(|j| j.state))
        }
    })
    .await;
    let Race::Rescued(rescued) = results[20] else {
        unreachable!("task 20 rescues")
    };
    let mut lost = 0;
    for (l, r) in leased.iter().zip(&results[..20]) {
        let j = env.get(l.id).await;
        match r {
            Race::Completed(Ok(JobState::Completed)) => {
                assert_eq!(j.state, JobState::Completed);
                assert!(j.errors.is_empty());
            }
            Race::Completed(Err(StoreError::LeaseLost)) => {
                lost += 1;
                assert_eq!(j.state, JobState::Retryable);
                assert_eq!(j.errors[0].kind, "lease_expired");
            }
            other => panic!("complete of {}: {other:?}", l.id),
        }
        let out_of_running = env
            .events(l.id)
            .await
            .iter()
            .filter(|e| e.from == Some(JobState::Running))
            .count();
        assert_eq!(out_of_running, 1, "job {} left running once", l.id);
    }
    assert_eq!(rescued, lost, "rescued count vs completions refused");
}

/// What one task of the rescue race did.
#[derive(Debug, Clone)]
enum Race {
    /// The rescuer, with its count.
    Rescued(u64),
    /// A worker's completion, with its answer.
    Completed(Result<JobState, StoreError>),
}
