//! Trace export over OTLP/HTTP (protobuf) for `hopper server` and `hopper worker`, when
//! `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) names a collector.
//!
//! [`Exporter::start`] builds the whole pipeline: an OTLP span exporter whose HTTP client is
//! the workspace's reqwest on this process's runtime, a tracer provider with a batch span
//! processor (the one background thread of the export), the `tracing-opentelemetry` layer the
//! subscriber gets (see [`crate::logging`]), and the server's [`TraceHook`], through which
//! request spans continue the caller's `traceparent` and leased jobs get their
//! `job.queue_wait` span. Without an endpoint none of this exists: no exporter, no thread, no
//! layer, no hook. [`Exporter::shutdown`] flushes the spans not yet sent.

use std::time::Duration;

use anyhow::Context as _;
use hopper_server::trace_context::{self, PastSpan, SpanValue, TraceHook, TraceParent};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;

use crate::logging::{BoxedLayer, export_filter};

/// The environment variable that overrides the service name.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// Longest wait for one export request; a collector that does not answer costs no more.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest collector answer read; an OTLP answer is a few bytes.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The running export pipeline.
pub struct Exporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    url: reqwest::Url,
}

impl Exporter {
    /// Starts exporting to the collector at `endpoint` (a base URL: spans go to
    /// `ENDPOINT/v1/traces`) as `service` (unless `OTEL_SERVICE_NAME` names another), sending
    /// on `runtime`.
    pub fn start(
        endpoint: &str,
        service: &str,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Exporter> {
        let url = traces_url(endpoint)?;
        let http = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .context("building the OTLP HTTP client")?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(ExportClient { http, runtime })
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .context("building the OTLP exporter")?;
        let service = std::env::var(SERVICE_NAME_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| service.to_string());
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name(service).build())
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("hopper");
        // Only `hopper server` consults it, and a process has one exporter: a second
        // installation cannot happen.
        let _ = trace_context::install_hook(Box::new(ServerHook {
            tracer: tracer.clone(),
        }));
        Ok(Exporter {
            provider,
            tracer,
            url,
        })
    }

    /// Where spans go.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The subscriber layer that turns Hopper's `tracing` spans into exported spans.
    pub fn layer(&self) -> BoxedLayer {
        // Spans carry their own fields only: source locations, threads, targets and busy/idle
        // timings would cost on every span (timings on every poll) and say little here.
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(export_filter())
            .boxed()
    }

    /// Sends the spans not yet exported and stops the export thread. Call it with the runtime
    /// still alive: the last requests run on it.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            eprintln!("warning: flushing traces at shutdown failed: {e}");
        }
    }
}

/// `ENDPOINT/v1/traces`, as the OTLP/HTTP convention builds a signal's URL from a base URL.
fn traces_url(endpoint: &str) -> anyhow::Result<reqwest::Url> {
    let url = format!("{}/v1/traces", endpoint.trim().trim_end_matches('/'));
    let url = reqwest::Url::parse(&url)
        .with_context(|| format!("--otlp-endpoint `{endpoint}` is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        anyhow::bail!("--otlp-endpoint `{endpoint}` must be an http:// or https:// URL");
    }
    Ok(url)
}

/// The exporter's HTTP client: the workspace's reqwest (TLS included), so the export adds no
/// HTTP stack of its own.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        // The batch processor drives exports from a thread of its own, outside the runtime
        // that reqwest needs: the request runs on the runtime, and this future only awaits it.
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let mut resp = http.execute(request).await?;
                let status = resp.status();
                let headers = std::mem::take(resp.headers_mut());
                let mut body = Vec::new();
                while let Some(chunk) = resp.chunk().await? {
                    let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await??;
        let mut answer = Response::new(Bytes::from(body));
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

/// The remote parent a `traceparent` names, as an OpenTelemetry context.
fn remote_parent(tp: &TraceParent) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(tp.trace_id()),
        SpanId::from_bytes(tp.parent_id()),
        TraceFlags::new(tp.flags()),
        true,
        TraceState::default(),
    ))
}

/// The server's [`TraceHook`] over this process's tracer.
struct ServerHook {
    tracer: SdkTracer,
}

impl TraceHook for ServerHook {
    fn set_parent(&self, span: &tracing::Span, parent: &TraceParent) {
        // Fails only for a span the layer does not see, which then has no trace to join.
        let _ = span.set_parent(remote_parent(parent));
    }

    fn record(&self, past: PastSpan<'_>) {
        let attributes = past
            .attributes
            .iter()
            .map(|(key, value)| match value {
                SpanValue::Str(s) => KeyValue::new(*key, s.to_string()),
                SpanValue::I64(n) => KeyValue::new(*key, *n),
            })
            .collect::<Vec<_>>();
        let mut span = self
            .tracer
            .span_builder(past.name)
            .with_kind(SpanKind::Internal)
            .with_start_time(past.start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &remote_parent(past.parent));
        span.end_with_timestamp(past.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_follows_the_otlp_convention() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap().as_str(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://collector:4318/base/").unwrap().as_str(),
            "https://collector:4318/base/v1/traces"
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("not a url").is_err());
    }

    #[test]
    fn remote_parents_carry_the_traceparent() {
        let tp =
            TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        let cx = remote_parent(&tp);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
    }
}
