//! Cron schedules end to end: the `/v1/schedules` endpoints and their errors, and the
//! scheduler's `run_once` driven by hand over the server's store on a manual clock: daylight
//! saving changes, misfire policies after downtime, jitter, pause and resume, manual triggers.
//! One test also watches the running scheduler fire on the real clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hopper_server::maintenance::{ScheduleReport, Scheduler, SchedulerConfig};
use hopper_types::{Clock, Limits, ManualClock, Timestamp};
use serde_json::{Value, json};

use crate::common::{Resp, TestServer, test_config};

const HOUR: i64 = 3_600_000;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
}

/// A server whose clock stands at `at`, with the background services off: only the test fires.
async fn server_at(at: &str) -> (TestServer, ManualClock) {
    let mut config = test_config();
    config.maintenance.disabled = true;
    let clock = ManualClock::new(ts(at));
    let s = TestServer::start_with(config, Some(clock.clone())).await;
    (s, clock)
}

/// A scheduler over the server's store, as the leader would run it.
fn scheduler(s: &TestServer) -> Scheduler {
    Scheduler::new(
        s.store.clone(),
        SchedulerConfig::default(),
        Limits::default(),
    )
}

async fn put(s: &TestServer, path: &str, body: Value) -> Resp {
    s.send(s.client.put(s.url(path)).json(&body)).await
}

async fn create(s: &TestServer, body: Value) -> Value {
    s.post("/v1/schedules", body).await.expect(201).body
}

/// Every job of `queue`, oldest first.
async fn jobs_of(s: &TestServer, queue: &str) -> Vec<Value> {
    let page = s
        .get(&format!("/v1/jobs?queue={queue}&limit=500"))
        .await
        .expect(200)
        .body;
    assert!(page["next_cursor"].is_null(), "fits one page");
    let mut jobs = page["jobs"].as_array().cloned().unwrap_or_default();
    jobs.reverse();
    jobs
}

/// The tick each job of `queue` stands for, oldest first.
async fn ticks_of(s: &TestServer, queue: &str) -> Vec<Timestamp> {
    jobs_of(s, queue)
        .await
        .iter()
        .map(|j| {
            let tick = j["meta"]["schedule"]["tick_at"]
                .as_str()
                .unwrap_or_else(|| panic!("a scheduled job names its tick: {j}"));
            ts(tick)
        })
        .collect()
}

/// Moves the clock from its time to `until` in steps of `step_ms`, running the scheduler at
/// each step; returns the sum of what the passes did.
async fn run_until(clock: &ManualClock, sched: &Scheduler, until: Timestamp, step_ms: i64) -> u64 {
    let mut enqueued = 0;
    while clock.now() < until {
        clock.set(clock.now().plus_ms(step_ms).min(until));
        enqueued += sched.run_once().await.expect("scheduler pass").enqueued;
    }
    enqueued
}

