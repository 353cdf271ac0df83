//! Logs to stderr through `tracing-subscriber`, as text or JSON lines, and (with
//! `--otlp-endpoint`) spans to the trace exporter. The level of the logs comes from
//! `RUST_LOG`; without it, long-running commands (server, worker) log at `info` and one-shot
//! commands only at `warn`, so their stdout stays the answer and nothing else.
//!
//! A JSON line is one flat object: `timestamp`, `level`, `target`, `span` (the innermost span's
//! name), `message`, then the fields of every span the event is in (outermost first, inner
//! ones winning) and the event's own fields. Flat, because a log collector then finds
//! `job_id` and `trace_id` at the top of every line a job's span covers, whichever span put
//! them there: the server's request span, the worker's `job` span, or the event itself.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::cli::LogFormat;

/// A layer of the process's subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The spans and events the trace exporter sees: Hopper's own, at `info` and above, whatever
/// `RUST_LOG` says about the logs (quieter logs must not cut traces short). The HTTP client
/// the exporter itself uses is left out, so exporting never traces itself.
pub fn export_filter() -> Targets {
    Targets::new().with_target("hopper", tracing::Level::INFO)
}

/// Installs the global subscriber: the log layer, and the exporter's layer when given (none
/// at all otherwise).
pub fn init(format: LogFormat, default_level: &str, exporter: Option<BoxedLayer>) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs: BoxedLayer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    layers.extend(exporter);
    // A second init (tests) fails harmlessly; there is nothing better to do than keep the first.
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// The JSON line format described in the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct FlatJson;

/// Keys of a line that fields may not take over.
const RESERVED: [&str; 5] = ["timestamp", "level", "target", "span", "message"];

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();

        let mut fields = Map::new();
        let mut span_name = None;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                span_name = Some(span.name());
                let ext = span.extensions();
                // The fields as `JsonFields` stored them: a JSON object's text.
                if let Some(stored) = ext.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(stored)
                {
                    fields.extend(map);
                }
            }
        }
        let mut visitor = JsonVisitor {
            fields: &mut fields,
            message: None,
        };
        event.record(&mut visitor);
        let message = visitor.message.take();

        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(name) = span_name {
            line.insert("span".into(), Value::String(name.to_string()));
        }
        if let Some(message) = message {
            line.insert("message".into(), Value::String(message));
        }
        for (key, value) in fields {
            if !RESERVED.contains(&key.as_str()) {
                line.insert(key, value);
            }
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields as JSON values.
struct JsonVisitor<'a> {
    fields: &'a mut Map<String, Value>,
    message: Option<String>,
}

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// A writer into shared memory, to read what the layer wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_flat_with_span_fields() {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(FlatJson)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let outer =
                tracing::info_span!("request", request_id = "r1", job_id = tracing::field::Empty);
            let _o = outer.enter();
            outer.record("job_id", "j-outer");
            let inner = tracing::info_span!("job", job_id = "j1", trace_id = "t1");
            let _i = inner.enter();
            tracing::info!(
                attempt = 2,
                ok = true,
                level = "sneaky",
                "hello {}",
                "world"
            );
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(line["message"], "hello world");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "job");
        assert_eq!(line["request_id"], "r1");
        // The inner span's field wins over the outer one's.
        assert_eq!(line["job_id"], "j1");
        assert_eq!(line["trace_id"], "t1");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["ok"], true);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    }
}
