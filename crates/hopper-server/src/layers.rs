//! The middleware around every route, outermost first:
//! 1. `X-Request-Id`: taken from the request when given, else a fresh UUID; copied onto the
//!    answer and into the request's log span, so a client's report can be found in the logs.
//! 2. A tracing span per request ([`RequestSpan`]): method, route, status, request id, and the
//!    job a job operation acts on; the server span of the request's trace, continuing the
//!    caller's `traceparent` when a trace exporter is installed.
//! 3. The HTTP request counter, by route pattern, method and status, and the request duration
//!    histogram, by route pattern, method and status class.
//! 4. Panic catcher: a handler panic becomes a JSON 500 (and is logged) instead of a dropped
//!    connection. A panic on user input is still a bug; this only contains it.
//! 5. Cross-origin guard: a state-changing request whose `Origin` is not this server is refused
//!    (403), because without API keys any web page a user opens could otherwise post to a
//!    server on their loopback interface.
//! 6. Security headers on every answer ([`security_headers`]): a content security policy
//!    without inline script or style, frame denial, `nosniff`, no referrer, and HSTS over TLS.

use std::any::Any;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing::field::Empty;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::trace_context::{self, TraceParent};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the layers above.
pub fn wrap(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, FastUuid))
            .layer(request_spans())
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(from_fn_with_state(state.clone(), count_requests))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn(refuse_cross_origin))
            .layer(from_fn_with_state(state.clone(), security_headers)),
    )
}

/// The tracing layer: one [`RequestSpan`] per request.
pub fn request_spans()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, DefaultOnRequest, RequestSpan>
{
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(RequestSpan)
}

/// Makes the span of a request and records its status. Field names follow OpenTelemetry's HTTP
/// conventions, so exported spans need no renaming; `job_id` and `trace_id` are filled in by
/// the handlers of job operations.
///
/// The span is an `info` span with borrowed field values, as it was before traces could be
/// exported: the work only an exported span needs (its name, the caller's trace, the status)
/// happens only when a [`trace_context::TraceHook`] is installed.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> Span {
        let headers = req.headers();
        let id = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let span = tracing::info_span!(
            "request",
            http.request.method = %req.method(),
            http.route = route,
            url.path = %req.uri().path(),
            request_id = %id,
            http.response.status_code = Empty,
            job_id = Empty,
            trace_id = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
        );
        if span.is_disabled() {
            return span;
        }
        let parent = TraceParent::from_headers(headers);
        if let Some(tp) = &parent {
            span.record("trace_id", tracing::field::display(tp.trace_id_hex()));
        }
        if let Some(hook) = trace_context::hook() {
            // Named `METHOD ROUTE` (the method alone when no route matched), as exporters
            // expect of a server span; recorded only when exporting, since in plain logs the
            // name would only repeat the method and route.
            match route {
                Some(route) => span.record("otel.name", format_args!("{} {route}", req.method())),
                None => span.record("otel.name", req.method().as_str()),
            };
            span.record("otel.kind", "server");
            if let Some(tp) = &parent {
                hook.set_parent(&span, tp);
            }
        }
        span
    }
}

impl<B> OnResponse<B> for RequestSpan {
    fn on_response(
        self,
        resp: &axum::http::Response<B>,
        latency: std::time::Duration,
        span: &Span,
    ) {
        // For the exported span only: no log line of the request follows its answer (the
        // debug line below names the status itself), so plain logging skips the work.
        if trace_context::hook().is_some() {
            let status = resp.status();
            span.record("http.response.status_code", status.as_u16());
            // A server span is in error only for a 5xx: a 4xx is the client's mistake.
            if status.is_server_error() {
                span.record("otel.status_code", "error");
            }
        }
        DefaultOnResponse::default().on_response(resp, latency, span);
    }
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
    let method: &'static str = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        _ => "other",
    };
    // Until the handler's answer is ready: a long poll counts its wait, and a streamed body
    // (the event stream) only its start.
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    st.metrics().http_request(
        route,
        method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
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

/// The content security policy of every answer: scripts, styles and connections from this
/// server only, no inline script or style, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // The UI's page sets a policy of its own (stricter); every other answer gets this one.
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        h.entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    if st.config().auth.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
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