#[tokio::test]
async fn schedules_are_created_listed_read_replaced_and_deleted() {
    let (s, clock) = server_at("2026-05-13T10:00:00Z").await;
    let created = create(
        &s,
        json!({"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
               "job": {"kind": "report", "queue": "reports", "args": {"full": true}},
               "jitter_ms": 1000, "misfire": {"policy": "catch_up", "max": 3}}),
    )
    .await;
    assert_eq!(created["name"], "nightly");
    assert_eq!(created["cron"], "30 2 * * *");
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(created["job"]["kind"], "report");
    assert_eq!(created["job"]["args"], json!({"full": true}));
    assert_eq!(created["jitter_ms"], 1000);
    assert_eq!(created["misfire"], json!({"policy": "catch_up", "max": 3}));
    assert_eq!(created["paused"], false);
    assert_eq!(created["created_at"], "2026-05-13T10:00:00.000Z");
    assert_eq!(created["next_fire_at"], "2026-05-14T00:30:00.000Z");
    let times: Vec<&str> = created["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2026-05-14T00:30:00.000Z",
            "2026-05-15T00:30:00.000Z",
            "2026-05-16T00:30:00.000Z",
            "2026-05-17T00:30:00.000Z",
            "2026-05-18T00:30:00.000Z",
        ]
    );
    assert_eq!(created["last_runs"], json!([]));

    // Defaults.
    let plain = create(
        &s,
        json!({"name": "a-plain", "cron": "@hourly", "job": {"kind": "k"}}),
    )
    .await;
    assert_eq!(plain["timezone"], "UTC");
    assert_eq!(plain["misfire"], json!({"policy": "run_once"}));
    assert_eq!(
        (plain["jitter_ms"].as_i64(), plain["paused"].as_bool()),
        (Some(0), Some(false))
    );

    // A second schedule of one name is refused.
    s.post(
        "/v1/schedules",
        json!({"name": "nightly", "cron": "@daily", "job": {"kind": "k"}}),
    )
    .await
    .expect_error(409, "invalid_state", Some("name"));

    let list = s.get("/v1/schedules").await.expect(200).body;
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-plain", "nightly"]);
    assert_eq!(
        s.get("/v1/schedules/nightly").await.expect(200).body,
        created
    );

    // Replace: the new definition, same creation time.
    clock.advance_ms(60_000);
    let replaced = put(
        &s,
        "/v1/schedules/nightly",
        json!({"cron": "0 3 * * *", "timezone": "Europe/Berlin", "job": {"kind": "report2"}}),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(replaced["job"]["kind"], "report2");
    assert_eq!(
        replaced["misfire"],
        json!({"policy": "run_once"}),
        "defaults again"
    );
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["updated_at"], "2026-05-13T10:01:00.000Z");
    assert_eq!(replaced["next_fire_at"], "2026-05-14T01:00:00.000Z");
    put(
        &s,
        "/v1/schedules/nightly",
        json!({"name": "other", "cron": "@daily", "job": {"kind": "k"}}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("name"));
    put(
        &s,
        "/v1/schedules/ghost",
        json!({"cron": "@daily", "job": {"kind": "k"}}),
    )
    .await
    .expect_error(404, "not_found", None);

    s.delete("/v1/schedules/nightly").await.expect(204);
    s.get("/v1/schedules/nightly")
        .await
        .expect_error(404, "not_found", None);
    s.delete("/v1/schedules/nightly")
        .await
        .expect_error(404, "not_found", None);
    for path in ["pause", "resume", "trigger"] {
        s.post(&format!("/v1/schedules/nightly/{path}"), json!({}))
            .await
            .expect_error(404, "not_found", None);
    }
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field() {
    let (s, _clock) = server_at("2026-05-13T10:00:00Z").await;
    let cases = [
        (json!({"cron": "* * * * *", "job": {"kind": "k"}}), "name"),
        (
            json!({"name": "a b", "cron": "* * * * *", "job": {"kind": "k"}}),
            "name",
        ),
        (
            json!({"name": "n", "cron": "70 * * * *", "job": {"kind": "k"}}),
            "cron",
        ),
        (
            json!({"name": "n", "cron": "@sometimes", "job": {"kind": "k"}}),
            "cron",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "timezone": "Europe/Atlantis", "job": {"kind": "k"}}),
            "timezone",
        ),
        (json!({"name": "n", "cron": "* * * * *"}), "job"),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "a b"}}),
            "job.kind",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k", "run_at": "2026-05-13T10:00:00Z"}}),
            "job.run_at",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k", "delay_ms": 10}}),
            "job.delay_ms",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k", "idempotency_key": "x"}}),
            "job.idempotency_key",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k", "max_attempts": 0}}),
            "job.max_attempts",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k", "tpyo": 1}}),
            "job.tpyo",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k"}, "jitter_ms": 3_600_001}),
            "jitter_ms",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k"}, "misfire": {"policy": "catch_up", "max": 0}}),
            "misfire.max",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k"}, "misfire": {"policy": "sometimes"}}),
            "misfire",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k"}, "paused": "no"}),
            "paused",
        ),
        (
            json!({"name": "n", "cron": "* * * * *", "job": {"kind": "k"}, "every": "day"}),
            "every",
        ),
    ];
    for (body, field) in cases {
        let r = s.post("/v1/schedules", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {r:#?}");
        assert_eq!(r.code(), "invalid_argument", "{body}");
        assert!(
            r.field() == field || r.field().starts_with(&format!("{field}.")),
            "{body}: expected field {field}, got {r:#?}"
        );
    }
    s.get("/v1/schedules/not%20a%20name")
        .await
        .expect_error(400, "invalid_argument", Some("name"));
    assert_eq!(
        s.get("/v1/schedules").await.expect(200).body["schedules"],
        json!([]),
        "nothing was created"
    );
}

/// Europe/Berlin springs forward on 2026-03-29 (02:00 → 03:00): `30 2 * * *` fires once that
/// day, at 03:00 CEST = 01:00 UTC, the first instant after the gap.
#[tokio::test]
async fn a_skipped_wall_clock_time_fires_once_after_the_gap() {
    let (s, clock) = server_at("2026-03-28T12:00:00Z").await;
    create(
        &s,
        json!({"name": "spring", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
               "job": {"kind": "k", "queue": "spring"}}),
    )
    .await;
    let sched = scheduler(&s);
    run_until(&clock, &sched, ts("2026-03-30T00:00:00Z"), 15 * 60_000).await;
    assert_eq!(ticks_of(&s, "spring").await, [ts("2026-03-29T01:00:00Z")]);
    let job = &jobs_of(&s, "spring").await[0];
    assert_eq!(job["available_at"], "2026-03-29T01:00:00.000Z");
    assert_eq!(
        job["idempotency_key"],
        format!("schedule:spring:{}", ts("2026-03-29T01:00:00Z").as_millis())
    );
    // The next day is an ordinary one again: 02:30 CEST = 00:30 UTC.
    run_until(&clock, &sched, ts("2026-03-31T00:00:00Z"), HOUR / 2).await;
    assert_eq!(
        ticks_of(&s, "spring").await,
        [ts("2026-03-29T01:00:00Z"), ts("2026-03-30T00:30:00Z")]
    );
}

/// Europe/Berlin falls back on 2026-10-25 (03:00 → 02:00): `30 2 * * *` fires once, at the
/// first 02:30 (CEST, 00:30 UTC); an hourly schedule fires every real hour, 25 that day.
#[tokio::test]
async fn a_repeated_wall_clock_time_fires_once_and_elapsed_schedules_follow_real_time() {
    let (s, clock) = server_at("2026-10-24T21:59:00Z").await;
    create(
        &s,
        json!({"name": "fall", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
               "job": {"kind": "k", "queue": "fall"}}),
    )
    .await;
    create(
        &s,
        json!({"name": "hourly", "cron": "0 * * * *", "timezone": "Europe/Berlin",
               "job": {"kind": "k", "queue": "hourly"}}),
    )
    .await;
    let sched = scheduler(&s);
    // The local day of 2026-10-25 runs from 22:00 UTC on the 24th to 23:00 UTC on the 25th.
    run_until(&clock, &sched, ts("2026-10-25T22:59:00Z"), 10 * 60_000).await;
    assert_eq!(ticks_of(&s, "fall").await, [ts("2026-10-25T00:30:00Z")]);
    let hourly = ticks_of(&s, "hourly").await;
    assert_eq!(hourly.len(), 25, "{hourly:?}");
    assert!(hourly.windows(2).all(|w| w[1].millis_since(w[0]) == HOUR));
    assert_eq!(hourly[0], ts("2026-10-24T22:00:00Z"));
}

/// An hourly schedule down for three hours (10:00 → 13:30): skip fires none of the missed
/// ticks, run_once the latest, catch_up{max: 2} the latest two; afterwards each fires on time.
#[tokio::test]
async fn misfire_policies_after_three_hours_of_downtime() {
    let (s, clock) = server_at("2026-05-13T10:00:00Z").await;
    for (queue, misfire) in [
        ("skip", json!({"policy": "skip"})),
        ("once", json!({"policy": "run_once"})),
        ("catchup", json!({"policy": "catch_up", "max": 2})),
    ] {
        create(
            &s,
            json!({"name": queue, "cron": "0 * * * *", "misfire": misfire,
                   "job": {"kind": "k", "queue": queue}}),
        )
        .await;
    }
    let sched = scheduler(&s);
    assert_eq!(sched.run_once().await.unwrap().enqueued, 0);
    clock.set(ts("2026-05-13T13:30:00Z"));
    let r: ScheduleReport = sched.run_once().await.unwrap();
    assert_eq!((r.schedules, r.enqueued, r.skipped), (3, 3, 3 + 2 + 1));
    assert_eq!(r.next_fire_at, Some(ts("2026-05-13T14:00:00Z")));
    assert_eq!(ticks_of(&s, "skip").await, []);
    assert_eq!(ticks_of(&s, "once").await, [ts("2026-05-13T13:00:00Z")]);
    assert_eq!(
        ticks_of(&s, "catchup").await,
        [ts("2026-05-13T12:00:00Z"), ts("2026-05-13T13:00:00Z")]
    );
    // Nothing more until 14:00; then one on-time job each.
    assert_eq!(sched.run_once().await.unwrap().enqueued, 0);
    clock.set(ts("2026-05-13T14:00:00Z"));
    assert_eq!(sched.run_once().await.unwrap().enqueued, 3);
    for q in ["skip", "once", "catchup"] {
        assert_eq!(
            ticks_of(&s, q).await.last(),
            Some(&ts("2026-05-13T14:00:00Z")),
            "{q}"
        );
    }
    let view = s.get("/v1/schedules/catchup").await.expect(200).body;
    let runs: Vec<&str> = view["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tick_at"].as_str().unwrap())
        .collect();
    assert_eq!(
        runs,
        [
            "2026-05-13T14:00:00.000Z",
            "2026-05-13T13:00:00.000Z",
            "2026-05-13T12:00:00.000Z"
        ]
    );
    assert_eq!(view["cursor"], "2026-05-13T14:00:00.000Z");
    // Every run names a job that exists.
    for r in view["last_runs"].as_array().unwrap() {
        let job = s
            .get(&format!("/v1/jobs/{}", r["job_id"].as_str().unwrap()))
            .await
            .expect(200)
            .body;
        assert_eq!(job["meta"]["schedule"]["tick_at"], r["tick_at"]);
    }
}

