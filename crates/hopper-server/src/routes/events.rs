//! The live event stream: `GET /v1/events` (Server-Sent Events) and `GET /v1/events/ws` (the
//! same events over a WebSocket).
//!
//! Both take the filters `queue`, `kind`, `job_id` and `type` (each repeatable or
//! comma-separated; any listed value matches) and a resume point: the `Last-Event-ID` header
//! (what browsers send on reconnect) or `after=<seq>`. A subscriber only ever waits on its own
//! connection: see [`crate::events`] for why a slow one cannot hold anybody else up.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use hopper_types::{JobId, JobState};
use tokio::time::{Interval, MissedTickBehavior};

use crate::auth::principal::KeyWatch;
use crate::auth::{Authorized, CanRead};
use crate::error::{ApiError, ErrorBody};
use crate::events::{Delivery, EventFilter, Subscription};
use crate::extract::QueryPairs;
use crate::shutdown::Shutdown;
use crate::state::AppState;

/// How soon a disconnected EventSource reconnects (its `retry:` field), in milliseconds.
const RECONNECT_MS: u64 = 1_000;

/// Server-Sent Events of job transitions.
///
/// Each event is `id: <seq>` and `data: <json>` (fields `seq`, `type` — the state reached —,
/// `job_id`, `namespace`, `queue`, `kind`, `from`, `to`, `at`, `actor`, `reason`). An
/// `event: gap` message with `{"after": <seq>}` says events after that seq may be missing (the
/// client fell behind the history, or resumed from a point older than it): refetch what is
/// shown. Comment lines keep an idle connection alive.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("queue" = Option<Vec<String>>, Query, description = "Only these queues (repeatable, or comma-separated)"),
        ("kind" = Option<Vec<String>>, Query, description = "Only these kinds"),
        ("job_id" = Option<Vec<String>>, Query, description = "Only these jobs"),
        ("type" = Option<Vec<JobState>>, Query, description = "Only events reaching these states"),
        ("after" = Option<i64>, Query, description = "Resume after this seq (the Last-Event-ID header wins)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this seq")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "The stream"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn events_sse(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let (filter, after) = subscription_params(&query, &headers, &p.namespace)?;
    refuse_when_stopping(st.shutdown())?;
    let sse = SseStream {
        watch: KeyWatch::new(st.clone(), &p),
        subscription: Subscription::new(st.events().clone(), filter, after),
        keepalive: keepalive(st.config().events.keepalive_ms),
        shutdown: st.shutdown().clone(),
        started: false,
    };
    let body = futures::stream::unfold(sse, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), s))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies that buffer answers would hold events back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The event stream over a WebSocket: one text message per event (the JSON of `/v1/events`),
