//! The scheduler: enqueues the jobs of cron schedules as their ticks come.
//!
//! Each pass reads the schedules whose next fire time has come (`schedule_due`), asks
//! [`due_ticks`] which ticks since the schedule's cursor to fire (ticks later than `grace` are
//! missed ticks, and the schedule's misfire policy decides which of them fire), builds one job
//! per tick from the schedule's template (leasable at the tick plus the schedule's jitter, with
//! the idempotency key `schedule:<name>:<tick in ms>`), and hands them to `schedule_fire`, which
//! inserts them and advances the cursor in one step, only if the cursor is still the one read.
//! Two schedulers that briefly both run (a leadership handover) therefore enqueue each tick
//! once: the second finds the cursor moved and changes nothing; and a leader that dies in the
//! middle of a fire leaves the cursor where it was, so its successor fires the same ticks.
//!
//! Between passes it sleeps until the earliest next fire time, at most `max_sleep` (a schedule
//! created on another node is seen that late at worst), and wakes at once when a schedule of
//! this node changes. Time is the store's clock, so tests drive it with a manual clock and
//! `run_once`.

use std::sync::Arc;
use std::time::Duration;

use hopper_store::{ScheduleFire, ScheduleFireOutcome, Store, StoreError};
use hopper_types::cron::due_ticks;
use hopper_types::schedule::Schedule;
use hopper_types::{Job, Limits, Timestamp};
use tokio_util::sync::CancellationToken;

use super::{ERROR_BACKOFF, jitter, sleep_or_stop};

/// The actor recorded on the enqueue events of scheduled jobs.
pub const ACTOR: &str = "system:scheduler";
/// Schedules read per store call.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// How late a tick may be and still count as on time (fired whatever the misfire policy).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Longest sleep between passes.
pub const DEFAULT_MAX_SLEEP: Duration = Duration::from_secs(1);
/// Shortest sleep between passes, so a schedule that stays due cannot make the loop spin.
pub const MIN_SLEEP: Duration = Duration::from_millis(5);
/// Largest random delay before the first pass.
pub const DEFAULT_START_JITTER: Duration = Duration::from_millis(50);
/// Most rounds of `batch_size` schedules in one pass; the rest waits for the next pass.
const MAX_ROUNDS: usize = 100;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Schedules read per store call.
    pub batch_size: usize,
    /// How late a tick may be and still fire whatever the misfire policy.
    pub grace: Duration,
    /// Longest sleep between passes.
    pub max_sleep: Duration,
    /// Largest random delay before the first pass.
    pub start_jitter: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            grace: DEFAULT_GRACE,
            max_sleep: DEFAULT_MAX_SLEEP,
            start_jitter: DEFAULT_START_JITTER,
        }
    }
}

