//! Cron schedules: `schedule_create`, `_get`, `_list`, `_update`, `_delete`, `_set_paused`,
//! `_due`, `_next_fire_at` and `_fire`.
//!
//! Semantics: a schedule is unique per (namespace, name); it starts with its cursor at its
//! creation time and its next fire time the first tick after that. Replacing the definition
//! keeps the cursor and the runs; pausing hides it from `schedule_due`, and resuming makes its
//! next fire time the first tick after its cursor again. `schedule_fire` inserts the tick jobs
//! (idempotency keys honoured exactly like `job_insert_many`) and advances the schedule in one
//! atomic step, and only while the stored cursor is the one the caller read: otherwise nothing
//! changes and the answer is `Stale`. Concurrent fires of one tick therefore create one job.

use std::sync::Arc;

use hopper_store::{
    ScheduleCreate, ScheduleFire, ScheduleFireOutcome, ScheduleUpdate, Store, StoreError,
};
use hopper_types::schedule::{Schedule, ScheduleDefinition, ScheduleRequest};
use hopper_types::{JobState, Limits, Timestamp};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::Harness;
use crate::support::*;

const HOUR: i64 = 3_600_000;

/// The actor fires are recorded as.
const SCHEDULER: &str = "system:scheduler";

/// A validated definition from a request in JSON (its `name` is ignored).
fn definition(json: &str) -> ScheduleDefinition {
    let req: ScheduleRequest =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test schedule {json}: {e}"));
    req.validate(Some("any"), NS, &Limits::default())
        .unwrap_or_else(|e| panic!("invalid test schedule {json}: {e}"))
        .1
}

/// An hourly schedule whose job is `{"kind": kind}`.
fn hourly(kind: &str) -> ScheduleDefinition {
    definition(&format!(
        r#"{{"cron":"0 * * * *","job":{{"kind":"{kind}","queue":"sched"}}}}"#
    ))
}

async fn create_in(env: &Env, namespace: &str, name: &str, def: ScheduleDefinition) -> Schedule {
    env.store()
        .schedule_create(ScheduleCreate {
            namespace: namespace.to_string(),
            name: name.to_string(),
            definition: def,
        })
        .await
        .unwrap_or_else(|e| panic!("create schedule {name}: {e:?}"))
}

async fn create(env: &Env, name: &str, def: ScheduleDefinition) -> Schedule {
    create_in(env, NS, name, def).await
}

async fn get(env: &Env, name: &str) -> Schedule {
    env.store()
        .schedule_get(NS, name)
        .await
        .unwrap_or_else(|e| panic!("get schedule {name}: {e:?}"))
}

/// The fire of `ticks` of `s` as the scheduler would ask for it, the cursor moving to the last.
fn fire_of(s: &Schedule, ticks: &[Timestamp]) -> ScheduleFire {
    let cursor = *ticks.last().expect("at least one tick");
    let cron = s.cron_schedule().expect("valid cron");
    ScheduleFire {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        expected_cursor: s.cursor,
        jobs: ticks
            .iter()
            .map(|&t| s.job_for_tick(t, &Limits::default()).expect("tick job"))
            .collect(),
        runs: ticks.to_vec(),
        cursor,
        next_fire_at: cron.next_after(cursor),
        actor: SCHEDULER.to_string(),
    }
}

/// Comparable JSON of a schedule.
fn json(s: &Schedule) -> serde_json::Value {
    serde_json::to_value(s).expect("a schedule serializes")
}

/// Every job id of the default namespace, newest first.
async fn job_ids(env: &Env) -> Vec<hopper_types::JobId> {
    env.list_all(&list_params()).await
}

