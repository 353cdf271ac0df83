//! `GET /v1/stats`: this node's activity over the last five minutes, second by second, for the
//! web UI's charts.
//!
//! The numbers are this node's own (kept in memory by [`crate::metrics::activity`], fed by the
//! same calls that bump the Prometheus counters), so with several nodes on one database each
//! answers for the requests it served and, on the leader, for the rescues and schedules it ran.
//! A restarted node starts from zero. Prometheus is the place for history and for totals
//! across nodes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hopper_types::{Timestamp, validate_name};
use serde::Serialize;

use crate::auth::{Authorized, CanReadAll};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::extract::QueryPairs;
use crate::metrics::activity::{BUCKET_MS, Point, QueueTotals};
use crate::state::AppState;

/// `GET /v1/stats` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsAnswer {
    /// The node that answers (its `node_id`).
    pub node_id: String,
    /// The node's current time.
    pub now: Timestamp,
    /// Width of each point of `series`, in ms (1000).
    pub bucket_ms: i64,
    /// Exactly 300 seconds, oldest first, the last being the current second; quiet seconds
    /// are zeros and nulls. Of one queue when `queue` is given, else of every queue.
    pub series: Vec<Point>,
    /// Totals per queue over the same 300 seconds (every queue with activity, by name,
    /// whatever `queue` is).
    pub queues: Vec<QueueTotals>,
}

/// This node's recent activity: per second over the last 5 minutes, and per queue.
#[utoipa::path(get, path = "/v1/stats", tag = "operations",
    params(("queue" = Option<String>, Query, description = "Only this queue in `series`")),
    responses((status = 200, body = StatsAnswer), (status = 400, body = ErrorBody)))]
pub async fn stats(
    State(st): State<AppState>,
    Authorized(_, _): CanReadAll,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    query.only(&["queue"])?;
    let queue = query.single("queue")?;
    if let Some(q) = queue {
        validate_name("queue", q)?;
    }
    let now = st.store().clock().now();
    let snapshot = st.metrics().activity().snapshot(now, queue);
    let answer = StatsAnswer {
        node_id: st.config().node_id.clone(),
        now,
        bucket_ms: BUCKET_MS,
        series: snapshot.series,
        queues: snapshot.queues,
    };
    Ok(json_response(StatusCode::OK, &answer))
}
