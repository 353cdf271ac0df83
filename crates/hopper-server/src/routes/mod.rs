//! The route table of API v1, and the JSON answers for unknown routes and methods.
//!
//! Handlers live by concept: [`jobs`] (producers), [`leases`] (the long poll), [`outcomes`]
//! (what workers report), [`queues`], [`schedules`] (cron schedules), [`workers`], [`ops`]
//! (health, metrics, OpenAPI), [`events`] (the live event stream), [`workflows`] (DAG runs), [`workflow_definitions`] (named definitions, triggers, backfills), [`bulk`] (one action on many jobs), [`dead_letters`] (dead jobs
//! grouped by error), [`stats`] (this node's recent activity, for the UI's charts), [`keys`]
//! (API keys), [`namespaces`] (quotas), [`audit`] (the audit log), [`webhooks`] (signed
//! webhooks), [`session`] (the UI's login); the web UI's files are served by [`crate::ui`].
//!
//! Every handler of tenant data takes [`crate::auth::Authorized`] at its access level; only
//! health, readiness, the OpenAPI document, the UI's static files and the login are open.

pub mod audit;
pub mod bulk;
pub mod dead_letters;
pub mod events;
pub mod jobs;
pub mod keys;
pub mod leases;
pub mod namespaces;
pub mod ops;
pub mod outcomes;
pub mod queues;
pub mod schedules;
pub mod session;
pub mod stats;
pub mod webhooks;
pub mod workers;
pub mod workflow_definitions;
pub mod workflows;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Every route of the server, without middleware or state.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(jobs::enqueue).get(jobs::list_jobs))
        .route("/v1/jobs/batch", post(jobs::enqueue_batch))
        .route("/v1/jobs/bulk", post(bulk::bulk_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job).delete(jobs::delete_job))
        .route("/v1/jobs/{id}/events", get(jobs::job_events))
        .route("/v1/jobs/{id}/explain", get(jobs::explain_job))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/v1/jobs/{id}/retry", post(jobs::retry_job))
        .route("/v1/leases", post(leases::lease))
        .route("/v1/jobs/{id}/heartbeat", post(outcomes::heartbeat))
        .route("/v1/jobs/{id}/complete", post(outcomes::complete))
        .route("/v1/jobs/{id}/fail", post(outcomes::fail))
        .route("/v1/jobs/{id}/release", post(outcomes::release))
        .route("/v1/jobs/{id}/cancelled", post(outcomes::cancelled))
        .route("/v1/acks", post(outcomes::acks))
        .route("/v1/queues", get(queues::list_queues))
        .route(
            "/v1/queues/{name}",
            get(queues::get_queue).put(queues::configure),
        )
        .route("/v1/queues/{name}/pause", post(queues::pause))
        .route("/v1/queues/{name}/resume", post(queues::resume))
        .route("/v1/queues/{name}/retry", post(queues::retry_dead))
        .route("/v1/queues/{name}/jobs", delete(queues::purge))
        .route(
            "/v1/schedules",
            post(schedules::create_schedule).get(schedules::list_schedules),
        )
        .route(
            "/v1/schedules/{name}",
            get(schedules::get_schedule)
                .put(schedules::replace_schedule)
                .delete(schedules::delete_schedule),
        )
        .route(
            "/v1/schedules/{name}/pause",
            post(schedules::pause_schedule),
        )
        .route(
            "/v1/schedules/{name}/resume",
            post(schedules::resume_schedule),
        )
        .route(
            "/v1/schedules/{name}/trigger",
            post(schedules::trigger_schedule),
        )
        .route(
            "/v1/workflows",
            post(workflows::submit_workflow).get(workflows::list_workflows),
        )
        .route(
            "/v1/workflows/definitions",
            get(workflow_definitions::list_definitions),
        )
        .route(
            "/v1/workflows/definitions/{name}",
            get(workflow_definitions::get_definition)
                .put(workflow_definitions::put_definition)
                .delete(workflow_definitions::delete_definition),
        )
        .route(
            "/v1/workflows/definitions/{name}/runs",
            post(workflow_definitions::trigger_definition),
        )
        .route(
            "/v1/workflows/definitions/{name}/backfill",
            post(workflow_definitions::backfill_definition),
        )
        .route(
            "/v1/workflows/backfills/{id}",
            get(workflow_definitions::get_backfill),
        )
        .route("/v1/workflows/{id}", get(workflows::get_workflow))
        .route(
            "/v1/workflows/{id}/cancel",
            post(workflows::cancel_workflow),
        )
        .route("/v1/workflows/{id}/retry", post(workflows::retry_workflow))
        .route("/v1/workflows/{id}/steps", post(workflows::add_steps))
        .route("/v1/workers", get(workers::list_workers))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/events", get(events::events_sse))
        .route("/v1/events/ws", get(events::events_ws))
        .route("/v1/dead-letters", get(dead_letters::list_dead_letters))
        .route(
            "/v1/dead-letters/retry",
            post(dead_letters::retry_dead_letters),
        )
        .route(
            "/v1/dead-letters/purge",
            post(dead_letters::purge_dead_letters),
        )
        .route("/v1/keys", post(keys::create_key).get(keys::list_keys))
        .route("/v1/keys/{id}", get(keys::get_key))
        .route("/v1/keys/{id}/revoke", post(keys::revoke_key))
        .route("/v1/namespaces", get(namespaces::list_namespaces))
        .route(
            "/v1/namespaces/{name}",
            get(namespaces::get_namespace).put(namespaces::put_namespace),
        )
        .route("/v1/audit", get(audit::list_audit))
        .route(
            "/v1/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route("/v1/webhooks/{id}", delete(webhooks::delete_webhook))
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/v1/session",
            get(session::whoami)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/", get(crate::ui::index))
        .route("/ui/{*path}", get(crate::ui::asset))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept that method",
    )
}
