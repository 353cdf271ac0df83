//! The end-to-end API suite again, every server on PostgreSQL: the same test modules as
//! `tests/api`, compiled against a fresh database per test on the server the test command
//! started. A behaviour of the API holds on every backend, or it is a bug.

#[path = "../common/mod.rs"]
mod common;

/// Every server of this binary runs on PostgreSQL.
const BACKEND: common::Backend = common::Backend::Postgres;

#[path = "../api/auth.rs"]
mod auth;
#[path = "../api/bulk.rs"]
mod bulk;
#[path = "../api/dead_letters.rs"]
mod dead_letters;
#[path = "../api/errors.rs"]
mod errors;
#[path = "../api/events.rs"]
mod events;
#[path = "../api/flow.rs"]
mod flow;
#[path = "../api/jobs.rs"]
mod jobs;
#[path = "../api/leases.rs"]
mod leases;
#[path = "../api/maintenance.rs"]
mod maintenance;
#[path = "../api/metrics.rs"]
mod metrics;
#[path = "../api/ops.rs"]
mod ops;
#[path = "../api/queues.rs"]
mod queues;
#[path = "../api/schedules.rs"]
mod schedules;
#[path = "../api/shutdown.rs"]
mod shutdown;
#[path = "../api/ui.rs"]
mod ui;
#[path = "../api/webhooks.rs"]
mod webhooks;
#[path = "../api/workflow_definitions.rs"]
mod workflow_definitions;
#[path = "../api/workflows.rs"]
mod workflows;

// Behaviour of several nodes on one database.
mod cluster;
