//! One leased job from lease to report: wait for a run slot, run the handler, enforce the
//! timeout and cancellation, and turn how it ended into the outcome the server gets. The lease
//! is heartbeated (`heartbeat`) the whole time, waiting included.
//!
//! The handler runs inside this task (not a task of its own), so stopping it is dropping its
//! future: whatever it holds is dropped with it (a child process guard, a connection), and no
//! detached work outlives the attempt. A panic is caught and reported as a retryable failure.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, Semaphore};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use crate::acker::{Acker, outcome_name};
use crate::context::CancelReason;
use crate::outcome::{KIND_PANIC, KIND_TIMEOUT, KIND_UNKNOWN_KIND};
use crate::stats::WorkerStats;
use crate::trace::job_span;
use crate::wire::{Ack, AckOutcome, LeasedJob};
use crate::worker::{Handlers, WorkerConfig};
use crate::{Client, JobContext, Outcome};

mod heartbeat;

use heartbeat::{Heartbeat, LeaseNews};

/// What the runner does with a job once its handler stopped.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Report this outcome.
    Report(Outcome),
    /// Hand the job back uncounted (shutdown).
    Release,
    /// Report nothing: the lease is gone, another worker may hold the job now.
    Lost,
}

/// Everything a job task needs; one per worker, shared.
pub(crate) struct Runner {
    pub client: Client,
    pub config: Arc<WorkerConfig>,
    pub handlers: Arc<Handlers>,
    pub acker: Acker,
    pub stats: Arc<WorkerStats>,
    /// `concurrency` permits: one per running handler.
    pub running: Arc<Semaphore>,
    /// Shutdown began: jobs that have not started are released.
    pub stop: CancellationToken,
    /// The grace period is over: running handlers are cancelled and released.
    pub force: CancellationToken,
    /// Leased jobs waiting for a run slot; the lease loop batches while there are some.
    pub waiting: AtomicUsize,
    /// Fired when a job starts or finishes, so the lease loop can look at the slots again.
    pub progress: Notify,
}

impl Runner {
    /// Runs one leased job to its report, inside the job's span (see [`crate::trace`]). The
    /// caller counted it in `waiting`.
    pub(crate) async fn run(&self, job: LeasedJob) {
        let span = job_span(&job);
        self.run_job(job).instrument(span).await
    }