/// A tick's job is leasable at the tick plus at most `jitter_ms`, the delay varying by tick.
#[tokio::test]
async fn jitter_keeps_run_at_within_the_jitter_window() {
    let (s, clock) = server_at("2026-05-13T10:00:00Z").await;
    create(
        &s,
        json!({"name": "jittery", "cron": "* * * * *", "jitter_ms": 30_000,
               "job": {"kind": "k", "queue": "jittery"}}),
    )
    .await;
    let sched = scheduler(&s);
    let n = run_until(&clock, &sched, ts("2026-05-13T10:30:00Z"), 60_000).await;
    assert_eq!(n, 30);
    let mut delays = Vec::new();
    for job in jobs_of(&s, "jittery").await {
        let tick = ts(job["meta"]["schedule"]["tick_at"].as_str().unwrap());
        let at = ts(job["available_at"].as_str().unwrap());
        let delay = at.millis_since(tick);
        assert!((0..=30_000).contains(&delay), "{job}");
        assert_eq!(job["created_at"], json!(tick), "fired at its tick");
        delays.push(delay);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 20, "jitter spreads the jobs: {delays:?}");
    // The promoter makes them available when their time comes; nothing is leasable before.
    let states: BTreeMap<String, usize> =
        jobs_of(&s, "jittery")
            .await
            .iter()
            .fold(BTreeMap::new(), |mut m, j| {
                *m.entry(j["state"].as_str().unwrap().to_string())
                    .or_default() += 1;
                m
            });
    assert!(states.contains_key("scheduled"), "{states:?}");
}

