//! Parameters and results of the schedule operations of [`crate::Store`] (`schedule_*`).
//!
//! A schedule is one row per (namespace, name) holding a [`Schedule`]. Its changes are computed
//! by `hopper_types::schedule` (create, redefine, pause, record a fire), so backends only
//! persist and lock. [`ScheduleFire`] is the scheduler's one write: the tick jobs and the
//! schedule's new cursor, applied together and only if the cursor is still the one the
//! scheduler read (compare-and-set), so two nodes firing one tick enqueue it once.

use hopper_types::schedule::{Schedule, ScheduleDefinition};
use hopper_types::{NewJob, Timestamp};

use crate::{Actor, Inserted};

/// Create a schedule; [`crate::StoreError::AlreadyExists`] when the name is taken.
#[derive(Debug, Clone)]
pub struct ScheduleCreate {
    /// Tenant.
    pub namespace: String,
    /// The schedule's name (valid).
    pub name: String,
    /// What it fires and when (validated).
    pub definition: ScheduleDefinition,
}

/// Replace a schedule's definition, keeping its cursor and runs;
/// [`crate::StoreError::NotFound`] when unknown.
#[derive(Debug, Clone)]
pub struct ScheduleUpdate {
    /// Tenant.
    pub namespace: String,
    /// The schedule's name.
    pub name: String,
    /// The new definition (validated).
    pub definition: ScheduleDefinition,
}

/// Enqueue the jobs of some ticks of a schedule and advance it, atomically, if its cursor is
/// still `expected_cursor`.
#[derive(Debug, Clone)]
pub struct ScheduleFire {
    /// Tenant.
    pub namespace: String,
    /// The schedule.
    pub name: String,
    /// The cursor the scheduler read; the fire happens only if the stored one still equals it.
    pub expected_cursor: Timestamp,
    /// One job per fired tick, each with its tick's idempotency key (honoured exactly as by
    /// `job_insert_many`).
    pub jobs: Vec<NewJob>,
    /// The tick each job of `jobs` stands for, in the same order (recorded in `last_runs`).
    pub runs: Vec<Timestamp>,
    /// The new cursor: the last tick considered, fired or skipped.
    pub cursor: Timestamp,
    /// The new next fire time.
    pub next_fire_at: Option<Timestamp>,
    /// Recorded on the jobs' enqueue events (`system:scheduler`).
    pub actor: Actor,
}

/// What a [`ScheduleFire`] did.
#[derive(Debug, Clone)]
pub enum ScheduleFireOutcome {
    /// The jobs were inserted (or matched by their keys) and the schedule advanced.
    Fired {
        /// One per job, in order, as `job_insert_many` answers.
        jobs: Vec<Inserted>,
        /// The schedule afterwards.
        schedule: Box<Schedule>,
    },
    /// Nothing changed: the stored cursor is no longer `expected_cursor` (another node fired
    /// these ticks), or the schedule was paused meanwhile.
    Stale,
}
