//! Cron schedules: the request that defines one ([`ScheduleRequest`]), its validated form
//! ([`ScheduleDefinition`]), the stored schedule ([`Schedule`]) with the bookkeeping of what it
//! fired, the shape the API shows ([`ScheduleView`]), and the jobs a schedule enqueues.
//!
//! Pure, like the rest of this crate: a store keeps a [`Schedule`] and changes it only through
//! the methods here ([`Schedule::create`], [`Schedule::redefine`], [`Schedule::set_paused`],
//! [`Schedule::record_fire`]), so every backend computes the cursor and the next fire time the
//! same way. Which ticks fire is [`crate::cron::due_ticks`]'s business.
//!
//! Every tick's job carries the idempotency key `schedule:<name>:<tick in ms>` ([`tick_key`]):
//! together with the store's compare-and-set on the cursor, that makes one job per tick even
//! when two nodes fire the same tick.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::cron::{CronError, CronSchedule, Misfire};
use crate::{
    EnqueueRequest, JobId, Limits, NewJob, RunAt, Timestamp, ValidationError, validate_name,
};

/// The time zone of a schedule that names none.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// Largest `jitter_ms`: one hour.
pub const MAX_JITTER_MS: i64 = 3_600_000;
/// Largest `max` of a `catch_up` misfire policy.
pub const MAX_CATCH_UP: u32 = 1000;
/// How many runs a schedule remembers (the newest).
pub const MAX_LAST_RUNS: usize = 10;
/// How many upcoming fire times the API shows.
pub const NEXT_FIRE_TIMES_SHOWN: usize = 5;
/// The key of a scheduled job's `meta` that names its schedule.
pub const META_KEY: &str = "schedule";

/// The misfire policy of a schedule that names none: one job stands for every missed tick.
pub const DEFAULT_MISFIRE: Misfire = Misfire::RunOnce;

/// A schedule as a client defines it (`POST /v1/schedules`, `PUT /v1/schedules/{name}`).
/// Unknown fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// `^[A-Za-z0-9_.:-]{1,128}$`. Required when creating; when replacing, it may be left out
    /// and must otherwise equal the name in the path (schedules are not renamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A cron expression: 5 fields, 6 with seconds first, or an alias such as `@daily`.
    pub cron: String,
    /// The IANA time zone the expression is read in; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The job each tick enqueues: an enqueue request without `run_at`, `delay_ms`,
    /// `idempotency_key` or `traceparent` (the scheduler sets those).
    pub job: EnqueueRequest,
    /// Each tick's job runs up to this much after its tick (0..3,600,000 ms; default 0), the
    /// same delay for the same tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<i64>,
    /// What to do about ticks missed while no scheduler ran or the schedule was paused;
    /// `{"policy": "run_once"}` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<Misfire>,
    /// A paused schedule fires nothing; false when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// A validated schedule definition: everything a client sets, with defaults applied.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleDefinition {
    /// The expression, whitespace normalised.
    pub cron: String,
    /// An IANA time zone name.
    pub timezone: String,
    /// The job template (valid: a job built from it passes validation).
    pub job: EnqueueRequest,
    /// 0..=[`MAX_JITTER_MS`].
    pub jitter_ms: i64,
    /// The misfire policy.
    pub misfire: Misfire,
    /// Fires nothing while true.
    pub paused: bool,
}

/// One job a schedule enqueued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleRun {
    /// The tick the job stands for.
    pub tick_at: Timestamp,
    /// The job (an existing one when the tick's key had already made it).
    pub job_id: JobId,
    /// When the scheduler enqueued it.
    pub enqueued_at: Timestamp,
}

/// A schedule as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// Tenant.
    pub namespace: String,
    /// Unique within the namespace.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// Its IANA time zone.
    pub timezone: String,
    /// The job template.
    pub job: EnqueueRequest,
    /// Largest delay of a tick's job after its tick.
    pub jitter_ms: i64,
    /// The misfire policy.
    pub misfire: Misfire,
    /// Fires nothing while true.
    pub paused: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its definition last changed (created, replaced, paused or resumed).
    pub updated_at: Timestamp,
    /// The last tick considered (fired or skipped); the creation time until the first tick.
    pub cursor: Timestamp,
    /// The first tick after `cursor`, when the scheduler will look at it next; none when the
    /// expression never fires again.
    pub next_fire_at: Option<Timestamp>,
    /// The jobs it enqueued, newest first, at most [`MAX_LAST_RUNS`].
    pub last_runs: Vec<ScheduleRun>,
}