/// Pausing stops firing; resuming fires the ticks missed while paused only as the misfire
/// policy says (run_once: one job; skip: none), then carries on on time.
#[tokio::test]
async fn pause_stops_firing_and_resume_applies_the_misfire_policy() {
    let (s, clock) = server_at("2026-05-13T10:00:00Z").await;
    for (queue, misfire) in [
        ("once", json!({"policy": "run_once"})),
        ("skip", json!({"policy": "skip"})),
    ] {
        create(
            &s,
            json!({"name": queue, "cron": "0 * * * *", "misfire": misfire,
                   "job": {"kind": "k", "queue": queue}}),
        )
        .await;
    }
    let sched = scheduler(&s);
    clock.set(ts("2026-05-13T11:00:00Z"));
    assert_eq!(sched.run_once().await.unwrap().enqueued, 2);
    for q in ["once", "skip"] {
        let v = s
            .post(&format!("/v1/schedules/{q}/pause"), json!({}))
            .await
            .expect(200)
            .body;
        assert_eq!(v["paused"], true);
        assert_eq!(v["next_fire_times"], json!([]));
    }
    // Four ticks (12:00 to 15:00) pass while paused: nothing fires.
    assert_eq!(
        run_until(&clock, &sched, ts("2026-05-13T15:30:00Z"), 10 * 60_000).await,
        0
    );
    assert_eq!(sched.run_once().await.unwrap().next_fire_at, None);

    for q in ["once", "skip"] {
        let v = s
            .post_raw(&format!("/v1/schedules/{q}/resume"), "", None)
            .await
            .expect(200)
            .body;
        assert_eq!(v["paused"], false);
        assert_eq!(v["next_fire_times"][0], "2026-05-13T16:00:00.000Z");
    }
    let r = sched.run_once().await.unwrap();
    assert_eq!((r.enqueued, r.skipped), (1, 3 + 4));
    assert_eq!(
        ticks_of(&s, "once").await,
        [ts("2026-05-13T11:00:00Z"), ts("2026-05-13T15:00:00Z")]
    );
    assert_eq!(ticks_of(&s, "skip").await, [ts("2026-05-13T11:00:00Z")]);
    assert_eq!(
        sched.run_once().await.unwrap().enqueued,
        0,
        "fired once only"
    );
    clock.set(ts("2026-05-13T16:00:00Z"));
    assert_eq!(sched.run_once().await.unwrap().enqueued, 2, "on time again");
}

