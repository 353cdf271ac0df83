//! The webhook dispatcher: turns the event log into delivery jobs, on the maintenance leader.
//! See [`crate::webhooks`].

use std::sync::Arc;

use hopper_store::{JobInsertParams, Store, StoreError};
use hopper_types::namespace::SYSTEM_NAMESPACE;
use hopper_types::webhook::Webhook;
use hopper_types::{EnqueueRequest, Limits, NewJob, StreamEvent};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{KIND, QUEUE, WebhookConfig, tag};
use crate::maintenance::{ERROR_BACKOFF, sleep_or_stop};

/// Recorded as the actor of the deliveries it enqueues.
const ACTOR: &str = "system:webhooks";
/// Events read per webhook per pass.
const BATCH: usize = 500;
/// On a store whose events may become visible out of order, how old the event after a gap
/// must be before the gap is taken as final (its transaction rolled back) rather than still
/// committing.
const GAP_WAIT_MS: i64 = 2_000;

/// The dispatcher service.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    config: WebhookConfig,
    limits: Limits,
}

impl Dispatcher {
    /// A dispatcher over `store`.
    pub fn new(store: Arc<dyn Store>, config: WebhookConfig, limits: Limits) -> Dispatcher {
        Dispatcher {
            store,
            config,
            limits,
        }
    }

    /// One pass over every webhook; answers how many deliveries it enqueued.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let mut enqueued = 0;
        for hook in self.store.webhook_list(None).await? {
            enqueued += self.dispatch(&hook).await?;
        }
        Ok(enqueued)
    }

    /// Runs passes until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let pause = match self.run_once().await {
                Ok(_) => self.config.dispatch_interval,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatch failed; retrying");
                    ERROR_BACKOFF
                }
            };
            if !sleep_or_stop(&stop, pause).await {
                return;
            }
        }
    }

    async fn dispatch(&self, hook: &Webhook) -> Result<u64, StoreError> {
        let rows = self.store.events_after(hook.cursor, BATCH).await?;
        let in_order = self.store.events_visible_in_seq_order();
        let now = self.store.clock().now();
        let mut position = hook.cursor;
        let mut jobs = Vec::new();
        for row in rows {
            if !in_order && row.seq != position + 1 {
                let settled = row
                    .event
                    .as_ref()
                    .is_none_or(|e| now.as_millis() - e.at.as_millis() >= GAP_WAIT_MS);
                if !settled {
                    break;
                }
            }
            position = row.seq;
            if let Some(event) = row.event
                && event.namespace == hook.namespace
                && hook.events.contains(&event.to)
            {
                jobs.push(self.delivery(hook, &event)?);
            }
        }
        if position == hook.cursor {
            return Ok(0);
        }
        let count = jobs.len() as u64;
        if !jobs.is_empty() {
            self.store
                .job_insert_many(JobInsertParams {
                    jobs,
                    actor: ACTOR.to_string(),
                })
                .await?;
        }
        // A stale cursor means another leader moved it meanwhile; the deliveries above were
        // deduplicated by their keys either way.
        self.store
            .webhook_advance(&hook.id, hook.cursor, position)
            .await?;
        Ok(count)
    }

    fn delivery(&self, hook: &Webhook, event: &StreamEvent) -> Result<NewJob, StoreError> {
        let delivery_id = format!("{}:{}", hook.id, event.seq);
        let body = json!({
            "delivery_id": delivery_id,
            "webhook_id": hook.id,
            "event": format!("job.{}", event.to.as_str()),
            "namespace": event.namespace,
            "seq": event.seq,
            "at": event.at,
            "job": {
                "id": event.job_id,
                "queue": event.queue,
                "kind": event.kind,
                "from": event.from,
                "to": event.to,
                "actor": event.actor,
                "reason": event.reason,
            },
        });
        let request = json!({
            "kind": KIND,
            "queue": QUEUE,
            "args": {"webhook_id": hook.id, "delivery_id": delivery_id, "body": body},
            "max_attempts": self.config.max_attempts,
            "backoff": {
                "kind": "exponential",
                "base_ms": self.config.retry_base_ms,
                "cap_ms": self.config.retry_cap_ms,
                "jitter": 0.1,
            },
            "timeout_ms": self.config.timeout.as_millis() as i64 + 5_000,
            "idempotency_key": format!("webhook:{}:{}", hook.id, event.seq),
            "tags": [tag(&hook.id)],
        });
        let request: EnqueueRequest = serde_json::from_value(request)
            .map_err(|e| StoreError::Internal(format!("building a delivery: {e}")))?;
        request
            .validate(SYSTEM_NAMESPACE, &self.limits)
            .map_err(|e| StoreError::Internal(format!("building a delivery: {}", e.message)))
    }
}
