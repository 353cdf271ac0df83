//! Errors: [`ApiError`], the one error every handler returns and the only place that turns a
//! failure into the JSON error body of the wire contract, and [`ServerError`], why
//! [`crate::serve`] could not run.
//!
//! Internal details (storage errors, panics) are logged here and never sent to clients: they
//! help nobody outside and may leak paths or SQL.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hopper_store::StoreError;
use hopper_types::ValidationError;
use serde::Serialize;

/// Why the server could not start or stopped uncleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding a non-loopback address needs `insecure` while the store holds no API key.
    #[error(
        "refusing to serve on {0}: without API keys only loopback addresses are allowed (create an admin key first, or use --insecure to override)"
    )]
    NotLoopback(SocketAddr),
    /// The store could not be read at start.
    #[error("reading the store failed: {0}")]
    Store(StoreError),
    /// A setting is out of range.
    #[error("invalid server configuration: {0}")]
    Config(String),
    /// The listener failed.
    #[error("server i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be flushed and closed at shutdown.
    #[error("closing the store failed: {0}")]
    StoreClose(StoreError),
}

/// The machine-readable error codes of the wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed, wrong type, out of range.
    InvalidArgument,
    /// 401: no key, or a bad, revoked or expired one, while the server has keys.
    Unauthenticated,
    /// 403: the key's role does not allow the call (or a cross-origin browser request, or a
    /// missing CSRF token).
    PermissionDenied,
    /// 404: unknown job or route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: the lease token is not the job's current one.
    LeaseLost,
    /// 409: the transition is not allowed from the job's state.
    InvalidState,
    /// 409: the idempotency key exists with different content.
    IdempotencyConflict,
    /// 413: body or field over its limit.
    TooLarge,
    /// 429: a rate limit or quota; the answer's `Retry-After` says when to try again.
    RateLimited,
    /// 503: shutting down or storage unreachable; nothing changed.
    Unavailable,
    /// 500: a bug.
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::LeaseLost | ErrorCode::InvalidState | ErrorCode::IdempotencyConflict => {
                StatusCode::CONFLICT
            }
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The inner object of the error body.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// For a human.
    pub message: String,
    /// Path of the offending field (`jobs[3].priority`), when one is at fault.
    pub field: Option<String>,
}

/// `{"error": {...}}`, the body of every 4xx and 5xx answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error answer. Build one with the constructors, or convert from [`StoreError`] /
/// [`ValidationError`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What the client sees.
    pub detail: ErrorDetail,
    /// Seconds to wait before retrying: the `Retry-After` header of a 429.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error with a code and message, no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            detail: ErrorDetail {
                code,
                message: message.into(),
                field: None,
            },
            retry_after_s: None,
        }
    }

    /// The same error naming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.detail.field = Some(field.into());
        self
    }

    /// 400 for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidArgument, message).with_field(field)
    }

    /// 413 for `field`.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::TooLarge, message).with_field(field)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthenticated, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::PermissionDenied, message)
    }

    /// 429, retry after `wait` (rounded up to whole seconds, at least 1).
    pub fn rate_limited(message: impl Into<String>, wait: std::time::Duration) -> ApiError {
        let mut e = ApiError::new(ErrorCode::RateLimited, message);
        e.retry_after_s = Some(wait.as_millis().div_ceil(1000).max(1) as u64);
        e
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, message)
    }

    /// 500 with a generic message; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal server error")
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.detail.code.status()
    }

    /// Maps a store error of the job at position `index` of a batch: an idempotency conflict
    /// names `jobs[i].idempotency_key` so the client knows which job clashed.
    pub fn from_store_in_batch(e: StoreError) -> ApiError {
        match e {
            StoreError::IdempotencyConflict { index, .. } => {
                ApiError::from(e).with_field(format!("jobs[{index}].idempotency_key"))
            }
            other => ApiError::from(other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("no such job"),
            StoreError::LeaseLost => ApiError::new(ErrorCode::LeaseLost, e.to_string()),
            StoreError::InvalidState { .. } => {
                ApiError::new(ErrorCode::InvalidState, e.to_string())
            }
            StoreError::IdempotencyConflict { existing, .. } => ApiError::new(
                ErrorCode::IdempotencyConflict,
                format!(
                    "idempotency key is already used by job {existing} with a different queue, kind or args"
                ),
            )
            .with_field("idempotency_key"),
            StoreError::Conflict(why) => ApiError::new(ErrorCode::InvalidState, why),
            StoreError::AlreadyExists(what) => {
                ApiError::new(ErrorCode::InvalidState, format!("{what} already exists"))
            }
            StoreError::InvalidArgument { field, message } => ApiError::invalid(field, message),
            StoreError::Unavailable(cause) => {
                // Worth a warning: clients will retry, but an operator wants to know.
                tracing::warn!(error = %cause, "storage unavailable");
                ApiError::unavailable("storage is unavailable; nothing was changed, retry later")
            }
            StoreError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        if e.too_large {
            ApiError::too_large(e.field, e.message)
        } else {
            ApiError::invalid(e.field, e.message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after_s;
        let body = ErrorBody { error: self.detail };
        let mut resp = json_response(status, &body);
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Serializes `body` as a JSON answer. Serializing our own types cannot fail in practice; if it
/// ever does, the client still gets a well-formed error body.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = (status, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "serializing an answer failed");
            let mut resp = (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"error":{"code":"internal","message":"internal server error","field":null}}"#,
            )
                .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_types::{JobId, JobState};

    #[test]
    fn store_errors_map_to_the_contract() {
        let cases = [
            (StoreError::NotFound, 404, ErrorCode::NotFound),
            (StoreError::LeaseLost, 409, ErrorCode::LeaseLost),
            (
                StoreError::InvalidState {
                    state: JobState::Running,
                    action: "delete",
                },
                409,
                ErrorCode::InvalidState,
            ),
            (
                StoreError::AlreadyExists("schedule s".into()),
                409,
                ErrorCode::InvalidState,
            ),
            (
                StoreError::Unavailable("x".into()),
                503,
                ErrorCode::Unavailable,
            ),
            (
                StoreError::Internal("secret sql".into()),
                500,
                ErrorCode::Internal,
            ),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!(a.status().as_u16(), status);
            assert_eq!(a.detail.code, code);
            assert!(!a.detail.message.contains("secret"));
        }
    }

    #[test]
    fn batch_conflicts_name_the_job() {
        let e = StoreError::IdempotencyConflict {
            index: 3,
            existing: JobId::new(),
        };
        let a = ApiError::from_store_in_batch(e);
        assert_eq!(a.detail.field.as_deref(), Some("jobs[3].idempotency_key"));
        assert_eq!(a.status(), StatusCode::CONFLICT);
    }
}
