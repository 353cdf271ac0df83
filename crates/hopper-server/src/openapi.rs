//! The OpenAPI document served at `/openapi.json`, generated from the handlers' annotations and
//! the request and answer types, so it cannot drift from the code.

use std::sync::OnceLock;

use utoipa::OpenApi;

use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{
    audit, bulk, dead_letters, events, jobs, keys, leases, namespaces, ops, outcomes, queues,
    schedules, session, stats, webhooks, workers, workflow_definitions, workflows,
};

/// Declares the two ways to authenticate: a bearer key, or the UI's session cookie.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("hop_<id>_<secret>")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("hopper_session"))),
        );
    }
}

/// The API description. Schemas referenced by the paths are collected automatically.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hopper API",
        version = "1",
        description = "A durable job queue. Every 4xx/5xx answer has the body `{\"error\": {\"code\", \"message\", \"field\"}}`; every answer carries `X-Request-Id`."
    ),
    paths(
        jobs::enqueue,
        jobs::enqueue_batch,
        jobs::get_job,
        jobs::list_jobs,
        jobs::cancel_job,
        jobs::retry_job,
        jobs::delete_job,
        jobs::job_events,
        jobs::explain_job,
        bulk::bulk_jobs,
        leases::lease,
        outcomes::heartbeat,
        outcomes::complete,
        outcomes::fail,
        outcomes::release,
        outcomes::cancelled,
        outcomes::acks,
        queues::list_queues,
        queues::get_queue,
        queues::configure,
        queues::pause,
        queues::resume,
        queues::retry_dead,
        queues::purge,
        schedules::create_schedule,
        schedules::list_schedules,
        schedules::get_schedule,
        schedules::replace_schedule,
        schedules::delete_schedule,
        schedules::pause_schedule,
        schedules::resume_schedule,
        schedules::trigger_schedule,
        workflows::submit_workflow,
        workflows::list_workflows,
        workflows::get_workflow,
        workflows::cancel_workflow,
        workflows::retry_workflow,
        workflows::add_steps,
        workflow_definitions::put_definition,
        workflow_definitions::list_definitions,
        workflow_definitions::get_definition,
        workflow_definitions::delete_definition,
        workflow_definitions::trigger_definition,
        workflow_definitions::backfill_definition,
        workflow_definitions::get_backfill,
        workers::list_workers,
        events::events_sse,
        events::events_ws,
        dead_letters::list_dead_letters,
        dead_letters::retry_dead_letters,
        dead_letters::purge_dead_letters,
        stats::stats,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        keys::create_key,
        keys::list_keys,
        keys::get_key,
        keys::revoke_key,
        namespaces::list_namespaces,
        namespaces::get_namespace,
        namespaces::put_namespace,
        audit::list_audit,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        session::whoami,
        session::login,
        session::logout,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "jobs", description = "Producers: enqueue, inspect, cancel, retry, delete"),
        (name = "workers", description = "Workers: lease, heartbeat, report outcomes"),
        (name = "queues", description = "Queues: counts, pause, resume, bulk retry and purge"),
        (name = "schedules", description = "Cron schedules: define, pause, resume, trigger"),
        (name = "workflows", description = "Workflow runs: DAGs of steps, cancel, retry, dynamic fan-out"),
        (name = "events", description = "The live stream of job transitions (SSE and WebSocket)"),
        (name = "dead-letters", description = "Dead jobs grouped by queue and error: list, retry, purge"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "security", description = "API keys, namespace quotas, the audit log, webhooks, the UI's session"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| match ApiDoc::openapi().to_json() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "serializing the OpenAPI document failed");
            "{}".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_route_and_schema() {
        let doc: serde_json::Value = serde_json::from_str(json()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/jobs",
            "/v1/jobs/batch",
            "/v1/jobs/{id}",
            "/v1/jobs/{id}/events",
            "/v1/jobs/{id}/explain",
            "/v1/queues/{name}",
            "/v1/leases",
            "/v1/acks",
            "/v1/queues/{name}/jobs",
            "/v1/workers",
            "/v1/stats",
            "/v1/jobs/bulk",
            "/v1/dead-letters",
            "/v1/dead-letters/retry",
            "/v1/dead-letters/purge",
            "/v1/schedules",
            "/v1/schedules/{name}",
            "/v1/schedules/{name}/trigger",
            "/openapi.json",
            "/v1/keys",
            "/v1/keys/{id}/revoke",
            "/v1/namespaces/{name}",
            "/v1/audit",
            "/v1/webhooks",
            "/v1/webhooks/{id}/deliveries",
            "/v1/session",
        ] {
            assert!(paths.contains_key(p), "missing {p}");
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for s in [
            "Job",
            "EnqueueRequest",
            "ErrorBody",
            "LeaseRequest",
            "JobState",
            "ScheduleRequest",
            "ScheduleView",
            "Misfire",
        ] {
            assert!(schemas.contains_key(s), "missing schema {s}");
        }
    }
}