/// A schedule as the API shows it: the stored schedule and its next fire times.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// Tenant.
    pub namespace: String,
    /// Unique within the namespace.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// Its IANA time zone.
    pub timezone: String,
    /// The job each tick enqueues.
    pub job: EnqueueRequest,
    /// Largest delay of a tick's job after its tick.
    pub jitter_ms: i64,
    /// What to do about missed ticks.
    pub misfire: Misfire,
    /// Fires nothing while true.
    pub paused: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its definition last changed.
    pub updated_at: Timestamp,
    /// The last tick considered (fired or skipped); the creation time until the first tick.
    pub cursor: Timestamp,
    /// The next tick the scheduler will handle (possibly a missed one); null when the
    /// expression never fires again.
    pub next_fire_at: Option<Timestamp>,
    /// The next fire times from now (at most 5); empty while paused.
    pub next_fire_times: Vec<Timestamp>,
    /// The jobs it enqueued, newest first, at most 10.
    pub last_runs: Vec<ScheduleRun>,
}

impl ScheduleRequest {
    /// A request for a schedule `name` firing `cron` (in UTC) with the job `job`.
    pub fn new(
        name: impl Into<String>,
        cron: impl Into<String>,
        job: EnqueueRequest,
    ) -> ScheduleRequest {
        ScheduleRequest {
            name: Some(name.into()),
            cron: cron.into(),
            job,
            ..Default::default()
        }
    }

    /// Checks every field and applies the defaults. `path_name` is the name of the route
    /// (`PUT /v1/schedules/{name}`), `None` when creating; returns the schedule's name with its
    /// definition. Errors name the field: `name`, `cron`, `timezone`, `jitter_ms`,
    /// `misfire.max`, `job.kind`, `job.run_at`, ...
    pub fn validate(
        self,
        path_name: Option<&str>,
        namespace: &str,
        limits: &Limits,
    ) -> Result<(String, ScheduleDefinition), ValidationError> {
        let name = match (self.name, path_name) {
            (Some(body), Some(path)) if body != path => {
                return Err(ValidationError::invalid(
                    "name",
                    "the name in the body must be the name in the path (schedules are not renamed)",
                ));
            }
            (Some(name), _) => name,
            (None, Some(path)) => path.to_string(),
            (None, None) => {
                return Err(ValidationError::invalid("name", "name is required"));
            }
        };
        validate_name("name", &name)?;

        let timezone = self
            .timezone
            .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
        let cron = CronSchedule::parse(&self.cron, &timezone)
            .map_err(|e| ValidationError::invalid(e.field(), e.to_string()))?;

        let jitter_ms = self.jitter_ms.unwrap_or(0);
        if !(0..=MAX_JITTER_MS).contains(&jitter_ms) {
            return Err(ValidationError::invalid(
                "jitter_ms",
                format!("jitter_ms must be between 0 and {MAX_JITTER_MS}"),
            ));
        }

        let misfire = self.misfire.unwrap_or(DEFAULT_MISFIRE);
        if let Misfire::CatchUp { max } = misfire
            && !(1..=MAX_CATCH_UP).contains(&max)
        {
            return Err(ValidationError::invalid(
                "misfire.max",
                format!("misfire.max must be between 1 and {MAX_CATCH_UP}"),
            ));
        }

        let job = self.job;
        let set_by_scheduler = [
            ("run_at", job.run_at.is_some(), "each job runs at its tick"),
            (
                "delay_ms",
                job.delay_ms.is_some(),
                "each job runs at its tick",
            ),
            (
                "idempotency_key",
                job.idempotency_key.is_some(),
                "each tick's job gets the key schedule:<name>:<tick>",
            ),
            (
                "traceparent",
                job.traceparent.is_some(),
                "each job starts its own trace",
            ),
        ];
        for (field, given, why) in set_by_scheduler {
            if given {
                return Err(ValidationError::invalid(
                    format!("job.{field}"),
                    format!("a schedule's job cannot set {field}: {why}"),
                ));
            }
        }
        if let Some(meta) = &job.meta
            && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(meta.get())
            && map.contains_key(META_KEY)
        {
            return Err(ValidationError::invalid(
                format!("job.meta.{META_KEY}"),
                format!("meta.{META_KEY} is set by the scheduler to name the schedule"),
            ));
        }
        // A job built from the template as a tick would build it: every rule of an enqueue,
        // with the key and meta the scheduler adds, holds for it.
        build_job(
            namespace,
            &job,
            RunAt::Now,
            tick_key(&name, Timestamp(i64::MAX / 2)),
            tick_meta(&name, Timestamp(0)),
            limits,
        )
        .map_err(|e| e.under("job"))?;

        Ok((
            name,
            ScheduleDefinition {
                cron: cron.expression().to_string(),
                timezone: cron.timezone().to_string(),
                job,
                jitter_ms,
                misfire,
                paused: self.paused.unwrap_or(false),
            },
        ))
    }
}

