//! W3C trace context on the server: the `traceparent` header (parsed by the rules of the W3C
//! Trace Context recommendation), the `job_id`/`trace_id` fields job operations put on spans and
//! log lines, and the hook through which a trace exporter ties the server's spans to remote
//! parents.
//!
//! This crate speaks only `tracing`. Continuing a trace that began in another process, or
//! recording a span whose start lies in the past (a job's wait in its queue), needs the
//! exporter's own API, so whoever installs an exporter (the `hopper` binary, with
//! `--otlp-endpoint`) also installs a [`TraceHook`] with [`install_hook`]. Without one the
//! server's spans are plain `tracing` spans that only the logs see, and the cost of this
//! module on a request is one check of an empty cell.

use std::convert::Infallible;
use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use hopper_types::{Job, JobId, Timestamp};
use tracing::Span;
use tracing::field::display;

/// The W3C trace context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A parsed W3C `traceparent`: the trace, the parent span in it, and the trace flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value. Version `00` must be exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>` in lowercase; a later version is read for its first
    /// four fields (as the recommendation asks, so a newer producer still links up); `ff`, an
    /// all-zero trace or parent id, and anything else malformed give `None`.
    pub fn parse(text: &str) -> Option<TraceParent> {
        let b = text.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(&b[0..2])?;
        match version {
            0xff => return None,
            0 if b.len() != 55 => return None,
            // A later version may append fields, always after a dash.
            _ if b.len() > 55 && b[55] != b'-' => return None,
            _ => {}
        }
        let mut trace_id = [0u8; 16];
        for (i, out) in trace_id.iter_mut().enumerate() {
            *out = hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, out) in parent_id.iter_mut().enumerate() {
            *out = hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&b[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The `traceparent` header of a request: `None` when it is absent, malformed, or given
    /// more than once (the recommendation says to ignore an invalid header and start a new
    /// trace, never to refuse the request).
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
        let mut values = headers.get_all(TRACEPARENT).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        TraceParent::parse(value.to_str().ok()?)
    }

    /// The trace's 16-byte id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The 8-byte id of the parent span.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace flags byte.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller sampled the trace (flag bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id as 32 lowercase hex digits, written when displayed (no allocation).
    pub fn trace_id_hex(&self) -> impl fmt::Display + '_ {
        Hex(&self.trace_id)
    }
}

/// Bytes written as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Written as version `00`, whatever version was parsed: this server speaks version 00.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            Hex(&self.trace_id),
            Hex(&self.parent_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// Two lowercase hex digits as a byte (uppercase is invalid in a `traceparent`).
fn hex_byte(two: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(two[0])? << 4 | digit(two[1])?)
}

/// The trace id (32 hex digits) of a job's stored `traceparent`, without allocating: what
/// log lines and spans carry as `trace_id`. `None` for a value that is not version-00 shaped
/// (a job's traceparent was validated at enqueue, so that does not happen).
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    if traceparent.len() != 55 || traceparent.as_bytes()[2] != b'-' {
        return None;
    }
    traceparent.get(3..35)
}

/// The trace id of a job's `traceparent`, if it has one: the `trace_id` field of job log lines.
pub fn job_trace_id(job: &Job) -> Option<&str> {
    job.traceparent.as_deref().and_then(trace_id_of)
}

/// Fills the current span's `job_id`: the request span of an operation on one job.
pub fn record_job_id(id: JobId) {
    let span = Span::current();
    if !span.is_disabled() {
        span.record("job_id", display(id));
    }
}

/// Fills the current span's `job_id` and, when the job has a traceparent, `trace_id`, once
/// an operation has its job. For the exported span only: the job's own log line (`job
/// enqueued`, `job outcome recorded`) names both, and nothing else is logged in the request
/// after it, so plain logging skips the work.
pub fn record_job(job: &Job) {
    if hook().is_none() {
        return;
    }
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    span.record("job_id", display(job.id));
    if let Some(trace_id) = job_trace_id(job) {
        span.record("trace_id", trace_id);
    }
}

/// Gives a job without a traceparent of its own the one of the request that enqueues it (the
/// body's field wins over the header).
pub fn adopt(traceparent: &mut Option<String>, header: Option<&TraceParent>) {
    if traceparent.is_none()
        && let Some(tp) = header
    {
        *traceparent = Some(tp.to_string());
    }
}