    async fn run_job(&self, mut job: LeasedJob) {
        let received = Instant::now();
        let Some(token) = job.lease_token.take() else {
            tracing::error!(job_id = %job.id, "leased job without a lease token; skipping it");
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        let token = token.0;
        let id = job.id;
        // The lease runs from now, not from the handler's start: heartbeat it while the job
        // waits for a run slot too, or it would expire behind handlers that outlast it.
        let mut heartbeat =
            Heartbeat::start(self.client.clone(), id, token.clone(), self.config.lease_ms);

        let permit = tokio::select! {
            biased;
            // Shutdown: a job that has not started goes back at once, uncounted.
            _ = self.stop.cancelled() => Err(Verdict::Release),
            p = self.running.clone().acquire_owned() => p.map_err(|_| Verdict::Release),
            news = heartbeat.news() => Err(match news {
                // Nothing ran, so nothing to stop: the job ends cancelled as asked.
                LeaseNews::CancelRequested => Verdict::Report(Outcome::Cancelled),
                LeaseNews::Lost => {
                    tracing::warn!(job_id = %id, "lease lost while waiting for a run slot");
                    Verdict::Lost
                }
            }),
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.progress.notify_waiters();
        let permit = match permit {
            Ok(p) => p,
            Err(verdict) => {
                self.report(id, token, verdict).await;
                return;
            }
        };

        let deadline = received + local_timeout(job.timeout_ms);
        let ctx = JobContext::new(
            job,
            token.clone(),
            self.client.clone(),
            self.config.lease_ms,
            deadline,
        );
        self.stats.record_started();
        tracing::debug!(job_id = %id, "handler started");
        let verdict = self.supervise(&ctx, &mut heartbeat).await;
        drop(permit);
        self.report(id, token, verdict).await;
    }

    /// Runs the handler, still heartbeating, until it ends or must be stopped; returns what to
    /// report.
    async fn supervise(&self, ctx: &JobContext, heartbeat: &mut Heartbeat) -> Verdict {
        let handler: BoxFuture<'static, Outcome> = match self.handlers.get(ctx.kind()) {
            Some(h) => h.call(ctx.clone()),
            None => {
                return Verdict::Report(Outcome::Fail {
                    message: format!("no handler for job kind `{}` in this worker", ctx.kind()),
                    kind: KIND_UNKNOWN_KIND.to_string(),
                });
            }
        };
        let handler = AssertUnwindSafe(handler).catch_unwind();
        tokio::pin!(handler);

        // Set once a cancel was requested: the handler has until then to stop by itself.
        let mut cancel_deadline: Option<Instant> = None;
        let token = ctx.cancellation_token();

        loop {
            tokio::select! {
                biased;
                r = &mut handler => {
                    let outcome = r.unwrap_or_else(|panic| Outcome::Fail {
                        message: format!("the handler panicked: {}", panic_message(&*panic)),
                        kind: KIND_PANIC.to_string(),
                    });
                    return verdict_after(ctx.cancel_reason(), outcome);
                }
                _ = self.force.cancelled() => {
                    ctx.cancel(CancelReason::Shutdown);
                    return Verdict::Release;
                }
                _ = sleep_until(ctx.deadline()) => {
                    ctx.cancel(CancelReason::Timeout);
                    return Verdict::Report(Outcome::Fail {
                        message: format!("the attempt ran past its timeout of {} ms", ctx.job().timeout_ms),
                        kind: KIND_TIMEOUT.to_string(),
                    });
                }
                _ = token.cancelled(), if cancel_deadline.is_none() => {
                    match ctx.cancel_reason() {
                        Some(CancelReason::LeaseLost) => {
                            tracing::warn!(job_id = %ctx.id(), "lease lost while running; stopping the handler");
                            return Verdict::Lost;
                        }
                        _ => cancel_deadline = Some(Instant::now() + self.config.cancel_grace),
                    }
                }
                _ = sleep_until(cancel_deadline.unwrap_or_else(Instant::now)), if cancel_deadline.is_some() => {
                    tracing::info!(job_id = %ctx.id(), "the handler did not stop after the cancel; dropping it");
                    return Verdict::Report(Outcome::Cancelled);
                }
                news = heartbeat.news() => match news {
                    LeaseNews::CancelRequested => ctx.cancel(CancelReason::CancelRequested),
                    LeaseNews::Lost => ctx.cancel(CancelReason::LeaseLost),
                },
            }
        }
    }

    /// Queues the verdict for the flusher, and records it on the job's span.
    async fn report(&self, id: hopper_types::JobId, lease_token: String, verdict: Verdict) {
        let span = Span::current();
        let outcome = match verdict {
            Verdict::Lost => {
                span.record("outcome", "lost");
                tracing::debug!(job_id = %id, outcome = "lost", "job finished");
                self.stats.record_undelivered(1);
                return;
            }
            Verdict::Release => AckOutcome::Released,
            Verdict::Report(o) => o.into_report(),
        };
        let name = outcome_name(&outcome);
        span.record("outcome", name);
        if matches!(outcome, AckOutcome::Failed { .. }) {
            span.record("otel.status_code", "error");
        }
        tracing::debug!(job_id = %id, outcome = name, "job finished");
        self.acker
            .push(Ack {
                id,
                lease_token,
                outcome,
            })
            .await;
    }
}

/// What to report for the handler's own outcome, given why (if at all) it was asked to stop.
/// After a cancel request anything but a completion is reported as `cancelled`: the server
/// would end the job `cancelled` anyway, and saying so keeps the attempt's record honest.
pub(crate) fn verdict_after(reason: Option<CancelReason>, outcome: Outcome) -> Verdict {
    match (reason, outcome) {
        (Some(CancelReason::LeaseLost), _) => Verdict::Lost,
        (Some(CancelReason::CancelRequested), o @ Outcome::Complete(_)) => Verdict::Report(o),
        (Some(CancelReason::CancelRequested), _) => Verdict::Report(Outcome::Cancelled),
        (Some(CancelReason::Shutdown), Outcome::Complete(v)) => {
            Verdict::Report(Outcome::Complete(v))
        }
        (Some(CancelReason::Shutdown), _) => Verdict::Release,
        (_, o) => Verdict::Report(o),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// How long the worker lets an attempt run: the job's timeout, less a margin (a tenth, at
/// most a second). The server started the attempt's clock before the lease answer reached
/// us, so stopping at exactly `timeout_ms` after receipt would report after the server's own
/// deadline, and lose the race against its rescue (the report would come back "lease lost").
fn local_timeout(timeout_ms: i64) -> Duration {
    let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    timeout - (timeout / 10).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verdicts_follow_the_cancel_reason() {
        let done = Outcome::Complete(json!(1));
        let failed = Outcome::fail("boom");
        assert_eq!(
            verdict_after(None, failed.clone()),
            Verdict::Report(failed.clone())
        );
        assert_eq!(
            verdict_after(Some(CancelReason::CancelRequested), failed.clone()),
            Verdict::Report(Outcome::Cancelled)
        );
        assert_eq!(
            verdict_after(Some(CancelReason::CancelRequested), done.clone()),
            Verdict::Report(done.clone())
        );
        assert_eq!(
            verdict_after(Some(CancelReason::LeaseLost), done.clone()),
            Verdict::Lost
        );
        assert_eq!(
            verdict_after(Some(CancelReason::Shutdown), failed),
            Verdict::Release
        );
    }

    #[test]
    fn the_local_timeout_ends_before_the_servers() {
        assert_eq!(local_timeout(1000), Duration::from_millis(900));
        assert_eq!(local_timeout(1_800_000), Duration::from_millis(1_799_000));
        assert_eq!(local_timeout(0), Duration::ZERO);
    }

    #[test]
    fn panic_messages_are_read() {
        let p: Box<dyn Any + Send> = Box::new("oops");
        assert_eq!(panic_message(&*p), "oops");
        let p: Box<dyn Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(&*p), "owned");
        let p: Box<dyn Any + Send> = Box::new(3);
        assert_eq!(panic_message(&*p), "(no message)");
    }
}
