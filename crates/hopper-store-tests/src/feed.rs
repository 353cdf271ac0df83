//! The event log as the live event stream reads it: `events_after`, `events_last_seq`.
//!
//! Semantics: every transition of every namespace is one row with a strictly increasing
//! `seq`, read in `seq` order with its job's queue and kind; a `seq` is never handed out twice,
//! not even after the newest event's job was deleted (a subscriber that saw it would skip the
//! new event).

use hopper_types::{JobId, JobState};

use crate::Harness;
use crate::support::*;

/// An empty store has an empty log whose last seq is 0.
pub async fn feed_of_an_empty_store_is_empty(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert_eq!(env.store().events_last_seq().await.expect("last seq"), 0);
    assert!(
        env.store()
            .events_after(0, 100)
            .await
            .expect("events")
            .is_empty()
    );
}

/// The log holds every job's events in seq order, each with its queue, kind and namespace,
/// the same transitions `job_events` reports per job.
pub async fn feed_reads_every_event_in_seq_order_with_queue_and_kind(h: &dyn Harness) {
    let env = Env::new(h).await;
    let a = env.enqueue(r#"{"kind":"mail","queue":"q1"}"#).await;
    let b = env.enqueue(r#"{"kind":"thumb","queue":"q2"}"#).await;
    let c = env
        .enqueue_in("other", r#"{"kind":"bill","queue":"q1"}"#)
        .await;
    let l = env.lease_one("q2").await;
    env.complete(&l).await.expect("complete");

    let rows = env.store().events_after(0, 100).await.expect("events");
    assert!(
        rows.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing seqs"
    );
    let events: Vec<_> = rows
        .iter()
        .map(|r| r.event.clone().expect("every job still exists"))
        .collect();
    assert!(rows.iter().zip(&events).all(|(r, e)| r.seq == e.seq));
    let of = |id: JobId| -> Vec<(Option<JobState>, JobState, String, String, String)> {
        events
            .iter()
            .filter(|e| e.job_id == id)
            .map(|e| {
                assert_eq!(e.event_type, e.to, "the type is the state reached");
                (
                    e.from,
                    e.to,
                    e.namespace.clone(),
                    e.queue.clone(),
                    e.kind.clone(),
                )
            })
            .collect()
    };
    let s = |x: &str| x.to_string();
    assert_eq!(
        of(a.id),
        vec![(None, JobState::Available, s("default"), s("q1"), s("mail"))]
    );
    assert_eq!(
        of(b.id),
        vec![
            (None, JobState::Available, s("default"), s("q2"), s("thumb")),
            (
                Some(JobState::Available),
                JobState::Running,
                s("default"),
                s("q2"),
                s("thumb")
            ),
            (
                Some(JobState::Running),
                JobState::Completed,
                s("default"),
                s("q2"),
                s("thumb")
            ),
        ]
    );
    assert_eq!(
        of(c.id),
        vec![(None, JobState::Available, s("other"), s("q1"), s("bill"))]
    );
    // The same rows, seqs and times as the per-job history.
    for id in [a.id, b.id] {
        let per_job = env.events(id).await;
        let from_log: Vec<_> = events.iter().filter(|e| e.job_id == id).collect();
        assert_eq!(per_job.len(), from_log.len());
        for (p, l) in per_job.iter().zip(from_log) {
            assert_eq!(
                (p.seq, p.at, &p.actor, &p.reason),
                (l.seq, l.at, &l.actor, &l.reason)
            );
        }
    }
    assert_eq!(
        env.store().events_last_seq().await.expect("last seq"),
        rows.last().expect("rows").seq
    );
}

/// Reading after a seq with a limit pages through the log without loss or repeat.
pub async fn feed_pages_after_a_cursor_with_a_limit(h: &dyn Harness) {
    let env = Env::new(h).await;
    for i in 0..5 {
        env.enqueue(&format!(r#"{{"kind":"k{i}"}}"#)).await;
    }
    let all = env.store().events_after(0, 100).await.expect("all");
    assert_eq!(all.len(), 5);
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = env.store().events_after(after, 2).await.expect("page");
        assert!(page.len() <= 2, "the limit holds");
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let tail = env
        .store()
        .events_after(all[2].seq, 100)
        .await
        .expect("tail");
    assert_eq!(tail, all[3..].to_vec());
}

/// Deleting the job of the newest event does not let a later event take its seq again.
pub async fn feed_never_reuses_a_seq_after_deleting_the_newest_event(h: &dyn Harness) {
    let env = Env::new(h).await;
    let l = env.enqueue_and_lease(r#"{"kind":"gone"}"#).await;
    env.complete(&l).await.expect("complete");
    let newest = env.store().events_last_seq().await.expect("last seq");
    env.store()
        .job_delete(&job_ref(l.id))
        .await
        .expect("delete the finished job");
    let next = env.enqueue(r#"{"kind":"next"}"#).await;
    let rows = env.store().events_after(0, 100).await.expect("events");
    let row = rows
        .iter()
        .find(|r| r.event.as_ref().is_some_and(|e| e.job_id == next.id))
        .expect("the new job's event");
    assert!(
        row.seq > newest,
        "seq {} of a new event must be above {newest}, the deleted newest one",
        row.seq
    );
    assert!(
        rows.iter()
            .all(|r| r.event.as_ref().is_none_or(|e| e.job_id != l.id)),
        "the deleted job's events are gone or shown without a job"
    );
}