/// The idempotency key of the job of `name`'s tick at `tick`: `schedule:<name>:<tick in ms>`.
pub fn tick_key(name: &str, tick: Timestamp) -> String {
    format!("schedule:{name}:{}", tick.as_millis())
}

/// The idempotency key of a job triggered by hand: `schedule:<name>:manual:<uuid>`.
pub fn manual_key(name: &str) -> String {
    format!("schedule:{name}:manual:{}", uuid::Uuid::new_v4())
}

fn tick_meta(name: &str, tick: Timestamp) -> serde_json::Value {
    serde_json::json!({ "name": name, "tick_at": tick })
}

/// A job from `template` with `key`, `run_at` and `meta.schedule` = `schedule_meta`, validated
/// like any enqueue.
fn build_job(
    namespace: &str,
    template: &EnqueueRequest,
    run_at: RunAt,
    key: String,
    schedule_meta: serde_json::Value,
    limits: &Limits,
) -> Result<NewJob, ValidationError> {
    let mut req = template.clone();
    let mut meta = match &req.meta {
        None => serde_json::Map::new(),
        Some(raw) => match serde_json::from_str(raw.get()) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(ValidationError::invalid(
                    "meta",
                    "meta must be a JSON object",
                ));
            }
        },
    };
    meta.insert(META_KEY.to_string(), schedule_meta);
    let meta = serde_json::to_string(&meta)
        .ok()
        .and_then(|text| RawValue::from_string(text).ok())
        .ok_or_else(|| ValidationError::invalid("meta", "meta could not be encoded"))?;
    req.meta = Some(meta);
    req.idempotency_key = Some(key);
    req.run_at = None;
    req.delay_ms = None;
    let mut job = req.validate(namespace, limits)?;
    job.run_at = run_at;
    Ok(job)
}

impl Schedule {
    /// A new schedule `name` of `namespace` defined by `def`, created at `now`: its cursor is
    /// `now`, so its first tick is the first one after its creation.
    pub fn create(
        namespace: &str,
        name: &str,
        def: ScheduleDefinition,
        now: Timestamp,
    ) -> Result<Schedule, CronError> {
        let cron = CronSchedule::parse(&def.cron, &def.timezone)?;
        Ok(Schedule {
            namespace: namespace.to_string(),
            name: name.to_string(),
            cron: def.cron,
            timezone: def.timezone,
            job: def.job,
            jitter_ms: def.jitter_ms,
            misfire: def.misfire,
            paused: def.paused,
            created_at: now,
            updated_at: now,
            cursor: now,
            next_fire_at: cron.next_after(now),
            last_runs: Vec::new(),
        })
    }

    /// The parsed expression in its zone.
    pub fn cron_schedule(&self) -> Result<CronSchedule, CronError> {
        CronSchedule::parse(&self.cron, &self.timezone)
    }

    /// Replaces the definition at `now`, keeping the cursor and the runs. When the expression
    /// or the zone changed, the new one counts from `now` (the cursor moves up to `now` if it
    /// was earlier): ticks of the new expression before the change are not missed ticks.
    pub fn redefine(&mut self, def: ScheduleDefinition, now: Timestamp) -> Result<(), CronError> {
        let cron = CronSchedule::parse(&def.cron, &def.timezone)?;
        if def.cron != self.cron || def.timezone != self.timezone {
            self.cursor = self.cursor.max(now);
        }
        self.cron = def.cron;
        self.timezone = def.timezone;
        self.job = def.job;
        self.jitter_ms = def.jitter_ms;
        self.misfire = def.misfire;
        self.paused = def.paused;
        self.updated_at = now;
        self.next_fire_at = cron.next_after(self.cursor);
        Ok(())
    }

