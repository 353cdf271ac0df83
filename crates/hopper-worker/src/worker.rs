//! [`Worker`]: the runtime that leases jobs, runs their handlers, and reports their outcomes,
//! and [`WorkerBuilder`], which configures it.
//!
//! Moving parts, each in its own module:
//! - the lease loop ([`crate::leaser`]) long-polls `POST /v1/leases` for as many jobs as there
//!   are free slots (at most twice the concurrency are held at once);
//! - one task per leased job ([`crate::job_runner`]) heartbeats the lease from the moment it
//!   is leased until its outcome is queued (waiting included, or jobs leased ahead would
//!   expire behind long handlers), waits for one of `concurrency` run slots, runs the
//!   handler, and enforces timeout and cancellation;
//! - the ack flusher ([`crate::acker`]) batches outcomes into `POST /v1/acks`.
//!
//! Shutdown (the semantics document, Shutdown): stop leasing, release leased jobs that have not started,
//! let running handlers finish for the grace period, then cancel the rest and release their
//! leases, flush outcomes, return.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acker::{Acker, AckerConfig};
use crate::handler::{ErasedHandler, FnHandler, TypeHandler};
use crate::job_runner::Runner;
use crate::outcome::{BoxError, IntoOutcome};
use crate::stats::WorkerStats;
use crate::{Client, Error, Handler, JobContext};

/// Default time running handlers get to finish after a shutdown signal: under the common 30 s
/// kill deadline of orchestrators, leaving time to release and flush.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(25);
/// Default lease length asked for.
pub const DEFAULT_LEASE_MS: u64 = 30_000;
/// Default long-poll wait of a lease request.
pub const DEFAULT_POLL_WAIT_MS: u64 = 20_000;

/// Why a worker configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// No queue to lease from.
    #[error("a worker needs at least one queue")]
    NoQueues,
    /// More queues than a lease request takes.
    #[error("a worker can lease from at most 100 queues, not {0}")]
    TooManyQueues(usize),
    /// Concurrency 0 would never run anything.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// Nothing registered, so every leased job would fail.
    #[error("no handler registered")]
    NoHandlers,
    /// Outside what the server accepts.
    #[error("lease_ms must be between 200 and 3600000, not {0}")]
    LeaseMs(u64),
    /// Outside what the server accepts.
    #[error("poll wait must be at most 60000 ms, not {0}")]
    PollWait(u64),
}

/// Settings shared by the worker's parts.
#[derive(Debug, Clone)]
pub(crate) struct WorkerConfig {
    /// Queues to lease from, served as one.
    pub queues: Vec<String>,
    /// Most handlers running at once.
    pub concurrency: usize,
    /// Shown by `GET /v1/workers`.
    pub worker_id: String,
    /// Lease length; heartbeats go out every third of it.
    pub lease_ms: u64,
    /// Long-poll wait of each lease request.
    pub poll_wait_ms: u64,
    /// How long running handlers may finish after a shutdown signal.
    pub grace_period: Duration,
    /// How long a handler may take to stop after a cancel request before it is dropped.
    pub cancel_grace: Duration,
}

/// Configures a [`Worker`]; start with [`Worker::builder`].
pub struct WorkerBuilder {
    client: Client,
    config: WorkerConfig,
    ack: AckerConfig,
    handlers: HashMap<String, Arc<dyn ErasedHandler>>,
    fallback: Option<Arc<dyn ErasedHandler>>,
}

