//! End-to-end tests of the HTTP API: a real server on a loopback socket over a real SQLite
//! store, exercised over HTTP. One test binary (one link) with a module per area.

#[path = "../common/mod.rs"]
mod common;

/// Every server of this binary runs on the embedded store.
const BACKEND: common::Backend = common::Backend::Sqlite;

mod auth;
mod bulk;
mod dead_letters;
mod errors;
mod events;
mod flow;
mod jobs;
mod leases;
mod maintenance;
mod metrics;
mod ops;
mod queues;
mod schedules;
mod shutdown;
mod ui;
mod webhooks;
mod workflow_definitions;
mod workflows;
