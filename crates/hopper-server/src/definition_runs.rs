//! Runs of workflow definitions: what a trigger (API, CLI, the definition's cron expression,
//! a backfill) turns into a stored run, and where a backfill stands.
//!
//! A run of a definition is keyed by its logical date: the store keeps at most one per date,
//! so every trigger here may be repeated (a retried request, two nodes firing one cron tick, a
//! backfill resubmitted) without making a second run.

use std::collections::HashMap;

use hopper_store::{Store, StoreError, WorkflowInsert, WorkflowListParams, WorkflowRun};
use hopper_types::workflow::validate_steps;
use hopper_types::workflow_definition::{Backfill, WorkflowDefinition, backfill_dates};
use hopper_types::workflow_run::{WorkflowId, WorkflowState};
use hopper_types::{Limits, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value};

/// Runs of one definition read per store call when working out a backfill's progress.
const PAGE: usize = 500;

/// Why a run of a definition could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The definition's steps, rendered with these parameters, are not a valid run.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Storage refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes (or finds) the run of `definition` for `logical_date`, its steps rendered with
/// `params` over the definition's defaults.
pub async fn start_run(
    store: &dyn Store,
    definition: &WorkflowDefinition,
    params: &Map<String, Value>,
    logical_date: &str,
    limits: &Limits,
    actor: &str,
) -> Result<WorkflowRun, RunError> {
    let steps = definition.steps_for(params, logical_date)?;
    let steps = validate_steps(steps, &|_| false, 0, &definition.namespace, limits)?;
    Ok(store
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: definition.namespace.clone(),
            name: Some(definition.name.clone()),
            steps,
            actor: actor.to_string(),
            definition: Some((definition.name.clone(), logical_date.to_string())),
        })
        .await?)
}

/// Where a backfill stands: how many of its dates have a run, and in which state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackfillProgress {
    /// Dates it covers.
    pub dates: u32,
    /// Dates whose run exists.
    pub created: u32,
    /// Runs running now.
    pub running: u32,
    /// Runs completed.
    pub completed: u32,
    /// Runs failed or cancelled.
    pub failed: u32,
}

/// The state of the run of each date of `backfill` that has one, and the dates without.
pub async fn backfill_state(
    store: &dyn Store,
    backfill: &Backfill,
) -> Result<(BackfillProgress, Vec<String>), StoreError> {
    let dates = backfill_dates(&backfill.from, &backfill.to).unwrap_or_default();
    let mut states: HashMap<String, WorkflowState> = HashMap::new();
    let mut before = None;
    loop {
        let page = store
            .workflow_list(&WorkflowListParams {
                namespace: backfill.namespace.clone(),
                state: None,
                definition: Some(backfill.definition.clone()),
                limit: PAGE,
                before,
            })
            .await?;
        for w in &page {
            if let Some(d) = &w.logical_date {
                states.insert(d.clone(), w.state);
            }
        }
        if page.len() < PAGE {
            break;
        }
        before = page.last().map(|w| w.id);
    }
    let mut progress = BackfillProgress {
        dates: u32::try_from(dates.len()).unwrap_or(u32::MAX),
        ..BackfillProgress::default()
    };
    let mut missing = Vec::new();
    for d in dates {
        match states.get(&d) {
            None => missing.push(d),
            Some(s) => {
                progress.created += 1;
                match s {
                    WorkflowState::Running => progress.running += 1,
                    WorkflowState::Completed => progress.completed += 1,
                    WorkflowState::Failed | WorkflowState::Cancelled => progress.failed += 1,
                }
            }
        }
    }
    Ok((progress, missing))
}
