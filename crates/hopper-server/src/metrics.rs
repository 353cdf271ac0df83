//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Counters and histograms are bumped where the event happens (enqueue, lease, ack, rescue); the
//! `hopper_jobs{queue,state}` gauge is filled from the store at scrape time instead, because
//! counting per state on every transition would put a write on the hot path and drift across
//! restarts, while the store's counts are always right.

use std::sync::Mutex;

use hopper_store::QueueInfo;
use hopper_types::{Job, JobState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-queue series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue name.
    pub queue: String,
}

/// Labels of the jobs-per-state gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueStateLabels {
    /// Queue name.
    pub queue: String,
    /// Job state.
    pub state: String,
}

/// Labels of the HTTP request counter. `route` is the route pattern (`/v1/jobs/{id}`), never the
/// raw path, so job ids cannot blow up the number of series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Route pattern, or `unmatched`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

type HistogramFamily = Family<QueueLabels, Histogram, fn() -> Histogram>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    // Serializes scrapes: each one clears and refills the gauge before encoding.
    scrape: Mutex<()>,
    enqueued: Family<QueueLabels, Counter>,
    completed: Family<QueueLabels, Counter>,
    failed: Family<QueueLabels, Counter>,
    dead: Family<QueueLabels, Counter>,
    cancelled: Family<QueueLabels, Counter>,
    // The rescuer learns only how many leases it reclaimed, not from which queues.
    rescues: Family<QueueLabels, Counter>,
    jobs: Family<QueueStateLabels, Gauge>,
    queue_latency: HistogramFamily,
    run_time: HistogramFamily,
    http_requests: Family<HttpLabels, Counter>,
    leader: Gauge,
}

