//! Workflow endpoints: submit a run (a DAG of steps), list and read runs, cancel and retry
//! them, and add steps to a running run (dynamic fan-out). A run is answered with every step's
//! job; the graph's rules (when a step leaves `pending`, what a failure does downstream) are
//! the store's, in the same transaction as the step transitions that trigger them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_store::{StoreError, WorkflowAddSteps, WorkflowInsert, WorkflowListParams, WorkflowRun};
use hopper_types::Job;
use hopper_types::workflow::{StepRequest, WorkflowRequest, validate_steps};
use hopper_types::workflow_run::{Workflow, WorkflowId, WorkflowState};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, CanAdmin, CanCancel, CanEnqueue, CanRead, CanSteps};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::{QueryPairs, WorkflowIdPath};
use crate::routes::audit;
use crate::routes::jobs::{DEFAULT_PAGE, EmptyBody, MAX_PAGE};
use crate::state::AppState;

/// Recorded as the actor of changes made through these endpoints.
const ACTOR: &str = "api";
/// Longest run label.
const MAX_NAME_CHARS: usize = 200;

/// A run with all its steps: the answer of submit and read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowAnswer {
    /// The run.
    pub workflow: Workflow,
    /// Every step's job, oldest first; `workflow.step` names the step.
    pub steps: Vec<Job>,
}

impl From<WorkflowRun> for WorkflowAnswer {
    fn from(r: WorkflowRun) -> Self {
        WorkflowAnswer {
            workflow: r.workflow,
            steps: r.steps.into_iter().map(Job::without_token).collect(),
        }
    }
}

/// `GET /v1/workflows` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkflowPageAnswer {
    /// Newest first.
    pub workflows: Vec<Workflow>,
    /// Pass as `cursor` for the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/workflows/{id}/steps` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddStepsRequest {
    /// The new steps; they may depend on each other and on the run's steps.
    pub steps: Vec<StepRequest>,
}

/// `POST /v1/workflows/{id}/steps` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AddStepsAnswer {
    /// The new steps' jobs.
    pub steps: Vec<Job>,
}

/// A store error about run `id`: not found names the run.
fn workflow_error(e: StoreError, id: &WorkflowId) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(format!("no workflow run {id}")),
        other => ApiError::from(other),
    }
}

