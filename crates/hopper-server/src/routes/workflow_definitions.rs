//! Workflow definition endpoints: store, read, list and delete named definitions, start a run
//! of one for a logical date, and backfill a range of dates. A definition's cron expression
//! and backfills are worked by the maintenance leader's workflow trigger
//! ([`crate::maintenance::workflow_trigger`]); these endpoints only record them.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use hopper_store::StoreError;
use hopper_types::workflow_definition::{
    Backfill, BackfillRequest, DEFAULT_MAX_RUNNING, DefinitionRequest, MAX_MAX_RUNNING,
    TriggerRequest, WorkflowDefinition, backfill_dates, validate_logical_date,
};
use hopper_types::{JobId, validate_name};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, CanEnqueue, CanRead};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::definition_runs::{BackfillProgress, RunError, backfill_state, start_run};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::routes::audit;
use crate::routes::workflows::WorkflowAnswer;
use crate::state::AppState;

/// Recorded as the actor of runs started through these endpoints.
const ACTOR: &str = "api";

/// `GET /v1/workflows/definitions` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DefinitionsAnswer {
    /// By name.
    pub definitions: Vec<WorkflowDefinition>,
}

/// A backfill with where it stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackfillAnswer {
    /// The backfill.
    pub backfill: Backfill,
    /// Its runs so far.
    pub progress: BackfillProgress,
}

/// The `{name}` of a definition route.
#[derive(Debug, Clone)]
pub struct DefinitionNamePath(pub String);

impl FromRequestParts<AppState> for DefinitionNamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("name", e.body_text()))?;
        validate_name("name", &raw)?;
        Ok(DefinitionNamePath(raw))
    }
}

fn definition_error(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::NotFound => {
            ApiError::not_found(format!("no workflow definition named `{name}`"))
        }
        other => ApiError::from(other),
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Invalid(v) => v.into(),
            RunError::Store(s) => s.into(),
        }
    }
}

/// Store a definition (replacing one of the same name). Its steps are checked as a run would
/// be, rendered with the default parameters.
#[utoipa::path(put, path = "/v1/workflows/definitions/{name}", tag = "workflows",
    params(("name" = String, Path, description = "Definition name")),
    request_body = DefinitionRequest,
    responses((status = 200, body = WorkflowDefinition), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn put_definition(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    DefinitionNamePath(name): DefinitionNamePath,
    JsonBody(req): JsonBody<DefinitionRequest>,
) -> Result<Response, ApiError> {
    let now = st.store().clock().now();
    let definition = req.validate(&name, &p.namespace, &st.config().limits, now)?;
    let stored = st.store().workflow_definition_put(definition).await?;
    audit::record(&st, &p, "definition.put", &name, serde_json::json!({})).await;
    Ok(json_response(StatusCode::OK, &stored))
}

/// Every definition, by name.
#[utoipa::path(get, path = "/v1/workflows/definitions", tag = "workflows",
    responses((status = 200, body = DefinitionsAnswer)))]
pub async fn list_definitions(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
) -> Result<Response, ApiError> {
    let definitions = st.store().workflow_definition_list(&p.namespace).await?;
    Ok(json_response(
        StatusCode::OK,
        &DefinitionsAnswer { definitions },
    ))
}

/// One definition.
#[utoipa::path(get, path = "/v1/workflows/definitions/{name}", tag = "workflows",
    params(("name" = String, Path, description = "Definition name")),
    responses((status = 200, body = WorkflowDefinition), (status = 404, body = ErrorBody)))]
pub async fn get_definition(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    DefinitionNamePath(name): DefinitionNamePath,
) -> Result<Response, ApiError> {
    let d = st
        .store()
        .workflow_definition_get(&p.namespace, &name)
        .await
        .map_err(|e| definition_error(e, &name))?;
    Ok(json_response(StatusCode::OK, &d))
}

