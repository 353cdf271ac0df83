//! Recent activity of this node, per queue, in one-second buckets over the last five minutes:
//! what `GET /v1/stats` answers for the web UI's charts.
//!
//! Prometheus counters are the long-term record; this ring exists so the UI can draw the last
//! few minutes without a Prometheus server. It is fed by the same calls that bump the counters,
//! so the two agree.
//!
//! Each queue has its own ring behind a short mutex (the hot path: find or open the bucket of the
//! event's second, add to it). Only seconds that saw activity hold a bucket, so an idle queue
//! costs next to nothing. Queue latency keeps, besides its sum and count, a sample of at most
//! [`SAMPLES_PER_BUCKET`] values per bucket (every value while there are few; a uniform
//! reservoir sample beyond), from which the 95th percentile is read: exact for up to that many
//! leases per queue and second, an estimate above.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use hopper_types::Timestamp;
use serde::Serialize;

/// Width of a bucket.
pub const BUCKET_MS: i64 = 1_000;
/// Buckets answered: five minutes of seconds.
pub const WINDOW_BUCKETS: usize = 300;
/// Queue latency values kept per queue and bucket for the percentile.
pub const SAMPLES_PER_BUCKET: usize = 64;

/// One second of one queue.
#[derive(Debug, Clone, Default)]
struct Bucket {
    // Seconds since the epoch (the bucket covers [sec, sec + 1) s).
    sec: i64,
    enqueued: u64,
    started: u64,
    completed: u64,
    failed: u64,
    dead: u64,
    latency_sum_ms: f64,
    latency_n: u64,
    // At most SAMPLES_PER_BUCKET values; allocated only when a lease happens in this second.
    latency_samples: Vec<f32>,
    run_sum_ms: f64,
    run_n: u64,
}

/// The ring of one queue: buckets oldest first, only for seconds that saw activity.
#[derive(Debug)]
struct Ring {
    buckets: VecDeque<Bucket>,
    // xorshift state for the reservoir sample: cheap, and no system call on the hot path.
    rng: u64,
}

/// The recent activity of one queue. Shared (`Arc`) with the metric handles of its kinds, so
/// recording does not look the queue up again.
#[derive(Debug)]
pub struct QueueActivity {
    ring: Mutex<Ring>,
}

/// What happened, for [`QueueActivity::record`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A job was created.
    Enqueued,
    /// A job was leased after waiting `latency_ms` while available.
    Started {
        /// Milliseconds from available to leased.
        latency_ms: f64,
    },
    /// A job was completed after running `run_ms`.
    Completed {
        /// Milliseconds from lease to completion, when known.
        run_ms: Option<f64>,
    },
    /// An attempt failed (reported by the worker, or its lease ran out).
    Failed {
        /// Milliseconds the attempt ran, when a worker ended it.
        run_ms: Option<f64>,
        /// The failure made the job dead.
        dead: bool,
    },
}

fn second_of(t: Timestamp) -> i64 {
    t.0.div_euclid(BUCKET_MS)
}

impl Default for QueueActivity {
    fn default() -> Self {
        QueueActivity {
            ring: Mutex::new(Ring {
                buckets: VecDeque::new(),
                rng: 0x9E37_79B9_7F4A_7C15,
            }),
        }
    }
}

