//! The SQL of each store operation. Write operations take a [`crate::writer::WriteCtx`] and
//! run inside the writer's batch transaction; read operations take a reader connection.
//! State changes themselves are computed by `hopper_types::lifecycle`.

pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod explain;
pub(crate) mod export;
pub(crate) mod feed;
pub(crate) mod flow;
pub(crate) mod import;
pub(crate) mod insert;
pub(crate) mod leader;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod namespaces;
pub(crate) mod outcome;
pub(crate) mod queue;
pub(crate) mod read;
pub(crate) mod schedule;
pub(crate) mod webhooks;
pub(crate) mod workers_seen;
pub(crate) mod workflow;
pub(crate) mod workflow_definition;