/// Delete a definition; its runs stay.
#[utoipa::path(delete, path = "/v1/workflows/definitions/{name}", tag = "workflows",
    params(("name" = String, Path, description = "Definition name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete_definition(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    DefinitionNamePath(name): DefinitionNamePath,
) -> Result<Response, ApiError> {
    st.store()
        .workflow_definition_delete(&p.namespace, &name)
        .await
        .map_err(|e| definition_error(e, &name))?;
    audit::record(&st, &p, "definition.delete", &name, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Start a run of a definition for a logical date (now when absent), with parameters over its
/// defaults. A definition has one run per logical date: repeating the call answers that run
/// (`200`) instead of making another (`201`).
#[utoipa::path(post, path = "/v1/workflows/definitions/{name}/runs", tag = "workflows",
    params(("name" = String, Path, description = "Definition name")),
    request_body(content = Option<TriggerRequest>, description = "Optional"),
    responses((status = 201, body = WorkflowAnswer), (status = 200, description = "The run of that logical date existed", body = WorkflowAnswer),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn trigger_definition(
    State(st): State<AppState>,
    Authorized(p, _): CanEnqueue,
    DefinitionNamePath(name): DefinitionNamePath,
    OptionalJsonBody(req): OptionalJsonBody<TriggerRequest>,
) -> Result<Response, ApiError> {
    let req = req.unwrap_or_default();
    let logical_date = match req.logical_date {
        Some(d) => {
            validate_logical_date("logical_date", &d)?;
            d
        }
        None => st.store().clock().now().to_rfc3339(),
    };
    let d = st
        .store()
        .workflow_definition_get(&p.namespace, &name)
        .await
        .map_err(|e| definition_error(e, &name))?;
    st.quotas().admit(&p.namespace, d.steps.len()).await?;
    let run = start_run(
        st.store().as_ref(),
        &d,
        &req.params,
        &logical_date,
        &st.config().limits,
        ACTOR,
    )
    .await?;
    let status = if run.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(status, &WorkflowAnswer::from(run)))
}

/// Backfill a definition over a range of dates: one run per date (`YYYY-MM-DD`, inclusive),
/// started in date order, at most `max_running` at a time. Idempotent: the same definition and
/// range answers the existing backfill (`200`), and a date that already has a run gets no
/// second one.
#[utoipa::path(post, path = "/v1/workflows/definitions/{name}/backfill", tag = "workflows",
    params(("name" = String, Path, description = "Definition name")),
    request_body = BackfillRequest,
    responses((status = 201, body = BackfillAnswer), (status = 200, description = "The same backfill existed", body = BackfillAnswer),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn backfill_definition(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    DefinitionNamePath(name): DefinitionNamePath,
    JsonBody(req): JsonBody<BackfillRequest>,
) -> Result<Response, ApiError> {
    backfill_dates(&req.from, &req.to)?;
    let max_running = req.max_running.unwrap_or(DEFAULT_MAX_RUNNING);
    if !(1..=MAX_MAX_RUNNING).contains(&max_running) {
        return Err(ApiError::invalid(
            "max_running",
            format!("max_running must be between 1 and {MAX_MAX_RUNNING}"),
        ));
    }
    let store = st.store();
    let d = store
        .workflow_definition_get(&p.namespace, &name)
        .await
        .map_err(|e| definition_error(e, &name))?;
    // Every date's run must be makeable with these parameters: refuse now, not later.
    d.steps_for(&req.params, &req.from)?;
    let (backfill, duplicate) = store
        .backfill_create(Backfill {
            id: JobId::new(),
            namespace: p.namespace.clone(),
            definition: name,
            from: req.from,
            to: req.to,
            params: req.params,
            max_running,
            created_at: store.clock().now(),
            finished_at: None,
        })
        .await?;
    let (progress, _) = backfill_state(store.as_ref(), &backfill).await?;
    if !duplicate {
        let details = serde_json::json!({"from": backfill.from, "to": backfill.to});
        audit::record(
            &st,
            &p,
            "definition.backfill",
            &backfill.definition,
            details,
        )
        .await;
    }
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(
        status,
        &BackfillAnswer { backfill, progress },
    ))
}

/// A backfill and where it stands.
#[utoipa::path(get, path = "/v1/workflows/backfills/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Backfill id")),
    responses((status = 200, body = BackfillAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_backfill(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    crate::extract::WorkflowIdPath(id): crate::extract::WorkflowIdPath,
) -> Result<Response, ApiError> {
    let backfill = st
        .store()
        .backfill_get(&p.namespace, &id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("no backfill {id}")),
            other => other.into(),
        })?;
    let (progress, _) = backfill_state(st.store().as_ref(), &backfill).await?;
    Ok(json_response(
        StatusCode::OK,
        &BackfillAnswer { backfill, progress },
    ))
}