    /// Pauses or resumes at `now`. The cursor stays: on resume, the ticks missed while paused
    /// are due at once and the misfire policy decides which of them fire.
    pub fn set_paused(&mut self, paused: bool, now: Timestamp) -> Result<(), CronError> {
        let cron = self.cron_schedule()?;
        self.paused = paused;
        self.updated_at = now;
        self.next_fire_at = cron.next_after(self.cursor);
        Ok(())
    }

    /// Records a fire: the new cursor and next fire time, and `runs` (oldest first) at the head
    /// of `last_runs`.
    pub fn record_fire(
        &mut self,
        cursor: Timestamp,
        next_fire_at: Option<Timestamp>,
        runs: Vec<ScheduleRun>,
    ) {
        self.cursor = cursor;
        self.next_fire_at = next_fire_at;
        let mut last: Vec<ScheduleRun> = runs.into_iter().rev().collect();
        last.append(&mut self.last_runs);
        last.truncate(MAX_LAST_RUNS);
        self.last_runs = last;
    }

    /// The delay of `tick`'s job after the tick: in `0..=jitter_ms`, the same for the same
    /// schedule and tick (so nodes that both fire a tick agree on it).
    pub fn jitter_for(&self, tick: Timestamp) -> i64 {
        if self.jitter_ms <= 0 {
            return 0;
        }
        let mut h = Sha256::new();
        h.update(self.namespace.as_bytes());
        h.update([0]);
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(tick.as_millis().to_be_bytes());
        let digest = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let span = u64::try_from(self.jitter_ms).unwrap_or(0) + 1;
        i64::try_from(u64::from_be_bytes(first) % span).unwrap_or(0)
    }

    /// The job of the tick at `tick`: the template, leasable at `tick` plus its jitter, with
    /// the key [`tick_key`] and `meta.schedule` = `{"name", "tick_at"}`.
    pub fn job_for_tick(
        &self,
        tick: Timestamp,
        limits: &Limits,
    ) -> Result<NewJob, ValidationError> {
        build_job(
            &self.namespace,
            &self.job,
            RunAt::At(tick.plus_ms(self.jitter_for(tick))),
            tick_key(&self.name, tick),
            tick_meta(&self.name, tick),
            limits,
        )
    }

    /// A job enqueued by hand (`trigger`): the template, leasable now, with a fresh key
    /// [`manual_key`] and `meta.schedule` = `{"name", "manual": true}`.
    pub fn manual_job(&self, limits: &Limits) -> Result<NewJob, ValidationError> {
        build_job(
            &self.namespace,
            &self.job,
            RunAt::Now,
            manual_key(&self.name),
            serde_json::json!({ "name": self.name, "manual": true }),
            limits,
        )
    }

