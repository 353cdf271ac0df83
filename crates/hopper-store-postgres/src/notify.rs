//! Cross-node wake-ups over LISTEN/NOTIFY.
//!
//! A transaction that makes jobs available in a queue sends one notification per queue on the
//! `hopper_jobs` channel; PostgreSQL delivers it to every listening node when (and only if) the
//! transaction commits. Each node keeps one connection listening and turns notifications into
//! [`QueueSignals::notify`] calls, so a worker long-polling on node B wakes within milliseconds
//! of an enqueue through node A, or of a transactional enqueue by the application itself.
//!
//! Notifications are not durable: one sent while a node's listener is reconnecting is lost.
//! So the listener wakes every waiting worker after each reconnect, and a fallback tick wakes
//! them all every [`crate::PgConfig::fallback_poll`] regardless: a lost notification delays a
//! job by at most that long, never forever.

use std::sync::Arc;
use std::time::Duration;

use hopper_store::QueueSignals;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// The channel every node listens on.
pub(crate) const CHANNEL: &str = "hopper_jobs";

/// The notification payloads that wake `queues` on every node (sent on [`CHANNEL`], delivered
/// at commit). `node` lets the sender's own listener skip what the sender woke locally.
pub(crate) fn payloads(node: &str, queues: &[(String, String)]) -> Vec<String> {
    queues
        .iter()
        .map(|(ns, q)| json!({"node": node, "ns": ns, "queue": q}).to_string())
        .collect()
}

/// A notification's payload; anything else on the channel is ignored.
#[derive(serde::Deserialize)]
struct Payload {
    node: String,
    ns: String,
    queue: String,
}

/// Listens until `stop`, firing `signals` for notifications from other nodes, after every
/// reconnect, and every `fallback` interval.
pub(crate) async fn listen(
    pool: PgPool,
    node: String,
    signals: Arc<QueueSignals>,
    fallback: Duration,
    stop: CancellationToken,
) {
    let mut fallback_tick = tokio::time::interval(fallback);
    fallback_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            listener = connect(&pool).await;
            if listener.is_some() {
                // Whatever was sent while we were not listening is lost: look again.
                signals.notify_all();
            }
        }
        let Some(l) = listener.as_mut() else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = fallback_tick.tick() => { signals.notify_all(); continue; }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = fallback_tick.tick() => signals.notify_all(),
            msg = l.try_recv() => match msg {
                Ok(Some(n)) => {
                    if let Ok(p) = serde_json::from_str::<Payload>(n.payload())
                        && p.node != node
                    {
                        signals.notify(&p.ns, &p.queue);
                    }
                }
                // The connection dropped; the next try_recv reconnects. Wake everyone, as
                // notifications may have been lost in between.
                Ok(None) => signals.notify_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "notification listener failed; reconnecting");
                    listener = None;
                    signals.notify_all();
                }
            },
        }
    }
}

async fn connect(pool: &PgPool) -> Option<PgListener> {
    let mut l = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the notification listener");
            return None;
        }
    };
    if let Err(e) = l.listen(CHANNEL).await {
        tracing::warn!(error = %e, "cannot LISTEN for notifications");
        return None;
    }
    Some(l)
}
