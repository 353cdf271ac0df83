//! Errors of the SDK: what the server refused ([`ApiError`], with its wire `code`),
//! kept apart from failures to talk to it at all ([`Error::Transport`]).
//!
//! The split matters to callers: an API error is an answer (retrying the same request gets the
//! same answer, except `unavailable` and `rate_limited`), a transport error is the absence of one
//! (the request may or may not have been applied).

use std::fmt;
use std::time::Duration;

/// Anything a [`crate::Client`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error body (any 4xx or 5xx).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server could not be reached, or the connection broke before an answer arrived.
    #[error("cannot reach the Hopper server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered something this SDK cannot read (a proxy page, a version mismatch).
    #[error("unexpected answer from the Hopper server (HTTP {status}): {message}")]
    Protocol {
        /// HTTP status of the answer.
        status: u16,
        /// What could not be read.
        message: String,
    },
    /// The base URL given to [`crate::Client::new`] is not an http(s) URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A value the caller passed could not be encoded as JSON.
    #[error("cannot encode the request as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// A call only a workflow step can make (e.g. [`crate::JobContext::add_steps`]) was made
    /// from a job that is not one.
    #[error("job {0} is not a step of a workflow run")]
    NotAStep(hopper_types::JobId),
}

impl Error {
    /// The API error code, when the server answered with one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// True for `409 lease_lost`: the job is no longer this worker's to report on.
    pub fn is_lease_lost(&self) -> bool {
        self.code() == Some(&ErrorCode::LeaseLost)
    }

    /// True for `404 not_found`.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(&ErrorCode::NotFound)
    }

    /// True when the same request may succeed later: transport failures, `503 unavailable`
    /// (the server promises nothing was changed), `429 rate_limited`, and other 5xx answers.
    /// Only safe to act on for idempotent requests (enqueue with a key, outcomes, reads).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Api(e) => {
                matches!(e.code, ErrorCode::Unavailable | ErrorCode::RateLimited) || e.status >= 500
            }
            _ => false,
        }
    }

    /// How long the server asked to wait before retrying (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(e) => e.retry_after,
            _ => None,
        }
    }
}

/// An error answer of the server: `{"error": {"code", "message", "field"}}` plus its HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ApiError {
    /// HTTP status (400, 404, 409, ...).
    pub status: u16,
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
    /// The offending request field (`jobs[3].priority`), when the server named one.
    pub field: Option<String>,
    /// The `Retry-After` header of a 429 or 503, when given.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " [field: {field}]")?;
        }
        Ok(())
    }
}

/// The `code` of an API error (v1 API, Errors). Codes this SDK does not know are kept verbatim
/// in [`ErrorCode::Other`], so a newer server never breaks an older SDK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: malformed JSON, wrong type, value out of range.
    InvalidArgument,
    /// 401: missing or bad credentials.
    Unauthenticated,
    /// 403: the key's role does not allow the call.
    PermissionDenied,
    /// 404: unknown job (queues never 404).
    NotFound,
    /// 409: the lease token is not the job's current one.
    LeaseLost,
    /// 409: the transition is not allowed from the job's state.
    InvalidState,
    /// 409: the idempotency key exists with a different queue, kind or args.
    IdempotencyConflict,
    /// 413: body or args over its limit.
    TooLarge,
    /// 429: slow down (see `Retry-After`).
    RateLimited,
    /// 503: nothing was changed; safe to retry.
    Unavailable,
    /// A code this SDK does not know.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::LeaseLost => "lease_lost",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Other(s) => s,
        }
    }

    /// Reads a wire code.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "invalid_argument" => ErrorCode::InvalidArgument,
            "unauthenticated" => ErrorCode::Unauthenticated,
            "permission_denied" => ErrorCode::PermissionDenied,
            "not_found" => ErrorCode::NotFound,
            "lease_lost" => ErrorCode::LeaseLost,
            "invalid_state" => ErrorCode::InvalidState,
            "idempotency_conflict" => ErrorCode::IdempotencyConflict,
            "too_large" => ErrorCode::TooLarge,
            "rate_limited" => ErrorCode::RateLimited,
            "unavailable" => ErrorCode::Unavailable,
            other => ErrorCode::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api(ApiError {
            status,
            code: ErrorCode::parse(code),
            message: "m".into(),
            field: None,
            retry_after: None,
        })
    }

    #[test]
    fn codes_round_trip_and_unknown_ones_survive() {
        for c in [
            "invalid_argument",
            "lease_lost",
            "invalid_state",
            "idempotency_conflict",
            "unavailable",
            "teapot",
        ] {
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
        assert_eq!(
            ErrorCode::parse("teapot"),
            ErrorCode::Other("teapot".into())
        );
    }

    #[test]
    fn only_unavailable_rate_limited_and_5xx_are_retryable() {
        assert!(api(503, "unavailable").is_retryable());
        assert!(api(429, "rate_limited").is_retryable());
        assert!(api(500, "internal").is_retryable());
        assert!(!api(409, "lease_lost").is_retryable());
        assert!(!api(400, "invalid_argument").is_retryable());
        assert!(api(409, "lease_lost").is_lease_lost());
    }

    #[test]
    fn display_names_code_status_and_field() {
        let e = ApiError {
            status: 400,
            code: ErrorCode::InvalidArgument,
            message: "priority must be between -32768 and 32767".into(),
            field: Some("jobs[3].priority".into()),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "invalid_argument (400): priority must be between -32768 and 32767 [field: jobs[3].priority]"
        );
    }
}