/// A trigger enqueues one job from the template at once, paused or not, without moving the
/// schedule's ticks.
#[tokio::test]
async fn trigger_enqueues_a_job_at_once() {
    let (s, _clock) = server_at("2026-05-13T10:00:00Z").await;
    let created = create(
        &s,
        json!({"name": "manual", "cron": "0 0 1 1 *", "paused": true,
               "job": {"kind": "k", "queue": "manual", "args": {"x": 1}, "priority": 5}}),
    )
    .await;
    let job = s
        .post_raw("/v1/schedules/manual/trigger", "", None)
        .await
        .expect(201)
        .body;
    assert_eq!(job["state"], "available");
    assert_eq!(job["available_at"], "2026-05-13T10:00:00.000Z");
    assert_eq!(
        (job["kind"].as_str(), job["priority"].as_i64()),
        (Some("k"), Some(5))
    );
    assert_eq!(job["args"], json!({"x": 1}));
    assert!(
        job["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("schedule:manual:manual:"),
        "{job}"
    );
    assert_eq!(
        job["meta"]["schedule"],
        json!({"name": "manual", "manual": true})
    );
    let again = s
        .post("/v1/schedules/manual/trigger", json!({}))
        .await
        .expect(201)
        .body;
    assert_ne!(again["id"], job["id"], "each trigger is a new job");
    assert_eq!(s.lease("manual", "w", 10).await.len(), 2);
    s.post("/v1/schedules/manual/trigger", json!({"now": true}))
        .await
        .expect_error(400, "invalid_argument", Some("now"));
    let after = s.get("/v1/schedules/manual").await.expect(200).body;
    assert_eq!(after["cursor"], created["cursor"]);
    assert_eq!(after["last_runs"], json!([]));
}

/// The scheduler runs in the server (under its maintenance lease) on the real clock: an
/// every-second schedule gets one job per second, each tick once.
#[tokio::test]
async fn the_running_scheduler_fires_every_tick_once() {
    let s = TestServer::start().await;
    let created = create(
        &s,
        json!({"name": "tick", "cron": "* * * * * *", "job": {"kind": "k", "queue": "tick"}}),
    )
    .await;
    let start = ts(created["created_at"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ticks = ticks_of(&s, "tick").await;
        if ticks.len() >= 3 {
            let mut unique = ticks.clone();
            unique.dedup();
            assert_eq!(unique, ticks, "each tick once, in order");
            assert!(
                ticks
                    .iter()
                    .all(|t| *t > start && t.as_millis() % 1000 == 0)
            );
            assert!(
                ticks.windows(2).all(|w| w[1].millis_since(w[0]) == 1000),
                "{ticks:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduler did not fire: {ticks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The running scheduler counts the ticks its misfire policy drops in
/// `hopper_schedule_ticks_skipped_total` (an hourly `skip` schedule three and a half hours
/// behind drops three ticks, once).
#[tokio::test]
async fn skipped_ticks_are_counted_in_the_metrics() {
    let mut config = test_config();
    config.maintenance.scheduler.start_jitter = Duration::ZERO;
    let clock = ManualClock::new(ts("2026-05-13T10:00:00Z"));
    let s = TestServer::start_with(config, Some(clock.clone())).await;
    create(
        &s,
        json!({"name": "skipper", "cron": "0 * * * *", "misfire": {"policy": "skip"},
               "job": {"kind": "k", "queue": "skipper"}}),
    )
    .await;
    clock.set(ts("2026-05-13T13:30:00Z"));
    let skipped = async || {
        let text = s.get("/metrics").await.expect(200).body;
        text.as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("hopper_schedule_ticks_skipped_total "))
            .map(|v| v.trim().parse::<f64>().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while skipped().await != Some(3.0) {
        assert!(
            Instant::now() < deadline,
            "skipped ticks: {:?}",
            skipped().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later passes do not count them again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(skipped().await, Some(3.0));
    assert_eq!(ticks_of(&s, "skipper").await, []);
}
