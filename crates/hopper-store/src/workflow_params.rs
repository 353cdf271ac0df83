//! Parameters and results of the workflow operations of [`crate::Store`].

use hopper_types::workflow::{StepRequest, ValidatedStep};
use hopper_types::workflow_run::{Workflow, WorkflowId, WorkflowState};
use hopper_types::{Job, JobId, Limits};

/// A new run, stored atomically with all its steps.
#[derive(Debug, Clone)]
pub struct WorkflowInsert {
    /// The run's id (fresh).
    pub id: WorkflowId,
    /// Tenant.
    pub namespace: String,
    /// A label for people.
    pub name: Option<String>,
    /// The steps, validated, in topological order.
    pub steps: Vec<ValidatedStep>,
    /// Recorded on the steps' enqueue events.
    pub actor: String,
    /// The definition the run is made from, with its logical date: a definition has at most
    /// one run per logical date, so inserting a second one answers the first (`duplicate`).
    pub definition: Option<(String, String)>,
}

/// Steps added to a running run (dynamic fan-out). Validated by the store against the run's
/// steps, inside the same transaction that stores them.
#[derive(Debug, Clone)]
pub struct WorkflowAddSteps {
    /// Tenant.
    pub namespace: String,
    /// The run.
    pub workflow_id: WorkflowId,
    /// The steps as submitted.
    pub steps: Vec<StepRequest>,
    /// The limits every step's job is validated against.
    pub limits: Limits,
    /// Recorded on the steps' enqueue events.
    pub actor: String,
}

/// A run with every step's job, oldest step first.
#[derive(Debug, Clone)]
pub struct WorkflowRun {
    /// The run.
    pub workflow: Workflow,
    /// Its steps.
    pub steps: Vec<Job>,
    /// Set by `workflow_insert` when the definition already had a run for the logical date:
    /// this is that run, and nothing was stored.
    pub duplicate: bool,
}

/// List runs of a namespace, newest first, keyset-paged by id.
#[derive(Debug, Clone)]
pub struct WorkflowListParams {
    /// Tenant.
    pub namespace: String,
    /// Only runs in this state.
    pub state: Option<WorkflowState>,
    /// Only runs of this definition.
    pub definition: Option<String>,
    /// Page size, 1..=500.
    pub limit: usize,
    /// Only runs with an id smaller than this (the previous page's cursor).
    pub before: Option<WorkflowId>,
}

/// The parents of leased steps: (child, parent job) pairs.
pub type StepParents = Vec<(JobId, Job)>;
