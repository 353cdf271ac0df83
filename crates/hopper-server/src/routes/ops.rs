//! Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::{Authorized, CanReadAll};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::state::AppState;

/// `/healthz` and `/readyz` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusAnswer {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Alive: the process runs and serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = StatusAnswer)))]
pub async fn healthz() -> Response {
    json_response(StatusCode::OK, &StatusAnswer { status: "ok" })
}

/// Ready: storage answers and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = StatusAnswer), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(st): State<AppState>) -> Result<Response, ApiError> {
    if st.shutdown().is_shutting_down() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    st.store().ping().await?;
    Ok(json_response(
        StatusCode::OK,
        &StatusAnswer { status: "ready" },
    ))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(st): State<AppState>, Authorized(p, _): CanReadAll) -> Response {
    let queues = match st.store().queue_list(&p.namespace).await {
        Ok(q) => q,
        Err(e) => {
            // Still serve the counters: a scrape that fails whole would hide them too.
            tracing::warn!(error = %e, "reading queue counts for /metrics failed");
            Vec::new()
        }
    };
    let workers = st.workers().counts(st.store().clock().now());
    let text = st.metrics().render(&queues, &workers);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

/// This API as an OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub async fn openapi() -> Response {
    let mut resp = (StatusCode::OK, crate::openapi::json()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