/// Submit a workflow run: its steps are validated together (names unique, every dependency a
/// step of the run, no cycle, at most 10,000 steps) and stored atomically; steps with
/// dependencies wait in `pending`.
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows",
    request_body = WorkflowRequest,
    responses(
        (status = 201, description = "Stored", body = WorkflowAnswer),
        (status = 400, description = "invalid_argument naming the step and field (a cycle, an unknown dependency, a duplicate name, too many steps)", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn submit_workflow(
    State(st): State<AppState>,
    Authorized(p, _): CanEnqueue,
    JsonBody(req): JsonBody<WorkflowRequest>,
) -> Result<Response, ApiError> {
    if let Some(name) = &req.name
        && (name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS)
    {
        return Err(ApiError::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let steps = validate_steps(req.steps, &|_| false, 0, &p.namespace, &st.config().limits)?;
    st.quotas().admit(&p.namespace, steps.len()).await?;
    let run = st
        .store()
        .workflow_insert(WorkflowInsert {
            id: WorkflowId::new(),
            namespace: p.namespace.clone(),
            name: req.name,
            steps,
            actor: ACTOR.to_string(),
            definition: None,
        })
        .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &WorkflowAnswer::from(run),
    ))
}

/// List workflow runs, newest first, keyset-paged by id.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    params(
        ("state" = Option<WorkflowState>, Query, description = "Only runs in this state"),
        ("limit" = Option<usize>, Query, description = "1..500, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = WorkflowPageAnswer), (status = 400, body = ErrorBody)))]
pub async fn list_workflows(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    query.only(&["state", "limit", "cursor"])?;
    let state = match query.single("state")? {
        None | Some("") => None,
        Some(s) => Some(s.parse::<WorkflowState>().map_err(|_| {
            ApiError::invalid(
                "state",
                format!("`{s}` is not a workflow state (running, completed, failed, cancelled)"),
            )
        })?),
    };
    let (limit, before) = query.page(DEFAULT_PAGE, MAX_PAGE)?;
    let workflows = st
        .store()
        .workflow_list(&WorkflowListParams {
            namespace: p.namespace.clone(),
            state,
            definition: None,
            limit,
            before,
        })
        .await?;
    let next_cursor = (workflows.len() == limit)
        .then(|| workflows.last().map(|w| w.id.to_string()))
        .flatten();
    Ok(json_response(
        StatusCode::OK,
        &WorkflowPageAnswer {
            workflows,
            next_cursor,
        },
    ))
}

/// A workflow run with every step.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow run id")),
    responses((status = 200, body = WorkflowAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_workflow(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    WorkflowIdPath(id): WorkflowIdPath,
) -> Result<Response, ApiError> {
    let run = st
        .store()
        .workflow_get(&p.namespace, &id)
        .await
        .map_err(|e| workflow_error(e, &id))?;
    Ok(json_response(StatusCode::OK, &WorkflowAnswer::from(run)))
}

/// Cancel a running run: waiting steps are cancelled at once, running ones are flagged (as a
/// job cancel does); the run ends `cancelled` when its last step has finished.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path, description = "Workflow run id")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = Workflow), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: the run has finished", body = ErrorBody)))]
pub async fn cancel_workflow(
    State(st): State<AppState>,
    Authorized(p, _): CanCancel,
    WorkflowIdPath(id): WorkflowIdPath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    let run = st
        .store()
        .workflow_cancel(&p.namespace, &id, ACTOR)
        .await
        .map_err(|e| workflow_error(e, &id))?;
    audit::record(
        &st,
        &p,
        "workflow.cancel",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await;
    Ok(json_response(StatusCode::OK, &run))
}

/// Retry a finished run: its dead and cancelled steps start over (each waiting again for the
/// parents that start over with it); completed steps and their results are kept.
#[utoipa::path(post, path = "/v1/workflows/{id}/retry", tag = "workflows",
    params(("id" = String, Path, description = "Workflow run id")),
    request_body(content = Option<EmptyBody>, description = "Optional, empty"),
    responses((status = 200, body = Workflow), (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: the run is still running, or no step failed", body = ErrorBody)))]
pub async fn retry_workflow(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    WorkflowIdPath(id): WorkflowIdPath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    let run = st
        .store()
        .workflow_retry(&p.namespace, &id, ACTOR)
        .await
        .map_err(|e| workflow_error(e, &id))?;
    audit::record(
        &st,
        &p,
        "workflow.retry",
        &id.to_string(),
        serde_json::json!({}),
    )
    .await;
    Ok(json_response(StatusCode::OK, &run))
}

/// Add steps to a running run, typically from one of its running steps: a fan-out of children
/// and a step that depends on all of them. New steps may depend on each other and on the run's
/// steps; a parent that already completed counts as done, one that already failed under
/// `cancel_dependents` cancels the new step at once.
#[utoipa::path(post, path = "/v1/workflows/{id}/steps", tag = "workflows",
    params(("id" = String, Path, description = "Workflow run id")),
    request_body = AddStepsRequest,
    responses((status = 201, body = AddStepsAnswer),
        (status = 400, description = "invalid_argument naming the step and field", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "invalid_state: the run has finished", body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn add_steps(
    State(st): State<AppState>,
    Authorized(p, _): CanSteps,
    WorkflowIdPath(id): WorkflowIdPath,
    JsonBody(req): JsonBody<AddStepsRequest>,
) -> Result<Response, ApiError> {
    st.quotas().admit(&p.namespace, req.steps.len()).await?;
    let steps = st
        .store()
        .workflow_add_steps(WorkflowAddSteps {
            namespace: p.namespace.clone(),
            workflow_id: id,
            steps: req.steps,
            limits: st.config().limits.clone(),
            actor: ACTOR.to_string(),
        })
        .await
        .map_err(|e| workflow_error(e, &id))?;
    Ok(json_response(
        StatusCode::CREATED,
        &AddStepsAnswer {
            steps: steps.into_iter().map(Job::without_token).collect(),
        },
    ))
}
