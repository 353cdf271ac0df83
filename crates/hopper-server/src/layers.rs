//! The middleware around every route, outermost first:
//! 1. `X-Request-Id`: taken from the request when given, else a fresh UUID; copied onto the
//!    answer and into the request's log span, so a client's report can be found in the logs.
//! 2. A tracing span per request.
//! 3. The HTTP request counter, by route pattern, method and status.
//! 4. Panic catcher: a handler panic becomes a JSON 500 (and is logged) instead of a dropped
//!    connection. A panic on user input is still a bug; this only contains it.
//! 5. Cross-origin guard: a state-changing request whose `Origin` is not this server is refused
//!    (403), because without API keys any web page a user opens could otherwise post to a
//!    server on their loopback interface.

use std::any::Any;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the layers above.
pub fn wrap(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, FastUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(from_fn_with_state(state.clone(), count_requests))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn(refuse_cross_origin)),
    )
}

/// Makes a random (v4) UUID per request from the thread's userspace RNG. tower-http's
/// `MakeRequestUuid` calls `Uuid::new_v4`, which asks the kernel for entropy (a `getrandom`
/// syscall) on every request; a request id needs uniqueness, not cryptographic freshness.
#[derive(Debug, Clone, Copy)]
struct FastUuid;

impl MakeRequestId for FastUuid {
    fn make_request_id<B>(&mut self, _req: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        let text = id.hyphenated().encode_lower(&mut buf);
        HeaderValue::from_str(text).ok().map(RequestId::new)
    }
}

async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Only standard methods become label values, so odd clients cannot add series.
    let method = match *req.method() {
        Method::GET
        | Method::POST
        | Method::DELETE
        | Method::PUT
        | Method::PATCH
        | Method::HEAD => req.method().as_str().to_string(),
        _ => "other".to_string(),
    };
    let resp = next.run(req).await;
    st.metrics()
        .http_request(&route, &method, resp.status().as_u16());
    resp
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format!("handler panicked: {what}")).into_response()
}

async fn refuse_cross_origin(req: Request, next: Next) -> Response {
    if !req.method().is_safe()
        && let Some(origin) = req.headers().get(header::ORIGIN)
    {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/').to_string());
        let same = matches!((&origin_host, &host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
        if !same {
            return ApiError::new(
                ErrorCode::PermissionDenied,
                "cross-origin requests that change state are refused",
            )
            .into_response();
        }
    }
    next.run(req).await
}
