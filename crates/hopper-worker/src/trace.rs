//! Tracing of jobs in the worker: the `job` span every handler runs in, and (feature `otel`)
//! its place in the job's OpenTelemetry trace.
//!
//! The span is a plain `tracing` span carrying `job_id`, `trace_id` (when the job has a
//! `traceparent`), `kind`, `queue`, `attempt` and, once known, `outcome`, so every log line a
//! handler writes says which job it belongs to. With the `otel` feature and a
//! `tracing-opentelemetry` layer installed, the span is also made a child of the job's
//! `traceparent`: the producer's trace then runs on into the handler, and everything the
//! handler traces nests under it. Without the layer (or without the feature) nothing else
//! happens, and [`JobContext::traceparent`](crate::JobContext::traceparent) is unchanged
//! either way: it is always the job's own.

use hopper_types::Job;
use tracing::Span;
use tracing::field::Empty;

/// The trace id (32 hex digits) of a version-00 `traceparent`, without allocating.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    if traceparent.len() != 55 || traceparent.as_bytes()[2] != b'-' {
        return None;
    }
    traceparent.get(3..35)
}

/// The span one leased job is handled in, from its arrival in this worker to its outcome.
pub(crate) fn job_span(job: &Job) -> Span {
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        trace_id = job.traceparent.as_deref().and_then(trace_id_of),
        kind = %job.kind,
        queue = %job.queue,
        attempt = job.attempt,
        outcome = Empty,
        otel.status_code = Empty,
    );
    #[cfg(feature = "otel")]
    if let Some(tp) = job.traceparent.as_deref() {
        otel::set_parent(&span, tp);
    }
    span
}

#[cfg(feature = "otel")]
pub use otel::{current_traceparent, span_context};

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::Context;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    /// The remote span context a version-00 `traceparent` names; `None` when malformed.
    pub fn span_context(traceparent: &str) -> Option<SpanContext> {
        let mut parts = traceparent.split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00"
            || parts.next().is_some()
            || trace.len() != 32
            || parent.len() != 16
            || flags.len() != 2
        {
            return None;
        }
        let trace_id = TraceId::from_hex(trace).ok()?;
        let span_id = SpanId::from_hex(parent).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        let cx = SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::new(flags),
            true,
            TraceState::default(),
        );
        cx.is_valid().then_some(cx)
    }

    /// Makes `span` a child of the remote span `traceparent` names. A span nobody records, or
    /// a process without the OpenTelemetry layer, is left as it is.
    pub(crate) fn set_parent(span: &Span, traceparent: &str) {
        if span.is_disabled() {
            return;
        }
        if let Some(remote) = span_context(traceparent) {
            let _ = span.set_parent(Context::new().with_remote_span_context(remote));
        }
    }

    /// The W3C `traceparent` of the current span, when it is part of an OpenTelemetry trace:
    /// what to hand on to work this span causes (an enqueued job, a child process), so that
    /// work continues the trace.
    pub fn current_traceparent() -> Option<String> {
        let span = Span::current();
        if span.is_disabled() {
            return None;
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags().to_u8()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn trace_ids_are_sliced() {
        assert_eq!(trace_id_of(TP), Some("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(trace_id_of("00-short"), None);
    }

    #[cfg(feature = "otel")]
    #[test]
    fn traceparents_become_remote_span_contexts() {
        let cx = span_context(TP).unwrap();
        assert!(cx.is_remote() && cx.is_sampled());
        assert_eq!(
            cx.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(cx.span_id().to_string(), "b7ad6b7169203331");
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert!(span_context(bad).is_none(), "{bad:?}");
        }
    }
}
