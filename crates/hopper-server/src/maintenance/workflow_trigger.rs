//! The workflow trigger: starts the runs of workflow definitions that are due, those of their
//! cron expressions and those of backfills, on the maintenance leader.
//!
//! Each pass fires the due cron ticks of every definition (one run per tick, the tick's time as
//! its logical date; a late definition fires only its latest tick, like a schedule's
//! `run_once`), then tops up every unfinished backfill to its `max_running` with runs for its
//! next dates in order, and marks it finished once every date has its run. Every run is keyed by
//! its logical date in the store, so a pass repeated after a crash or by a second node makes
//! no second run.

use std::sync::Arc;
use std::time::Duration;

use hopper_store::{Store, StoreError};
use hopper_types::Limits;
use hopper_types::cron::{CronSchedule, Misfire, due_ticks};
use serde_json::Map;
use tokio_util::sync::CancellationToken;

use super::{ERROR_BACKOFF, sleep_or_stop};
use crate::definition_runs::{RunError, backfill_state, start_run};

/// Recorded as the actor of the runs it starts.
const ACTOR: &str = "system:workflow_trigger";
/// Definitions read per pass.
const BATCH: usize = 100;

/// Settings of the workflow trigger.
#[derive(Debug, Clone)]
pub struct WorkflowTriggerConfig {
    /// Time between passes (a backfill starts its next runs at most this long after others
    /// finish).
    pub interval: Duration,
}

impl Default for WorkflowTriggerConfig {
    fn default() -> Self {
        WorkflowTriggerConfig {
            interval: Duration::from_millis(500),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TriggerReport {
    /// Runs started (not counting runs that already existed for their date).
    pub started: u64,
    /// Backfills that got their last run in this pass.
    pub backfills_finished: u64,
    /// Runs that could not be made (logged).
    pub failed: u64,
}

/// The workflow trigger service.
pub struct WorkflowTrigger {
    store: Arc<dyn Store>,
    config: WorkflowTriggerConfig,
    limits: Limits,
}

impl WorkflowTrigger {
    /// A trigger over `store`; runs are validated against `limits`.
    pub fn new(store: Arc<dyn Store>, config: WorkflowTriggerConfig, limits: Limits) -> Self {
        WorkflowTrigger {
            store,
            config,
            limits,
        }
    }

    /// One pass: due cron ticks, then backfills.
    pub async fn run_once(&self) -> Result<TriggerReport, StoreError> {
        let mut report = TriggerReport::default();
        self.fire_crons(&mut report).await?;
        self.top_up_backfills(&mut report).await?;
        Ok(report)
    }

    async fn fire_crons(&self, report: &mut TriggerReport) -> Result<(), StoreError> {
        let now = self.store.clock().now();
        for d in self.store.workflow_definition_due(now, BATCH).await? {
            let (Some(expr), Some(next)) = (&d.cron, d.next_fire_at) else {
                continue;
            };
            let cron = match CronSchedule::parse(expr, &d.timezone) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(definition = %d.name, error = %e, "a stored definition's cron does not parse");
                    report.failed += 1;
                    continue;
                }
            };
            // Ticks from the stored fire time on; only the latest if it is late.
            let due = due_ticks(&cron, next.plus_ms(-1), now, Misfire::RunOnce, 0);
            for tick in &due.fire {
                self.start(&d, &Map::new(), &tick.to_rfc3339(), report)
                    .await?;
            }
            self.store
                .workflow_definition_advance(&d.namespace, &d.name, next, due.next)
                .await?;
        }
        Ok(())
    }

    async fn top_up_backfills(&self, report: &mut TriggerReport) -> Result<(), StoreError> {
        for b in self.store.backfill_list(None, true).await? {
            let d = match self
                .store
                .workflow_definition_get(&b.namespace, &b.definition)
                .await
            {
                Ok(d) => d,
                Err(StoreError::NotFound) => continue, // deleted: the backfill waits for it
                Err(e) => return Err(e),
            };
            let (progress, missing) = backfill_state(&*self.store, &b).await?;
            let room = b.max_running.saturating_sub(progress.running) as usize;
            for date in missing.iter().take(room) {
                self.start(&d, &b.params, date, report).await?;
            }
            if missing.len() <= room {
                self.store
                    .backfill_finish(&b.id, self.store.clock().now())
                    .await?;
                report.backfills_finished += 1;
            }
        }
        Ok(())
    }

    async fn start(
        &self,
        d: &hopper_types::workflow_definition::WorkflowDefinition,
        params: &Map<String, serde_json::Value>,
        date: &str,
        report: &mut TriggerReport,
    ) -> Result<(), StoreError> {
        match start_run(&*self.store, d, params, date, &self.limits, ACTOR).await {
            Ok(run) if !run.duplicate => report.started += 1,
            Ok(_) => {}
            Err(RunError::Store(e @ StoreError::Unavailable(_))) => return Err(e),
            Err(e) => {
                tracing::error!(definition = %d.name, logical_date = date, error = %e,
                    "cannot start a run of a definition");
                report.failed += 1;
            }
        }
        Ok(())
    }

    /// Runs passes until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let pause = match self.run_once().await {
                Ok(r) => {
                    if r.started > 0 {
                        tracing::debug!(started = r.started, "started workflow runs");
                    }
                    self.config.interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, "workflow trigger pass failed");
                    ERROR_BACKOFF
                }
            };
            if !sleep_or_stop(&stop, pause).await {
                return;
            }
        }
    }
}
