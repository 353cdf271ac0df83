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
//! - [`workers`]: the in-memory registry behind `GET /v1/workers`.
//! - [`metrics`]: the Prometheus registry.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`maintenance`]: promoter, rescuer, pruner, scheduler.
//! - [`shutdown`]: the shutdown signal.
//! - [`state`]: [`AppState`], shared by the handlers.
//!
//! Entry points: [`serve`] runs the server on a listener until a shutdown future completes;
//! [`app`] builds the router alone, for tests without a socket.

pub mod body;
pub mod config;
pub mod error;
pub mod explain;
pub mod extract;
pub mod layers;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod shutdown;
pub mod state;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use hopper_store::Store;

pub use config::{MaintenanceConfig, Retention, ServerConfig};
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
/// connection is accepted and requests in flight finish; the maintenance services stop; the
/// store is flushed and closed.
///
/// Refuses a non-loopback listener unless `config.insecure` (there are no API keys yet).
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    if !addr.ip().to_canonical().is_loopback() && !config.insecure {
        return Err(ServerError::NotLoopback(addr));
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
    let mut services = maintenance::Services::start(
        store.clone(),
        &config,
        config.node_id.clone(),
        state.metrics().clone(),
        signal.child_token(),
    );
    tracing::info!(%addr, "hopper server listening");

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
    // Answers are small and written once: Nagle's algorithm would only hold a segment back
    // until the client's delayed ACK, which is pure latency on a request/response protocol.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
    });
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(begin)
        .await;
    // Also when serving failed on its own: everything below must still run.
    signal.begin();
    services.stop().await;
    let closed = store.close().await;
    served?;
    closed.map_err(ServerError::StoreClose)?;
    tracing::info!("hopper server stopped");
    Ok(())
}
