//! Enqueue: `job_insert_many`, its defaults, `run_at`, batches, and idempotency keys.
//!
//! Semantics: a job starts `scheduled` or `available` by its `run_at`; a batch is atomic; an
//! idempotency key creates at most one job per (namespace, key): the same queue, kind and args
//! answer the existing job as a duplicate, different content is an `IdempotencyConflict` that
//! fails the whole call, and the key is remembered even after its job is gone.

use hopper_store::{JobInsertParams, StoreError};
use hopper_types::{Backoff, JobState};

use crate::Harness;
use crate::support::*;

/// A plain enqueue stores the job `available` now, with every default of the semantics table.
pub async fn insert_creates_an_available_job_with_defaults(h: &dyn Harness) {
    let env = Env::new(h).await;
    let nj = new_job(r#"{"kind":"send_email","args":{"to":"a@example.com"}}"#);
    let id = nj.id;
    let r = env.insert(vec![nj]).await.expect("insert");
    assert_eq!(r.len(), 1);
    assert!(!r[0].duplicate);
    assert_eq!(r[0].id, id, "the id assigned before insert is kept");
    let j = r[0].job.clone().expect("the new job is returned");

    assert_eq!(j.id, id);
    assert_eq!(j.namespace, "default");
    assert_eq!(j.queue, "default");
    assert_eq!(j.kind, "send_email");
    assert_eq!(j.args.get(), r#"{"to":"a@example.com"}"#);
    assert_eq!(j.priority, 0);
    assert_eq!(j.state, JobState::Available);
    assert_eq!(j.attempt, 0);
    assert_eq!(j.max_attempts, 25);
    assert_eq!(j.backoff, Backoff::default());
    assert_eq!(j.timeout_ms, 30 * 60 * 1000);
    assert_eq!(j.idempotency_key, None);
    assert!(j.tags.is_empty());
    assert_eq!(j.meta.get(), "{}");
    assert_eq!(j.traceparent, None);
    assert_eq!(j.lease_seq, 0);
    assert!(j.errors.is_empty());
    assert!(j.attempts.is_empty());
    assert!(j.result.is_none());
    assert!(j.progress.is_none());
    assert_eq!(j.created_at, T0);
    assert_eq!(j.available_at, T0);
    assert_eq!(j.started_at, None);
    assert_eq!(j.finished_at, None);
    assert_eq!(j.lease_expires_at, None);
    assert_eq!(j.worker_id, None);
    assert!(!j.cancel_requested);

    assert_same_job(&env.get(id).await, &j);
}

/// Every option given at enqueue comes back exactly; args and meta as the very JSON text given.
pub async fn insert_keeps_every_field_as_given(h: &dyn Harness) {
    let env = Env::new(h).await;
    let j = env
        .enqueue(
            r#"{"kind":"report.build","queue":"reports:eu-1","args":{"b": [1, 2], "a":"x"},
                "priority":-7,"max_attempts":3,"backoff":{"kind":"fixed","delay_ms":1500},
                "timeout_ms":5000,"idempotency_key":"rk-1","tags":["eu","nightly"],
                "meta":{"owner":"ops", "n":1},
                "traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#,
        )
        .await;
    let got = env.get(j.id).await;
    assert_same_job(&got, &j);
    assert_eq!(got.queue, "reports:eu-1");
    assert_eq!(got.kind, "report.build");
    assert_eq!(got.args.get(), r#"{"b": [1, 2], "a":"x"}"#);
    assert_eq!(got.priority, -7);
    assert_eq!(got.max_attempts, 3);
    assert_eq!(got.backoff, Backoff::Fixed { delay_ms: 1500 });
    assert_eq!(got.timeout_ms, 5000);
    assert_eq!(got.idempotency_key.as_deref(), Some("rk-1"));
    assert_eq!(got.tags, ["eu", "nightly"]);
    assert_eq!(got.meta.get(), r#"{"owner":"ops", "n":1}"#);
    assert_eq!(
        got.traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );

    // Extreme priorities and a null args are stored as they are.
    let hi = env.enqueue(r#"{"kind":"k","priority":32767}"#).await;
    let lo = env.enqueue(r#"{"kind":"k","priority":-32768}"#).await;
    assert_eq!(env.get(hi.id).await.priority, 32767);
    assert_eq!(env.get(lo.id).await.priority, -32768);
    assert_eq!(env.get(hi.id).await.args.get(), "null");
}

/// `run_at` (or `delay_ms`) in the future makes the job `scheduled` until then.
pub async fn insert_with_run_at_in_the_future_is_scheduled(h: &dyn Harness) {
    let env = Env::new(h).await;
    let at = env
        .enqueue(r#"{"kind":"k","run_at":"2026-01-01T00:01:00Z"}"#)
        .await;
    assert_eq!(at.state, JobState::Scheduled);
    assert_eq!(at.available_at, T0.plus_ms(60_000));
    assert_eq!(at.created_at, T0);

    let delayed = env.enqueue(r#"{"kind":"k","delay_ms":5000}"#).await;
    assert_eq!(delayed.state, JobState::Scheduled);
    assert_eq!(delayed.available_at, T0.plus_ms(5000));

    let got = env.get(at.id).await;
    assert_eq!(
        (got.state, got.available_at),
        (JobState::Scheduled, T0.plus_ms(60_000))
    );
}

/// `run_at` now or in the past means available now.
pub async fn insert_with_run_at_in_the_past_is_available_now(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.advance(1234);
    for run_at in ["2025-06-01T00:00:00Z", "2026-01-01T00:00:01.234Z"] {
        let j = env
            .enqueue(&format!(r#"{{"kind":"k","run_at":"{run_at}"}}"#))
            .await;
        assert_eq!(j.state, JobState::Available, "run_at {run_at}");
        assert_eq!(j.available_at, T0.plus_ms(1234), "run_at {run_at}");
    }
    let zero = env.enqueue(r#"{"kind":"k","delay_ms":0}"#).await;
    assert_eq!(zero.state, JobState::Available);
}

/// A batch answers one entry per job, in request order.
pub async fn insert_many_answers_in_request_order(h: &dyn Harness) {
    let env = Env::new(h).await;
    let jobs = vec![
        new_job(r#"{"kind":"first"}"#),
        new_job(r#"{"kind":"second","delay_ms":1000}"#),
        new_job(r#"{"kind":"third","queue":"other"}"#),
    ];
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let r = env.insert(jobs).await.expect("insert");
    assert_eq!(r.iter().map(|i| i.id).collect::<Vec<_>>(), ids);
    let kinds: Vec<_> = r
        .iter()
        .map(|i| i.job.as_ref().expect("job").kind.clone())
        .collect();
    assert_eq!(kinds, ["first", "second", "third"]);
    assert!(r.iter().all(|i| !i.duplicate));
    assert_eq!(env.state(ids[1]).await, JobState::Scheduled);
    assert_eq!(env.list_all(&list_params()).await.len(), 3);
}

/// The same key with the same queue, kind and args answers the existing job, creating nothing.
pub async fn idempotency_key_with_same_content_answers_the_existing_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = env
        .enqueue(r#"{"kind":"k","idempotency_key":"key-1","args":{"a":1}}"#)
        .await;
    env.advance(1000);
    // Options other than queue, kind and args do not count.
    let again = new_job(r#"{"kind":"k","idempotency_key":"key-1","args":{"a":1},"priority":9}"#);
    let again_id = again.id;
    let r = env.insert(vec![again]).await.expect("insert");
    assert_eq!(r.len(), 1);
    assert!(r[0].duplicate, "marked as a duplicate");
    assert_eq!(r[0].id, first.id);
    assert_same_job(r[0].job.as_ref().expect("the existing job"), &first);

    assert_not_found(env.try_get(again_id).await);
    assert_eq!(env.list_all(&list_params()).await, [first.id]);
    assert_eq!(env.events(first.id).await.len(), 1, "no new event");
}

/// Args are compared as JSON values: key order and spacing do not make new content.
pub async fn idempotency_key_compares_args_as_json_values(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = env
        .enqueue(r#"{"kind":"k","idempotency_key":"key-1","args":{"a":1,"b":[1,2]}}"#)
        .await;
    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"key-1","args":{ "b" : [1, 2], "a" : 1 }}"#,
        )])
        .await
        .expect("a reordered args object is the same content");
    assert!(r[0].duplicate);
    assert_eq!(r[0].id, first.id);
}

/// A key already used with a different queue, kind or args is a conflict naming the holder.
pub async fn idempotency_key_with_different_content_conflicts(h: &dyn Harness) {
    let env = Env::new(h).await;
    let first = env
        .enqueue(r#"{"kind":"k","queue":"q","idempotency_key":"key-1","args":{"a":1}}"#)
        .await;
    for other in [
        r#"{"kind":"k","queue":"q","idempotency_key":"key-1","args":{"a":2}}"#,
        r#"{"kind":"k","queue":"q","idempotency_key":"key-1"}"#,
        r#"{"kind":"k","queue":"other","idempotency_key":"key-1","args":{"a":1}}"#,
        r#"{"kind":"k2","queue":"q","idempotency_key":"key-1","args":{"a":1}}"#,
    ] {
        let r = env.insert(vec![new_job(other)]).await;
        assert_eq!(
            r.map(|v| v.len()),
            Err(StoreError::IdempotencyConflict {
                index: 0,
                existing: first.id
            }),
            "{other}"
        );
    }
    assert_eq!(env.list_all(&list_params()).await, [first.id]);
}

/// A duplicate answers the existing job as it is now, not as it was created.
pub async fn idempotency_key_answers_the_job_in_its_current_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","idempotency_key":"key-1"}"#)
        .await;
    env.complete(&l).await.expect("complete");
    let r = env
        .insert(vec![new_job(r#"{"kind":"k","idempotency_key":"key-1"}"#)])
        .await
        .expect("insert");
    assert!(r[0].duplicate);
    let j = r[0].job.as_ref().expect("the job still exists");
    assert_eq!(j.state, JobState::Completed);
    assert_same_job(j, &env.get(l.id).await);
}

/// A batch with one conflicting key fails whole: none of its jobs, nor their keys, exist after.
pub async fn batch_with_one_conflicting_key_creates_nothing(h: &dyn Harness) {
    let env = Env::new(h).await;
    let taken = env
        .enqueue(r#"{"kind":"k","idempotency_key":"taken","args":1}"#)
        .await;
    let a = new_job(r#"{"kind":"k","idempotency_key":"fresh","args":1}"#);
    let b = new_job(r#"{"kind":"k"}"#);
    let c = new_job(r#"{"kind":"k","idempotency_key":"taken","args":2}"#);
    let (a_id, b_id) = (a.id, b.id);
    let r = env.insert(vec![a, b, c]).await;
    assert_eq!(
        r.map(|v| v.len()),
        Err(StoreError::IdempotencyConflict {
            index: 2,
            existing: taken.id
        })
    );
    assert_not_found(env.try_get(a_id).await);
    assert_not_found(env.try_get(b_id).await);
    assert_eq!(env.list_all(&list_params()).await, [taken.id]);
    assert_eq!(env.history(taken.id).await.len(), 1);

    // The key of the failed batch was not remembered: other content under it is a new job.
    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"fresh","args":"else"}"#,
        )])
        .await
        .expect("the key is free");
    assert!(!r[0].duplicate);
}

/// A batch may mix duplicates and new jobs; each is answered in its place.
pub async fn batch_mixing_duplicates_and_new_jobs(h: &dyn Harness) {
    let env = Env::new(h).await;
    let existing = env.enqueue(r#"{"kind":"k","idempotency_key":"e"}"#).await;
    let fresh = new_job(r#"{"kind":"k","idempotency_key":"f"}"#);
    let fresh_id = fresh.id;
    let r = env
        .insert(vec![
            fresh,
            new_job(r#"{"kind":"k","idempotency_key":"e"}"#),
        ])
        .await
        .expect("insert");
    assert_eq!(
        r.iter().map(|i| (i.id, i.duplicate)).collect::<Vec<_>>(),
        [(fresh_id, false), (existing.id, true)]
    );
    assert_eq!(env.list_all(&list_params()).await.len(), 2);
}

/// A key is remembered after its job is deleted: same content is a duplicate with no job,
/// different content still conflicts.
pub async fn idempotency_key_outlives_its_deleted_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env
        .enqueue_and_lease(r#"{"kind":"k","idempotency_key":"gone","args":[1]}"#)
        .await;
    env.complete(&l).await.expect("complete");
    env.delete(l.id).await.expect("delete");

    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"gone","args":[1]}"#,
        )])
        .await
        .expect("insert");
    assert!(r[0].duplicate);
    assert_eq!(r[0].id, l.id);
    assert!(r[0].job.is_none(), "the job itself is gone");

    let r = env
        .insert(vec![new_job(
            r#"{"kind":"k","idempotency_key":"gone","args":[2]}"#,
        )])
        .await;
    assert_eq!(
        r.map(|v| v.len()),
        Err(StoreError::IdempotencyConflict {
            index: 0,
            existing: l.id
        })
    );
    assert!(env.list_all(&list_params()).await.is_empty());
}

/// Keys are per namespace: one key in two namespaces makes two jobs.
pub async fn idempotency_keys_are_per_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    let a = env
        .enqueue_in("a", r#"{"kind":"k","idempotency_key":"shared"}"#)
        .await;
    let b = env
        .enqueue_in("b", r#"{"kind":"k","idempotency_key":"shared","args":2}"#)
        .await;
    assert_ne!(a.id, b.id);
    assert_eq!(a.namespace, "a");
    assert_eq!(b.namespace, "b");
    let again = env
        .insert(vec![new_job_in(
            "b",
            r#"{"kind":"k","idempotency_key":"shared","args":2}"#,
        )])
        .await
        .expect("insert");
    assert!(again[0].duplicate);
    assert_eq!(again[0].id, b.id);
}

/// Enqueue is recorded as an event from nothing to the first state, by the given actor, at now.
pub async fn insert_records_an_enqueue_event(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.advance(5);
    let now = env.enqueue(r#"{"kind":"k"}"#).await;
    let later = env.enqueue(r#"{"kind":"k","delay_ms":100}"#).await;
    assert_eq!(
        env.history(now.id).await,
        ["- -> available (enqueue) by api"]
    );
    assert_eq!(
        env.history(later.id).await,
        ["- -> scheduled (enqueue) by api"]
    );
    let ev = &env.events(now.id).await[0];
    assert_eq!(ev.at, T0.plus_ms(5));

    let nj = new_job(r#"{"kind":"k"}"#);
    let id = nj.id;
    env.store()
        .job_insert_many(JobInsertParams {
            jobs: vec![nj],
            actor: "producer:billing".to_string(),
        })
        .await
        .expect("insert");
    assert_eq!(
        env.history(id).await,
        ["- -> available (enqueue) by producer:billing"]
    );
}