impl QueueActivity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Every update leaves the ring consistent, so a panic elsewhere poisons nothing real.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` as happening at `at`.
    pub fn record(&self, at: Timestamp, event: Event) {
        let sec = second_of(at);
        let mut ring = self.lock();
        let Ring { buckets, rng } = &mut *ring;
        let Some(b) = bucket_for(buckets, sec) else {
            return;
        };
        match event {
            Event::Enqueued => b.enqueued += 1,
            Event::Started { latency_ms } => {
                b.started += 1;
                b.latency_sum_ms += latency_ms;
                b.latency_n += 1;
                let v = latency_ms as f32;
                if b.latency_samples.len() < SAMPLES_PER_BUCKET {
                    b.latency_samples.push(v);
                } else {
                    // Reservoir sampling: the n-th value replaces a kept one with probability
                    // k/n, so the kept values stay a uniform sample of all of them.
                    let j = next_random(rng) % b.latency_n;
                    if let Some(slot) = usize::try_from(j)
                        .ok()
                        .and_then(|j| b.latency_samples.get_mut(j))
                    {
                        *slot = v;
                    }
                }
            }
            Event::Completed { run_ms } => {
                b.completed += 1;
                add_run(b, run_ms);
            }
            Event::Failed { run_ms, dead } => {
                b.failed += 1;
                if dead {
                    b.dead += 1;
                }
                add_run(b, run_ms);
            }
        }
    }
}

fn add_run(b: &mut Bucket, run_ms: Option<f64>) {
    if let Some(ms) = run_ms {
        b.run_sum_ms += ms;
        b.run_n += 1;
    }
}

fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// The bucket of second `sec`, opened if needed; none when `sec` is already out of the window.
/// Events come almost always in order, so the newest bucket is nearly always the one; an event
/// a little late (its time was read before another thread's) finds or opens its bucket in place.
fn bucket_for(buckets: &mut VecDeque<Bucket>, sec: i64) -> Option<&mut Bucket> {
    let newest = buckets.back().map(|b| b.sec);
    let window = WINDOW_BUCKETS as i64;
    match newest {
        Some(n) if n == sec => {}
        None => buckets.push_back(Bucket {
            sec,
            ..Bucket::default()
        }),
        Some(n) if n < sec => {
            buckets.push_back(Bucket {
                sec,
                ..Bucket::default()
            });
            while buckets.front().is_some_and(|b| b.sec <= sec - window) {
                buckets.pop_front();
            }
        }
        Some(n) => {
            if sec <= n - window {
                return None;
            }
            // Buckets are in order: the first one not older than `sec` is it, or where it goes.
            let at = buckets.partition_point(|b| b.sec < sec);
            if buckets.get(at).is_none_or(|b| b.sec != sec) {
                buckets.insert(
                    at,
                    Bucket {
                        sec,
                        ..Bucket::default()
                    },
                );
            }
            return buckets.get_mut(at);
        }
    }
    buckets.back_mut()
}

/// One second of the answer: activity of the chosen queues during it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// Start of the second.
    pub at: Timestamp,
    /// Jobs created.
    pub enqueued: u64,
    /// Jobs leased.
    pub started: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Failed attempts (reported, or ended by lease expiry or timeout).
    pub failed: u64,
    /// Jobs that became dead.
    pub dead: u64,
    /// Mean time from available to leased of the jobs leased in this second; null when none.
    pub queue_latency_ms_avg: Option<f64>,
    /// 95th percentile of the same; null when none.
    pub queue_latency_ms_p95: Option<f64>,
    /// Mean run time of the attempts workers ended in this second; null when none.
    pub run_time_ms_avg: Option<f64>,
}

/// Totals of one queue over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueTotals {
    /// The queue.
    pub queue: String,
    /// Jobs created.
    pub enqueued: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Jobs that became dead.
    pub dead: u64,
}

/// What [`Activity::snapshot`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Exactly [`WINDOW_BUCKETS`] seconds, oldest first, the last one being the current second.
    pub series: Vec<Point>,
    /// Every queue with activity in the window, by name.
    pub queues: Vec<QueueTotals>,
}

/// The recent activity of every queue of this node.
#[derive(Debug, Default)]
pub struct Activity {
    queues: RwLock<BTreeMap<String, Arc<QueueActivity>>>,
}

// Per-second sums while merging queues.
#[derive(Debug, Default)]
struct Merge {
    enqueued: u64,
    started: u64,
    completed: u64,
    failed: u64,
    dead: u64,
    latency_sum_ms: f64,
    latency_n: u64,
    // (value, weight): each kept sample stands for latency_n / kept values of its queue.
    latency_samples: Vec<(f32, f64)>,
    run_sum_ms: f64,
    run_n: u64,
}

impl Activity {
    /// The ring of `queue`, created on first use.
    pub fn queue(&self, queue: &str) -> Arc<QueueActivity> {
        if let Some(q) = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(queue)
        {
            return q.clone();
        }
        self.queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(queue.to_string())
            .or_default()
            .clone()
    }

    /// The last [`WINDOW_BUCKETS`] seconds up to `now`, of `only` that queue when given (the
    /// totals always cover every queue). Buckets that fell out of the window are dropped here.
    pub fn snapshot(&self, now: Timestamp, only: Option<&str>) -> Snapshot {
        let newest = second_of(now);
        let oldest = newest - (WINDOW_BUCKETS as i64 - 1);
        let mut merged: Vec<Merge> = (0..WINDOW_BUCKETS).map(|_| Merge::default()).collect();
        let mut queues = Vec::new();
        let rings: Vec<(String, Arc<QueueActivity>)> = self
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, activity) in rings {
            let mut ring = activity.lock();
            while ring.buckets.front().is_some_and(|b| b.sec < oldest) {
                ring.buckets.pop_front();
            }
            if ring.buckets.is_empty() {
                // An idle queue gives its memory back.
                ring.buckets.shrink_to_fit();
                continue;
            }
            let in_series = only.is_none_or(|q| q == name);
            let mut totals = QueueTotals {
                queue: name,
                enqueued: 0,
                completed: 0,
                failed: 0,
                dead: 0,
            };
            let mut any = false;
            for b in ring.buckets.iter().filter(|b| b.sec <= newest) {
                any = true;
                totals.enqueued += b.enqueued;
                totals.completed += b.completed;
                totals.failed += b.failed;
                totals.dead += b.dead;
                if !in_series {
                    continue;
                }
                let Some(m) = usize::try_from(b.sec - oldest)
                    .ok()
                    .and_then(|i| merged.get_mut(i))
                else {
                    continue;
                };
                m.enqueued += b.enqueued;
                m.started += b.started;
                m.completed += b.completed;
                m.failed += b.failed;
                m.dead += b.dead;
                m.latency_sum_ms += b.latency_sum_ms;
                m.latency_n += b.latency_n;
                m.run_sum_ms += b.run_sum_ms;
                m.run_n += b.run_n;
                if !b.latency_samples.is_empty() {
                    let weight = b.latency_n as f64 / b.latency_samples.len() as f64;
                    m.latency_samples
                        .extend(b.latency_samples.iter().map(|&v| (v, weight)));
                }
            }
            if any {
                queues.push(totals);
            }
        }
        let series = merged
            .into_iter()
            .zip(oldest..)
            .map(|(m, sec)| Point {
                at: Timestamp(sec * BUCKET_MS),
                enqueued: m.enqueued,
                started: m.started,
                completed: m.completed,
                failed: m.failed,
                dead: m.dead,
                queue_latency_ms_avg: mean(m.latency_sum_ms, m.latency_n),
                queue_latency_ms_p95: percentile(m.latency_samples, 0.95),
                run_time_ms_avg: mean(m.run_sum_ms, m.run_n),
            })
            .collect();
        Snapshot { series, queues }
    }
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

/// The weighted nearest-rank percentile `q` of `samples`: the smallest value whose cumulative
/// weight reaches `q` of the total. With unit weights that is the value of rank ⌈q·n⌉.
fn percentile(mut samples: Vec<(f32, f64)>, q: f64) -> Option<f64> {
    let total: f64 = samples.iter().map(|(_, w)| w).sum();
    if samples.is_empty() || total <= 0.0 {
        return None;
    }
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The tolerance absorbs rounding in q·total (0.95 × 20 is not exactly 19 in binary).
    let target = q * total - 1e-9 * total.max(1.0);
    let mut cumulative = 0.0;
    for (v, w) in &samples {
        cumulative += w;
        if cumulative >= target {
            return Some(f64::from(*v));
        }
    }
    samples.last().map(|(v, _)| f64::from(*v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp(T0 + ms)
    }

    #[test]
    fn answers_exactly_the_window_oldest_first_ending_now() {
        let a = Activity::default();
        let s = a.snapshot(at(1_500), None);
        assert_eq!(s.series.len(), WINDOW_BUCKETS);
        assert_eq!(s.series.last().unwrap().at, at(1_000));
        assert_eq!(
            s.series[0].at,
            at(1_000 - (WINDOW_BUCKETS as i64 - 1) * 1_000)
        );
        for w in s.series.windows(2) {
            assert_eq!(w[1].at.millis_since(w[0].at), BUCKET_MS);
        }
        assert!(s.queues.is_empty());
        let quiet = &s.series[10];
        assert_eq!(
            (
                quiet.enqueued,
                quiet.queue_latency_ms_avg,
                quiet.run_time_ms_avg
            ),
            (0, None, None)
        );
    }

    #[test]
    fn events_land_in_their_second_and_roll_out_of_the_window() {
        let a = Activity::default();
        let q = a.queue("emails");
        q.record(at(0), Event::Enqueued);
        q.record(at(999), Event::Enqueued);
        q.record(at(1_000), Event::Enqueued);
        q.record(
            at(1_200),
            Event::Failed {
                run_ms: Some(10.0),
                dead: true,
            },
        );
        // A late event (its time read before the one above was recorded) still lands right.
        q.record(at(500), Event::Completed { run_ms: Some(30.0) });
        let s = a.snapshot(at(1_999), None);
        let last = &s.series[WINDOW_BUCKETS - 1];
        let before = &s.series[WINDOW_BUCKETS - 2];
        assert_eq!((before.enqueued, before.completed), (2, 1));
        assert_eq!((last.enqueued, last.failed, last.dead), (1, 1, 1));
        assert_eq!(before.run_time_ms_avg, Some(30.0));
        assert_eq!(last.run_time_ms_avg, Some(10.0));
        assert_eq!(
            s.queues,
            vec![QueueTotals {
                queue: "emails".into(),
                enqueued: 3,
                completed: 1,
                failed: 1,
                dead: 1,
            }]
        );

        // 299 s later the first second is the oldest one still shown...
        let s = a.snapshot(at(299_000), None);
        assert_eq!(s.series[0].at, at(0));
        assert_eq!(s.series[0].enqueued, 2);
        assert_eq!(s.queues[0].enqueued, 3);
        // ...one more second and it is gone, from the series and from the totals.
        let s = a.snapshot(at(300_000), None);
        assert_eq!(s.series[0].at, at(1_000));
        assert_eq!(s.series[0].enqueued, 1);
        assert_eq!(s.queues[0].enqueued, 1);
        // An event older than the window is dropped rather than misplaced.
        q.record(at(-5_000), Event::Enqueued);
        assert_eq!(a.snapshot(at(300_000), None).queues[0].enqueued, 1);
        // Recording far ahead drops what fell behind the window.
        q.record(at(900_000), Event::Enqueued);
        assert_eq!(q.lock().buckets.len(), 1);
        let s = a.snapshot(at(2_000_000), None);
        assert!(s.queues.is_empty(), "{:?}", s.queues);
        assert!(s.series.iter().all(|p| p.enqueued == 0));
    }

    #[test]
    fn latency_mean_and_95th_percentile() {
        let a = Activity::default();
        let q = a.queue("a");
        // 1..=20 ms: mean 10.5; nearest-rank p95 is the 19th value.
        for ms in (1..=20).rev() {
            q.record(
                at(100),
                Event::Started {
                    latency_ms: f64::from(ms),
                },
            );
        }
        let p = a.snapshot(at(100), None).series[WINDOW_BUCKETS - 1].clone();
        assert_eq!(p.started, 20);
        assert_eq!(p.queue_latency_ms_avg, Some(10.5));
        assert_eq!(p.queue_latency_ms_p95, Some(19.0));
        assert_eq!(p.run_time_ms_avg, None);

        // One value: it is both the mean and the percentile.
        let b = a.queue("b");
        b.record(at(100), Event::Started { latency_ms: 7.0 });
        let only_b = a.snapshot(at(100), Some("b")).series[WINDOW_BUCKETS - 1].clone();
        assert_eq!(only_b.queue_latency_ms_avg, Some(7.0));
        assert_eq!(only_b.queue_latency_ms_p95, Some(7.0));
        assert_eq!(only_b.started, 1);
        // Both queues together: 21 values, rank ⌈0.95 × 21⌉ = 20 → 19 ms (7 sorts in).
        let both = a.snapshot(at(100), None).series[WINDOW_BUCKETS - 1].clone();
        assert_eq!(both.started, 21);
        assert_eq!(both.queue_latency_ms_p95, Some(19.0));
        let avg = both.queue_latency_ms_avg.unwrap();
        assert!((avg - 217.0 / 21.0).abs() < 1e-9, "{avg}");
        // The filter restricts the series only; totals still list every queue.
        assert_eq!(a.snapshot(at(100), Some("b")).queues.len(), 2);
        assert!(
            a.snapshot(at(100), Some("nope"))
                .series
                .iter()
                .all(|p| p.started == 0)
        );
    }

    #[test]
    fn many_leases_in_one_second_keep_a_bounded_sample() {
        let a = Activity::default();
        let q = a.queue("busy");
        // 10,000 leases: 95 % at 1 ms, 5 % at 1,000 ms (interleaved).
        for i in 0..10_000 {
            let latency_ms = if i % 20 == 0 { 1_000.0 } else { 1.0 };
            q.record(at(0), Event::Started { latency_ms });
        }
        assert_eq!(
            q.lock().buckets[0].latency_samples.len(),
            SAMPLES_PER_BUCKET
        );
        let p = a.snapshot(at(0), None).series[WINDOW_BUCKETS - 1].clone();
        assert_eq!(p.started, 10_000);
        assert!((p.queue_latency_ms_avg.unwrap() - 50.95).abs() < 1e-6);
        let p95 = p.queue_latency_ms_p95.unwrap();
        assert!(p95 == 1.0 || p95 == 1_000.0, "{p95}");
    }

    #[test]
    fn weighted_percentile() {
        assert_eq!(percentile(vec![], 0.95), None);
        // A sample standing for many values outweighs a single one.
        assert_eq!(percentile(vec![(5.0, 1.0), (1.0, 99.0)], 0.95), Some(1.0));
        assert_eq!(percentile(vec![(5.0, 10.0), (1.0, 90.0)], 0.95), Some(5.0));
    }
}