impl WorkerBuilder {
    /// The queues to lease from (default `["default"]`), served as one in priority order.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Most handlers running at once (default 10). The worker holds up to twice as many
    /// leased jobs, so the next ones are already here when a handler finishes; their leases
    /// are renewed while they wait.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n;
        self
    }

    /// The id shown by `GET /v1/workers` (default `host:pid-N`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.config.worker_id = id.into();
        self
    }

    /// Lease length (default 30 s); heartbeats renew it every third of it.
    pub fn lease_ms(mut self, ms: u64) -> Self {
        self.config.lease_ms = ms;
        self
    }

    /// How long a lease request waits for a job when none is available (default 20 s).
    pub fn poll_wait_ms(mut self, ms: u64) -> Self {
        self.config.poll_wait_ms = ms;
        self
    }

    /// How long running handlers may finish after a shutdown signal (default 25 s).
    pub fn grace_period(mut self, d: Duration) -> Self {
        self.config.grace_period = d;
        self
    }

    /// How long a handler may take to stop after its job was cancelled before it is dropped
    /// (default 5 s).
    pub fn cancel_grace(mut self, d: Duration) -> Self {
        self.config.cancel_grace = d;
        self
    }

    /// Outcomes per `POST /v1/acks` call at most (default 500, at most 1000).
    pub fn ack_batch_size(mut self, n: usize) -> Self {
        self.ack.batch_size = n;
        self
    }

    /// Longest an outcome waits for its batch to fill (default 2 ms).
    pub fn ack_flush_interval(mut self, d: Duration) -> Self {
        self.ack.interval = d;
        self
    }

    /// Runs jobs of `kind` with an async function of the context and the decoded args.
    ///
    /// The function returns `Ok` of an [`crate::Outcome`] (or `()` for "complete"), or `Err` of
    /// any error (`anyhow::Error` included) for a retryable failure.
    pub fn register<A, F, Fut, O, E>(mut self, kind: impl Into<String>, handler: F) -> Self
    where
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome + 'static,
        E: Into<BoxError> + 'static,
    {
        self.handlers
            .insert(kind.into(), Arc::new(FnHandler::new(handler)));
        self
    }

    /// Runs jobs of `kind` with a [`Handler`] value.
    pub fn register_handler<H: Handler>(mut self, kind: impl Into<String>, handler: H) -> Self {
        self.handlers
            .insert(kind.into(), Arc::new(TypeHandler(Arc::new(handler))));
        self
    }

    /// Runs jobs of every kind nothing else was registered for. Without a fallback such jobs
    /// fail (retryable, kind `unknown_kind`), so a worker of a newer release can pick them up.
    pub fn fallback<A, F, Fut, O, E>(mut self, handler: F) -> Self
    where
        F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        O: IntoOutcome + 'static,
        E: Into<BoxError> + 'static,
    {
        self.fallback = Some(Arc::new(FnHandler::new(handler)));
        self
    }

    /// Checks the settings and builds the worker.
    pub fn build(self) -> Result<Worker, ConfigError> {
        let c = &self.config;
        if c.queues.is_empty() {
            return Err(ConfigError::NoQueues);
        }
        if c.queues.len() > 100 {
            return Err(ConfigError::TooManyQueues(c.queues.len()));
        }
        if c.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if self.handlers.is_empty() && self.fallback.is_none() {
            return Err(ConfigError::NoHandlers);
        }
        if !(200..=3_600_000).contains(&c.lease_ms) {
            return Err(ConfigError::LeaseMs(c.lease_ms));
        }
        if c.poll_wait_ms > 60_000 {
            return Err(ConfigError::PollWait(c.poll_wait_ms));
        }
        Ok(Worker {
            client: self.client,
            config: self.config,
            ack: self.ack,
            handlers: Arc::new(Handlers {
                by_kind: self.handlers,
                fallback: self.fallback,
            }),
            stats: Arc::new(WorkerStats::default()),
        })
    }
}

/// The registered handlers.
pub(crate) struct Handlers {
    by_kind: HashMap<String, Arc<dyn ErasedHandler>>,
    fallback: Option<Arc<dyn ErasedHandler>>,
}

impl Handlers {
    pub(crate) fn get(&self, kind: &str) -> Option<&Arc<dyn ErasedHandler>> {
        self.by_kind.get(kind).or(self.fallback.as_ref())
    }
}

/// A configured worker; [`Worker::run`] runs it until SIGTERM or SIGINT.
pub struct Worker {
    client: Client,
    config: WorkerConfig,
    ack: AckerConfig,
    handlers: Arc<Handlers>,
    stats: Arc<WorkerStats>,
}

