//! The webhook sender: leases delivery jobs on every node, signs and posts each, and
//! acknowledges the outcome. See [`crate::webhooks`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hopper_store::{AckOutcome, JobAck, JobLeaseParams, JobRef, Store, StoreError};
use hopper_types::Job;
use hopper_types::lifecycle::Failure;
use hopper_types::namespace::SYSTEM_NAMESPACE;
use hopper_types::webhook::{
    DELIVERY_ID_HEADER, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, Webhook, sign,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{QUEUE, WebhookConfig, target};
use crate::maintenance::ERROR_BACKOFF;

/// How long a delivery's lease lasts: past the receiver's timeout, so a slow answer still
/// acknowledges its own lease.
const LEASE_SLACK_MS: i64 = 30_000;
/// How long an idle sender waits for new deliveries before polling again.
const IDLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct DeliveryArgs {
    webhook_id: String,
    delivery_id: String,
    body: Box<RawValue>,
}

/// The sender of one node.
pub struct Sender {
    store: Arc<dyn Store>,
    config: WebhookConfig,
    worker_id: String,
}

impl Sender {
    /// A sender over `store`, leasing as `node`.
    pub fn new(store: Arc<dyn Store>, config: WebhookConfig, node: &str) -> Sender {
        Sender {
            store,
            config,
            worker_id: format!("{node}/webhooks"),
        }
    }

    /// Leases and delivers one batch; answers how many deliveries it handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        // Most servers have no webhooks: then there is nothing to lease, and the lease query
        // (heavier than this list) is skipped.
        let hooks = self.store.webhook_list(None).await?;
        if hooks.is_empty() {
            return Ok(0);
        }
        let jobs = self
            .store
            .job_lease_many(JobLeaseParams {
                namespace: SYSTEM_NAMESPACE.to_string(),
                queues: vec![QUEUE.to_string()],
                worker_id: self.worker_id.clone(),
                max_jobs: self.config.concurrency.max(1),
                lease_ms: self.config.timeout.as_millis() as i64 + LEASE_SLACK_MS,
            })
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let hooks: HashMap<String, Webhook> =
            hooks.into_iter().map(|h| (h.id.clone(), h)).collect();
        let hooks = Arc::new(hooks);
        let mut posts = JoinSet::new();
        for job in jobs {
            let hooks = hooks.clone();
            let config = self.config.clone();
            posts.spawn(async move {
                let outcome = deliver(&config, &hooks, &job).await;
                (job, outcome)
            });
        }
        let mut acks = Vec::new();
        while let Some(done) = posts.join_next().await {
            match done {
                Ok((job, outcome)) => acks.push(JobAck {
                    job: JobRef {
                        namespace: job.namespace.clone(),
                        id: job.id,
                    },
                    lease_token: job.lease_token.map(|t| t.0).unwrap_or_default(),
                    outcome,
                }),
                // Its lease runs out and the rescuer hands it out again.
                Err(e) => tracing::error!(error = %e, "a webhook delivery task failed"),
            }
        }
        let handled = acks.len();
        for result in self.store.job_ack_many(acks).await? {
            if let Err(e) = result {
                tracing::debug!(error = %e, "acknowledging a webhook delivery failed");
            }
        }
        Ok(handled)
    }

    /// Delivers until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let listener = self
            .store
            .signals()
            .listen(SYSTEM_NAMESPACE, &[QUEUE.to_string()]);
        loop {
            let (done, woken) = listener.wait_after(async || self.run_once().await).await;
            let pause = match done {
                Ok(0) => IDLE_WAIT,
                Ok(_) if !stop.is_cancelled() => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery failed; retrying");
                    ERROR_BACKOFF
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = woken => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// Posts one delivery; answers how its job ends this attempt.
async fn deliver(
    config: &WebhookConfig,
    hooks: &HashMap<String, Webhook>,
    job: &Job,
) -> AckOutcome {
    let args: DeliveryArgs = match serde_json::from_str(job.args.get()) {
        Ok(a) => a,
        Err(e) => return fail("bad_delivery", format!("unreadable delivery: {e}"), false),
    };
    let Some(hook) = hooks.get(&args.webhook_id) else {
        // Deleted since: nothing to deliver to, and nothing to retry.
        return AckOutcome::Completed {
            result: RawValue::from_string(r#"{"skipped":"webhook deleted"}"#.into()).ok(),
        };
    };
    let url = match reqwest::Url::parse(&hook.url) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                "bad_url",
                format!("the webhook URL is not usable: {e}"),
                false,
            );
        }
    };
    let (host, addr) = match target::resolve(&url, config.allow_private_targets).await {
        Ok(t) => t,
        // The name may resolve later; an address that is not public will not become one.
        Err(e @ target::TargetError::Unresolved(_)) => {
            return fail("unresolved", e.to_string(), true);
        }
        Err(e) => return fail("refused_target", e.to_string(), false),
    };
    // One client per delivery, pinned to the address just checked: reqwest must not look the
    // name up again.
    let http = match reqwest::Client::builder()
        .timeout(config.timeout)
        .user_agent(concat!("hopper-webhooks/", env!("CARGO_PKG_VERSION")))
        // A receiver's redirect could point the signed body anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, addr)
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail("client", format!("building the HTTP client: {e}"), true),
    };
    let body = args.body.get().as_bytes().to_vec();
    let now_s = chrono_now_s();
    let signature = sign(&hook.secret, now_s, &body);
    let sent = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(WEBHOOK_ID_HEADER, &hook.id)
        .header(DELIVERY_ID_HEADER, &args.delivery_id)
        .header(SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => AckOutcome::Completed {
            result: RawValue::from_string(format!(r#"{{"status":{}}}"#, resp.status().as_u16()))
                .ok(),
        },
        Ok(resp) => fail(
            "http_status",
            format!("the receiver answered HTTP {}", resp.status().as_u16()),
            true,
        ),
        Err(e) => fail("unreachable", format!("posting failed: {e}"), true),
    }
}

fn fail(kind: &str, message: String, retryable: bool) -> AckOutcome {
    AckOutcome::Failed(Failure {
        kind: kind.to_string(),
        message,
        retryable,
        retry_in_ms: None,
    })
}

// Wall-clock seconds: the receiver compares the signature's timestamp with its own clock, so
// this is real time, not the store's (possibly manual) clock.
fn chrono_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
