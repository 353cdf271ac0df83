//! Reading jobs: `job_get`, `job_list` (filters, search, keyset pagination) and `job_events`.
//!
//! Semantics: an unknown job, or one of another namespace, is `NotFound`; listings are newest
//! first by id and paged by id, so paging while jobs are added neither misses nor repeats any
//! job that existed when paging started; every transition is an event with from, to, time and
//! actor, oldest first.

use hopper_store::{JobListParams, StoreError};
use hopper_types::{JobId, JobState};

use crate::Harness;
use crate::support::*;

/// An id no job has is `NotFound`.
pub async fn get_unknown_job_is_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    env.enqueue(r#"{"kind":"k"}"#).await;
    assert_not_found(env.try_get(JobId::new()).await);
}

/// A job is invisible from another namespace.
pub async fn get_job_of_another_namespace_is_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    let j = env.enqueue_in("a", r#"{"kind":"k"}"#).await;
    assert_not_found(env.store().job_get(&job_ref_in("b", j.id)).await);
    assert_not_found(env.store().job_get(&job_ref(j.id)).await);
    let got = env
        .store()
        .job_get(&job_ref_in("a", j.id))
        .await
        .expect("get");
    assert_eq!(got.namespace, "a");
}

/// Listing answers the namespace's jobs, newest (largest id) first.
pub async fn list_is_newest_first_and_per_namespace(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(env.enqueue(&format!(r#"{{"kind":"k{i}"}}"#)).await.id);
    }
    let other = env.enqueue_in("other", r#"{"kind":"k"}"#).await;
    ids.reverse();

    let page = env.list(&list_params()).await;
    assert_eq!(page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.jobs[0].kind, "k4");
    assert_same_job(&page.jobs[0], &env.get(ids[0]).await);

    let in_other = env
        .list(&JobListParams {
            namespace: "other".to_string(),
            ..list_params()
        })
        .await;
    assert_eq!(
        in_other.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [other.id]
    );
    let empty = env
        .list(&JobListParams {
            namespace: "nobody".to_string(),
            ..list_params()
        })
        .await;
    assert!(empty.jobs.is_empty());
}

/// The state filter keeps jobs in any of the given states.
pub async fn list_filters_by_state(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut made = Vec::new();
    for (i, st) in REACHABLE_STATES.into_iter().enumerate() {
        made.push((st, env.job_in_state(st, &format!("q{i}")).await.id));
    }
    let id_of = |st: JobState| made.iter().find(|(s, _)| *s == st).unwrap().1;

    for st in REACHABLE_STATES {
        let ids = env
            .list_all(&JobListParams {
                states: vec![st],
                ..list_params()
            })
            .await;
        assert_eq!(ids, [id_of(st)], "state {st}");
    }
    let ids = env
        .list_all(&JobListParams {
            states: vec![JobState::Dead, JobState::Completed],
            ..list_params()
        })
        .await;
    assert_eq!(ids, [id_of(JobState::Dead), id_of(JobState::Completed)]);
    let none = env
        .list_all(&JobListParams {
            states: vec![JobState::Pending],
            ..list_params()
        })
        .await;
    assert!(none.is_empty());
    assert_eq!(env.list_all(&list_params()).await.len(), 7);
}

/// Queue, kind and tag filters match exactly.
pub async fn list_filters_by_queue_kind_and_tag(h: &dyn Harness) {
    let env = Env::new(h).await;
    let a = env
        .enqueue(r#"{"kind":"send_email","queue":"q1","tags":["x","y"]}"#)
        .await
        .id;
    let b = env
        .enqueue(r#"{"kind":"send_email","queue":"q2","tags":["y"]}"#)
        .await
        .id;
    let c = env.enqueue(r#"{"kind":"resize","queue":"q1"}"#).await.id;
    let d = env
        .enqueue(r#"{"kind":"send_email_v2","queue":"q10","tags":["xx"]}"#)
        .await
        .id;

    let by = |f: fn(&mut JobListParams)| {
        let mut p = list_params();
        f(&mut p);
        p
    };
    assert_eq!(
        env.list_all(&by(|p| p.queue = Some("q1".into()))).await,
        [c, a]
    );
    assert_eq!(
        env.list_all(&by(|p| p.kind = Some("send_email".into())))
            .await,
        [b, a]
    );
    assert_eq!(
        env.list_all(&by(|p| p.tag = Some("y".into()))).await,
        [b, a]
    );
    assert_eq!(env.list_all(&by(|p| p.tag = Some("x".into()))).await, [a]);
    assert_eq!(env.list_all(&by(|p| p.tag = Some("xx".into()))).await, [d]);
    assert!(
        env.list_all(&by(|p| p.tag = Some("z".into())))
            .await
            .is_empty()
    );
    assert!(
        env.list_all(&by(|p| p.queue = Some("q".into())))
            .await
            .is_empty()
    );
    assert!(
        env.list_all(&by(|p| p.kind = Some("send".into())))
            .await
            .is_empty()
    );
}

/// `q` finds jobs whose kind, id or one of whose tags contains it.
pub async fn list_searches_kind_id_and_tags(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mail = env.enqueue(r#"{"kind":"send_email"}"#).await.id;
    let tagged = env
        .enqueue(r#"{"kind":"resize","tags":["urgent-eu","img"]}"#)
        .await
        .id;
    let plain = env.enqueue(r#"{"kind":"cleanup"}"#).await.id;

    let q = |s: &str| JobListParams {
        q: Some(s.to_string()),
        ..list_params()
    };
    assert_eq!(env.list_all(&q("mail")).await, [mail]);
    assert_eq!(env.list_all(&q("send_email")).await, [mail]);
    assert_eq!(env.list_all(&q("urgent")).await, [tagged]);
    assert_eq!(env.list_all(&q("gent-e")).await, [tagged]);
    assert_eq!(env.list_all(&q(&plain.to_string())).await, [plain]);
    // The random tail of a UUIDv7 is unique among a few jobs.
    let tail = &plain.to_string()[24..];
    assert_eq!(env.list_all(&q(tail)).await, [plain]);
    assert!(env.list_all(&q("zzz-nothing")).await.is_empty());
}

/// Filters combine with AND.
pub async fn list_combines_filters(h: &dyn Harness) {
    let env = Env::new(h).await;
    let want = env.job_in_state(JobState::Completed, "q1").await.id;
    env.job_in_state(JobState::Available, "q1").await;
    env.job_in_state(JobState::Completed, "q2").await;
    let tagged = env
        .enqueue(r#"{"kind":"k","queue":"q1","tags":["t"]}"#)
        .await
        .id;
    let ids = env
        .list_all(&JobListParams {
            queue: Some("q1".into()),
            states: vec![JobState::Completed],
            kind: Some("k".into()),
            ..list_params()
        })
        .await;
    assert_eq!(ids, [want]);
    let ids = env
        .list_all(&JobListParams {
            queue: Some("q1".into()),
            tag: Some("t".into()),
            states: vec![JobState::Available],
            ..list_params()
        })
        .await;
    assert_eq!(ids, [tagged]);
}

/// Paging with `before` visits every job once, newest first; only the last page has no cursor.
pub async fn list_pages_through_every_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut ids = Vec::new();
    for _ in 0..23 {
        ids.push(env.enqueue(r#"{"kind":"k"}"#).await.id);
    }
    ids.reverse();
    for limit in [1, 5, 7, 23, 500] {
        let got = env
            .list_all(&JobListParams {
                limit,
                ..list_params()
            })
            .await;
        assert_eq!(got, ids, "pages of {limit}");
    }

    let first = env
        .list(&JobListParams {
            limit: 5,
            ..list_params()
        })
        .await;
    assert_eq!(first.jobs.len(), 5);
    assert_eq!(first.next_cursor, Some(ids[4]));
    let last = env
        .list(&JobListParams {
            limit: 5,
            before: Some(ids[19]),
            ..list_params()
        })
        .await;
    assert_eq!(
        last.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        ids[20..],
        "before is exclusive"
    );
    assert_eq!(last.next_cursor, None, "a short page is the last");
}

/// Paging while jobs are inserted and others change state sees exactly the jobs that existed
/// at the start, each once.
pub async fn list_pages_are_stable_while_jobs_are_inserted(h: &dyn Harness) {
    let env = Env::new(h).await;
    let mut existing = Vec::new();
    for _ in 0..20 {
        existing.push(env.enqueue(r#"{"kind":"k"}"#).await.id);
    }
    existing.reverse();

    let mut params = JobListParams {
        limit: 6,
        ..list_params()
    };
    let mut seen = Vec::new();
    loop {
        let page = env.list(&params).await;
        assert_newest_first(&page, params.before);
        seen.extend(page.jobs.iter().map(|j| j.id));
        // Meanwhile: new jobs arrive and an old one runs to completion.
        env.enqueue(r#"{"kind":"k"}"#).await;
        env.enqueue(r#"{"kind":"k","queue":"other"}"#).await;
        let l = env.lease_one("default").await;
        env.complete(&l).await.expect("complete");
        match page.next_cursor {
            Some(c) => params.before = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, existing);
}

/// A job's life is recorded transition by transition: from, to, reason, actor and time.
pub async fn events_record_every_transition_with_time_and_actor(h: &dyn Harness) {
    let env = Env::new(h).await;
    let id = env
        .enqueue(r#"{"kind":"k","backoff":{"kind":"fixed","delay_ms":1000}}"#)
        .await
        .id;
    let mut times = vec![env.now()];

    step_after(&env, &mut times);
    let l = env.lease_one("default").await;
    step_after(&env, &mut times);
    env.fail(&l, true).await.expect("fail");
    env.advance(999);
    step_after(&env, &mut times);
    assert_eq!(env.promote().await, 1);
    step_after(&env, &mut times);
    let l = env.lease_one("default").await;
    step_after(&env, &mut times);
    env.release(&l).await.expect("release");
    step_after(&env, &mut times);
    let l = env.lease_one("default").await;
    step_after(&env, &mut times);
    env.cancel(id).await.expect("cancel");
    step_after(&env, &mut times);
    env.report_cancelled(&l).await.expect("cancelled");
    step_after(&env, &mut times);
    env.store()
        .job_retry(&job_ref(id), "admin")
        .await
        .expect("retry");
    step_after(&env, &mut times);
    let mut p = lease_params(&["default"], 1);
    p.worker_id = "w2".to_string();
    let l = leased(env.lease_with(p).await.pop().expect("leased"));
    step_after(&env, &mut times);
    env.complete(&l).await.expect("complete");

    assert_eq!(
        env.history(id).await,
        [
            "- -> available (enqueue) by api",
            "available -> running (lease) by worker:w1",
            "running -> retryable (fail) by worker:w1",
            "retryable -> available (promote) by system",
            "available -> running (lease) by worker:w1",
            "running -> available (release) by worker:w1",
            "available -> running (lease) by worker:w1",
            "running -> running (cancel_requested) by api",
            "running -> cancelled (cancelled) by worker:w1",
            "cancelled -> available (retry) by admin",
            "available -> running (lease) by worker:w2",
            "running -> completed (complete) by worker:w2",
        ]
    );
    let events = env.events(id).await;
    assert_eq!(
        events.iter().map(|e| e.at).collect::<Vec<_>>(),
        times,
        "each event is stamped with the store's clock"
    );
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq grows: {:?}",
        events.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
}

fn step_after(env: &Env, times: &mut Vec<hopper_types::Timestamp>) {
    env.advance(1);
    times.push(env.now());
}

/// Events of a job that does not exist (here, or in this namespace) are not shown.
pub async fn events_of_an_unknown_job_are_empty_or_not_found(h: &dyn Harness) {
    let env = Env::new(h).await;
    let j = env.enqueue_in("a", r#"{"kind":"k"}"#).await;
    for r in [
        env.store().job_events(&job_ref(JobId::new())).await,
        env.store().job_events(&job_ref_in("b", j.id)).await,
    ] {
        match r {
            Err(StoreError::NotFound) => {}
            Ok(v) if v.is_empty() => {}
            other => panic!("expected no events, got {other:?}"),
        }
    }
    assert_eq!(
        env.store()
            .job_events(&job_ref_in("a", j.id))
            .await
            .expect("events")
            .len(),
        1
    );
}
