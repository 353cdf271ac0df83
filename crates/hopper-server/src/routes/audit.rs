//! The audit log: `GET /v1/audit` (admins), and [`entry`] / [`record`], how handlers of
//! administrative calls write it.
//!
//! Calls whose store operation takes the entry (keys, namespace quotas, webhooks) write it in
//! the same transaction as the change. The others (queue changes, purges, retries, cancels,
//! schedules, definitions) append it right after their change succeeded: a crash in between
//! loses that one entry, never the change's own job events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_types::audit::{AuditEntry, NewAuditEntry};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, Principal};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::QueryPairs;
use crate::state::AppState;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// An entry for `p`'s action `action` on `target` in `p`'s namespace.
pub fn entry(
    st: &AppState,
    p: &Principal,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        at: st.store().clock().now(),
        actor: p.actor.clone(),
        action: action.to_string(),
        namespace: p.namespace.clone(),
        target: target.to_string(),
        details,
    }
}

/// Appends an entry for an action that already happened. A failure is logged, not answered:
/// the action itself succeeded and must not be retried because its record failed.
pub async fn record(
    st: &AppState,
    p: &Principal,
    action: &str,
    target: &str,
    details: serde_json::Value,
) {
    let e = entry(st, p, action, target, details);
    if let Err(err) = st.store().audit_append(e).await {
        tracing::error!(error = %err, action, target, "writing the audit log failed");
    }
}

/// `GET /v1/audit` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditAnswer {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The audit log, newest first: entries of the namespaces the key sees (and, for a key that
/// sees every namespace, those outside any: key changes).
#[utoipa::path(get, path = "/v1/audit", tag = "security",
    params(
        ("limit" = Option<usize>, Query, description = "1..500, default 50"),
        ("cursor" = Option<String>, Query, description = "The previous page's next_cursor")),
    responses(
        (status = 200, body = AuditAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    query.only(&["limit", "cursor"])?;
    let limit = match query.single("limit")? {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", format!("limit must be between 1 and {MAX_PAGE}"))
            })?,
    };
    let before = match query.single("cursor")? {
        None | Some("") => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::invalid(
                "cursor",
                "cursor must be the next_cursor of a previous page",
            )
        })?),
    };
    let entries = st
        .store()
        .audit_list(p.visible(), before, limit + 1)
        .await?;
    let more = entries.len() > limit;
    let entries: Vec<AuditEntry> = entries.into_iter().take(limit).collect();
    let next_cursor = if more {
        entries.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        &AuditAnswer {
            entries,
            next_cursor,
        },
    ))
}
