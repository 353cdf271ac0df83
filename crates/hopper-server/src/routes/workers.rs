//! `GET /v1/workers`: workers seen in the last minute, with how many jobs each holds.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_types::Timestamp;
use serde::Serialize;

use crate::auth::{Authorized, CanRead};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::state::AppState;

/// A worker as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkerView {
    /// Its `worker_id`.
    pub id: String,
    /// The queues of its latest lease request.
    pub queues: Vec<String>,
    /// Jobs it holds right now.
    pub running: u64,
    /// When it last leased, heartbeated or acked.
    pub last_seen_at: Timestamp,
}

/// `GET /v1/workers` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkersAnswer {
    /// By id.
    pub workers: Vec<WorkerView>,
}

/// Workers seen in the last minute.
#[utoipa::path(get, path = "/v1/workers", tag = "workers",
    responses((status = 200, body = WorkersAnswer), (status = 503, body = ErrorBody)))]
pub async fn list_workers(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
) -> Result<Response, ApiError> {
    // The running counts come from the store, which is right even across restarts; the
    // registry only knows who was seen.
    let running: HashMap<String, u64> = st
        .store()
        .worker_running_list(&p.namespace)
        .await?
        .into_iter()
        .map(|w| (w.worker_id, w.running))
        .collect();
    let now = st.store().clock().now();
    let workers = st
        .workers()
        .recent(&p.namespace, now)
        .into_iter()
        .map(|w| WorkerView {
            running: running.get(&w.id).copied().unwrap_or(0),
            id: w.id,
            queues: w.queues,
            last_seen_at: w.last_seen_at,
        })
        .collect();
    Ok(json_response(StatusCode::OK, &WorkersAnswer { workers }))
}
