//! `hopper server`: opens the store (the embedded one, or PostgreSQL with `--database-url`),
//! binds, announces the address, serves until SIGTERM or SIGINT.
//!
//! The announcement `hopper listening on http://ADDR` is the one line this command prints on
//! stdout, after the store is open and the socket bound, naming the real port when bound to
//! port 0: tests and `hopper bench` wait for it and parse it.
//!
//! Keys before serving: `HOPPER_ADMIN_KEY` installs that admin key (automated setups; a key
//! of that id already stored is left alone), and `--create-admin-key` creates a random admin
//! key when the store has none and prints it once on stderr. Either turns authentication on.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hopper_server::ServerConfig;
use hopper_server::auth::issue::{KeySpec, install, issue};
use hopper_store::Store;
use hopper_store_postgres::PgConfig;
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::SystemClock;
use hopper_types::api_key::{ALL_NAMESPACES, Role};

use crate::cli::ServerArgs;
use crate::stores::{connect_postgres, redact};

/// The prefix of the line announcing the address.
pub const LISTENING_PREFIX: &str = "hopper listening on ";

/// Runs the server to completion.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(hopper_server::tls::load(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let store = open_store(&args).await?;
    bootstrap_keys(&args, store.as_ref()).await?;
    // The server refuses this too, but only after the announcement would have been printed.
    if !args.bind.ip().to_canonical().is_loopback()
        && !args.insecure
        && store.api_key_list().await?.is_empty()
    {
        anyhow::bail!(
            "refusing to listen on {} without API keys: anyone who can reach it could run jobs; \
             create an admin key (--create-admin-key or HOPPER_ADMIN_KEY), bind a loopback \
             address, or pass --insecure",
            args.bind
        );
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;

    {
        // Scoped so the (non-Send) lock is gone before the first await below.
        let mut out = std::io::stdout().lock();
        let scheme = if tls.is_some() { "https" } else { "http" };
        writeln!(out, "{LISTENING_PREFIX}{scheme}://{addr}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }

    let mut config = ServerConfig {
        insecure: args.insecure,
        tls,
        ..ServerConfig::default()
    };
    config.webhooks.allow_private_targets = args.webhooks_allow_private;
    hopper_server::serve(config, store, listener, hopper_worker::shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

/// PostgreSQL when a database URL is given, else the embedded store in the data directory.
async fn open_store(args: &ServerArgs) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(url) = &args.database_url {
        let config = PgConfig {
            pool_size: args.pg_pool_size,
            statement_timeout: Duration::from_millis(args.pg_statement_timeout_ms),
            ..PgConfig::new(url.clone())
        };
        let store = connect_postgres(config).await?;
        tracing::info!(
            database = %redact(url),
            pool_size = args.pg_pool_size,
            statement_timeout_ms = args.pg_statement_timeout_ms,
            "store open"
        );
        return Ok(Arc::new(store));
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
    tracing::info!(data_dir = %args.data_dir.display(), %durability, "store open");
    Ok(Arc::new(store))
}

/// Installs `HOPPER_ADMIN_KEY` and creates the first admin key when asked to.
async fn bootstrap_keys(args: &ServerArgs, store: &dyn Store) -> anyhow::Result<()> {
    let admin = |name: &str| KeySpec {
        name: name.to_string(),
        role: Role::Admin,
        namespaces: vec![ALL_NAMESPACES.to_string()],
        expires_at: None,
        rate_limit_per_s: None,
    };
    if let Some(token) = &args.admin_key {
        let stored = install(store, token, admin("bootstrap"), "bootstrap")
            .await
            .context("installing HOPPER_ADMIN_KEY")?;
        if stored {
            tracing::info!("installed the admin key of HOPPER_ADMIN_KEY");
        }
    }
    if args.create_admin_key && store.api_key_list().await?.is_empty() {
        let (key, token) = issue(store, admin("first admin"), "bootstrap").await?;
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "created admin key {} (shown only now; every request now needs a key):\n{token}",
            key.id
        )
        .context("writing to stderr")?;
    }
    Ok(())
}
