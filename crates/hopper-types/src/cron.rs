//! Cron schedules: a cron expression in an IANA time zone, its fire times, and which ticks a
//! scheduler should fire after a pause (the misfire policy). Pure functions: no I/O, no clock.
//!
//! # Expressions
//!
//! Five fields (`minute hour day-of-month month day-of-week`), or six with a seconds field first,
//! or one of the aliases `@yearly` (= `@annually`), `@monthly`, `@weekly`, `@daily`
//! (= `@midnight`) and `@hourly`. Fields take values, ranges (`1-5`), lists (`1,15`), steps
//! (`*/15`, `0-30/10`) and names (`MON`, `JAN`); day-of-week runs 0-7 with both 0 and 7 for
//! Sunday. When both day-of-month and day-of-week are restricted, a day matching either one fires
//! (as in Vixie cron). The parser is [`croner`]'s, so its extensions (`L`, `W`, `#`, `+`) work
//! too. Fire times fall on whole seconds (on second 0 for five-field expressions) and are
//! searched for up to the year 5000.
//!
//! # Time zones and daylight saving time
//!
//! An expression is matched against the wall clock of its zone. Where the zone changes its clock,
//! a wall-clock time can be missing (spring forward) or happen twice (fall back), and the rule
//! depends on the kind of schedule, as in Vixie cron and cronie:
//!
//! - A **wall-clock schedule** names times of day: its seconds, minute and hour fields are plain
//!   values, lists or ranges, with no `*` and no `/` step (`30 2 * * *`, `0 9,17 * * 1-5`,
//!   `@daily`). Each matching wall-clock time fires exactly once:
//!   - A time that does not exist that day fires at the first instant after the gap. In
//!     Europe/Berlin on 2026-03-29 the clock jumps from 02:00 to 03:00, so `30 2 * * *` fires at
//!     03:00 CEST (01:00 UTC); in America/New_York on 2026-03-08 it fires at 03:00 EDT (07:00
//!     UTC). Every skipped time of the gap fires at that same instant (`0,30 2 * * *` gives one
//!     tick at 03:00), and so does a time at the end of the gap (`0 2,3 * * *` gives one tick at
//!     03:00): a tick is an instant, and one instant fires once.
//!   - A time that happens twice fires at its first occurrence only. In Europe/Berlin on
//!     2026-10-25 the clock goes back from 03:00 to 02:00, so `30 2 * * *` fires at 02:30 CEST
//!     (00:30 UTC) and not again at 02:30 CET; in America/New_York on 2026-11-01, `30 1 * * *`
//!     fires at 01:30 EDT (05:30 UTC) only.
//! - An **elapsed-time schedule** uses `*` or a step in its seconds, minute or hour field
//!   (`*/15 * * * *`, `0 * * * *`, `@hourly`, `0 */2 * * *`, `* 2 * * *`). It fires at every real
//!   instant whose wall-clock reading matches: wall-clock times that do not exist do not fire,
//!   and times that happen twice fire twice, each a distinct instant. So `0 * * * *` fires every
//!   real hour: 24 times on a normal day, 23 on the spring-forward day and 25 on the fall-back day
//!   (Berlin on 2026-10-25: 02:00 CEST and 02:00 CET, an hour apart); `*/15 * * * *` fires 92
//!   and 100 times on those days. A consequence: `*/30 2 * * *` does not fire at all on the day
//!   hour 2 is skipped.
//!
//! Time zones without daylight saving time (such as `UTC`) have neither case.
//!
//! Where croner itself calls a schedule "fixed time" (single values in the seconds, minute and
//! hour fields) these are exactly croner's rules. croner counts lists and ranges such as
//! `30 2,14 * * *` as interval schedules, whose 02:30 would be lost on the spring-forward day and
//! fire twice on the fall-back day; here they are wall-clock schedules, so that every time of day
//! a schedule names fires exactly once a day.
//!
//! # Missed ticks
//!
//! [`due_ticks`] tells a scheduler which ticks to fire now, given the last tick it handled, and
//! applies the [`Misfire`] policy to ticks that are too late. Its cost is bounded however long the
//! gap: see [`MAX_FIRED_PER_CALL`] and [`MAX_COUNTED_TICKS`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::{CronComponent, JobType};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The most ticks [`due_ticks`] returns to fire in one call. A larger `CatchUp { max }` fires this
/// many, and should a grace period hold more on-time ticks than this (an every-second schedule
/// with hours of grace), the oldest of them are skipped.
pub const MAX_FIRED_PER_CALL: usize = 10_000;

/// How many skipped ticks [`due_ticks`] counts one by one. Past this, [`DueTicks::skipped`] is
/// extrapolated from the average spacing of the ticks counted, so the cost of a call stays bounded
/// when a long outage held millions of ticks.
pub const MAX_COUNTED_TICKS: u64 = 100_000;

/// Steps of the wall-clock walk in one search; a safeguard only, real searches take a handful.
const MAX_WALK_STEPS: usize = 100_000;

/// Seconds in a day.
const DAY_SECS: i64 = 86_400;

/// The aliases accepted in place of five fields.
const ALIASES: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// A parsed cron expression in an IANA time zone.
#[derive(Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: String,
    cron: croner::Cron,
    tz: Tz,
    /// A wall-clock schedule (each matching local time fires once) rather than an elapsed-time
    /// one (every instant whose local time matches fires); see the module doc.
    wall_clock: bool,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the parsed pattern: croner keeps a bit per year up to 5000.
        f.debug_struct("CronSchedule")
            .field("expression", &self.expression)
            .field("timezone", &self.timezone)
            .field("wall_clock", &self.wall_clock)
            .finish()
    }
}

/// Why a cron expression or its time zone was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The cron expression is malformed; the message says what is wrong.
    #[error("invalid cron expression: {0}")]
    Expression(String),
    /// The time zone is not an IANA time zone name.
    #[error("invalid time zone: {0}")]
    Timezone(String),
}

impl CronError {
    /// The input at fault: `"cron"` for the expression, `"timezone"` for the zone.
    pub fn field(&self) -> &'static str {
        match self {
            CronError::Expression(_) => "cron",
            CronError::Timezone(_) => "timezone",
        }
    }
}

/// Search direction along the time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Forward,
    Backward,
}

