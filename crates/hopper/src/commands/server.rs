//! `hopper server`: opens the embedded store, binds, announces the address, serves until
//! SIGTERM or SIGINT.
//!
//! The announcement `hopper listening on http://ADDR` is the one line this command prints on
//! stdout, after the store is open and the socket bound, naming the real port when bound to
//! port 0: tests and `hopper bench` wait for it and parse it.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use hopper_server::ServerConfig;
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::SystemClock;

use crate::cli::ServerArgs;

/// The prefix of the line announcing the address.
pub const LISTENING_PREFIX: &str = "hopper listening on ";

/// Runs the server to completion.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    // The server refuses this too, but only after the announcement would have been printed.
    if !args.bind.ip().to_canonical().is_loopback() && !args.insecure {
        anyhow::bail!(
            "refusing to listen on {} without API keys: anyone who can reach it could run jobs; \
             bind a loopback address or pass --insecure",
            args.bind
        );
    }
    let durability: Durability = args
        .durability
        .as_str()
        .parse()
        .map_err(anyhow::Error::msg)?;
    let store = SqliteStore::open(SqliteConfig {
        data_dir: args.data_dir.clone(),
        durability,
        clock: Arc::new(SystemClock),
    })
    .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(data_dir = %args.data_dir.display(), %durability, "store open");

    {
        // Scoped so the (non-Send) lock is gone before the first await below.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{LISTENING_PREFIX}http://{addr}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }

    let config = ServerConfig {
        insecure: args.insecure,
        ..ServerConfig::default()
    };
    hopper_server::serve(
        config,
        Arc::new(store),
        listener,
        hopper_worker::shutdown_signal(),
    )
    .await
    .context("serving")?;
    Ok(())
}