    /// The schedule as the API shows it at `now`.
    pub fn view(self, now: Timestamp) -> ScheduleView {
        let next_fire_times = match (self.paused, self.cron_schedule()) {
            (false, Ok(cron)) => cron.upcoming(now, NEXT_FIRE_TIMES_SHOWN),
            _ => Vec::new(),
        };
        ScheduleView {
            namespace: self.namespace,
            name: self.name,
            cron: self.cron,
            timezone: self.timezone,
            job: self.job,
            jitter_ms: self.jitter_ms,
            misfire: self.misfire,
            paused: self.paused,
            created_at: self.created_at,
            updated_at: self.updated_at,
            cursor: self.cursor,
            next_fire_at: self.next_fire_at,
            next_fire_times,
            last_runs: self.last_runs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn validate(json: &str) -> Result<(String, ScheduleDefinition), ValidationError> {
        let r: ScheduleRequest = serde_json::from_str(json).unwrap();
        r.validate(None, "default", &Limits::default())
    }

    fn schedule(json: &str, now: Timestamp) -> Schedule {
        let (name, def) = validate(json).unwrap();
        Schedule::create("default", &name, def, now).unwrap()
    }

    #[test]
    fn defaults_apply() {
        let (name, d) =
            validate(r#"{"name":"n","cron":" 0  9 * * *","job":{"kind":"k"}}"#).unwrap();
        assert_eq!(name, "n");
        assert_eq!(d.cron, "0 9 * * *");
        assert_eq!(d.timezone, "UTC");
        assert_eq!(d.jitter_ms, 0);
        assert_eq!(d.misfire, Misfire::RunOnce);
        assert!(!d.paused);
    }

    #[test]
    fn bad_fields_are_named() {
        for (body, field) in [
            (r#"{"cron":"* * * * *","job":{"kind":"k"}}"#, "name"),
            (
                r#"{"name":"a b","cron":"* * * * *","job":{"kind":"k"}}"#,
                "name",
            ),
            (
                r#"{"name":"n","cron":"61 * * * *","job":{"kind":"k"}}"#,
                "cron",
            ),
            (r#"{"name":"n","cron":"* * *","job":{"kind":"k"}}"#, "cron"),
            (
                r#"{"name":"n","cron":"* * * * *","timezone":"Mars/Base","job":{"kind":"k"}}"#,
                "timezone",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":""}}"#,
                "job.kind",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","priority":99999}}"#,
                "job.priority",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","run_at":"2026-01-01T00:00:00Z"}}"#,
                "job.run_at",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","delay_ms":5}}"#,
                "job.delay_ms",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","idempotency_key":"x"}}"#,
                "job.idempotency_key",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","meta":{"schedule":1}}}"#,
                "job.meta.schedule",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","meta":[1]}}"#,
                "job.meta",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"jitter_ms":3600001}"#,
                "jitter_ms",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"jitter_ms":-1}"#,
                "jitter_ms",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"misfire":{"policy":"catch_up","max":0}}"#,
                "misfire.max",
            ),
            (
                r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"misfire":{"policy":"catch_up","max":1001}}"#,
                "misfire.max",
            ),
        ] {
            assert_eq!(validate(body).unwrap_err().field, field, "{body}");
        }
        let ok = r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"misfire":{"policy":"catch_up","max":1000},"jitter_ms":3600000}"#;
        assert!(validate(ok).is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<ScheduleRequest>(
            r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"},"jiter_ms":1}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("jiter_ms"), "{e}");
    }

    #[test]
    fn the_path_names_the_schedule_when_replacing() {
        let r: ScheduleRequest =
            serde_json::from_str(r#"{"cron":"* * * * *","job":{"kind":"k"}}"#).unwrap();
        let (name, _) = r
            .clone()
            .validate(Some("p"), "default", &Limits::default())
            .unwrap();
        assert_eq!(name, "p");
        let mut other = r;
        other.name = Some("q".into());
        let e = other
            .validate(Some("p"), "default", &Limits::default())
            .unwrap_err();
        assert_eq!(e.field, "name");
    }

    #[test]
    fn a_ticks_job_carries_key_meta_and_jittered_run_at() {
        let t0 = ts("2026-05-01T00:00:00Z");
        let mut s = schedule(
            r#"{"name":"nightly","cron":"0 * * * *","jitter_ms":60000,
                "job":{"kind":"k","queue":"q","args":{"a":1},"meta":{"team":"x"},"tags":["t"]}}"#,
            t0,
        );
        assert_eq!(s.next_fire_at, Some(ts("2026-05-01T01:00:00Z")));
        let tick = ts("2026-05-01T01:00:00Z");
        let job = s.job_for_tick(tick, &Limits::default()).unwrap();
        assert_eq!(
            job.idempotency_key.as_deref(),
            Some("schedule:nightly:1777597200000")
        );
        assert_eq!((job.kind.as_str(), job.queue.as_str()), ("k", "q"));
        assert_eq!(job.tags, ["t"]);
        let meta: serde_json::Value = serde_json::from_str(job.meta.get()).unwrap();
        assert_eq!(meta["team"], "x");
        assert_eq!(meta["schedule"]["name"], "nightly");
        assert_eq!(meta["schedule"]["tick_at"], "2026-05-01T01:00:00.000Z");
        let RunAt::At(at) = job.run_at else {
            panic!("{:?}", job.run_at)
        };
        assert!((0..=60_000).contains(&at.millis_since(tick)));
        assert_eq!(s.jitter_for(tick), s.jitter_for(tick), "deterministic");
        let spread: std::collections::BTreeSet<i64> = (0..50)
            .map(|h| s.jitter_for(tick.plus_ms(h * 3_600_000)))
            .collect();
        assert!(spread.len() > 40, "jitter spreads ticks: {spread:?}");
        s.jitter_ms = 0;
        assert_eq!(s.jitter_for(tick), 0);

        let manual = s.manual_job(&Limits::default()).unwrap();
        assert!(
            manual
                .idempotency_key
                .unwrap()
                .starts_with("schedule:nightly:manual:")
        );
        assert_eq!(manual.run_at, RunAt::Now);
    }

    #[test]
    fn fires_are_recorded_newest_first_and_bounded() {
        let t0 = ts("2026-05-01T00:00:00Z");
        let mut s = schedule(r#"{"name":"n","cron":"* * * * *","job":{"kind":"k"}}"#, t0);
        for batch in 0..4 {
            let runs: Vec<ScheduleRun> = (0..4)
                .map(|i| ScheduleRun {
                    tick_at: t0.plus_ms((batch * 4 + i) * 60_000),
                    job_id: JobId::new(),
                    enqueued_at: t0,
                })
                .collect();
            let last = runs[3].tick_at;
            s.record_fire(last, Some(last.plus_ms(60_000)), runs);
        }
        assert_eq!(s.last_runs.len(), MAX_LAST_RUNS);
        assert_eq!(s.last_runs[0].tick_at, t0.plus_ms(15 * 60_000));
        assert!(s.last_runs.windows(2).all(|w| w[0].tick_at > w[1].tick_at));
        assert_eq!(s.cursor, t0.plus_ms(15 * 60_000));
    }

    #[test]
    fn redefining_the_expression_counts_from_the_change() {
        let t0 = ts("2026-05-01T00:00:00Z");
        let mut s = schedule(r#"{"name":"n","cron":"0 9 * * *","job":{"kind":"k"}}"#, t0);
        let later = ts("2026-05-03T10:30:00Z");
        // Same expression, other job: the cursor stays, so missed ticks stay missed.
        let (_, same) =
            validate(r#"{"name":"n","cron":"0 9 * * *","job":{"kind":"other"}}"#).unwrap();
        s.redefine(same, later).unwrap();
        assert_eq!(s.cursor, t0);
        assert_eq!(s.next_fire_at, Some(ts("2026-05-01T09:00:00Z")));
        assert_eq!(s.job.kind, "other");
        assert_eq!(s.updated_at, later);
        // A new expression starts from the change.
        let (_, new) = validate(r#"{"name":"n","cron":"0 8 * * *","job":{"kind":"k"}}"#).unwrap();
        s.redefine(new, later).unwrap();
        assert_eq!(s.cursor, later);
        assert_eq!(s.next_fire_at, Some(ts("2026-05-04T08:00:00Z")));
    }

    #[test]
    fn views_show_the_next_five_times_unless_paused() {
        let t0 = ts("2026-05-01T00:00:00Z");
        let mut s = schedule(
            r#"{"name":"n","cron":"30 2 * * *","timezone":"Europe/Berlin","job":{"kind":"k"}}"#,
            t0,
        );
        let v = s.clone().view(ts("2026-03-27T12:00:00Z"));
        assert_eq!(
            v.next_fire_times,
            [
                ts("2026-03-28T01:30:00Z"),
                ts("2026-03-29T01:00:00Z"),
                ts("2026-03-30T00:30:00Z"),
                ts("2026-03-31T00:30:00Z"),
                ts("2026-04-01T00:30:00Z"),
            ]
        );
        s.set_paused(true, t0).unwrap();
        assert!(s.view(t0).next_fire_times.is_empty());
    }

    #[test]
    fn the_wire_shapes_round_trip() {
        let t0 = ts("2026-05-01T00:00:00Z");
        let s = schedule(
            r#"{"name":"n","cron":"* * * * *","job":{"kind":"k","args":{"x":[1,2]}},"misfire":{"policy":"skip"}}"#,
            t0,
        );
        let text = serde_json::to_string(&s).unwrap();
        let back: Schedule = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        let view = serde_json::to_value(s.view(t0)).unwrap();
        assert_eq!(view["misfire"], serde_json::json!({"policy": "skip"}));
        assert_eq!(view["job"]["args"], serde_json::json!({"x": [1, 2]}));
        assert_eq!(view["next_fire_times"].as_array().unwrap().len(), 5);
        let read: ScheduleView = serde_json::from_str(&view.to_string()).unwrap();
        assert_eq!(read.name, "n");
    }
}
