//! Webhook subscriptions of the request's namespace (admins): create (the signing secret is
//! answered once), list, delete, and each one's delivery log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hopper_store::JobListParams;
use hopper_types::namespace::SYSTEM_NAMESPACE;
use hopper_types::webhook::{Webhook, WebhookRequest};
use hopper_types::{ErrorRecord, JobId, JobState, Timestamp};
use serde::Serialize;

use crate::auth::{Authorized, CanAdmin, Principal};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::QueryPairs;
use crate::routes::audit;
use crate::state::AppState;
use crate::webhooks::tag;

/// A webhook as listed: everything but its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    /// Where deliveries go.
    pub url: String,
    /// The job states delivered.
    pub events: Vec<JobState>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl From<Webhook> for WebhookView {
    fn from(h: Webhook) -> Self {
        WebhookView {
            id: h.id,
            namespace: h.namespace,
            url: h.url,
            events: h.events,
            created_at: h.created_at,
        }
    }
}

/// `POST /v1/webhooks` answer: the webhook and, this once, its signing secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key of its signatures (hex).
    pub secret: String,
}

/// `GET /v1/webhooks` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhooksAnswer {
    /// By id.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery as its log shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The delivery's job.
    pub id: JobId,
    /// `<webhook id>:<event seq>`, the `Hopper-Delivery-Id` header.
    pub delivery_id: String,
    /// `completed` (delivered), `available`/`retryable`/`running` (pending), `dead` (gave up).
    pub state: JobState,
    /// Attempts made.
    pub attempts: i32,
    /// Why attempts failed, oldest first.
    pub errors: Vec<ErrorRecord>,
    /// When it was enqueued.
    pub created_at: Timestamp,
    /// When it was delivered or given up.
    pub finished_at: Option<Timestamp>,
}

/// `GET /v1/webhooks/{id}/deliveries` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveriesAnswer {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// Subscribe a URL to job events of the request's namespace.
#[utoipa::path(post, path = "/v1/webhooks", tag = "security",
    request_body = WebhookRequest,
    responses(
        (status = 201, body = CreatedWebhook),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_webhook(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(req): JsonBody<WebhookRequest>,
) -> Result<Response, ApiError> {
    // Only events after now are delivered.
    let cursor = st.store().events_last_seq().await?;
    let hook = req.validate(&p.namespace, st.store().clock().now(), cursor)?;
    let entry = audit::entry(
        &st,
        &p,
        "webhook.create",
        &hook.id,
        serde_json::json!({"url": hook.url, "events": hook.events}),
    );
    st.store().webhook_insert(hook.clone(), entry).await?;
    let secret = hook.secret.clone();
    Ok(json_response(
        StatusCode::CREATED,
        &CreatedWebhook {
            webhook: hook.into(),
            secret,
        },
    ))
}

/// The namespace's webhooks.
#[utoipa::path(get, path = "/v1/webhooks", tag = "security",
    responses(
        (status = 200, body = WebhooksAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_webhooks(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
) -> Result<Response, ApiError> {
    let webhooks = st
        .store()
        .webhook_list(Some(&p.namespace))
        .await?
        .into_iter()
        .map(WebhookView::from)
        .collect();
    Ok(json_response(StatusCode::OK, &WebhooksAnswer { webhooks }))
}

/// Delete a webhook; deliveries still pending are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "security",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry = audit::entry(&st, &p, "webhook.delete", &id, serde_json::json!({}));
    st.store()
        .webhook_delete(&p.namespace, &id, entry)
        .await
        .map_err(not_found_as_webhook)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook's most recent deliveries (up to `limit`, default 50, at most 500).
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "security",
    params(("id" = String, Path, description = "Webhook id"),
        ("limit" = Option<usize>, Query, description = "1..500, default 50")),
    responses(
        (status = 200, body = DeliveriesAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    Path(id): Path<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    query.only(&["limit"])?;
    let (limit, _) = query.page(50, 500)?;
    find(&st, &p, &id).await?;
    let page = st
        .store()
        .job_list(&JobListParams {
            namespace: SYSTEM_NAMESPACE.to_string(),
            queue: Some(crate::webhooks::QUEUE.to_string()),
            states: vec![],
            kind: None,
            tag: Some(tag(&id)),
            q: None,
            limit,
            before: None,
        })
        .await?;
    let deliveries = page
        .jobs
        .into_iter()
        .map(|j| DeliveryView {
            id: j.id,
            delivery_id: serde_json::from_str::<serde_json::Value>(j.args.get())
                .ok()
                .and_then(|a| a["delivery_id"].as_str().map(str::to_string))
                .unwrap_or_default(),
            state: j.state,
            attempts: j.attempt,
            errors: j.errors,
            created_at: j.created_at,
            finished_at: j.finished_at,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &DeliveriesAnswer { deliveries },
    ))
}

async fn find(st: &AppState, p: &Principal, id: &str) -> Result<Webhook, ApiError> {
    st.store()
        .webhook_list(Some(&p.namespace))
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| ApiError::not_found("no such webhook"))
}

fn not_found_as_webhook(e: hopper_store::StoreError) -> ApiError {
    match e {
        hopper_store::StoreError::NotFound => ApiError::not_found("no such webhook"),
        other => other.into(),
    }
}