/// The real instants (seconds since the epoch) of a wall-clock time.
#[derive(Debug, Clone, Copy)]
enum Instants {
    One(i64),
    /// Two instants, earlier first: the clock went back over this time.
    Two(i64, i64),
    /// None: the clock jumped over this time.
    Gap,
}

impl CronSchedule {
    /// `expr`: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first,
    /// or an alias: @yearly @annually @monthly @weekly @daily @midnight @hourly. `timezone`: an
    /// IANA name such as "Europe/Berlin" or "UTC".
    pub fn parse(expr: &str, timezone: &str) -> Result<CronSchedule, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let expression = fields.join(" ");
        let pattern = match fields.as_slice() {
            [] => return Err(CronError::Expression("the expression is empty".into())),
            [alias] if alias.starts_with('@') => {
                let lower = alias.to_ascii_lowercase();
                if !ALIASES.contains(&lower.as_str()) {
                    return Err(CronError::Expression(format!(
                        "unknown alias {alias:?}; expected one of {}",
                        ALIASES.join(", ")
                    )));
                }
                // croner knows every alias but @midnight, which is @daily.
                if lower == "@midnight" {
                    "@daily".to_string()
                } else {
                    lower
                }
            }
            fields if fields.len() == 5 || fields.len() == 6 => expression.clone(),
            fields => {
                return Err(CronError::Expression(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week), 6 with \
                     seconds first, or an alias such as @daily; got {} fields",
                    fields.len()
                )));
            }
        };
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(&pattern)
            .map_err(|e| CronError::Expression(explain(&parser, &fields, &e)))?;

        let zone = timezone.trim();
        let tz = Tz::from_str(zone).map_err(|_| {
            CronError::Timezone(format!(
                "{zone:?} is not an IANA time zone name (such as \"Europe/Berlin\" or \"UTC\")"
            ))
        })?;

        let elapsed = |c: &CronComponent| c.from_wildcard || c.step != 1;
        let p = &cron.pattern;
        let wall_clock = !(elapsed(&p.seconds) || elapsed(&p.minutes) || elapsed(&p.hours));
        // croner's own "fixed time" is stricter (single values only); it must imply ours.
        debug_assert!(cron.determine_job_type() != JobType::FixedTime || wall_clock);

        Ok(CronSchedule {
            expression,
            timezone: zone.to_string(),
            cron,
            tz,
            wall_clock,
        })
    }

    /// The first fire time strictly after `t`; None if it never fires again (e.g. Feb 30).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        self.search(t.0, Dir::Forward).and_then(secs_to_timestamp)
    }

    /// Up to `n` fire times strictly after `t`.
    pub fn upcoming(&self, t: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut cursor = t;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// The expression and zone as given (normalised whitespace is fine).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA time zone name as given (trimmed).
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The last fire time strictly before `t`.
    fn prev_before(&self, t: Timestamp) -> Option<Timestamp> {
        self.search(t.0, Dir::Backward).and_then(secs_to_timestamp)
    }

    /// The nearest fire instant (in seconds) strictly beyond `origin_ms` in direction `dir`.
    ///
    /// The wall clock is walked from `origin`'s local time. That covers everything except, when
    /// `origin` sits inside a repeated range, the other half of that range lying ahead of it; a
    /// second walk covers that half, and the nearer answer wins.
    fn search(&self, origin_ms: i64, dir: Dir) -> Option<i64> {
        let origin_s = origin_ms.div_euclid(1000);
        let start = self.local(origin_s)?;
        if dir == Dir::Backward
            && origin_ms % 1000 != 0
            && self.search(origin_s * 1000 - 1, Dir::Forward) == Some(origin_s)
        {
            // `origin` is just past a fire time, within its second.
            return Some(origin_s);
        }
        // The wall-clock time of `origin` itself has no fire time beyond `origin` on `origin`'s
        // half of a repeated range; one on the other half is left to the second walk below.
        let first = self.walk(origin_ms, start, false, dir);
        let Instants::Two(earlier, later) = self.instants(start) else {
            return first;
        };
        let in_earlier_half = origin_s < later;
        match dir {
            // A wall-clock schedule never fires in the later half; an elapsed-time one may.
            Dir::Forward if in_earlier_half && !self.wall_clock => {
                let change = self.fold_change(earlier, later)?;
                if first.is_some_and(|x| x < change) {
                    return first;
                }
                let second = self.walk(origin_ms, self.local(change)?, true, dir);
                min_some(first, second)
            }
            Dir::Backward if !in_earlier_half => {
                let change = self.fold_change(earlier, later)?;
                if first.is_some_and(|x| x >= change) {
                    return first;
                }
                let second = self.walk(origin_ms, self.local(change - 1)?, true, dir);
                max_some(first, second)
            }
            _ => first,
        }
    }

    /// Walks matching wall-clock times from `start` in direction `dir` and returns the first
    /// fire instant strictly beyond `origin_ms`.
    fn walk(&self, origin_ms: i64, start: NaiveDateTime, inclusive: bool, dir: Dir) -> Option<i64> {
        let beyond = |secs: i64| {
            let ms = secs.saturating_mul(1000);
            match dir {
                Dir::Forward => ms > origin_ms,
                Dir::Backward => ms < origin_ms,
            }
        };
        let mut cursor = start;
        let mut inclusive = inclusive;
        for _ in 0..MAX_WALK_STEPS {
            let found = match dir {
                Dir::Forward => self.cron.find_next_occurrence(&cursor, inclusive),
                Dir::Backward => self.cron.find_previous_occurrence(&cursor, inclusive),
            }
            .ok()?;
            cursor = found;
            inclusive = false;
            match self.instants(found) {
                Instants::One(x) => {
                    if beyond(x) {
                        return Some(x);
                    }
                }
                Instants::Two(earlier, later) => {
                    let candidates = match (self.wall_clock, dir) {
                        (true, _) => [Some(earlier), None],
                        (false, Dir::Forward) => [Some(earlier), Some(later)],
                        (false, Dir::Backward) => [Some(later), Some(earlier)],
                    };
                    if let Some(x) = candidates.into_iter().flatten().find(|&x| beyond(x)) {
                        return Some(x);
                    }
                }
                Instants::Gap => {
                    let end = self.gap_end(found)?;
                    if self.wall_clock && beyond(end) {
                        return Some(end);
                    }
                    // Nothing else in the gap can fire: carry on from its edge.
                    cursor = match dir {
                        Dir::Forward => self.local(end)?,
                        Dir::Backward => self.local(end - 1)?,
                    };
                    inclusive = true;
                }
            }
        }
        None
    }

    /// The local wall-clock time at `secs` since the epoch.
    fn local(&self, secs: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::<Utc>::from_timestamp(secs, 0)?;
        Some(utc.with_timezone(&self.tz).naive_local())
    }

    /// The offset from UTC (in seconds) in force at `secs`.
    fn offset(&self, secs: i64) -> Option<i64> {
        let utc = DateTime::<Utc>::from_timestamp(secs, 0)?;
        Some(
            utc.with_timezone(&self.tz)
                .offset()
                .fix()
                .local_minus_utc()
                .into(),
        )
    }

    /// The instants at which the zone's clock reads `local`.
    fn instants(&self, local: NaiveDateTime) -> Instants {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Instants::One(t.timestamp()),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.timestamp(), b.timestamp());
                Instants::Two(a.min(b), a.max(b))
            }
            LocalResult::None => Instants::Gap,
        }
    }

    /// For a wall-clock time inside a gap: the first instant after the gap (the moment the clock
    /// jumped), by bisection.
    fn gap_end(&self, local: NaiveDateTime) -> Option<i64> {
        let guess = local.and_utc().timestamp();
        // No zone is ever 2 days off UTC, so `local` lies between these two instants' readings.
        let (mut lo, mut hi) = (guess - 2 * DAY_SECS, guess + 2 * DAY_SECS);
        if self.local(lo)? >= local || self.local(hi)? <= local {
            return None;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(mid)? < local {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(hi)
    }

    /// For a wall-clock time with the two instants `earlier` and `later`: the moment the clock
    /// went back (the first instant of the repeated range's later half), by bisection.
    fn fold_change(&self, earlier: i64, later: i64) -> Option<i64> {
        let before = self.offset(earlier)?;
        let (mut lo, mut hi) = (earlier, later);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset(mid)? == before {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(hi)
    }
}

/// Says which field of `fields` croner rejected and why, by parsing each field alone.
fn explain(parser: &CronParser, fields: &[&str], error: &croner::errors::CronError) -> String {
    const NAMES: [&str; 6] = [
        "second",
        "minute",
        "hour",
        "day-of-month",
        "month",
        "day-of-week",
    ];
    let names = &NAMES[NAMES.len().saturating_sub(fields.len())..];
    if fields.len() == names.len() {
        for (i, field) in fields.iter().enumerate() {
            let probe: Vec<&str> = (0..fields.len())
                .map(|j| if j == i { *field } else { "*" })
                .collect();
            if let Err(e) = parser.parse(&probe.join(" ")) {
                return format!("{} field {field:?}: {}", names[i], croner_message(&e));
            }
        }
    }
    croner_message(error)
}

/// croner's message without its prefix, in lower case, without the full stop.
fn croner_message(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    let text = match error {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "not a valid cron expression".to_string(),
    }
}

fn secs_to_timestamp(secs: i64) -> Option<Timestamp> {
    secs.checked_mul(1000).map(Timestamp)
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// What a schedule does about ticks missed while nothing was running (server down, paused).
///
/// On the wire: `{"policy":"skip"}`, `{"policy":"run_once"}`, `{"policy":"catch_up","max":10}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Misfire {
    /// Fire none of the missed ticks.
    Skip,
    /// Fire only the latest missed tick: one job stands for all of them.
    RunOnce,
    /// Fire the latest `max` missed ticks, oldest first, and skip the older ones.
    CatchUp {
        /// How many missed ticks to fire at most (capped at [`MAX_FIRED_PER_CALL`]).
        max: u32,
    },
}

/// The ticks a scheduler should fire now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTicks {
    /// Tick times to enqueue a job for, oldest first (each tick time becomes the job's
    /// idempotency key, so firing one twice is harmless).
    pub fire: Vec<Timestamp>,
    /// Ticks that were due but are not fired because of the misfire policy. Exact up to
    /// [`MAX_COUNTED_TICKS`]; beyond that an estimate, extrapolated from the spacing of the first
    /// [`MAX_COUNTED_TICKS`] of them.
    pub skipped: u64,
    /// The last tick considered (fired or skipped): the scheduler's new cursor. Equal to `after`
    /// when nothing was due.
    pub cursor: Timestamp,
    /// The next tick strictly after `now` (and after `after`), if any.
    pub next: Option<Timestamp>,
}

/// Ticks in (after, now]. A tick is *on time* when now - tick <= grace_ms; on-time ticks always
/// fire. Late ticks (misfires) are handled by the policy: Skip fires none of them; RunOnce fires
/// only the latest late tick (one job stands for all of them); CatchUp{max} fires the latest `max`
/// late ticks, oldest first, and skips the rest.
///
/// The cost is bounded however many ticks the interval holds: ticks are collected newest first,
/// at most [`MAX_FIRED_PER_CALL`] of them (should more be on time, the oldest are skipped), and
/// the skipped ticks before them are counted one by one only up to [`MAX_COUNTED_TICKS`], then
/// estimated (see [`DueTicks::skipped`]). A negative `grace_ms` counts as 0.
pub fn due_ticks(
    schedule: &CronSchedule,
    after: Timestamp,
    now: Timestamp,
    misfire: Misfire,
    grace_ms: i64,
) -> DueTicks {
    let next = schedule.next_after(now.max(after));
    let mut due = DueTicks {
        fire: Vec::new(),
        skipped: 0,
        cursor: after,
        next,
    };
    if now <= after {
        return due;
    }
    let on_time_from = now.0.saturating_sub(grace_ms.max(0));
    let late_quota = match misfire {
        Misfire::Skip => 0,
        Misfire::RunOnce => 1,
        Misfire::CatchUp { max } => usize::try_from(max).unwrap_or(usize::MAX),
    };

    // Newest first, from `now` down, until the policy (or the cap) stops taking ticks.
    let mut late_taken = 0;
    // Everything strictly between `after` and `oldest` is left over, hence skipped.
    let mut oldest = now.plus_ms(1);
    while due.fire.len() < MAX_FIRED_PER_CALL {
        let Some(tick) = schedule.prev_before(oldest).filter(|&t| t > after) else {
            break;
        };
        if due.cursor == after {
            due.cursor = tick;
        }
        if tick.0 < on_time_from {
            if late_taken >= late_quota {
                break;
            }
            late_taken += 1;
        }
        due.fire.push(tick);
        oldest = tick;
    }
    due.fire.reverse();
    due.skipped = count_ticks_between(schedule, after, oldest);
    due
}

/// The number of ticks strictly between `after` and `before`: exact up to
/// [`MAX_COUNTED_TICKS`], extrapolated past that.
fn count_ticks_between(schedule: &CronSchedule, after: Timestamp, before: Timestamp) -> u64 {
    let mut counted = 0u64;
    let mut cursor = after;
    while let Some(tick) = schedule.next_after(cursor) {
        if tick >= before {
            break;
        }
        counted += 1;
        cursor = tick;
        if counted == MAX_COUNTED_TICKS {
            // The average spacing so far, applied to the rest of the interval.
            let seen = i128::from(cursor.millis_since(after)).max(1);
            let rest = i128::from(before.millis_since(cursor) - 1).max(0);
            let more = rest * i128::from(counted) / seen;
            return counted.saturating_add(u64::try_from(more).unwrap_or(u64::MAX));
        }
    }
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
    }

    fn sched(expr: &str, zone: &str) -> CronSchedule {
        CronSchedule::parse(expr, zone).unwrap_or_else(|e| panic!("{expr} in {zone}: {e}"))
    }

    fn rfc(v: &[Timestamp]) -> Vec<String> {
        v.iter().map(|t| t.to_rfc3339()).collect()
    }

    /// Fire times in [from, to).
    fn fires_between(s: &CronSchedule, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut out = Vec::new();
        let mut cursor = from.plus_ms(-1);
        while let Some(t) = s.next_after(cursor) {
            if t >= to {
                break;
            }
            out.push(t);
            cursor = t;
        }
        out
    }

    // --- parsing ---

    #[test]
    fn parses_five_and_six_fields_and_aliases() {
        let s = sched("  */15   9-17 * *  MON-FRI ", "UTC");
        assert_eq!(s.expression(), "*/15 9-17 * * MON-FRI");
        assert_eq!(s.timezone(), "UTC");

        let s = sched("30 */5 * * * *", "Europe/Berlin");
        assert_eq!(s.timezone(), "Europe/Berlin");
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:00Z")),
            Some(ts("2026-01-01T00:00:30Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:30Z")),
            Some(ts("2026-01-01T00:05:30Z"))
        );

        let from = ts("2026-05-13T10:20:00Z"); // a Wednesday
        let cases = [
            ("@yearly", "2027-01-01T00:00:00.000Z"),
            ("@annually", "2027-01-01T00:00:00.000Z"),
            ("@monthly", "2026-06-01T00:00:00.000Z"),
            ("@weekly", "2026-05-17T00:00:00.000Z"),
            ("@daily", "2026-05-14T00:00:00.000Z"),
            ("@midnight", "2026-05-14T00:00:00.000Z"),
            ("@hourly", "2026-05-13T11:00:00.000Z"),
            ("@HOURLY", "2026-05-13T11:00:00.000Z"),
        ];
        for (alias, want) in cases {
            let s = sched(alias, "UTC");
            assert_eq!(s.next_after(from).unwrap().to_rfc3339(), want, "{alias}");
        }
    }

    #[test]
    fn rejects_bad_expressions_with_the_cron_field() {
        for bad in [
            "",
            "   ",
            "* * * *",
            "* * * * * * *",
            "0 0 0 1 1 * 2030",
            "60 * * * *",
            "* 24 * * *",
            "* * 32 * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "61 * * * * *",
            "*/0 * * * *",
            "hello world foo bar baz",
            "@often",
            "@daily extra",
            "1-2-3 * * * *",
            "a * * * *",
        ] {
            let err = CronSchedule::parse(bad, "UTC").expect_err(bad);
            assert_eq!(err.field(), "cron", "{bad}: {err}");
            assert!(
                matches!(err, CronError::Expression(ref m) if !m.is_empty()),
                "{bad}"
            );
        }
        let message = |expr: &str| CronSchedule::parse(expr, "UTC").unwrap_err().to_string();
        assert!(message("* * * *").contains("got 4 fields"));
        assert_eq!(
            message("60 * * * *"),
            r#"invalid cron expression: minute field "60": number out of bounds"#
        );
        assert_eq!(
            message("0 0 * 13 *"),
            r#"invalid cron expression: month field "13": number out of bounds"#
        );
        assert_eq!(
            message("0 */0 * * * *"),
            r#"invalid cron expression: minute field "*/0": step cannot be zero"#
        );
        assert!(message("* * * * FOO").contains("day-of-week field"));
        assert!(message("@often").contains("unknown alias"));
        // Debug stays short.
        assert!(format!("{:?}", sched("0 9 * * *", "UTC")).len() < 200);
    }

    #[test]
    fn rejects_unknown_zones_with_the_timezone_field() {
        for bad in ["", "Mars/Olympus_Mons", "Europe/Berln", "+01:00", "CEST!"] {
            let err = CronSchedule::parse("* * * * *", bad).expect_err(bad);
            assert_eq!(err.field(), "timezone", "{bad}");
            assert!(matches!(err, CronError::Timezone(_)), "{bad}");
            assert!(err.to_string().contains("time zone"), "{err}");
        }
        // A bad expression is reported first.
        assert_eq!(
            CronSchedule::parse("x", "Nowhere").unwrap_err().field(),
            "cron"
        );
    }

    // --- next_after and upcoming ---

    #[test]
    fn next_and_upcoming_in_utc() {
        let s = sched("*/15 * * * *", "UTC");
        let from = ts("2026-05-13T10:07:00Z");
        assert_eq!(s.next_after(from), Some(ts("2026-05-13T10:15:00Z")));
        // Strictly after: a fire time itself is not returned.
        assert_eq!(
            s.next_after(ts("2026-05-13T10:15:00Z")),
            Some(ts("2026-05-13T10:30:00Z"))
        );
        assert_eq!(
            rfc(&s.upcoming(from, 4)),
            [
                "2026-05-13T10:15:00.000Z",
                "2026-05-13T10:30:00.000Z",
                "2026-05-13T10:45:00.000Z",
                "2026-05-13T11:00:00.000Z"
            ]
        );
        assert!(s.upcoming(from, 0).is_empty());

        // Weekdays at 09:00: Friday is followed by Monday.
        let s = sched("0 9 * * 1-5", "UTC");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-05-15T09:00:00Z"), 2)),
            ["2026-05-18T09:00:00.000Z", "2026-05-19T09:00:00.000Z"]
        );
    }

    #[test]
    fn next_in_zones() {
        // 09:00 in Berlin is 07:00 UTC in summer and 08:00 UTC in winter.
        let s = sched("0 9 * * *", "Europe/Berlin");
        assert_eq!(
            s.next_after(ts("2026-07-01T12:00:00Z")),
            Some(ts("2026-07-02T07:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-12-01T12:00:00Z")),
            Some(ts("2026-12-02T08:00:00Z"))
        );
        // Weekday and date are the local ones: 01:00 Monday in Tokyo is Sunday 16:00 UTC.
        let s = sched("0 1 * * MON", "Asia/Tokyo");
        assert_eq!(
            s.next_after(ts("2026-05-13T00:00:00Z")),
            Some(ts("2026-05-17T16:00:00Z"))
        );
        // A half-hour zone.
        let s = sched("0 0 * * *", "Asia/Kolkata");
        assert_eq!(
            s.next_after(ts("2026-05-13T00:00:00Z")),
            Some(ts("2026-05-13T18:30:00Z"))
        );
    }

    #[test]
    fn never_firing_schedules_give_none() {
        let s = sched("0 0 30 2 *", "UTC");
        assert_eq!(s.next_after(ts("2026-01-01T00:00:00Z")), None);
        assert!(s.upcoming(ts("2026-01-01T00:00:00Z"), 3).is_empty());
        // February 29th does fire, in leap years.
        let s = sched("0 0 29 2 *", "UTC");
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn sub_second_times() {
        let s = sched("* * * * * *", "UTC");
        let t = ts("2026-05-13T10:00:00.500Z");
        assert_eq!(s.next_after(t), Some(ts("2026-05-13T10:00:01Z")));
        assert_eq!(
            s.next_after(t.plus_ms(-1)),
            Some(ts("2026-05-13T10:00:01Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-05-13T10:00:00.999Z")),
            Some(ts("2026-05-13T10:00:01Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-05-13T09:59:59.999Z")),
            Some(ts("2026-05-13T10:00:00Z"))
        );
        assert_eq!(s.prev_before(t), Some(ts("2026-05-13T10:00:00Z")));
        let s = sched("0 * * * *", "Europe/Berlin");
        assert_eq!(
            s.next_after(ts("2026-05-13T10:00:00.001Z")),
            Some(ts("2026-05-13T11:00:00Z"))
        );
        // Before the epoch too.
        let s = sched("* * * * * *", "UTC");
        assert_eq!(s.next_after(Timestamp(-1500)), Some(Timestamp(-1000)));
        assert_eq!(s.prev_before(Timestamp(-1500)), Some(Timestamp(-2000)));
    }

    // --- daylight saving time ---

    #[test]
    fn berlin_spring_forward_missing_time_fires_once_after_the_gap() {
        // 2026-03-29: 02:00 CET (01:00Z) becomes 03:00 CEST.
        let s = sched("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-03-27T12:00:00Z"), 4)),
            [
                "2026-03-28T01:30:00.000Z", // 02:30 CET
                "2026-03-29T01:00:00.000Z", // 03:00 CEST, right after the gap
                "2026-03-30T00:30:00.000Z", // 02:30 CEST
                "2026-03-31T00:30:00.000Z",
            ]
        );
        // From anywhere on that day up to the gap, the next fire is the gap's end.
        for from in ["2026-03-28T23:00:00Z", "2026-03-29T00:59:59.999Z"] {
            assert_eq!(
                s.next_after(ts(from)),
                Some(ts("2026-03-29T01:00:00Z")),
                "{from}"
            );
        }
        // Other wall-clock shapes: a list of hours, and seconds.
        let s = sched("30 2,14 * * *", "Europe/Berlin");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-03-28T22:00:00Z"), 3)),
            [
                "2026-03-29T01:00:00.000Z",
                "2026-03-29T12:30:00.000Z",
                "2026-03-30T00:30:00.000Z"
            ]
        );
        let s = sched("15 30 2 * * *", "Europe/Berlin");
        assert_eq!(
            s.next_after(ts("2026-03-28T23:00:00Z")),
            Some(ts("2026-03-29T01:00:00Z"))
        );
        // Several missing times fire at the same instant: one tick.
        let s = sched("0,30 2 * * *", "Europe/Berlin");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-03-28T23:00:00Z"), 2)),
            ["2026-03-29T01:00:00.000Z", "2026-03-30T00:00:00.000Z"]
        );
        let s = sched("0 2,3 * * *", "Europe/Berlin");
        let day = fires_between(&s, ts("2026-03-28T23:00:00Z"), ts("2026-03-29T22:00:00Z"));
        assert_eq!(rfc(&day), ["2026-03-29T01:00:00.000Z"]);
    }

    #[test]
    fn berlin_fall_back_repeated_time_fires_once_at_first_occurrence() {
        // 2026-10-25: 03:00 CEST (01:00Z) becomes 02:00 CET; 02:00-02:59 happens twice.
        let s = sched("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-10-24T12:00:00Z"), 3)),
            [
                "2026-10-25T00:30:00.000Z", // 02:30 CEST
                "2026-10-26T01:30:00.000Z", // 02:30 CET the next day, not 02:30 CET today
                "2026-10-27T01:30:00.000Z",
            ]
        );
        // From inside the repeated hour, either half.
        for from in [
            "2026-10-25T00:40:00Z",
            "2026-10-25T01:10:00Z",
            "2026-10-25T01:30:00Z",
        ] {
            assert_eq!(
                s.next_after(ts(from)),
                Some(ts("2026-10-26T01:30:00Z")),
                "{from}"
            );
        }
        assert_eq!(
            s.next_after(ts("2026-10-25T00:10:00Z")),
            Some(ts("2026-10-25T00:30:00Z"))
        );
        let s = sched("30 2,14 * * *", "Europe/Berlin");
        let day = fires_between(&s, ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z"));
        assert_eq!(
            rfc(&day),
            ["2026-10-25T00:30:00.000Z", "2026-10-25T13:30:00.000Z"]
        );
    }

    #[test]
    fn new_york_transitions() {
        // 2026-03-08: 02:00 EST (07:00Z) becomes 03:00 EDT.
        let s = sched("30 2 * * *", "America/New_York");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-03-07T12:00:00Z"), 3)),
            [
                "2026-03-08T07:00:00.000Z", // 03:00 EDT
                "2026-03-09T06:30:00.000Z", // 02:30 EDT
                "2026-03-10T06:30:00.000Z",
            ]
        );
        // 2026-11-01: 02:00 EDT (06:00Z) becomes 01:00 EST; 01:00-01:59 happens twice.
        let s = sched("30 1 * * *", "America/New_York");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-10-31T12:00:00Z"), 2)),
            ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]
        );
        // Hourly: 23, 24 and 25 real hours.
        let s = sched("0 * * * *", "America/New_York");
        let count = |from: &str, to: &str| fires_between(&s, ts(from), ts(to)).len();
        assert_eq!(count("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"), 23);
        assert_eq!(count("2026-03-09T04:00:00Z", "2026-03-10T04:00:00Z"), 24);
        assert_eq!(count("2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"), 25);
        let s = sched("*/15 * * * *", "America/New_York");
        assert_eq!(
            fires_between(&s, ts("2026-11-01T04:00:00Z"), ts("2026-11-02T05:00:00Z")).len(),
            100
        );
    }

    #[test]
    fn elapsed_schedules_follow_real_time_across_transitions() {
        let berlin_days = [
            ("2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z", 24), // normal
            ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23), // spring forward
            ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25), // fall back
            ("2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z", 24), // normal
        ];
        for expr in ["0 * * * *", "@hourly"] {
            let s = sched(expr, "Europe/Berlin");
            for (from, to, hours) in berlin_days {
                let got = fires_between(&s, ts(from), ts(to));
                assert_eq!(got.len(), hours, "{expr} from {from}");
                // Exactly one hour apart, real time.
                assert!(got.windows(2).all(|w| w[1].millis_since(w[0]) == 3_600_000));
            }
        }
        let s = sched("*/15 * * * *", "Europe/Berlin");
        for (from, to, hours) in berlin_days {
            let got = fires_between(&s, ts(from), ts(to));
            assert_eq!(got.len(), hours * 4, "from {from}");
            assert!(got.windows(2).all(|w| w[1].millis_since(w[0]) == 900_000));
        }
        // Both 02:00s of the fall-back day fire, one real hour apart.
        let s = sched("0 * * * *", "Europe/Berlin");
        assert_eq!(
            rfc(&s.upcoming(ts("2026-10-24T23:30:00Z"), 4)),
            [
                "2026-10-25T00:00:00.000Z", // 02:00 CEST
                "2026-10-25T01:00:00.000Z", // 02:00 CET
                "2026-10-25T02:00:00.000Z", // 03:00 CET
                "2026-10-25T03:00:00.000Z",
            ]
        );
        // From inside either half of the repeated hour.
        let s = sched("*/15 * * * *", "Europe/Berlin");
        assert_eq!(
            s.next_after(ts("2026-10-25T00:50:00Z")),
            Some(ts("2026-10-25T01:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-10-25T01:10:00Z")),
            Some(ts("2026-10-25T01:15:00Z"))
        );
        // Times that do not exist do not fire for an elapsed schedule.
        let s = sched("*/30 2 * * *", "Europe/Berlin");
        assert!(
            fires_between(&s, ts("2026-03-28T23:00:00Z"), ts("2026-03-29T22:00:00Z")).is_empty()
        );
        let fall = fires_between(&s, ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z"));
        assert_eq!(fall.len(), 4);
    }

    /// Lord Howe Island moves its clock by half an hour.
    #[test]
    fn half_hour_transitions() {
        // 2026-10-04 02:00 +10:30 becomes 02:30 +11:00 (15:30Z on the 3rd).
        let s = sched("15 2 * * *", "Australia/Lord_Howe");
        assert_eq!(
            s.next_after(ts("2026-10-03T12:00:00Z")),
            Some(ts("2026-10-03T15:30:00Z"))
        );
        let s = sched("0,30 * * * *", "Australia/Lord_Howe");
        let day = fires_between(&s, ts("2026-10-03T13:30:00Z"), ts("2026-10-04T13:00:00Z"));
        assert_eq!(day.len(), 47);
    }

    /// Where croner's own time zone search uses the same kind of schedule as ours (single-valued
    /// times, or wildcards), both must agree on every start time around the transitions.
    #[test]
    fn agrees_with_croner_zoned_search() {
        let exprs = [
            "30 2 * * *",
            "0 2 * * *",
            "30 1 * * *",
            "0 3 * * *",
            "0 * * * *",
            "*/15 * * * *",
            "10 */2 * * *",
            "*/20 1-3 * * *",
        ];
        let windows = [
            ("Europe/Berlin", "2026-03-28T20:00:00Z"),
            ("Europe/Berlin", "2026-10-24T20:00:00Z"),
            ("America/New_York", "2026-03-08T02:00:00Z"),
            ("America/New_York", "2026-10-31T02:00:00Z"),
            ("Australia/Lord_Howe", "2026-04-04T10:00:00Z"),
        ];
        for (zone, start) in windows {
            let tz: Tz = zone.parse().unwrap();
            for expr in exprs {
                let ours = sched(expr, zone);
                let theirs: croner::Cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expr)
                    .unwrap();
                let zoned = |t: Timestamp| {
                    DateTime::<Utc>::from_timestamp_millis(t.0)
                        .unwrap()
                        .with_timezone(&tz)
                };
                let theirs_next = |t: Timestamp| {
                    let next = theirs.find_next_occurrence(&zoned(t), false).unwrap();
                    Timestamp(next.timestamp_millis())
                };
                let theirs_prev = |t: Timestamp| {
                    let prev = theirs.find_previous_occurrence(&zoned(t), false).unwrap();
                    Timestamp(prev.timestamp_millis())
                };
                // From arbitrary instants (some with milliseconds)...
                let mut t = ts(start);
                let end = t.plus_ms(30 * 3_600_000);
                while t < end {
                    assert_eq!(
                        ours.next_after(t),
                        Some(theirs_next(t)),
                        "{expr} in {zone} after {t}"
                    );
                    assert_eq!(
                        ours.prev_before(t),
                        Some(theirs_prev(t)),
                        "{expr} in {zone} before {t}"
                    );
                    t = t.plus_ms(7 * 60_000 + 13_250);
                }
                // ...and from each fire time in turn.
                let mut t = ts(start);
                while t < end {
                    let next = theirs_next(t);
                    assert_eq!(ours.next_after(t), Some(next), "{expr} in {zone} after {t}");
                    t = next;
                }
                let mut t = end;
                while t > ts(start) {
                    let prev = theirs_prev(t);
                    assert_eq!(
                        ours.prev_before(t),
                        Some(prev),
                        "{expr} in {zone} before {t}"
                    );
                    t = prev;
                }
            }
        }
    }

    /// Walking backwards retraces the forward fire times, across transitions.
    #[test]
    fn prev_before_mirrors_next_after() {
        let cases = [
            ("30 2 * * *", "Europe/Berlin", "2026-03-20T00:00:00Z"),
            ("30 2 * * *", "Europe/Berlin", "2026-10-20T00:00:00Z"),
            ("0,30 2 * * *", "Europe/Berlin", "2026-03-20T00:00:00Z"),
            ("0 * * * *", "Europe/Berlin", "2026-10-24T12:00:00Z"),
            ("*/15 * * * *", "Europe/Berlin", "2026-03-28T18:00:00Z"),
            ("*/15 * * * *", "Europe/Berlin", "2026-10-24T18:00:00Z"),
            ("30 1 * * *", "America/New_York", "2026-10-25T00:00:00Z"),
            ("*/10 * * * *", "America/New_York", "2026-10-31T20:00:00Z"),
            ("15 2 * * *", "Australia/Lord_Howe", "2026-09-28T00:00:00Z"),
        ];
        for (expr, zone, from) in cases {
            let s = sched(expr, zone);
            let fwd = s.upcoming(ts(from), 200);
            assert_eq!(fwd.len(), 200);
            let mut back = Vec::new();
            let mut cursor = fwd[199].plus_ms(1);
            for _ in 0..200 {
                let t = s.prev_before(cursor).unwrap();
                back.push(t);
                cursor = t;
            }
            back.reverse();
            assert_eq!(rfc(&back), rfc(&fwd), "{expr} in {zone}");
            // And from between two fire times, backwards finds the earlier one.
            for w in fwd.windows(2) {
                let mid = Timestamp(w[0].0 + (w[1].0 - w[0].0) / 2);
                assert_eq!(
                    s.prev_before(mid),
                    Some(w[0]),
                    "{expr} in {zone} before {mid}"
                );
                assert_eq!(
                    s.next_after(mid),
                    Some(w[1]),
                    "{expr} in {zone} after {mid}"
                );
            }
        }
    }

    // --- due_ticks ---

    const HOUR: i64 = 3_600_000;

    #[test]
    fn misfire_wire_format() {
        let cases = [
            (Misfire::Skip, r#"{"policy":"skip"}"#),
            (Misfire::RunOnce, r#"{"policy":"run_once"}"#),
            (
                Misfire::CatchUp { max: 10 },
                r#"{"policy":"catch_up","max":10}"#,
            ),
        ];
        for (m, json) in cases {
            assert_eq!(serde_json::to_string(&m).unwrap(), json);
            assert_eq!(serde_json::from_str::<Misfire>(json).unwrap(), m);
        }
        assert!(serde_json::from_str::<Misfire>(r#"{"policy":"catch_up"}"#).is_err());
        assert!(serde_json::from_str::<Misfire>(r#"{"policy":"sometimes"}"#).is_err());
    }

    #[test]
    fn nothing_due() {
        let s = sched("0 * * * *", "UTC");
        let after = ts("2026-05-13T10:00:00Z");
        for now in [
            after,
            ts("2026-05-13T10:59:59.999Z"),
            ts("2026-05-13T09:00:00Z"),
        ] {
            for m in [Misfire::Skip, Misfire::RunOnce, Misfire::CatchUp { max: 3 }] {
                let d = due_ticks(&s, after, now, m, 60_000);
                assert_eq!(
                    d,
                    DueTicks {
                        fire: vec![],
                        skipped: 0,
                        cursor: after,
                        next: Some(ts("2026-05-13T11:00:00Z")),
                    },
                    "{now} {m:?}"
                );
            }
        }
    }

    #[test]
    fn one_on_time_tick() {
        let s = sched("0 * * * *", "UTC");
        let after = ts("2026-05-13T10:00:00Z");
        let tick = ts("2026-05-13T11:00:00Z");
        for now in [tick, tick.plus_ms(1), tick.plus_ms(60_000)] {
            for m in [Misfire::Skip, Misfire::RunOnce, Misfire::CatchUp { max: 3 }] {
                let d = due_ticks(&s, after, now, m, 60_000);
                assert_eq!(d.fire, [tick], "{now} {m:?}");
                assert_eq!(d.skipped, 0);
                assert_eq!(d.cursor, tick);
                assert_eq!(d.next, Some(ts("2026-05-13T12:00:00Z")));
            }
        }
        // One millisecond past the grace period it is late.
        let d = due_ticks(&s, after, tick.plus_ms(60_001), Misfire::Skip, 60_000);
        assert_eq!((d.fire.len(), d.skipped, d.cursor), (0, 1, tick));
        let d = due_ticks(&s, after, tick.plus_ms(60_001), Misfire::RunOnce, 60_000);
        assert_eq!((d.fire, d.skipped, d.cursor), (vec![tick], 0, tick));
    }

    #[test]
    fn three_hour_downtime_on_an_hourly_schedule() {
        let s = sched("0 * * * *", "UTC");
        let after = ts("2026-05-13T10:00:00Z");
        // Down from just after 10:00 to 13:30: 11:00, 12:00 and 13:00 were missed.
        let now = ts("2026-05-13T13:30:00Z");
        let (t11, t12, t13) = (
            after.plus_ms(HOUR),
            after.plus_ms(2 * HOUR),
            after.plus_ms(3 * HOUR),
        );
        let next = Some(ts("2026-05-13T14:00:00Z"));

        let d = due_ticks(&s, after, now, Misfire::Skip, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![],
                skipped: 3,
                cursor: t13,
                next
            }
        );
        let d = due_ticks(&s, after, now, Misfire::RunOnce, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![t13],
                skipped: 2,
                cursor: t13,
                next
            }
        );
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 2 }, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![t12, t13],
                skipped: 1,
                cursor: t13,
                next
            }
        );
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 10 }, 60_000);
        assert_eq!((d.fire, d.skipped), (vec![t11, t12, t13], 0));
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 0 }, 60_000);
        assert_eq!((d.fire.len(), d.skipped), (0, 3));
    }

    #[test]
    fn downtime_ending_with_an_on_time_tick() {
        let s = sched("0 * * * *", "UTC");
        let after = ts("2026-05-13T10:00:00Z");
        // 11:00, 12:00 and 13:00 are late; 14:00 is on time (10 s ago, grace 1 min).
        let now = ts("2026-05-13T14:00:10Z");
        let t = |h: i64| after.plus_ms(h * HOUR);
        let next = Some(t(5));

        let d = due_ticks(&s, after, now, Misfire::Skip, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![t(4)],
                skipped: 3,
                cursor: t(4),
                next
            }
        );
        let d = due_ticks(&s, after, now, Misfire::RunOnce, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![t(3), t(4)],
                skipped: 2,
                cursor: t(4),
                next
            }
        );
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 2 }, 60_000);
        assert_eq!(
            d,
            DueTicks {
                fire: vec![t(2), t(3), t(4)],
                skipped: 1,
                cursor: t(4),
                next
            }
        );
        // A grace period of 2 hours puts 12:00 and 13:00 on time as well.
        let d = due_ticks(&s, after, now, Misfire::Skip, 2 * HOUR);
        assert_eq!((d.fire, d.skipped), (vec![t(3), t(4)], 2));
        // A negative grace counts as zero.
        let d = due_ticks(&s, after, t(4), Misfire::Skip, -5);
        assert_eq!((d.fire, d.skipped), (vec![t(4)], 3));
    }

    #[test]
    fn due_ticks_across_fall_back() {
        // Down over the Berlin fall-back night: both 02:00s count as ticks of an hourly schedule.
        let s = sched("0 * * * *", "Europe/Berlin");
        let after = ts("2026-10-24T22:00:00Z"); // 00:00 CEST
        let now = ts("2026-10-25T03:00:00Z"); // 04:00 CET, on time
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 100 }, 0);
        assert_eq!(d.fire.len(), 5);
        assert_eq!(d.fire.first(), Some(&ts("2026-10-24T23:00:00Z")));
        assert!(d.fire.windows(2).all(|w| w[1].millis_since(w[0]) == HOUR));
        let d = due_ticks(&s, after, now, Misfire::Skip, 0);
        assert_eq!((d.fire, d.skipped), (vec![now], 4));
        // A wall-clock schedule fires the repeated 02:30 once.
        let s = sched("30 2 * * *", "Europe/Berlin");
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 100 }, 0);
        assert_eq!((d.fire, d.skipped), (vec![ts("2026-10-25T00:30:00Z")], 0));
    }

    #[test]
    fn long_outage_on_an_every_second_schedule_is_bounded() {
        let s = sched("* * * * * *", "Europe/Berlin");
        let after = ts("2026-03-01T00:00:00Z");
        let now = after.plus_ms(30 * 24 * HOUR); // 2,592,000 ticks later
        let total: u64 = 30 * 24 * 3600;
        let started = std::time::Instant::now();

        let d = due_ticks(&s, after, now, Misfire::Skip, 0);
        assert_eq!(d.fire, [now]); // the tick at `now` is on time
        assert_eq!(d.cursor, now);
        assert_eq!(d.next, Some(now.plus_ms(1000)));
        assert_eq!(d.skipped, total - 1);

        let d = due_ticks(&s, after, now, Misfire::RunOnce, 0);
        assert_eq!(d.fire, [now.plus_ms(-1000), now]);
        assert_eq!(d.skipped, total - 2);

        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: 5 }, 2_000);
        // 3 on time (now-2s, now-1s, now) and the 5 late ones before them.
        let want: Vec<Timestamp> = (0..8).rev().map(|i| now.plus_ms(-1000 * i)).collect();
        assert_eq!(d.fire, want);
        assert_eq!(d.skipped, total - 8);

        // An absurd catch-up is capped.
        let d = due_ticks(&s, after, now, Misfire::CatchUp { max: u32::MAX }, 0);
        assert_eq!(d.fire.len(), MAX_FIRED_PER_CALL);
        assert_eq!(d.fire.last(), Some(&now));
        assert!(d.fire.windows(2).all(|w| w[1].millis_since(w[0]) == 1000));
        assert_eq!(d.skipped, total - MAX_FIRED_PER_CALL as u64);

        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 10, "took {elapsed:?}");
    }

    #[test]
    fn skipped_count_is_estimated_past_the_cap_on_an_irregular_schedule() {
        // Every second within 09:00-09:59 UTC on weekdays: 3,600 ticks a weekday.
        let s = sched("* * 9 * * MON-FRI", "UTC");
        let after = ts("2026-01-01T00:00:00Z");
        let now = ts("2026-12-31T23:00:00Z");
        let d = due_ticks(&s, after, now, Misfire::RunOnce, 0);
        assert_eq!(d.fire, [ts("2026-12-31T09:59:59Z")]);
        // 261 weekdays in 2026 (Jan 1 is a Thursday, Dec 31 a Thursday).
        let exact = 261 * 3600 - 1;
        let err = (d.skipped as f64 - exact as f64).abs() / exact as f64;
        assert!(err < 0.05, "estimated {} for {exact}", d.skipped);
    }
}
