//! The Hopper HTTP server: API v1 over any [`Store`], long-poll leases, Prometheus metrics,
//! the OpenAPI document, and the maintenance services that keep jobs moving.
//!
//! Only this crate knows HTTP and JSON on the server side; job rules live in `hopper-types`
//! (the lifecycle) and persistence behind the `Store` trait.
//!
//! Layout:
//! - [`config`]: [`ServerConfig`] and [`Retention`].
//! - [`error`]: [`ApiError`], the JSON error body, and [`ServerError`].
//! - [`body`]: the JSON body extractor every endpoint uses (limits, depth, field paths).
//! - [`extract`]: path and query extractors with JSON rejections.
//! - [`routes`]: the route table and handlers, one file per concept.
//! - [`layers`]: request id, tracing, request counter, panic catcher, cross-origin guard.
//! - [`trace_context`]: W3C `traceparent`, job fields on spans, the trace exporter's hook.
//! - [`events`]: the live event stream (tailer, history, fan-out).
//! - [`worker_sync`]: shares that registry between nodes through the store.
//! - [`workers`]: the in-memory registry behind `GET /v1/workers`.
//! - [`metrics`]: the Prometheus registry, and the recent activity behind `GET /v1/stats`.
//! - [`timed_store`]: the `Store` wrapper that times every store call.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`maintenance`]: promoter, rescuer, pruner, scheduler.
//! - [`shutdown`]: the shutdown signal.
//! - [`auth`]: keys, roles, namespaces, rate limits, the UI's session; [`quota`]: namespace
//!   quotas; [`snapshot_cache`]: the in-memory copy of small store tables they read.
//! - [`webhooks`]: signed webhook deliveries; [`tls`]: HTTPS.
//! - [`state`]: [`AppState`], shared by the handlers.
//! - [`ui`]: the web UI, embedded from `web/` and served at `/`.
//!
//! Entry points: [`serve`] runs the server on a listener until a shutdown future completes;
//! [`app`] builds the router alone, for tests without a socket.

pub mod auth;
pub mod body;
pub mod config;
pub mod definition_runs;
pub mod error;
pub mod events;
pub mod explain;
pub mod extract;
pub mod layers;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod quota;
pub mod routes;
pub mod shutdown;
pub mod snapshot_cache;
pub mod state;
pub mod timed_store;
pub mod tls;
pub mod trace_context;
pub mod ui;
pub mod webhooks;
pub mod worker_sync;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use hopper_store::Store;

pub use config::{AuthConfig, MaintenanceConfig, Retention, ServerConfig};
pub use error::{ApiError, ServerError};
pub use shutdown::Shutdown;
pub use state::AppState;

/// The router of the whole API over `state`: routes, fallbacks and middleware. No maintenance
/// services run; [`serve`] starts those.
pub fn app(state: AppState) -> axum::Router {
    layers::wrap(routes::routes(), &state).with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then stops in order: `/readyz`
/// turns 503 and waiting long polls answer empty at once; after `shutdown_drain_ms` no new
/// connection is accepted and requests in flight finish (within `shutdown_timeout_ms`); the
/// maintenance services stop; the store is flushed and closed.
///
/// Refuses a non-loopback listener while the store holds no API key, unless
/// `config.insecure`. Serves HTTPS when `config.tls` is set.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let mut config = config;
    let addr = listener.local_addr()?;
    if !addr.ip().to_canonical().is_loopback() && !config.insecure {
        // Anyone who can reach a public address could enqueue work, unless keys are needed.
        let has_keys = !store
            .api_key_list()
            .await
            .map_err(ServerError::Store)?
            .is_empty();
        if !has_keys {
            return Err(ServerError::NotLoopback(addr));
        }
    }
    if config.tls.is_some() {
        config.auth.tls = true;
    }
    config
        .maintenance
        .promoter
        .validate()
        .and_then(|_| config.maintenance.rescuer.validate())
        .and_then(|_| config.maintenance.pruner.validate())
        .and_then(|_| config.maintenance.scheduler.validate())
        .and_then(|_| config.maintenance.leadership.validate())
        .map_err(ServerError::Config)?;

    let signal = Shutdown::new();
    let state = AppState::with_shutdown(config.clone(), store.clone(), signal.clone());
    // From here on every store call goes through the state's timed store, so the maintenance
    // services and everything else started below are timed like the handlers.
    let store = state.store().clone();
    let mut services = maintenance::Services::start(
        store.clone(),
        &config,
        config.node_id.clone(),
        state.metrics().clone(),
        signal.child_token(),
    );
    // Read before the first request is accepted, so every event after it reaches the
    // subscribers as news.
    let started_after = match store.events_last_seq().await {
        Ok(seq) => Some(seq),
        Err(e) => {
            tracing::warn!(error = %e, "reading the event log failed; the event stream retries");
            None
        }
    };
    let tailer = events::EventTailer::start(
        store.clone(),
        state.events().clone(),
        config.events.clone(),
        started_after,
        signal.child_token(),
    );
    let worker_sync = worker_sync::start(
        state.clone(),
        Duration::from_millis(config.worker_sync_ms.max(1)),
        config.node_id.clone(),
        signal.child_token(),
    );
    let sender = (!config.webhooks.disabled).then(|| {
        let sender =
            webhooks::sender::Sender::new(store.clone(), config.webhooks.clone(), &config.node_id);
        tokio::spawn(sender.run(signal.child_token()))
    });
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, scheme, "hopper server listening");

    let drain = Duration::from_millis(config.shutdown_drain_ms);
    let begin = {
        let signal = signal.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: not ready, long polls end, draining requests");
            signal.begin();
            if !drain.is_zero() {
                tokio::time::sleep(drain).await;
            }
        }
    };
    let router = app(state);
    let graceful: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
        match config.tls.clone() {
            None => {
                // Answers are small and written once: Nagle's algorithm would only hold a
                // segment back until the client's delayed ACK, which is pure latency on a
                // request/response protocol.
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "setting TCP_NODELAY failed");
                    }
                });
                Box::pin(
                    axum::serve(listener, router)
                        .with_graceful_shutdown(begin)
                        .into_future(),
                )
            }
            Some(tls) => Box::pin(
                axum::serve(tls::TlsListener::new(listener, tls)?, router)
                    .with_graceful_shutdown(begin)
                    .into_future(),
            ),
        };
    let cutoff = {
        let signal = signal.clone();
        let limit = drain + Duration::from_millis(config.shutdown_timeout_ms);
        async move {
            signal.wait().await;
            tokio::time::sleep(limit).await;
        }
    };
    let served = tokio::select! {
        served = graceful => served,
        _ = cutoff => {
            // Dropping the server stops accepting; the connections still open end with the
            // process (or the runtime).
            tracing::warn!("requests still in flight after the shutdown timeout; stopping anyway");
            Ok(())
        }
    };
    // Also when serving failed on its own: everything below must still run.
    signal.begin();
    services.stop().await;
    let _ = tailer.await;
    let _ = worker_sync.await;
    if let Some(sender) = sender {
        let _ = sender.await;
    }
    let closed = store.close().await;
    served?;
    closed.map_err(ServerError::StoreClose)?;
    tracing::info!("hopper server stopped");
    Ok(())
}
