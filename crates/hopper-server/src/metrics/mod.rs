//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format, and the recent
//! activity behind `GET /v1/stats`. `docs/metrics.md` lists every metric.
//!
//! Counters and histograms are bumped where the event happens (enqueue, lease, outcome, rescue,
//! scheduler fire), each once per change: a repeated outcome (a worker retrying after a lost
//! answer) and a duplicate enqueue changed nothing and count nothing. The per-state, per-queue
//! gauges (`hopper_jobs`, oldest waiting age, paused, workers) are filled at scrape time
//! instead: counting states on every transition would put a write on the hot path and drift
//! across restarts, while the store's counts are always right.
//!
//! The job counters and histograms are labelled by queue and kind. Their handles are cached per
//! (queue, kind) so recording an event is a read lock, two hash lookups by `&str`, and atomic
//! adds: no label is built on the hot path once a pair has been seen.

pub mod activity;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use hopper_store::QueueInfo;
use hopper_types::{Attempt, Job, JobState, Timestamp};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::workers::WorkerCounts;
use activity::{Activity, Event, QueueActivity};

/// Labels of per-queue series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue name.
    pub queue: String,
}

/// Labels of per-queue-and-kind job series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// Queue name.
    pub queue: String,
    /// Job kind.
    pub kind: String,
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
    /// HTTP method, or `other`.
    pub method: &'static str,
    /// Status code.
    pub status: u16,
}

/// Labels of the HTTP request duration histogram: the status only by class (`2xx`..`5xx`), so
/// the histogram's many buckets are not multiplied by every status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpDurationLabels {
    /// Route pattern, or `unmatched`.
    pub route: String,
    /// HTTP method, or `other`.
    pub method: &'static str,
    /// `1xx`, `2xx`, `3xx`, `4xx` or `5xx`.
    pub status_class: &'static str,
}

/// Labels of the store operation histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOpLabels {
    /// The `Store` method.
    pub operation: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The handles of one (queue, kind): clones of the registered series (they share counts).
struct JobHandles {
    enqueued: Counter,
    started: Counter,
    completed: Counter,
    failed: Counter,
    dead: Counter,
    cancelled: Counter,
    queue_latency: Histogram,
    run_time: Histogram,
    activity: Arc<QueueActivity>,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    // Serializes scrapes: each one clears and refills the gauges before encoding.
    scrape: Mutex<()>,
    enqueued: Family<JobLabels, Counter>,
    started: Family<JobLabels, Counter>,
    completed: Family<JobLabels, Counter>,
    failed: Family<JobLabels, Counter>,
    dead: Family<JobLabels, Counter>,
    cancelled: Family<JobLabels, Counter>,
    queue_latency: HistogramFamily<JobLabels>,
    run_time: HistogramFamily<JobLabels>,
    // queue -> kind -> handles; nested so a lookup needs no owned key.
    handles: RwLock<HashMap<String, HashMap<String, Arc<JobHandles>>>>,
    // The rescuer's work per queue (each rescue is also a failed attempt of its kind).
    rescues: Family<QueueLabels, Counter>,
    jobs: Family<QueueStateLabels, Gauge>,
    oldest_available: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    paused: Family<QueueLabels, Gauge>,
    queue_workers: Family<QueueLabels, Gauge>,
    workers_seen: Gauge,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpDurationLabels>,
    store_operations: HistogramFamily<StoreOpLabels>,
    leader: Gauge,
    schedule_ticks_skipped: Counter,
    schedule_fire_failures: Counter,
    activity: Activity,
}

fn job_seconds_histogram() -> Histogram {
    // 1 ms .. ~4.7 hours, doubling: jobs wait and run from milliseconds to hours.
    Histogram::new(exponential_buckets(0.001, 2.0, 25))
}