impl SchedulerConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("scheduler batch_size must be at least 1".into());
        }
        if self.max_sleep.is_zero() || self.max_sleep > Duration::from_secs(1) {
            return Err("scheduler max_sleep must be between 1 ms and 1 s".into());
        }
        if self.grace > Duration::from_secs(3600) {
            return Err("scheduler grace must be at most 1 hour".into());
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduleReport {
    /// Schedules fired or advanced by this pass.
    pub schedules: u64,
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Tick jobs that already existed (their key had made them): nothing new was created.
    pub duplicates: u64,
    /// Ticks not fired: missed ticks the misfire policy dropped, or ticks whose job could not
    /// be made (logged).
    pub skipped: u64,
    /// Fires another scheduler had already done (the cursor had moved): nothing changed.
    pub stale: u64,
    /// Schedules whose fire failed for a reason other than storage being unavailable (logged;
    /// retried at the next pass).
    pub failed: u64,
    /// The earliest next fire time of any unpaused schedule afterwards.
    pub next_fire_at: Option<Timestamp>,
}

/// Told of each job a fire created (not of duplicates): the server counts them in its metrics.
type EnqueuedObserver = Arc<dyn Fn(&Job) + Send + Sync>;

/// Told of each pass's report (the server counts skipped ticks and failed fires).
type ReportObserver = Arc<dyn Fn(&ScheduleReport) + Send + Sync>;

/// The scheduler service.
pub struct Scheduler {
    store: Arc<dyn Store>,
    config: SchedulerConfig,
    limits: Limits,
    on_enqueued: Option<EnqueuedObserver>,
    on_report: Option<ReportObserver>,
}

impl Scheduler {
    /// A scheduler over `store`; jobs are validated against `limits`.
    pub fn new(store: Arc<dyn Store>, config: SchedulerConfig, limits: Limits) -> Scheduler {
        Scheduler {
            store,
            config,
            limits,
            on_enqueued: None,
            on_report: None,
        }
    }

    /// Calls `observe` with each job a fire creates (duplicates matched by their key are not
    /// new jobs and are not passed).
    pub fn on_enqueued(mut self, observe: impl Fn(&Job) + Send + Sync + 'static) -> Scheduler {
        self.on_enqueued = Some(Arc::new(observe));
        self
    }

    /// Calls `observe` with the report of every pass [`Scheduler::run`] makes.
    pub fn on_report(
        mut self,
        observe: impl Fn(&ScheduleReport) + Send + Sync + 'static,
    ) -> Scheduler {
        self.on_report = Some(Arc::new(observe));
        self
    }

    /// Fires every due tick of every due schedule now (by the store's clock).
    pub async fn run_once(&self) -> Result<ScheduleReport, StoreError> {
        let now = self.store.clock().now();
        let batch = self.config.batch_size.max(1);
        let mut report = ScheduleReport::default();
        for _ in 0..MAX_ROUNDS {
            let due = self.store.schedule_due(now, batch).await?;
            let full = due.len() == batch;
            let before = report.schedules;
            for s in &due {
                self.fire(s, now, &mut report).await?;
            }
            // Another round only when this one was full and moved something: a schedule whose
            // fire failed stays due and must not keep this pass going.
            if !full || report.schedules == before {
                break;
            }
            tokio::task::yield_now().await;
        }
        report.next_fire_at = self.store.schedule_next_fire_at().await?;
        Ok(report)
    }

    /// Fires the due ticks of one schedule. Only an unavailable store is an error (the pass
    /// stops); anything else is logged and counted.
    async fn fire(
        &self,
        s: &Schedule,
        now: Timestamp,
        report: &mut ScheduleReport,
    ) -> Result<(), StoreError> {
        let cron = match s.cron_schedule() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(schedule = %s.name, namespace = %s.namespace, error = %e,
                    "a stored schedule does not parse");
                report.failed += 1;
                return Ok(());
            }
        };
        let grace_ms = i64::try_from(self.config.grace.as_millis()).unwrap_or(i64::MAX);
        let due = due_ticks(&cron, s.cursor, now, s.misfire, grace_ms);
        let mut jobs = Vec::with_capacity(due.fire.len());
        let mut runs = Vec::with_capacity(due.fire.len());
        let mut skipped = due.skipped;
        for &tick in &due.fire {
            match s.job_for_tick(tick, &self.limits) {
                Ok(job) => {
                    jobs.push(job);
                    runs.push(tick);
                }
                Err(e) => {
                    // The template was valid when stored; limits may have shrunk since.
                    tracing::error!(schedule = %s.name, namespace = %s.namespace, %tick,
                        error = %e, "cannot make a scheduled job; the tick is skipped");
                    skipped += 1;
                }
            }
        }
        let mut fire = ScheduleFire {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            expected_cursor: s.cursor,
            jobs,
            runs,
            cursor: due.cursor,
            next_fire_at: due.next,
            actor: ACTOR.to_string(),
        };
        loop {
            match self.store.schedule_fire(fire.clone()).await {
                Ok(ScheduleFireOutcome::Fired { jobs, .. }) => {
                    report.schedules += 1;
                    report.skipped += skipped;
                    for j in &jobs {
                        if j.duplicate {
                            report.duplicates += 1;
                        } else {
                            report.enqueued += 1;
                            if let (Some(observe), Some(job)) = (&self.on_enqueued, &j.job) {
                                observe(job);
                            }
                        }
                    }
                    if skipped > 0 {
                        tracing::info!(schedule = %s.name, namespace = %s.namespace, skipped,
                            "missed ticks skipped by the misfire policy");
                    }
                    return Ok(());
                }
                Ok(ScheduleFireOutcome::Stale) => {
                    report.stale += 1;
                    return Ok(());
                }
                // Deleted since it was read: nothing to fire.
                Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::IdempotencyConflict { index, existing })
                    if index < fire.jobs.len() =>
                {
                    // A job of other content holds the tick's key (a schedule deleted and
                    // recreated with another job, or a producer using the key): that tick is
                    // skipped rather than the schedule stuck.
                    tracing::warn!(schedule = %s.name, namespace = %s.namespace,
                        tick = %fire.runs[index], %existing,
                        "the tick's idempotency key is held by another job; the tick is skipped");
                    fire.jobs.remove(index);
                    fire.runs.remove(index);
                    skipped += 1;
                }
                Err(e @ StoreError::Unavailable(_)) => return Err(e),
                Err(e) => {
                    tracing::error!(schedule = %s.name, namespace = %s.namespace, error = %e,
                        "firing a schedule failed");
                    report.failed += 1;
                    return Ok(());
                }
            }
        }
    }

    /// How long to sleep after a pass that reported `r` at `now`.
    pub fn sleep_after(&self, r: &ScheduleReport, now: Timestamp) -> Duration {
        let max = self.config.max_sleep.max(MIN_SLEEP);
        if r.failed > 0 {
            return max;
        }
        let until_due = match r.next_fire_at {
            Some(t) => Duration::from_millis(u64::try_from(t.millis_since(now)).unwrap_or(0)),
            None => max,
        };
        until_due.clamp(MIN_SLEEP, max)
    }

    /// Runs passes until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        if !sleep_or_stop(&stop, jitter(self.config.start_jitter)).await {
            return;
        }
        loop {
            let pause = match self.run_once().await {
                Ok(r) => {
                    if let Some(observe) = &self.on_report {
                        observe(&r);
                    }
                    if r.enqueued > 0 || r.stale > 0 {
                        tracing::debug!(
                            enqueued = r.enqueued,
                            duplicates = r.duplicates,
                            stale = r.stale,
                            "fired schedules"
                        );
                    }
                    self.sleep_after(&r, self.store.clock().now())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed");
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
                _ = self.store.signals().schedules_changed() => {}
            }
        }
    }
}