fn seconds_histogram() -> Histogram {
    // 1 ms .. ~9 hours, doubling.
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let enqueued = Family::<QueueLabels, Counter>::default();
        let completed = Family::<QueueLabels, Counter>::default();
        let failed = Family::<QueueLabels, Counter>::default();
        let dead = Family::<QueueLabels, Counter>::default();
        let cancelled = Family::<QueueLabels, Counter>::default();
        let rescues = Family::<QueueLabels, Counter>::default();
        let jobs = Family::<QueueStateLabels, Gauge>::default();
        let queue_latency: HistogramFamily = Family::new_with_constructor(seconds_histogram);
        let run_time: HistogramFamily = Family::new_with_constructor(seconds_histogram);
        let http_requests = Family::<HttpLabels, Counter>::default();
        let leader = Gauge::default();

        // Counter names get their `_total` suffix from the encoder.
        registry.register(
            "hopper_jobs_enqueued",
            "Jobs created by enqueue (duplicates excluded)",
            enqueued.clone(),
        );
        registry.register(
            "hopper_jobs_completed",
            "Jobs completed by a worker",
            completed.clone(),
        );
        registry.register(
            "hopper_jobs_failed",
            "Failed attempts reported by workers",
            failed.clone(),
        );
        registry.register(
            "hopper_jobs_dead",
            "Jobs moved to dead by a worker's failure",
            dead.clone(),
        );
        registry.register(
            "hopper_jobs_cancelled",
            "Jobs that ended cancelled",
            cancelled.clone(),
        );
        registry.register(
            "hopper_lease_rescues",
            "Expired leases and timed-out attempts reclaimed by the rescuer",
            rescues.clone(),
        );
        registry.register(
            "hopper_jobs",
            "Jobs per queue and state, read from the store at scrape",
            jobs.clone(),
        );
        registry.register(
            "hopper_queue_latency_seconds",
            "Time from a job becoming available to its lease",
            queue_latency.clone(),
        );
        registry.register(
            "hopper_run_time_seconds",
            "Time from lease to completion",
            run_time.clone(),
        );
        registry.register(
            "hopper_http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );

        registry.register(
            "hopper_leader",
            "1 while this node runs the maintenance services (leads its store's nodes), else 0",
            leader.clone(),
        );

        Metrics {
            leader,
            registry,
            scrape: Mutex::new(()),
            enqueued,
            completed,
            failed,
            dead,
            cancelled,
            rescues,
            jobs,
            queue_latency,
            run_time,
            http_requests,
        }
    }

    fn queue(q: &str) -> QueueLabels {
        QueueLabels {
            queue: q.to_string(),
        }
    }

    /// This node became (true) or stopped being (false) the maintenance leader.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A job was created in `queue`.
    pub fn job_enqueued(&self, queue: &str) {
        self.enqueued.get_or_create(&Self::queue(queue)).inc();
    }

    /// A job was leased: records how long it waited while available.
    pub fn job_leased(&self, job: &Job) {
        if let Some(started) = job.started_at {
            let waited = started.millis_since(job.available_at).max(0);
            self.queue_latency
                .get_or_create(&Self::queue(&job.queue))
                .observe(waited as f64 / 1000.0);
        }
    }

    /// A worker completed `job` (as returned by the store after the transition).
    pub fn job_completed(&self, job: &Job) {
        let q = Self::queue(&job.queue);
        self.completed.get_or_create(&q).inc();
        if let (Some(s), Some(f)) = (job.started_at, job.finished_at) {
            self.run_time
                .get_or_create(&q)
                .observe(f.millis_since(s).max(0) as f64 / 1000.0);
        }
    }

    /// A worker reported a failure; `job` is the job after it (retryable, dead or cancelled).
    pub fn job_failed(&self, job: &Job) {
        let q = Self::queue(&job.queue);
        self.failed.get_or_create(&q).inc();
        match job.state {
            JobState::Dead => {
                self.dead.get_or_create(&q).inc();
            }
            JobState::Cancelled => {
                self.cancelled.get_or_create(&q).inc();
            }
            _ => {}
        }
    }

    /// A job ended `cancelled` (by the API or a worker).
    pub fn job_cancelled(&self, queue: &str) {
        self.cancelled.get_or_create(&Self::queue(queue)).inc();
    }

    /// The rescuer reclaimed the leases of `jobs` (as they are after the rescue): each is a
    /// rescue and a failed attempt of its queue, and dead or cancelled when that is how it ended.
    pub fn leases_rescued(&self, jobs: &[Job]) {
        for job in jobs {
            self.rescues.get_or_create(&Self::queue(&job.queue)).inc();
            self.job_failed(job);
        }
    }

    /// One HTTP request finished.
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
    }

    /// The exposition text, with the jobs gauge set from `queues` (the store's current counts).
    pub fn render(&self, queues: &[QueueInfo]) -> String {
        let _guard = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        // Cleared first so a queue that lost its last job stops being exported.
        self.jobs.clear();
        for q in queues {
            for (state, n) in &q.counts {
                self.jobs
                    .get_or_create(&QueueStateLabels {
                        queue: q.name.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; keep whatever was written.
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A job of `queue` in `state`, as the store would hand it back.
    fn job(queue: &str, state: JobState) -> Job {
        let req = hopper_types::EnqueueRequest {
            kind: "k".into(),
            queue: Some(queue.into()),
            ..Default::default()
        };
        let new = req
            .validate("default", &hopper_types::Limits::default())
            .expect("valid");
        let (mut j, _) = hopper_types::lifecycle::insert(new, hopper_types::Timestamp(0));
        j.state = state;
        j
    }

    #[test]
    fn renders_counters_and_gauge() {
        let m = Metrics::new();
        m.job_enqueued("emails");
        m.leases_rescued(&[
            job("emails", JobState::Retryable),
            job("emails", JobState::Dead),
        ]);
        m.http_request("/v1/jobs", "POST", 201);
        let mut counts = BTreeMap::new();
        counts.insert(JobState::Available, 3);
        let text = m.render(&[QueueInfo {
            name: "emails".into(),
            paused: false,
            counts,
            oldest_available_age_ms: None,
            config: Default::default(),
        }]);
        assert!(
            text.contains(r#"hopper_jobs_enqueued_total{queue="emails"} 1"#),
            "{text}"
        );
        // Rescues count per queue, as failed attempts, and a rescue that ends a job as dead.
        for line in [
            r#"hopper_lease_rescues_total{queue="emails"} 2"#,
            r#"hopper_jobs_failed_total{queue="emails"} 2"#,
            r#"hopper_jobs_dead_total{queue="emails"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}: {text}");
        }
        assert!(
            text.contains(r#"hopper_jobs{queue="emails",state="available"} 3"#),
            "{text}"
        );
        assert!(text.contains("hopper_http_requests_total"), "{text}");
    }
}
