//! [`Outcome`]: what a handler decided about its job, as a type rather than a string, and how
//! each one maps onto the report the server receives.

use std::time::Duration;

use serde::Serialize;

use crate::wire::{AckOutcome, FailureReport};

/// Boxed error a handler may return: anything that converts, `anyhow::Error` included.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error kind reported for a handler's `Err`, and for [`Outcome::fail`].
pub const KIND_ERROR: &str = "error";
/// The error kind reported when an attempt runs past the job's `timeout_ms`.
pub const KIND_TIMEOUT: &str = "timeout";
/// The error kind reported when the job's args do not decode into the handler's type.
pub const KIND_INVALID_ARGS: &str = "invalid_args";
/// The error kind reported when no handler is registered for the job's kind.
pub const KIND_UNKNOWN_KIND: &str = "unknown_kind";
/// The error kind reported when a handler panicked.
pub const KIND_PANIC: &str = "panic";
/// The error kind reported for [`Outcome::RetryIn`].
pub const KIND_RETRY: &str = "retry";

/// How a handler's run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Success; the value is kept as the job's `result` (`Value::Null` for none).
    Complete(serde_json::Value),
    /// A failed attempt worth retrying: the job waits for its backoff, or is dead when out of
    /// attempts.
    Fail {
        /// What went wrong.
        message: String,
        /// Short machine-readable kind (`error` by default).
        kind: String,
    },
    /// A failure that no retry can fix: the job is dead at once.
    FailPermanently {
        /// What went wrong.
        message: String,
        /// Short machine-readable kind.
        kind: String,
    },
    /// Try again after this long instead of the job's backoff (counts as a failed attempt).
    RetryIn(Duration),
    /// The handler stopped because the job was cancelled (or chose to cancel it).
    Cancelled,
}

impl Outcome {
    /// Success with no result.
    pub fn complete() -> Outcome {
        Outcome::Complete(serde_json::Value::Null)
    }

    /// Success with `result` as the job's result; a result that does not serialize is a
    /// permanent failure (retrying would produce it again).
    pub fn complete_with(result: &impl Serialize) -> Outcome {
        match serde_json::to_value(result) {
            Ok(v) => Outcome::Complete(v),
            Err(e) => Outcome::fail_permanently(format!("cannot serialize the result: {e}")),
        }
    }

    /// A retryable failure of kind `error`.
    pub fn fail(message: impl Into<String>) -> Outcome {
        Outcome::Fail {
            message: message.into(),
            kind: KIND_ERROR.to_string(),
        }
    }

    /// A permanent failure of kind `error`.
    pub fn fail_permanently(message: impl Into<String>) -> Outcome {
        Outcome::FailPermanently {
            message: message.into(),
            kind: KIND_ERROR.to_string(),
        }
    }

    /// The retryable failure a handler's `Err` stands for; the message includes the error's
    /// chain of causes so the dead-letter queue says why, not just what.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Outcome {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            let text = s.to_string();
            // anyhow repeats the context chain in Display for some wrappers; skip exact repeats.
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Outcome::Fail {
            message,
            kind: KIND_ERROR.to_string(),
        }
    }

    /// The report this outcome makes.
    pub(crate) fn into_report(self) -> AckOutcome {
        match self {
            Outcome::Complete(result) => AckOutcome::Completed { result },
            Outcome::Fail { message, kind } => AckOutcome::Failed {
                error: FailureReport {
                    message,
                    kind,
                    retryable: true,
                },
                retry_in_ms: None,
            },
            Outcome::FailPermanently { message, kind } => AckOutcome::Failed {
                error: FailureReport {
                    message,
                    kind,
                    retryable: false,
                },
                retry_in_ms: None,
            },
            Outcome::RetryIn(d) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                AckOutcome::Failed {
                    error: FailureReport {
                        message: format!("the handler asked to retry in {ms} ms"),
                        kind: KIND_RETRY.to_string(),
                        retryable: true,
                    },
                    retry_in_ms: Some(ms),
                }
            }
            Outcome::Cancelled => AckOutcome::Cancelled,
        }
    }
}

/// What a handler may return besides a bare [`Outcome`]: `()` means complete with no result.
pub trait IntoOutcome {
    /// The outcome this value stands for.
    fn into_outcome(self) -> Outcome;
}

impl IntoOutcome for Outcome {
    fn into_outcome(self) -> Outcome {
        self
    }
}

impl IntoOutcome for () {
    fn into_outcome(self) -> Outcome {
        Outcome::complete()
    }
}

impl IntoOutcome for serde_json::Value {
    fn into_outcome(self) -> Outcome {
        Outcome::Complete(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed(message: &str, kind: &str, retryable: bool) -> AckOutcome {
        AckOutcome::Failed {
            error: FailureReport {
                message: message.into(),
                kind: kind.into(),
                retryable,
            },
            retry_in_ms: None,
        }
    }

    #[test]
    fn each_outcome_maps_to_its_report() {
        assert_eq!(
            Outcome::complete_with(&json!({"sent": 3})).into_report(),
            AckOutcome::Completed {
                result: json!({"sent": 3})
            }
        );
        assert_eq!(
            Outcome::fail("smtp down").into_report(),
            failed("smtp down", "error", true)
        );
        assert_eq!(
            Outcome::FailPermanently {
                message: "bad address".into(),
                kind: "invalid_email".into()
            }
            .into_report(),
            failed("bad address", "invalid_email", false)
        );
        let report = Outcome::RetryIn(Duration::from_secs(5)).into_report();
        assert!(
            matches!(report, AckOutcome::Failed { error, retry_in_ms: Some(5000) }
            if error.retryable && error.kind == "retry")
        );
        assert_eq!(Outcome::Cancelled.into_report(), AckOutcome::Cancelled);
    }

    #[test]
    fn handler_errors_are_retryable_and_keep_their_causes() {
        let e = anyhow::anyhow!("connection refused").context("sending the welcome email");
        let boxed: BoxError = e.into();
        let o = Outcome::from_error(boxed.as_ref());
        match o {
            Outcome::Fail { message, kind } => {
                assert_eq!(kind, "error");
                assert!(
                    message.starts_with("sending the welcome email"),
                    "{message}"
                );
                assert!(message.contains("connection refused"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unit_and_values_complete() {
        assert_eq!(().into_outcome(), Outcome::complete());
        assert_eq!(json!(1).into_outcome(), Outcome::Complete(json!(1)));
    }
}
