//! Logs to stderr through `tracing-subscriber`, as text or JSON lines. The level comes from
//! `RUST_LOG`; without it, long-running commands (server, worker) log at `info` and one-shot
//! commands only at `warn`, so their stdout stays the answer and nothing else.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) fails harmlessly; there is nothing better to do than keep the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
