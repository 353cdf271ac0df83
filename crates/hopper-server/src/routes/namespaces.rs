//! Namespace quotas: `GET /v1/namespaces` (those with quotas the key sees),
//! `GET /v1/namespaces/{name}` and `PUT /v1/namespaces/{name}` (admins). Namespaces exist
//! implicitly, like queues: one without quotas reads as having none, and one the key cannot
//! see answers 404 whether or not it holds anything.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use hopper_types::namespace::{NamespaceRequest, NamespaceSettings, validate_namespace};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, CanRead, Principal};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, json_response};
use crate::routes::audit;
use crate::state::AppState;

/// The `{name}` of a namespace route.
#[derive(Debug, Clone)]
pub struct NamespacePath(pub String);

impl FromRequestParts<AppState> for NamespacePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("name", e.body_text()))?;
        validate_namespace("name", &raw)?;
        Ok(NamespacePath(raw))
    }
}

/// `GET /v1/namespaces` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NamespacesAnswer {
    /// Namespaces with quotas, by name.
    pub namespaces: Vec<NamespaceSettings>,
}

fn visible(p: &Principal, name: &str) -> Result<(), ApiError> {
    if p.sees(name) {
        Ok(())
    } else {
        Err(ApiError::not_found("no such namespace"))
    }
}

/// Namespaces with quotas that the key sees.
#[utoipa::path(get, path = "/v1/namespaces", tag = "security",
    responses(
        (status = 200, body = NamespacesAnswer),
        (status = 401, body = ErrorBody)))]
pub async fn list_namespaces(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
) -> Result<Response, ApiError> {
    let namespaces = st
        .store()
        .namespace_list()
        .await?
        .into_iter()
        .filter(|n| p.sees(&n.name))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &NamespacesAnswer { namespaces },
    ))
}

/// One namespace's quotas (none set reads as no limits).
#[utoipa::path(get, path = "/v1/namespaces/{name}", tag = "security",
    params(("name" = String, Path, description = "Namespace")),
    responses(
        (status = 200, body = NamespaceSettings),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_namespace(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    NamespacePath(name): NamespacePath,
) -> Result<Response, ApiError> {
    visible(&p, &name)?;
    let settings = st
        .store()
        .namespace_list()
        .await?
        .into_iter()
        .find(|n| n.name == name)
        .unwrap_or(NamespaceSettings {
            name,
            max_waiting_jobs: None,
            enqueue_per_s: None,
            updated_at: hopper_types::Timestamp(0),
        });
    Ok(json_response(StatusCode::OK, &settings))
}

/// Set a namespace's quotas (a field left out means no limit of that kind).
#[utoipa::path(put, path = "/v1/namespaces/{name}", tag = "security",
    params(("name" = String, Path, description = "Namespace")),
    request_body = NamespaceRequest,
    responses(
        (status = 200, body = NamespaceSettings),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_namespace(
    State(st): State<AppState>,
    Authorized(mut p, _): CanAdmin,
    NamespacePath(name): NamespacePath,
    JsonBody(req): JsonBody<NamespaceRequest>,
) -> Result<Response, ApiError> {
    visible(&p, &name)?;
    let settings = req.validate(&name, st.store().clock().now())?;
    p.namespace = name.clone();
    let entry = audit::entry(
        &st,
        &p,
        "namespace.update",
        &name,
        serde_json::json!({
            "max_waiting_jobs": settings.max_waiting_jobs,
            "enqueue_per_s": settings.enqueue_per_s,
        }),
    );
    let stored = st.store().namespace_put(settings, entry).await?;
    st.quotas().invalidate();
    Ok(json_response(StatusCode::OK, &stored))
}