fn http_seconds_histogram() -> Histogram {
    // 0.5 ms .. ~65 s, doubling: the longest long poll is 60 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

fn store_seconds_histogram() -> Histogram {
    // 50 µs .. ~26 s, doubling: an in-memory answer up to a stuck database.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

fn millis(from: Timestamp, to: Timestamp) -> f64 {
    to.millis_since(from).max(0) as f64
}

/// The attempt of the job's current lease, once it has ended.
fn ended_attempt(job: &Job) -> Option<&Attempt> {
    job.attempts
        .last()
        .filter(|a| a.lease_seq == job.lease_seq && a.finished_at.is_some())
}

/// How long the current lease's attempt ran, in ms, and when it ended.
fn attempt_run(job: &Job) -> Option<(f64, Timestamp)> {
    let a = ended_attempt(job)?;
    let end = a.finished_at?;
    Some((millis(a.started_at, end), end))
}

/// When the job's latest change happened, as well as the job tells: the end of its attempt,
/// else its finish, else `fallback`.
fn changed_at(job: &Job, fallback: Timestamp) -> Timestamp {
    ended_attempt(job)
        .and_then(|a| a.finished_at)
        .or(job.finished_at)
        .unwrap_or(fallback)
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
        let enqueued = Family::<JobLabels, Counter>::default();
        let started = Family::<JobLabels, Counter>::default();
        let completed = Family::<JobLabels, Counter>::default();
        let failed = Family::<JobLabels, Counter>::default();
        let dead = Family::<JobLabels, Counter>::default();
        let cancelled = Family::<JobLabels, Counter>::default();
        let queue_latency: HistogramFamily<JobLabels> =
            Family::new_with_constructor(job_seconds_histogram);
        let run_time: HistogramFamily<JobLabels> =
            Family::new_with_constructor(job_seconds_histogram);
        let rescues = Family::<QueueLabels, Counter>::default();
        let jobs = Family::<QueueStateLabels, Gauge>::default();
        let oldest_available = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        let paused = Family::<QueueLabels, Gauge>::default();
        let queue_workers = Family::<QueueLabels, Gauge>::default();
        let workers_seen = Gauge::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<HttpDurationLabels> =
            Family::new_with_constructor(http_seconds_histogram);
        let store_operations: HistogramFamily<StoreOpLabels> =
            Family::new_with_constructor(store_seconds_histogram);
        let leader = Gauge::default();
        let schedule_ticks_skipped = Counter::default();
        let schedule_fire_failures = Counter::default();

        // Counter names get their `_total` suffix from the encoder. Names and meanings are
        // listed in docs/metrics.md; dashboards and alerts depend on them, so keep them stable.
        registry.register(
            "hopper_jobs_enqueued",
            "Jobs created by enqueue or by a schedule (duplicates excluded)",
            enqueued.clone(),
        );
        registry.register(
            "hopper_jobs_started",
            "Jobs leased to a worker (attempts started)",
            started.clone(),
        );
        registry.register(
            "hopper_jobs_completed",
            "Jobs completed by a worker",
            completed.clone(),
        );
        registry.register(
            "hopper_jobs_failed",
            "Failed attempts: reported by workers, or ended by lease expiry or timeout",
            failed.clone(),
        );
        registry.register(
            "hopper_jobs_dead",
            "Jobs that became dead (out of attempts, or failed as not retryable)",
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
            "hopper_queue_oldest_available_age_seconds",
            "Age of the queue's oldest available job (0 when none waits), read at scrape",
            oldest_available.clone(),
        );
        registry.register(
            "hopper_queue_paused",
            "1 while the queue is paused, else 0, read at scrape",
            paused.clone(),
        );
        registry.register(
            "hopper_queue_workers",
            "Workers seen by this node within the worker window whose latest lease request named the queue",
            queue_workers.clone(),
        );
        registry.register(
            "hopper_workers_seen",
            "Workers seen by this node within the worker window",
            workers_seen.clone(),
        );
        registry.register(
            "hopper_queue_latency_seconds",
            "Time from a job becoming available to its lease",
            queue_latency.clone(),
        );
        registry.register(
            "hopper_run_time_seconds",
            "Time from lease to the worker's outcome, for attempts a worker completed or failed",
            run_time.clone(),
        );
        registry.register(
            "hopper_http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        registry.register(
            "hopper_http_request_duration_seconds",
            "Time to answer an HTTP request (long polls included), by route, method and status class",
            http_duration.clone(),
        );
        registry.register(
            "hopper_store_operation_duration_seconds",
            "Time taken by each store operation, errors included",
            store_operations.clone(),
        );
        registry.register(
            "hopper_leader",
            "1 while this node runs the maintenance services (leads its store's nodes), else 0",
            leader.clone(),
        );

        registry.register(
            "hopper_schedule_ticks_skipped",
            "Cron ticks not fired: missed ticks a misfire policy dropped, or ticks whose job could not be made",
            schedule_ticks_skipped.clone(),
        );
        registry.register(
            "hopper_schedule_fire_failures",
            "Schedule fires that failed (logged, retried at the next pass)",
            schedule_fire_failures.clone(),
        );

        Metrics {
            registry,
            scrape: Mutex::new(()),
            enqueued,
            started,
            completed,
            failed,
            dead,
            cancelled,
            queue_latency,
            run_time,
            handles: RwLock::new(HashMap::new()),
            rescues,
            jobs,
            oldest_available,
            paused,
            queue_workers,
            workers_seen,
            http_requests,
            http_duration,
            store_operations,
            leader,
            schedule_ticks_skipped,
            schedule_fire_failures,
            activity: Activity::default(),
        }
    }

    /// The handles of (`queue`, `kind`), created on first use.
    fn handles(&self, queue: &str, kind: &str) -> Arc<JobHandles> {
        if let Some(h) = self
            .handles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
            .and_then(|kinds| kinds.get(kind))
        {
            return h.clone();
        }
        let labels = JobLabels {
            queue: queue.to_string(),
            kind: kind.to_string(),
        };
        let made = Arc::new(JobHandles {
            enqueued: self.enqueued.get_or_create_owned(&labels),
            started: self.started.get_or_create_owned(&labels),
            completed: self.completed.get_or_create_owned(&labels),
            failed: self.failed.get_or_create_owned(&labels),
            dead: self.dead.get_or_create_owned(&labels),
            cancelled: self.cancelled.get_or_create_owned(&labels),
            queue_latency: self.queue_latency.get_or_create_owned(&labels),
            run_time: self.run_time.get_or_create_owned(&labels),
            activity: self.activity.queue(queue),
        });
        // Another thread may have made the same pair meanwhile: both share the same series,
        // so whichever entry wins, nothing is lost.
        self.handles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels.queue)
            .or_default()
            .entry(labels.kind)
            .or_insert(made)
            .clone()
    }

    /// A scheduler pass ended: its skipped ticks and failed fires (its jobs are counted as
    /// enqueued one by one).
    pub fn schedule_pass(&self, skipped: u64, failed: u64) {
        self.schedule_ticks_skipped.inc_by(skipped);
        self.schedule_fire_failures.inc_by(failed);
    }

    /// This node became (true) or stopped being (false) the maintenance leader.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// A job was created (not a duplicate), by a producer or a schedule.
    pub fn job_enqueued(&self, job: &Job) {
        let h = self.handles(&job.queue, &job.kind);
        h.enqueued.inc();
        h.activity.record(job.created_at, Event::Enqueued);
    }

    /// A job was leased: records how long it waited while available.
    pub fn job_leased(&self, job: &Job) {
        let h = self.handles(&job.queue, &job.kind);
        h.started.inc();
        if let Some(started) = job.started_at {
            let waited = millis(job.available_at, started);
            h.queue_latency.observe(waited / 1000.0);
            h.activity
                .record(started, Event::Started { latency_ms: waited });
        }
    }

    /// A worker completed `job` (as returned by the store after the transition).
    pub fn job_completed(&self, job: &Job, now: Timestamp) {
        let h = self.handles(&job.queue, &job.kind);
        h.completed.inc();
        let run = attempt_run(job);
        if let Some((ms, _)) = run {
            h.run_time.observe(ms / 1000.0);
        }
        h.activity.record(
            run.map_or(changed_at(job, now), |(_, end)| end),
            Event::Completed {
                run_ms: run.map(|(ms, _)| ms),
            },
        );
    }

    /// A worker reported a failure; `job` is the job after it (retryable, dead or cancelled).
    pub fn job_failed(&self, job: &Job, now: Timestamp) {
        self.attempt_failed(job, true, now);
    }

    /// A failed attempt of `job` (as it is afterwards); its run time counts when a worker ended
    /// it (not when its lease ran out: that measures the lease, not the work).
    fn attempt_failed(&self, job: &Job, by_worker: bool, now: Timestamp) {
        let h = self.handles(&job.queue, &job.kind);
        h.failed.inc();
        let dead = job.state == JobState::Dead;
        if dead {
            h.dead.inc();
        } else if job.state == JobState::Cancelled {
            h.cancelled.inc();
        }
        let run = attempt_run(job).filter(|_| by_worker);
        if let Some((ms, _)) = run {
            h.run_time.observe(ms / 1000.0);
        }
        h.activity.record(
            changed_at(job, now),
            Event::Failed {
                run_ms: run.map(|(ms, _)| ms),
                dead,
            },
        );
    }

    /// A job ended `cancelled` (by the API, or by a worker's `cancelled` or `release`).
    pub fn job_cancelled(&self, job: &Job) {
        self.handles(&job.queue, &job.kind).cancelled.inc();
    }

    /// The rescuer reclaimed the leases of `jobs` (as they are after the rescue) at `now`:
    /// each is a rescue of its queue and a failed attempt of its queue and kind, and dead or
    /// cancelled when that is how it ended.
    pub fn leases_rescued(&self, jobs: &[Job], now: Timestamp) {
        for job in jobs {
            self.rescues
                .get_or_create(&QueueLabels {
                    queue: job.queue.clone(),
                })
                .inc();
            self.attempt_failed(job, false, now);
        }
    }

    /// One HTTP request finished with `status` after `seconds`.
    pub fn http_request(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        let status_class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_duration
            .get_or_create(&HttpDurationLabels {
                route: route.clone(),
                method,
                status_class,
            })
            .observe(seconds);
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// The duration histogram of one store operation, for [`crate::timed_store::TimedStore`]
    /// to keep and observe without any lookup.
    pub fn store_operation_histogram(&self, operation: &'static str) -> Histogram {
        self.store_operations
            .get_or_create_owned(&StoreOpLabels { operation })
    }

    /// The recent activity behind `GET /v1/stats`.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The exposition text, with the queue gauges set from `queues` (the store's current
    /// counts) and the worker gauges from `workers` (this node's registry).
    pub fn render(&self, queues: &[QueueInfo], workers: &WorkerCounts) -> String {
        let _guard = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        // Cleared first so a queue that lost its last job stops being exported.
        self.jobs.clear();
        self.oldest_available.clear();
        self.paused.clear();
        self.queue_workers.clear();
        // Every queue the store knows gets a worker count, zero included, so "no workers for a
        // queue with jobs" is a plain comparison rather than an absent series.
        let mut per_queue: BTreeMap<&str, u64> = queues.iter().map(|q| (&*q.name, 0)).collect();
        for (q, n) in &workers.per_queue {
            per_queue.insert(q, *n);
        }
        for q in queues {
            let labels = QueueLabels {
                queue: q.name.clone(),
            };
            for (state, n) in &q.counts {
                self.jobs
                    .get_or_create(&QueueStateLabels {
                        queue: q.name.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
            let age_ms = q.oldest_available_age_ms.unwrap_or(0).max(0);
            self.oldest_available
                .get_or_create(&labels)
                .set(age_ms as f64 / 1000.0);
            self.paused.get_or_create(&labels).set(i64::from(q.paused));
        }
        for (q, n) in per_queue {
            self.queue_workers
                .get_or_create(&QueueLabels {
                    queue: q.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.workers_seen
            .set(i64::try_from(workers.seen).unwrap_or(i64::MAX));
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
        let (mut j, _) = hopper_types::lifecycle::insert(new, Timestamp(0));
        j.state = state;
        j
    }

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::new();
        m.job_enqueued(&job("emails", JobState::Available));
        m.leases_rescued(
            &[
                job("emails", JobState::Retryable),
                job("emails", JobState::Dead),
            ],
            Timestamp(0),
        );
        m.http_request("/v1/jobs".into(), "POST", 201, 0.002);
        let mut counts = BTreeMap::new();
        counts.insert(JobState::Available, 3);
        let workers = WorkerCounts {
            seen: 2,
            per_queue: [("other".to_string(), 1)].into_iter().collect(),
        };
        let text = m.render(
            &[QueueInfo {
                name: "emails".into(),
                paused: true,
                counts,
                oldest_available_age_ms: Some(1_500),
                config: Default::default(),
            }],
            &workers,
        );
        // Rescues count per queue, as failed attempts, and a rescue that ends a job as dead.
        for line in [
            r#"hopper_jobs_enqueued_total{queue="emails",kind="k"} 1"#,
            r#"hopper_lease_rescues_total{queue="emails"} 2"#,
            r#"hopper_jobs_failed_total{queue="emails",kind="k"} 2"#,
            r#"hopper_jobs_dead_total{queue="emails",kind="k"} 1"#,
            r#"hopper_jobs{queue="emails",state="available"} 3"#,
            r#"hopper_queue_oldest_available_age_seconds{queue="emails"} 1.5"#,
            r#"hopper_queue_paused{queue="emails"} 1"#,
            r#"hopper_queue_workers{queue="emails"} 0"#,
            r#"hopper_queue_workers{queue="other"} 1"#,
            "hopper_workers_seen 2",
            r#"hopper_http_requests_total{route="/v1/jobs",method="POST",status="201"} 1"#,
            r#"hopper_http_request_duration_seconds_count{route="/v1/jobs",method="POST",status_class="2xx"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line}: {text}");
        }
        // Lease expiry says nothing about how long the work took.
        assert!(
            text.contains(r#"hopper_run_time_seconds_count{queue="emails",kind="k"} 0"#),
            "{text}"
        );
        let totals = &m.activity().snapshot(Timestamp(0), None).queues;
        assert_eq!(
            (totals[0].enqueued, totals[0].failed, totals[0].dead),
            (1, 2, 1)
        );
    }
}
