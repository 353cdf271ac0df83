//! Shares the worker registry between nodes through the store: every round, a node writes the
//! workers it saw since the last one and merges in the workers every node saw within the
//! window. `GET /v1/workers`, explain's `no_workers` and the worker gauges then agree on every
//! node, within a round (2 s by default), at the cost of one small write and one read per round
//! per node, never per request.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Rows of workers not seen for this long are deleted (1 h): far beyond any window.
const FORGET_AFTER_MS: i64 = 3_600_000;
/// Rounds between two prunes.
const PRUNE_EVERY_ROUNDS: u64 = 60;

/// Runs the rounds every `interval` until `stop`; a last round at the end tells the others
/// what this node saw last.
pub fn start(
    state: AppState,
    interval: Duration,
    node: String,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut round = 0u64;
        loop {
            tokio::select! {
                _ = stop.cancelled() => {
                    sync_once(&state, &node, false).await;
                    return;
                }
                _ = tokio::time::sleep(interval) => {}
            }
            round += 1;
            sync_once(&state, &node, round.is_multiple_of(PRUNE_EVERY_ROUNDS)).await;
        }
    })
}

/// One round: write, prune when asked, read and merge. Failures are logged and retried next
/// round: the registry is a monitoring aid, never in the way of jobs.
pub async fn sync_once(state: &AppState, node: &str, prune: bool) {
    let store = state.store();
    let now = store.clock().now();
    let mine = state.workers().take_dirty(node);
    if !mine.is_empty()
        && let Err(e) = store.workers_seen_record(mine).await
    {
        tracing::warn!(error = %e, "recording the workers seen failed");
    }
    if prune
        && let Err(e) = store
            .workers_seen_prune(now.plus_ms(-FORGET_AFTER_MS))
            .await
    {
        tracing::warn!(error = %e, "pruning the workers seen failed");
    }
    let since = now.plus_ms(-state.config().worker_seen_window_ms);
    match store.workers_seen_list(None, since).await {
        Ok(all) => state.workers().merge_remote(all),
        Err(e) => tracing::warn!(error = %e, "reading the workers seen failed"),
    }
}
