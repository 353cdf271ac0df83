//! Namespaces (tenants): their names and their quotas.
//!
//! Every job, queue, schedule, workflow, event and webhook belongs to one namespace. Namespaces
//! exist implicitly, like queues; one is stored only to give it quotas. Names starting with `_`
//! are reserved for Hopper's own work (webhook deliveries run in [`SYSTEM_NAMESPACE`]).

use serde::{Deserialize, Serialize};

use crate::{Timestamp, ValidationError, validate_name};

/// Hopper's own namespace: webhook deliveries. Only keys that see every namespace see it.
pub const SYSTEM_NAMESPACE: &str = "_hopper";

/// Checks a namespace a client names: a valid name not reserved for Hopper.
pub fn validate_namespace(field: &str, name: &str) -> Result<(), ValidationError> {
    validate_name(field, name)?;
    if name.starts_with('_') {
        return Err(ValidationError::invalid(
            field,
            format!("{field}: namespaces starting with `_` are reserved"),
        ));
    }
    Ok(())
}

/// A namespace's quotas as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamespaceSettings {
    /// The namespace.
    pub name: String,
    /// Enqueues are refused (429) while this many jobs wait (available, scheduled or
    /// retryable); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting_jobs: Option<u64>,
    /// Jobs per second the namespace may enqueue on each node (a burst of one second's worth);
    /// unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueue_per_s: Option<u32>,
    /// When the quotas last changed.
    pub updated_at: Timestamp,
}

/// The body of `PUT /v1/namespaces/{name}`. Unknown fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRequest {
    /// See [`NamespaceSettings::max_waiting_jobs`].
    #[serde(default)]
    pub max_waiting_jobs: Option<u64>,
    /// See [`NamespaceSettings::enqueue_per_s`].
    #[serde(default)]
    pub enqueue_per_s: Option<u32>,
}

impl NamespaceRequest {
    /// The settings it asks for, named `name`, stamped `now`.
    pub fn validate(
        self,
        name: &str,
        now: Timestamp,
    ) -> Result<NamespaceSettings, ValidationError> {
        validate_namespace("name", name)?;
        if self.enqueue_per_s == Some(0) {
            return Err(ValidationError::invalid(
                "enqueue_per_s",
                "enqueue_per_s must be at least 1 (leave it out for no limit)",
            ));
        }
        Ok(NamespaceSettings {
            name: name.to_string(),
            max_waiting_jobs: self.max_waiting_jobs,
            enqueue_per_s: self.enqueue_per_s,
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        assert!(validate_namespace("ns", "billing").is_ok());
        assert!(validate_namespace("ns", "_hopper").is_err());
        assert!(validate_namespace("ns", "a b").is_err());
        assert!(validate_namespace("ns", "").is_err());
    }

    #[test]
    fn a_zero_rate_is_refused() {
        let req = NamespaceRequest {
            max_waiting_jobs: None,
            enqueue_per_s: Some(0),
        };
        assert_eq!(
            req.validate("a", Timestamp(0)).unwrap_err().field,
            "enqueue_per_s"
        );
    }
}