impl Worker {
    /// A builder for a worker that talks to the server through `client`.
    pub fn builder(client: Client) -> WorkerBuilder {
        WorkerBuilder {
            client,
            config: WorkerConfig {
                queues: vec!["default".to_string()],
                concurrency: 10,
                worker_id: default_worker_id(),
                lease_ms: DEFAULT_LEASE_MS,
                poll_wait_ms: DEFAULT_POLL_WAIT_MS,
                grace_period: DEFAULT_GRACE_PERIOD,
                cancel_grace: Duration::from_secs(5),
            },
            ack: AckerConfig {
                batch_size: 500,
                interval: Duration::from_millis(2),
            },
            handlers: HashMap::new(),
            fallback: None,
        }
    }

    /// Live counters, to read while the worker runs.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// The worker's id as the server sees it.
    pub fn worker_id(&self) -> &str {
        &self.config.worker_id
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully and returns `Ok`.
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(crate::shutdown_signal()).await
    }

    /// Runs until `shutdown` completes, then shuts down gracefully. Returns an error only when
    /// the server refuses the lease requests themselves (a bad queue name, say); outages are
    /// ridden out with retries.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Worker {
            client,
            config,
            ack,
            handlers,
            stats,
        } = self;
        let config = Arc::new(config);
        // Fires at the shutdown signal: no new leases, unstarted jobs go back.
        let stop = CancellationToken::new();
        // Fires when the grace period is over: running handlers are cancelled.
        let force = CancellationToken::new();
        let (acker, flusher) = Acker::start(client.clone(), ack, stats.clone());
        let tasks = TaskTracker::new();
        let runner = Arc::new(Runner {
            client: client.clone(),
            config: config.clone(),
            handlers,
            acker,
            stats: stats.clone(),
            running: Arc::new(Semaphore::new(config.concurrency)),
            stop: stop.clone(),
            force: force.clone(),
            waiting: AtomicUsize::new(0),
            progress: Notify::new(),
        });
        tracing::info!(
            worker_id = %config.worker_id,
            queues = ?config.queues,
            concurrency = config.concurrency,
            "worker started"
        );

        let leaser = tokio::spawn(crate::leaser::lease_loop(
            client,
            config.clone(),
            runner.clone(),
            tasks.clone(),
            stop.clone(),
        ));
        tokio::select! {
            _ = shutdown => tracing::info!("worker stopping: no new leases"),
            _ = stop.cancelled() => {}
        }
        stop.cancel();
        let lease_result = match leaser.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the lease loop panicked");
                Ok(())
            }
        };

        tasks.close();
        let running = tasks.len();
        if running > 0 {
            tracing::info!(
                running,
                grace = ?config.grace_period,
                "waiting for running jobs to finish"
            );
        }
        if tokio::time::timeout(config.grace_period, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tasks.len(),
                "grace period over: cancelling the jobs still running and releasing them"
            );
            force.cancel();
            tasks.wait().await;
        }
        // The flusher ends once the last Acker is gone (the runner holds it).
        drop(runner);
        if let Err(e) = flusher.await {
            tracing::error!(error = %e, "the ack flusher panicked");
        }
        tracing::info!(stats = ?stats.snapshot(), "worker stopped");
        lease_result
    }
}

/// `host:pid-N`, the form the API documents; the host name from the kernel, or `localhost`.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:pid-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn client() -> Client {
        Client::new("http://127.0.0.1:1").unwrap()
    }

    async fn noop(_ctx: JobContext, _args: serde_json::Value) -> Result<Outcome, BoxError> {
        Ok(Outcome::complete())
    }

    #[test]
    fn build_checks_settings() {
        let b = || Worker::builder(client()).register("noop", noop);
        assert!(b().build().is_ok());
        assert_eq!(
            b().queues(Vec::<String>::new()).build().err(),
            Some(ConfigError::NoQueues)
        );
        assert_eq!(
            b().concurrency(0).build().err(),
            Some(ConfigError::ZeroConcurrency)
        );
        assert_eq!(
            b().lease_ms(10).build().err(),
            Some(ConfigError::LeaseMs(10))
        );
        assert_eq!(
            Worker::builder(client()).build().err(),
            Some(ConfigError::NoHandlers)
        );
    }

    #[test]
    fn worker_id_names_host_and_pid() {
        let id = default_worker_id();
        assert!(
            id.ends_with(&format!(":pid-{}", std::process::id())),
            "{id}"
        );
    }
}