/// and `{"type": "gap", "after": <seq>}` where events may be missing. Same query as
/// `/v1/events` (`after` is the resume point: browsers cannot set headers on a WebSocket).
#[utoipa::path(get, path = "/v1/events/ws", tag = "events",
    params(
        ("queue" = Option<Vec<String>>, Query, description = "Only these queues"),
        ("kind" = Option<Vec<String>>, Query, description = "Only these kinds"),
        ("job_id" = Option<Vec<String>>, Query, description = "Only these jobs"),
        ("type" = Option<Vec<JobState>>, Query, description = "Only events reaching these states"),
        ("after" = Option<i64>, Query, description = "Resume after this seq")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn events_ws(
    State(st): State<AppState>,
    Authorized(p, _): CanRead,
    headers: HeaderMap,
    query: QueryPairs,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let (filter, after) = subscription_params(&query, &headers, &p.namespace)?;
    let upgrade = upgrade.map_err(|e| {
        ApiError::invalid(
            "upgrade",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
    })?;
    refuse_when_stopping(st.shutdown())?;
    let subscription = Subscription::new(st.events().clone(), filter, after);
    let keepalive = keepalive(st.config().events.keepalive_ms);
    let shutdown = st.shutdown().clone();
    let watch = KeyWatch::new(st.clone(), &p);
    Ok(
        upgrade
            .on_upgrade(move |socket| serve_ws(socket, subscription, keepalive, shutdown, watch)),
    )
}

fn refuse_when_stopping(shutdown: &Shutdown) -> Result<(), ApiError> {
    if shutdown.is_shutting_down() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    Ok(())
}

fn keepalive(ms: u64) -> Interval {
    let period = Duration::from_millis(ms.max(1));
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

struct SseStream {
    watch: KeyWatch,
    subscription: Subscription,
    keepalive: Interval,
    shutdown: Shutdown,
    started: bool,
}

impl SseStream {
    // The next bytes to write; none ends the stream (shutdown).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !std::mem::replace(&mut self.started, true) {
            // Sent at once, so the client knows it is subscribed before any event happens.
            return Some(Bytes::from(format!("retry: {RECONNECT_MS}\n\n")));
        }
        // Between writes (keep-alives make them regular): a revoked key ends the stream.
        if !self.watch.still_valid().await {
            return None;
        }
        tokio::select! {
            biased;
            _ = self.shutdown.wait() => None,
            delivery = self.subscription.next() => match delivery? {
                Delivery::Frames(frames) => {
                    // One write for the whole batch, however many events it holds.
                    let mut out = Vec::with_capacity(frames.iter().map(|f| f.sse.len()).sum());
                    for f in &frames {
                        out.extend_from_slice(&f.sse);
                    }
                    Some(Bytes::from(out))
                }
                Delivery::Gap { after } => Some(Bytes::from(format!(
                    "event: gap\ndata: {{\"after\":{after}}}\n\n"
                ))),
            },
            _ = self.keepalive.tick() => Some(Bytes::from_static(b": keep-alive\n\n")),
        }
    }
}

async fn serve_ws(
    mut socket: WebSocket,
    mut subscription: Subscription,
    mut keepalive: Interval,
    shutdown: Shutdown,
    mut watch: KeyWatch,
) {
    loop {
        if !watch.still_valid().await {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        let sent = tokio::select! {
            biased;
            _ = shutdown.wait() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the protocol layer; text from the client means nothing.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => Ok(()),
            },
            delivery = subscription.next() => match delivery {
                None => return,
                Some(Delivery::Frames(frames)) => {
                    let mut r = Ok(());
                    for f in &frames {
                        r = socket.feed(Message::Text(f.json.clone())).await;
                        if r.is_err() {
                            break;
                        }
                    }
                    match r {
                        Ok(()) => socket.flush().await,
                        e => e,
                    }
                }
                Some(Delivery::Gap { after }) => {
                    let gap = format!(r#"{{"type":"gap","after":{after}}}"#);
                    socket.send(Message::Text(Utf8Bytes::from(gap))).await
                }
            },
            _ = keepalive.tick() => socket.send(Message::Ping(Bytes::new())).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

// The filter and resume point of a subscription.
fn subscription_params(
    query: &QueryPairs,
    headers: &HeaderMap,
    namespace: &str,
) -> Result<(EventFilter, Option<i64>), ApiError> {
    query.only(&["queue", "kind", "job_id", "type", "after"])?;
    let list = |key: &str| -> Vec<&str> {
        query
            .all(key)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    };
    let mut filter = EventFilter {
        namespace: namespace.to_string(),
        ..EventFilter::default()
    };
    for q in list("queue") {
        hopper_types::validate_name("queue", q)?;
        filter.queues.push(q.to_string());
    }
    for k in list("kind") {
        hopper_types::validate_name("kind", k)?;
        filter.kinds.push(k.to_string());
    }
    for id in list("job_id") {
        let id: JobId = id
            .parse()
            .map_err(|_| ApiError::invalid("job_id", format!("`{id}` is not a job id")))?;
        filter.job_ids.push(id);
    }
    for t in list("type") {
        let t: JobState = t
            .parse()
            .map_err(|_| ApiError::invalid("type", format!("`{t}` is not a job state")))?;
        filter.types.push(t);
    }
    let seq = |field: &str, v: &str| -> Result<i64, ApiError> {
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    field,
                    format!("{field} must be an event seq (a non-negative integer)"),
                )
            })
    };
    let header = match headers.get("last-event-id") {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                ApiError::invalid("Last-Event-ID", "Last-Event-ID must be an event seq")
            })?;
            // An empty Last-Event-ID is what EventSource sends before it has seen an id.
            (!v.trim().is_empty())
                .then(|| seq("Last-Event-ID", v))
                .transpose()?
        }
    };
    let after = match (header, query.single("after")?) {
        (Some(h), _) => Some(h),
        (None, Some(a)) => Some(seq("after", a)?),
        (None, None) => None,
    };
    Ok((filter, after))
}
