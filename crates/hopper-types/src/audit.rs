//! The audit log: who did what administrative thing, when, and what changed.
//!
//! Key changes, queue changes, purges, bulk and queue-wide retries, cancels and the other
//! administrative calls each append one [`AuditEntry`]. Entries are never changed; they are
//! read newest first.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// An entry to append (the store numbers it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who: the key id, or `anonymous` while the server has no keys.
    pub actor: String,
    /// What, as `noun.verb`: `key.create`, `queue.pause`, `job.cancel`, ...
    pub action: String,
    /// The namespace acted in; empty for actions outside any (keys).
    pub namespace: String,
    /// What was acted on: a key id, queue name, job id, ...
    pub target: String,
    /// What changed: the request's parameters or the counts affected.
    pub details: serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the log: increasing, the list's cursor.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Who: a key id, or `anonymous`.
    pub actor: String,
    /// What, as `noun.verb`.
    pub action: String,
    /// The namespace acted in; empty for actions outside any.
    pub namespace: String,
    /// What was acted on.
    pub target: String,
    /// What changed.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}