/// Exports the `job.queue_wait` span of a job just leased: from when it became available (at
/// enqueue, or when its delay or backoff ended) to its lease, as a child of the job's
/// traceparent, so the job's trace shows how long it waited for a worker. Nothing happens
/// unless a trace exporter is installed and the job has a traceparent.
pub fn record_queue_wait(job: &Job) {
    let Some(hook) = hook() else { return };
    let Some(parent) = job.traceparent.as_deref().and_then(TraceParent::parse) else {
        return;
    };
    let Some(leased_at) = job.started_at else {
        return;
    };
    // Nodes sharing a database stamp times with their own clocks, so `available_at` can lie a
    // little after the lease; the span must not run backwards.
    let start = job.available_at.min(leased_at);
    let id = job.id.to_string();
    let worker = job.worker_id.as_deref().unwrap_or("");
    hook.record(PastSpan {
        name: "job.queue_wait",
        parent: &parent,
        start: system_time(start),
        end: system_time(leased_at),
        attributes: &[
            ("job_id", SpanValue::Str(&id)),
            ("queue", SpanValue::Str(&job.queue)),
            ("kind", SpanValue::Str(&job.kind)),
            ("attempt", SpanValue::I64(i64::from(job.attempt))),
            ("worker_id", SpanValue::Str(worker)),
            (
                "queue_wait_ms",
                SpanValue::I64(leased_at.millis_since(start)),
            ),
        ],
    });
}

/// The request's `traceparent` header, for handlers; never rejects (a bad header is ignored,
/// see [`TraceParent::from_headers`]).
#[derive(Debug, Clone, Copy)]
pub struct TraceParentHeader(pub Option<TraceParent>);

impl<S: Send + Sync> FromRequestParts<S> for TraceParentHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(TraceParentHeader(TraceParent::from_headers(&parts.headers)))
    }
}

/// A value of a [`PastSpan`] attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpanValue<'a> {
    /// Text.
    Str(&'a str),
    /// An integer.
    I64(i64),
}

/// A span that already ended, recorded after the fact: its start lies before anything this
/// process could have opened a `tracing` span for (the job's wait in its queue began at
/// enqueue, in another request, maybe on another node).
#[derive(Debug, Clone, Copy)]
pub struct PastSpan<'a> {
    /// The span's name.
    pub name: &'static str,
    /// Its parent, in another process or request.
    pub parent: &'a TraceParent,
    /// When it began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes.
    pub attributes: &'a [(&'static str, SpanValue<'a>)],
}

/// What a trace exporter does for the server's spans; see the module documentation.
pub trait TraceHook: Send + Sync + 'static {
    /// Makes `span` (just created, not yet entered) a child of the remote span `parent`.
    fn set_parent(&self, span: &tracing::Span, parent: &TraceParent);

    /// Records a span that has already ended.
    fn record(&self, span: PastSpan<'_>);
}

/// Set once per process by whoever installs the exporter, like `tracing`'s global subscriber
/// it goes with.
static HOOK: OnceLock<Box<dyn TraceHook>> = OnceLock::new();

/// [`install_hook`] was called twice.
#[derive(Debug, thiserror::Error)]
#[error("a trace hook is already installed")]
pub struct HookAlreadyInstalled;

/// Installs the process's trace hook (once).
pub fn install_hook(hook: Box<dyn TraceHook>) -> Result<(), HookAlreadyInstalled> {
    HOOK.set(hook).map_err(|_| HookAlreadyInstalled)
}

/// The installed hook; `None` when no trace is exported.
pub fn hook() -> Option<&'static dyn TraceHook> {
    HOOK.get().map(|h| &**h)
}

/// A store timestamp as wall-clock time, for exported spans. A store timestamp is milliseconds
/// since the Unix epoch; one before it (never written by a store) clamps to the epoch.
pub fn system_time(t: Timestamp) -> SystemTime {
    let ms = u64::try_from(t.as_millis()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn version_00_round_trips() {
        let tp = TraceParent::parse(TP).unwrap();
        assert_eq!(tp.to_string(), TP);
        assert_eq!(tp.trace_id()[0], 0x0a);
        assert_eq!(
            tp.trace_id_hex().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(tp.parent_id()[7], 0x31);
        assert!(tp.sampled());
        let unsampled =
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
        assert!(!unsampled.sampled());
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01é",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn later_versions_are_read_and_written_as_00() {
        let tp =
            TraceParent::parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-not")
                .unwrap();
        assert_eq!(tp.to_string(), TP);
    }

    #[test]
    fn a_header_given_twice_is_ignored() {
        let mut h = HeaderMap::new();
        assert_eq!(TraceParent::from_headers(&h), None);
        h.append(TRACEPARENT, HeaderValue::from_static(TP));
        assert_eq!(
            TraceParent::from_headers(&h).map(|t| t.to_string()),
            Some(TP.into())
        );
        h.append(TRACEPARENT, HeaderValue::from_static(TP));
        assert_eq!(TraceParent::from_headers(&h), None);
    }

    #[test]
    fn trace_ids_are_sliced_from_stored_values() {
        assert_eq!(trace_id_of(TP), Some("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(trace_id_of("nope"), None);
    }

    #[test]
    fn store_times_become_system_times() {
        let t = system_time(Timestamp(1_500));
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            1_500
        );
        assert_eq!(system_time(Timestamp(-5)), SystemTime::UNIX_EPOCH);
    }
}