/// Create, read, list (by name, per namespace), refuse a second of one name, delete.
pub async fn schedule_create_get_list_and_delete(h: &dyn Harness) {
    let env = Env::new(h).await;
    let b = create(&env, "b", hourly("k")).await;
    assert_eq!((b.namespace.as_str(), b.name.as_str()), (NS, "b"));
    assert_eq!(b.cron, "0 * * * *");
    assert_eq!(b.timezone, "UTC");
    assert_eq!((b.created_at, b.updated_at, b.cursor), (T0, T0, T0));
    assert_eq!(b.next_fire_at, Some(T0.plus_ms(HOUR)));
    assert!(b.last_runs.is_empty());
    assert_eq!(json(&get(&env, "b").await), json(&b));

    env.advance(1000);
    create(&env, "a", hourly("k")).await;
    create_in(&env, "other", "c", hourly("k")).await;
    let names: Vec<String> = env
        .store()
        .schedule_list(NS)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b"], "by name, this namespace only");
    assert_not_found(env.store().schedule_get(NS, "c").await);

    let again = env
        .store()
        .schedule_create(ScheduleCreate {
            namespace: NS.into(),
            name: "b".into(),
            definition: hourly("other"),
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    assert_eq!(json(&get(&env, "b").await), json(&b), "unchanged");
    // Another namespace may use the name.
    create_in(&env, "other", "b", hourly("k")).await;

    env.store().schedule_delete(NS, "b").await.expect("delete");
    assert_not_found(env.store().schedule_get(NS, "b").await);
    assert_not_found(env.store().schedule_delete(NS, "b").await);
    env.store()
        .schedule_get("other", "b")
        .await
        .expect("the other namespace's schedule stays");
    // The name is free again.
    create(&env, "b", hourly("k")).await;
}

/// Replacing the definition keeps the cursor and the runs and recomputes the next fire time;
/// an unknown schedule is not found.
pub async fn schedule_update_replaces_the_definition_and_keeps_runs(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    env.set_time(T0.plus_ms(HOUR));
    let fired = env
        .store()
        .schedule_fire(fire_of(&s, &[T0.plus_ms(HOUR)]))
        .await
        .expect("fire");
    assert!(matches!(fired, ScheduleFireOutcome::Fired { .. }));
    env.advance(10 * 60_000);

    let updated = env
        .store()
        .schedule_update(ScheduleUpdate {
            namespace: NS.into(),
            name: "s".into(),
            definition: definition(
                r#"{"cron":"0 * * * *","job":{"kind":"other"},"jitter_ms":500,"misfire":{"policy":"skip"}}"#,
            ),
        })
        .await
        .expect("update");
    assert_eq!(updated.job.kind, "other");
    assert_eq!(updated.jitter_ms, 500);
    assert_eq!(updated.misfire, hopper_types::cron::Misfire::Skip);
    assert_eq!(updated.created_at, T0);
    assert_eq!(updated.updated_at, env.now());
    assert_eq!(updated.cursor, T0.plus_ms(HOUR), "cursor kept");
    assert_eq!(updated.last_runs.len(), 1, "runs kept");
    assert_eq!(updated.next_fire_at, Some(T0.plus_ms(2 * HOUR)));
    assert_eq!(json(&get(&env, "s").await), json(&updated));

    // A new expression: its next fire time follows it.
    let updated = env
        .store()
        .schedule_update(ScheduleUpdate {
            namespace: NS.into(),
            name: "s".into(),
            definition: definition(r#"{"cron":"30 * * * *","job":{"kind":"other"}}"#),
        })
        .await
        .expect("update");
    assert_eq!(updated.next_fire_at, Some(T0.plus_ms(HOUR + 30 * 60_000)));
    assert_eq!(updated.last_runs.len(), 1, "runs kept");

    let unknown = env
        .store()
        .schedule_update(ScheduleUpdate {
            namespace: NS.into(),
            name: "nope".into(),
            definition: hourly("k"),
        })
        .await;
    assert_not_found(unknown);
}

/// A paused schedule is never due; resuming makes the first tick after its cursor due again.
pub async fn schedule_pause_hides_it_from_due_and_resume_restores_it(h: &dyn Harness) {
    let env = Env::new(h).await;
    create(&env, "s", hourly("k")).await;
    let paused = env
        .store()
        .schedule_set_paused(NS, "s", true)
        .await
        .expect("pause");
    assert!(paused.paused);
    env.set_time(T0.plus_ms(3 * HOUR + 1));
    let due = env.store().schedule_due(env.now(), 10).await.expect("due");
    assert!(due.is_empty(), "paused: {due:?}");
    assert_eq!(
        env.store().schedule_next_fire_at().await.expect("next"),
        None
    );

    let resumed = env
        .store()
        .schedule_set_paused(NS, "s", false)
        .await
        .expect("resume");
    assert!(!resumed.paused);
    assert_eq!(resumed.cursor, T0, "the cursor stays");
    assert_eq!(resumed.next_fire_at, Some(T0.plus_ms(HOUR)));
    assert_eq!(resumed.updated_at, env.now());
    let due = env.store().schedule_due(env.now(), 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(
        env.store().schedule_next_fire_at().await.expect("next"),
        Some(T0.plus_ms(HOUR))
    );
    assert_not_found(env.store().schedule_set_paused(NS, "nope", true).await);
}

/// `schedule_due` answers the unpaused schedules of every namespace whose next fire time is at
/// or before `now`, earliest first, at most `limit`; `schedule_next_fire_at` the earliest.
pub async fn schedule_due_selects_unpaused_schedules_whose_time_came(h: &dyn Harness) {
    let env = Env::new(h).await;
    assert_eq!(
        env.store().schedule_next_fire_at().await.expect("next"),
        None
    );
    // Next fire times: every-minute T0+1m, quarterly T0+15m, hourly T0+1h, daily T0+1d.
    create(&env, "hourly", hourly("k")).await;
    create(
        &env,
        "daily",
        definition(r#"{"cron":"@daily","job":{"kind":"k"}}"#),
    )
    .await;
    create_in(
        &env,
        "other",
        "minutely",
        definition(r#"{"cron":"* * * * *","job":{"kind":"k"}}"#),
    )
    .await;
    create(
        &env,
        "quarterly",
        definition(r#"{"cron":"*/15 * * * *","job":{"kind":"k"}}"#),
    )
    .await;
    create(
        &env,
        "paused",
        definition(r#"{"cron":"* * * * * *","job":{"kind":"k"},"paused":true}"#),
    )
    .await;
    let names = async |now: Timestamp, limit: usize| -> Vec<String> {
        env.store()
            .schedule_due(now, limit)
            .await
            .expect("due")
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(
        env.store().schedule_next_fire_at().await.expect("next"),
        Some(T0.plus_ms(60_000)),
        "the paused every-second schedule does not count"
    );
    assert!(names(T0, 10).await.is_empty());
    assert!(names(T0.plus_ms(59_999), 10).await.is_empty());
    assert_eq!(names(T0.plus_ms(60_000), 10).await, ["minutely"]);
    assert_eq!(
        names(T0.plus_ms(HOUR), 10).await,
        ["minutely", "quarterly", "hourly"]
    );
    assert_eq!(names(T0.plus_ms(HOUR), 2).await, ["minutely", "quarterly"]);
    assert_eq!(names(T0.plus_ms(24 * HOUR), 10).await.len(), 4);
}

/// A fire inserts one job per tick (key, run_at, meta, enqueue event by the scheduler) and
/// advances the cursor, the next fire time and the runs.
pub async fn schedule_fire_inserts_jobs_and_advances(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    let (t1, t2) = (T0.plus_ms(HOUR), T0.plus_ms(2 * HOUR));
    env.set_time(t2.plus_ms(5));
    let out = env
        .store()
        .schedule_fire(fire_of(&s, &[t1, t2]))
        .await
        .expect("fire");
    let ScheduleFireOutcome::Fired { jobs, schedule } = out else {
        panic!("expected Fired, got {out:?}")
    };
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| !j.duplicate));
    assert_eq!(schedule.cursor, t2);
    assert_eq!(schedule.next_fire_at, Some(T0.plus_ms(3 * HOUR)));
    let runs: Vec<(Timestamp, hopper_types::JobId)> = schedule
        .last_runs
        .iter()
        .map(|r| (r.tick_at, r.job_id))
        .collect();
    assert_eq!(runs, [(t2, jobs[1].id), (t1, jobs[0].id)], "newest first");
    assert!(
        schedule
            .last_runs
            .iter()
            .all(|r| r.enqueued_at == env.now())
    );
    assert_eq!(json(&get(&env, "s").await), json(&schedule));

    for (ins, tick) in jobs.iter().zip([t1, t2]) {
        let job = env.get(ins.id).await;
        assert_eq!(job.kind, "k");
        assert_eq!(job.queue, "sched");
        assert_eq!(job.state, JobState::Available);
        assert_eq!(
            job.idempotency_key.as_deref(),
            Some(format!("schedule:s:{}", tick.as_millis()).as_str())
        );
        let meta = value(&job.meta);
        assert_eq!(meta["schedule"]["name"], "s");
        assert_eq!(
            env.history(job.id).await,
            ["- -> available (enqueue) by system"]
        );
        assert_eq!(env.events(job.id).await[0].actor, SCHEDULER);
    }
    // Due no more until the next tick.
    assert!(
        env.store()
            .schedule_due(env.now(), 10)
            .await
            .expect("due")
            .is_empty()
    );
}

/// A fire whose expected cursor is not the stored one, or of a paused schedule, changes
/// nothing and says so; a fire of an unknown schedule is not found.
pub async fn schedule_fire_with_a_stale_cursor_inserts_nothing(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    let t1 = T0.plus_ms(HOUR);
    env.set_time(t1);
    let mut stale = fire_of(&s, &[t1]);
    stale.expected_cursor = T0.plus_ms(-1);
    let out = env.store().schedule_fire(stale).await.expect("fire");
    assert!(matches!(out, ScheduleFireOutcome::Stale), "{out:?}");
    assert!(job_ids(&env).await.is_empty(), "no job was inserted");
    assert_eq!(json(&get(&env, "s").await), json(&s), "unchanged");

    let paused = env
        .store()
        .schedule_set_paused(NS, "s", true)
        .await
        .expect("pause");
    let out = env
        .store()
        .schedule_fire(fire_of(&paused, &[t1]))
        .await
        .expect("fire");
    assert!(matches!(out, ScheduleFireOutcome::Stale), "{out:?}");
    assert!(
        job_ids(&env).await.is_empty(),
        "a paused schedule fires nothing"
    );

    let mut gone = fire_of(&s, &[t1]);
    gone.name = "nope".into();
    assert_not_found(env.store().schedule_fire(gone).await);
    assert!(job_ids(&env).await.is_empty());
}

/// A tick fired again (after the cursor moved on, as by a node that read it later) finds its
/// key taken: the existing job is answered as a duplicate and no second job is made.
pub async fn schedule_fire_honours_tick_idempotency_keys(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    let t1 = T0.plus_ms(HOUR);
    env.set_time(t1);
    let ScheduleFireOutcome::Fired { jobs: first, .. } = env
        .store()
        .schedule_fire(fire_of(&s, &[t1]))
        .await
        .expect("fire")
    else {
        panic!("the first fire fires")
    };
    let advanced = get(&env, "s").await;
    let out = env
        .store()
        .schedule_fire(fire_of(&advanced, &[t1]))
        .await
        .expect("fire again");
    let ScheduleFireOutcome::Fired { jobs, schedule } = out else {
        panic!("expected Fired, got {out:?}")
    };
    assert!(jobs[0].duplicate);
    assert_eq!(jobs[0].id, first[0].id);
    assert_eq!(job_ids(&env).await, [first[0].id], "one job for the tick");
    assert_eq!(schedule.last_runs[0].job_id, first[0].id);
}

/// A fire whose tick key is held by a job of other content fails whole: no job, no advance.
pub async fn schedule_fire_is_atomic(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    let (t1, t2) = (T0.plus_ms(HOUR), T0.plus_ms(2 * HOUR));
    let squatter = env
        .enqueue(&format!(
            r#"{{"kind":"other","idempotency_key":"schedule:s:{}"}}"#,
            t2.as_millis()
        ))
        .await;
    env.set_time(t2);
    let r = env.store().schedule_fire(fire_of(&s, &[t1, t2])).await;
    match r {
        Err(StoreError::IdempotencyConflict { index: 1, existing }) => {
            assert_eq!(existing, squatter.id)
        }
        other => panic!("expected IdempotencyConflict at 1, got {other:?}"),
    }
    assert_eq!(
        job_ids(&env).await,
        [squatter.id],
        "the first tick's job is not kept"
    );
    assert_eq!(
        json(&get(&env, "s").await),
        json(&s),
        "the schedule did not advance"
    );
}

/// Many tasks firing one tick at the same moment: exactly one fires, the others are stale, and
/// the tick has one job.
pub async fn schedule_concurrent_fires_of_one_tick_create_one_job(h: &dyn Harness) {
    let env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    let t1 = T0.plus_ms(HOUR);
    env.set_time(t1);
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (store, barrier, fire): (Arc<dyn Store>, _, _) =
            (env.store_arc(), barrier.clone(), fire_of(&s, &[t1]));
        set.spawn(async move {
            barrier.wait().await;
            store.schedule_fire(fire).await
        });
    }
    let results = set.join_all().await;
    let fired: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Ok(ScheduleFireOutcome::Fired { jobs, .. }) => Some(jobs[0].id),
            Ok(ScheduleFireOutcome::Stale) => None,
            Err(e) => panic!("a fire failed: {e:?}"),
        })
        .collect();
    assert_eq!(fired.len(), 1, "exactly one fire happened");
    assert_eq!(job_ids(&env).await, fired, "one job for the tick");
    let after = get(&env, "s").await;
    assert_eq!(after.cursor, t1);
    assert_eq!(after.last_runs.len(), 1);
}

/// Schedules survive a restart as they were.
pub async fn schedule_survives_reopening(h: &dyn Harness) {
    let mut env = Env::new(h).await;
    let s = create(&env, "s", hourly("k")).await;
    env.set_time(T0.plus_ms(HOUR));
    env.store()
        .schedule_fire(fire_of(&s, &[T0.plus_ms(HOUR)]))
        .await
        .expect("fire");
    create(
        &env,
        "p",
        definition(r#"{"cron":"@daily","job":{"kind":"k"},"paused":true}"#),
    )
    .await;
    let before: Vec<_> = env
        .store()
        .schedule_list(NS)
        .await
        .expect("list")
        .iter()
        .map(json)
        .collect();
    env.reopen().await;
    let after: Vec<_> = env
        .store()
        .schedule_list(NS)
        .await
        .expect("list")
        .iter()
        .map(json)
        .collect();
    assert_eq!(after, before);
}
