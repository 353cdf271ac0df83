//! Which jobs a lease takes from a queue whose configuration shapes leases (limits, fairness,
//! shortest job first), decided once for every backend.
//!
//! A backend holds the queue's lease lock (the single writer on SQLite, the queue row on
//! PostgreSQL), reads a [`FlowSnapshot`] (configuration, running counts, token buckets,
//! fairness clocks), lists the queue's *groups* (distinct keys with available jobs, by
//! [`Grouping`]) and then runs rounds:
//!
//! ```text
//! let mut plan = LeasePlan::new(snapshot, max_jobs, groups);
//! while let Some(fetches) = plan.next_fetches() {
//!     for f in fetches { let rows = fetch(f.group, f.offset, f.limit); plan.feed(&f, rows); }
//! }
//! let picked = plan.picked();            // in lease order
//! let update = plan.flow_update(&leased); // buckets and clocks to store
//! ```
//!
//! Each fetch reads one group's available jobs in the queue's order, skipping the ones earlier
//! rounds read, so the work is proportional to the jobs leased and the groups present, never
//! to the backlog: a customer with a million blocked jobs costs one index probe.
//!
//! Fairness is start-time fair queuing: each key has a virtual time that grows by `1/weight`
//! per lease; the key with the smallest one goes next; a key that was idle rejoins at the
//! queue's current virtual time (not at its own old one), so it cannot claim a backlog of turns.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

use hopper_types::{Bucket, Job, QueueConfig, QueuePolicy, Timestamp};

/// How a queue's available jobs are split into groups for fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One group: the whole queue.
    Whole,
    /// By `concurrency_key` (`""` for jobs without one): the queue limits keys.
    ConcurrencyKey,
    /// By `fairness_key` (`""` for jobs without one): the queue is fair.
    FairnessKey,
}

impl Grouping {
    /// The grouping a configuration needs.
    pub fn of(config: &QueueConfig) -> Grouping {
        if config.policy == QueuePolicy::Fair {
            Grouping::FairnessKey
        } else if config.limits_keys() {
            Grouping::ConcurrencyKey
        } else {
            Grouping::Whole
        }
    }
}

/// What a backend knows about a queue when it leases from it.
#[derive(Debug, Clone, Default)]
pub struct FlowSnapshot {
    /// The queue's configuration.
    pub config: QueueConfig,
    /// The store's time.
    pub now: Timestamp,
    /// Jobs of the queue running now.
    pub running: u64,
    /// Running jobs per non-empty `concurrency_key` (only read when the queue limits keys).
    pub running_by_key: HashMap<String, u64>,
    /// The queue's rate bucket (none: full).
    pub rate_bucket: Option<Bucket>,
    /// Per-key rate buckets (absent: full).
    pub key_buckets: HashMap<String, Bucket>,
    /// The fair queue's virtual time.
    pub fair_clock: f64,
    /// Each fairness key's virtual time (absent: the clock).
    pub fair_times: HashMap<String, f64>,
}

/// One read a round needs: up to `limit` available jobs of `group` (all of the queue for
/// [`Grouping::Whole`]), in the queue's order, after skipping the first `offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// The group's key.
    pub group: String,
    /// Rows to skip (read by earlier rounds and still available).
    pub offset: usize,
    /// Rows wanted.
    pub limit: usize,
}

impl FlowSnapshot {
    /// Takes in one stored flow row (see [`FlowUpdate::rows`]); unknown kinds are ignored.
    pub fn absorb_row(&mut self, kind: &str, key: String, value: f64, at: Timestamp) {
        let bucket = Bucket { tokens: value, at };
        match kind {
            "rate" => self.rate_bucket = Some(bucket),
            "key_rate" => {
                self.key_buckets.insert(key, bucket);
            }
            "fair_clock" => self.fair_clock = value,
            "fair" => {
                self.fair_times.insert(key, value);
            }
            _ => {}
        }
    }
}

/// One stored row of a queue's flow state: `(kind, key, value, at)`. Kinds: `rate` (key
/// `""`) and `key_rate` (per concurrency key) are token buckets, value = tokens at `at`;
/// `fair_clock` (key `""`) and `fair` (per fairness key) are fair-queuing virtual times.
pub type FlowRow = (&'static str, String, f64, Timestamp);

/// Buckets and clocks to store after a lease.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowUpdate {
    /// The queue's rate bucket, when it has a rate.
    pub rate_bucket: Option<Bucket>,
    /// Per-key rate buckets that changed.
    pub key_buckets: Vec<(String, Bucket)>,
    /// The fair clock, when the queue is fair and something was leased.
    pub fair_clock: Option<f64>,
    /// Fairness keys' virtual times that changed.
    pub fair_times: Vec<(String, f64)>,
}

impl FlowUpdate {
    /// The rows to upsert, in the shape [`FlowSnapshot::absorb_row`] reads back.
    pub fn rows(&self) -> Vec<FlowRow> {
        let mut rows = Vec::new();
        if let Some(b) = self.rate_bucket {
            rows.push(("rate", String::new(), b.tokens, b.at));
        }
        for (key, b) in &self.key_buckets {
            rows.push(("key_rate", key.clone(), b.tokens, b.at));
        }
        if let Some(clock) = self.fair_clock {
            rows.push(("fair_clock", String::new(), clock, Timestamp(0)));
        }
        for (key, t) in &self.fair_times {
            rows.push(("fair", key.clone(), *t, Timestamp(0)));
        }
        rows
    }
}

/// Most rounds one lease runs; each either picks a job, drops a blocked one or finds a group
/// empty, so this only bounds pathological cases (then the lease takes what it found).
pub const MAX_ROUNDS: usize = 32;

struct Group<T> {
    key: String,
    buffer: VecDeque<(Job, T)>,
    read: usize,
    exhausted: bool,
}

/// One lease's decision; see the module documentation for the protocol.
pub struct LeasePlan<T> {
    snap: FlowSnapshot,
    grouping: Grouping,
    want: usize,
    groups: Vec<Group<T>>,
    picked: Vec<(Job, T)>,
    taken_by_key: HashMap<String, u64>,
    times: HashMap<String, f64>,
    clock: f64,
    rounds: usize,
}

/// The lease order of a queue: priority, then (shortest first) the estimate, then age, then id.
pub fn lease_order(policy: QueuePolicy, a: &Job, b: &Job) -> Ordering {
    let est = |j: &Job| j.estimated_ms.unwrap_or(i64::MAX);
    b.priority
        .cmp(&a.priority)
        .then_with(|| {
            if policy == QueuePolicy::ShortestFirst {
                est(a).cmp(&est(b))
            } else {
                Ordering::Equal
            }
        })
        .then(a.available_at.cmp(&b.available_at))
        .then_with(|| a.id.cmp(&b.id))
}

/// Merges the picks of several queues (each list in its own queue's lease order) into one
/// lease of at most `max` jobs, as if the queues were one: the next job is always the best
/// head by priority, then age. Each queue's own order (fair turns, shortest first) is kept.
pub fn merge_queues<T>(lists: Vec<Vec<(Job, T)>>, max: usize) -> Vec<(Job, T)> {
    let mut lists: Vec<VecDeque<(Job, T)>> = lists.into_iter().map(VecDeque::from).collect();
    let mut out = Vec::new();
    while out.len() < max {
        let best = (0..lists.len())
            .filter(|&i| !lists[i].is_empty())
            .min_by(|&a, &b| lease_order(QueuePolicy::Priority, &lists[a][0].0, &lists[b][0].0));
        match best.and_then(|i| lists[i].pop_front()) {
            Some(item) => out.push(item),
            None => break,
        }
    }
    out
}

impl<T> LeasePlan<T> {
    /// A plan for at most `max_jobs` jobs over the queue's `groups` (ignored for
    /// [`Grouping::Whole`]).
    pub fn new(snap: FlowSnapshot, max_jobs: usize, groups: Vec<String>) -> LeasePlan<T> {
        let grouping = Grouping::of(&snap.config);
        let c = &snap.config;
        let mut want = max_jobs as u64;
        if c.paused {
            want = 0;
        }
        if let Some(cap) = c.concurrency {
            want = want.min(u64::from(cap).saturating_sub(snap.running));
        }
        if let Some(r) = &c.rate {
            want = want.min(r.available(snap.rate_bucket, snap.now));
        }
        let keys = match grouping {
            Grouping::Whole => vec![String::new()],
            _ => groups,
        };
        let groups = keys
            .into_iter()
            .map(|key| Group {
                key,
                buffer: VecDeque::new(),
                read: 0,
                exhausted: false,
            })
            .collect();
        LeasePlan {
            clock: snap.fair_clock,
            times: snap.fair_times.clone(),
            snap,
            grouping,
            want: want as usize,
            groups,
            picked: Vec::new(),
            taken_by_key: HashMap::new(),
            rounds: 0,
        }
    }

    /// The grouping the fetches use.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }

    /// How many more starts `key` may take now (per-key concurrency and rate).
    fn key_allowance(&self, key: &str) -> u64 {
        if key.is_empty() {
            return u64::MAX;
        }
        let c = &self.snap.config;
        let taken = self.taken_by_key.get(key).copied().unwrap_or(0);
        let mut allow = u64::MAX;
        if let Some(cap) = c.key_concurrency {
            let running = self.snap.running_by_key.get(key).copied().unwrap_or(0);
            allow = allow.min(u64::from(cap).saturating_sub(running + taken));
        }
        if let Some(r) = &c.key_rate {
            let bucket = self.snap.key_buckets.get(key).copied();
            allow = allow.min(r.available(bucket, self.snap.now).saturating_sub(taken));
        }
        allow
    }

    fn fair_time(&self, key: &str) -> f64 {
        self.times
            .get(key)
            .copied()
            .unwrap_or(self.clock)
            .max(self.clock)
    }

    fn remaining(&self) -> usize {
        self.want.saturating_sub(self.picked.len())
    }

    fn take(&mut self, group: usize) {
        let Some((job, t)) = self.groups[group].buffer.pop_front() else {
            return;
        };
        if let Some(k) = job.concurrency_key.as_deref() {
            *self.taken_by_key.entry(k.to_string()).or_default() += 1;
        }
        if self.grouping == Grouping::FairnessKey {
            let key = self.groups[group].key.clone();
            let start = self.fair_time(&key);
            self.clock = start;
            let weight = f64::from(self.snap.config.weight(&key));
            self.times.insert(key, start + 1.0 / weight);
        }
        self.picked.push((job, t));
    }

    /// Picks from what has been read, as far as the order allows without reading more.
    fn pick(&mut self) {
        while self.remaining() > 0 {
            let progressed = match self.grouping {
                Grouping::FairnessKey => self.pick_fair(),
                _ => self.pick_ordered(),
            };
            if !progressed {
                return;
            }
        }
    }

    /// Fair: the key with the smallest virtual time goes next; its blocked jobs are dropped.
    fn pick_fair(&mut self) -> bool {
        let Some(g) = self.fair_next() else {
            return false;
        };
        let Some((job, _)) = self.groups[g].buffer.front() else {
            return false; // its next job must be read first
        };
        let key = job.concurrency_key.clone().unwrap_or_default();
        if self.key_allowance(&key) == 0 {
            self.groups[g].buffer.pop_front();
            return true;
        }
        self.take(g);
        true
    }

    /// The fairness group whose turn it is: smallest virtual time among groups with jobs.
    fn fair_next(&self) -> Option<usize> {
        (0..self.groups.len())
            .filter(|&i| !(self.groups[i].exhausted && self.groups[i].buffer.is_empty()))
            .min_by(|&a, &b| {
                let (ka, kb) = (&self.groups[a].key, &self.groups[b].key);
                self.fair_time(ka)
                    .total_cmp(&self.fair_time(kb))
                    .then_with(|| ka.cmp(kb))
            })
    }

    /// Ordered (priority or shortest first, maybe per-key limits): the best head among the
    /// groups still allowed, once every such group's head is known.
    fn pick_ordered(&mut self) -> bool {
        let policy = self.snap.config.policy;
        let mut best: Option<usize> = None;
        for i in 0..self.groups.len() {
            if self.key_allowance(&self.groups[i].key) == 0 {
                continue;
            }
            let g = &self.groups[i];
            match g.buffer.front() {
                None if g.exhausted => {}
                None => return false, // this group's head is unknown: read it first
                Some((job, _)) => {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let (bj, _) = &self.groups[b].buffer[0];
                            lease_order(policy, job, bj) == Ordering::Less
                        }
                    };
                    if better {
                        best = Some(i);
                    }
                }
            }
        }
        match best {
            Some(i) => {
                self.take(i);
                true
            }
            None => false,
        }
    }

    /// The reads the next round needs, or `None` when the plan is final.
    pub fn next_fetches(&mut self) -> Option<Vec<Fetch>> {
        self.pick();
        if self.remaining() == 0 || self.rounds >= MAX_ROUNDS {
            return None;
        }
        self.rounds += 1;
        let remaining = self.remaining();
        let mut fetches = Vec::new();
        match self.grouping {
            Grouping::FairnessKey => {
                // Simulate the next `remaining` turns to learn how many jobs each key needs.
                let mut times: HashMap<usize, f64> = HashMap::new();
                let mut need: HashMap<usize, usize> = HashMap::new();
                let live: Vec<usize> = (0..self.groups.len())
                    .filter(|&i| !(self.groups[i].exhausted && self.groups[i].buffer.is_empty()))
                    .collect();
                for _ in 0..remaining {
                    let Some(&g) = live.iter().min_by(|&&a, &&b| {
                        let ta = times
                            .get(&a)
                            .copied()
                            .unwrap_or_else(|| self.fair_time(&self.groups[a].key));
                        let tb = times
                            .get(&b)
                            .copied()
                            .unwrap_or_else(|| self.fair_time(&self.groups[b].key));
                        ta.total_cmp(&tb)
                            .then_with(|| self.groups[a].key.cmp(&self.groups[b].key))
                    }) else {
                        break;
                    };
                    let key = &self.groups[g].key;
                    let t = times
                        .get(&g)
                        .copied()
                        .unwrap_or_else(|| self.fair_time(key));
                    times.insert(g, t + 1.0 / f64::from(self.snap.config.weight(key)));
                    *need.entry(g).or_default() += 1;
                }
                let mut order: Vec<_> = need.into_iter().collect();
                order.sort();
                for (g, n) in order {
                    let group = &self.groups[g];
                    let missing = n.saturating_sub(group.buffer.len());
                    if missing > 0 && !group.exhausted {
                        fetches.push(Fetch {
                            group: group.key.clone(),
                            offset: group.read,
                            limit: missing,
                        });
                    }
                }
            }
            _ => {
                for g in &self.groups {
                    let allow = self.key_allowance(&g.key);
                    if g.buffer.is_empty() && !g.exhausted && allow > 0 {
                        fetches.push(Fetch {
                            group: g.key.clone(),
                            offset: g.read,
                            limit: remaining.min(allow.min(usize::MAX as u64) as usize),
                        });
                    }
                }
            }
        }
        if fetches.is_empty() {
            None
        } else {
            Some(fetches)
        }
    }

    /// Hands over what a fetch read, in the queue's order.
    pub fn feed(&mut self, fetch: &Fetch, rows: Vec<(Job, T)>) {
        let Some(g) = self.groups.iter_mut().find(|g| g.key == fetch.group) else {
            return;
        };
        g.exhausted = rows.len() < fetch.limit;
        g.read += rows.len();
        g.buffer.extend(rows);
    }

    /// The jobs to lease, in lease order.
    pub fn into_picked(self) -> (Vec<(Job, T)>, FlowPlanState) {
        let state = FlowPlanState { snap: self.snap };
        (self.picked, state)
    }
}

/// What the plan needs to compute the [`FlowUpdate`] once the lease is final (a lease over
/// several queues may take fewer jobs than were picked).
pub struct FlowPlanState {
    snap: FlowSnapshot,
}

impl FlowPlanState {
    /// The buckets and clocks to store for the jobs actually leased from this queue.
    pub fn update(&self, leased: &[&Job]) -> FlowUpdate {
        let c = &self.snap.config;
        let now = self.snap.now;
        let mut out = FlowUpdate::default();
        if leased.is_empty() {
            return out;
        }
        if let Some(r) = &c.rate {
            out.rate_bucket = Some(r.take(self.snap.rate_bucket, now, leased.len() as u64));
        }
        if let Some(r) = &c.key_rate {
            let mut per_key: HashMap<&str, u64> = HashMap::new();
            for j in leased {
                if let Some(k) = j.concurrency_key.as_deref() {
                    *per_key.entry(k).or_default() += 1;
                }
            }
            let mut keys: Vec<_> = per_key.into_iter().collect();
            keys.sort();
            for (k, n) in keys {
                let b = self.snap.key_buckets.get(k).copied();
                out.key_buckets.push((k.to_string(), r.take(b, now, n)));
            }
        }
        if c.policy == QueuePolicy::Fair {
            // Recompute the times from the snapshot for exactly the leased jobs, in order.
            let mut clock = self.snap.fair_clock;
            let mut times: HashMap<String, f64> = HashMap::new();
            for j in leased {
                let key = j.fairness_key.clone().unwrap_or_default();
                let own = times
                    .get(&key)
                    .or_else(|| self.snap.fair_times.get(&key))
                    .copied()
                    .unwrap_or(clock);
                let start = own.max(clock);
                clock = start;
                times.insert(key.clone(), start + 1.0 / f64::from(c.weight(&key)));
            }
            out.fair_clock = Some(clock);
            let mut times: Vec<_> = times.into_iter().collect();
            times.sort_by(|a, b| a.0.cmp(&b.0));
            out.fair_times = times;
        }
        out
    }

    /// When a rate (the queue's, or a key's) next allows a start that it does not allow now:
    /// a worker that found nothing looks again then, with nobody polling in between.
    pub fn next_token_at(&self) -> Option<Timestamp> {
        let c = &self.snap.config;
        let now = self.snap.now;
        let mut at: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| {
            if t > now {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if let Some(r) = &c.rate {
            consider(r.next_token_at(self.snap.rate_bucket, now));
        }
        if let Some(r) = &c.key_rate {
            for b in self.snap.key_buckets.values() {
                consider(r.next_token_at(Some(*b), now));
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_types::{EnqueueRequest, EnqueueRequestExt, Limits, RateLimit, lifecycle};

    /// A test job: concurrency key, fairness key, priority, estimated run time.
    type Spec<'a> = (Option<&'a str>, Option<&'a str>, i64, Option<i64>);

    /// An in-memory queue that answers fetches the way a backend's indexes do.
    struct Queue {
        jobs: Vec<Job>,
    }

    impl Queue {
        fn new(specs: &[Spec<'_>]) -> Queue {
            let jobs = specs
                .iter()
                .enumerate()
                .map(|(i, (ckey, fkey, prio, est))| {
                    let req = EnqueueRequest {
                        kind: "k".into(),
                        priority: Some(*prio),
                        concurrency_key: ckey.map(str::to_string),
                        fairness_key: fkey.map(str::to_string),
                        estimated_ms: *est,
                        ..Default::default()
                    };
                    let new = req.validate_default(&Limits::default());
                    lifecycle::insert(new, Timestamp(i as i64)).0
                })
                .collect();
            Queue { jobs }
        }

        fn groups(&self, grouping: Grouping) -> Vec<String> {
            let mut keys: Vec<String> = self.jobs.iter().map(|j| key_of(grouping, j)).collect();
            keys.sort();
            keys.dedup();
            keys
        }

        fn lease(&self, snap: FlowSnapshot, max: usize) -> (Vec<Job>, FlowUpdate) {
            let policy = snap.config.policy;
            let grouping = Grouping::of(&snap.config);
            let mut plan: LeasePlan<()> = LeasePlan::new(snap, max, self.groups(grouping));
            while let Some(fetches) = plan.next_fetches() {
                for f in fetches {
                    let mut rows: Vec<&Job> = self
                        .jobs
                        .iter()
                        .filter(|j| grouping == Grouping::Whole || key_of(grouping, j) == f.group)
                        .collect();
                    rows.sort_by(|a, b| lease_order(policy, a, b));
                    let rows = rows
                        .into_iter()
                        .skip(f.offset)
                        .take(f.limit)
                        .map(|j| (j.clone(), ()))
                        .collect();
                    plan.feed(&f, rows);
                }
            }
            let (picked, state) = plan.into_picked();
            let jobs: Vec<Job> = picked.into_iter().map(|(j, _)| j).collect();
            let update = state.update(&jobs.iter().collect::<Vec<_>>());
            (jobs, update)
        }
    }

    fn key_of(grouping: Grouping, j: &Job) -> String {
        match grouping {
            Grouping::FairnessKey => j.fairness_key.clone().unwrap_or_default(),
            _ => j.concurrency_key.clone().unwrap_or_default(),
        }
    }

    fn snap(config: QueueConfig) -> FlowSnapshot {
        FlowSnapshot {
            config,
            now: Timestamp(1000),
            ..Default::default()
        }
    }

    #[test]
    fn global_concurrency_counts_running_jobs() {
        let q = Queue::new(&[(None, None, 0, None); 10]);
        let mut s = snap(QueueConfig {
            concurrency: Some(3),
            ..Default::default()
        });
        s.running = 1;
        assert_eq!(q.lease(s.clone(), 10).0.len(), 2);
        s.running = 3;
        assert_eq!(q.lease(s, 10).0.len(), 0);
    }

    #[test]
    fn key_concurrency_skips_blocked_keys_without_reading_their_backlog() {
        // Customer a has a long backlog and one job running; b and unkeyed jobs go ahead.
        let mut specs = vec![(Some("a"), None, 5, None); 50];
        specs.push((Some("b"), None, 0, None));
        specs.push((Some("b"), None, 0, None));
        specs.push((None, None, 0, None));
        let q = Queue::new(&specs);
        let mut s = snap(QueueConfig {
            key_concurrency: Some(1),
            ..Default::default()
        });
        s.running_by_key.insert("a".into(), 1);
        let (jobs, _) = q.lease(s, 10);
        let keys: Vec<_> = jobs.iter().map(|j| j.concurrency_key.clone()).collect();
        assert_eq!(keys, vec![Some("b".to_string()), None]);
    }

    #[test]
    fn rates_take_tokens_and_say_when_the_next_comes() {
        let q = Queue::new(&[(Some("a"), None, 0, None); 10]);
        let rate = RateLimit {
            limit: 4,
            period_ms: 1000,
            burst: None,
        };
        let s = snap(QueueConfig {
            rate: Some(rate),
            ..Default::default()
        });
        let (jobs, update) = q.lease(s.clone(), 10);
        assert_eq!(jobs.len(), 4);
        let bucket = update.rate_bucket.unwrap();
        let mut later = s.clone();
        later.rate_bucket = Some(bucket);
        assert_eq!(q.lease(later.clone(), 10).0.len(), 0);
        let (_, st) = LeasePlan::<()>::new(later.clone(), 1, vec![]).into_picked();
        assert_eq!(st.next_token_at(), Some(Timestamp(1250)));
        later.now = Timestamp(1500);
        assert_eq!(q.lease(later, 10).0.len(), 2);

        // Per key: two keys, each with its own bucket of 2.
        let q = Queue::new(&[
            (Some("a"), None, 0, None),
            (Some("a"), None, 0, None),
            (Some("a"), None, 0, None),
            (Some("b"), None, 0, None),
        ]);
        let s = snap(QueueConfig {
            key_rate: Some(RateLimit {
                limit: 2,
                period_ms: 1000,
                burst: None,
            }),
            ..Default::default()
        });
        let (jobs, update) = q.lease(s, 10);
        assert_eq!(jobs.len(), 3);
        assert_eq!(update.key_buckets.len(), 2);
    }

    #[test]
    fn fair_queues_serve_keys_round_robin_by_weight() {
        let mut specs = vec![(None, Some("big"), 0, None); 100];
        specs.extend(vec![(None, Some("small"), 0, None); 3]);
        let q = Queue::new(&specs);
        let s = snap(QueueConfig {
            policy: QueuePolicy::Fair,
            ..Default::default()
        });
        let (jobs, update) = q.lease(s.clone(), 4);
        let keys: Vec<_> = jobs
            .iter()
            .map(|j| j.fairness_key.clone().unwrap())
            .collect();
        assert_eq!(keys, vec!["big", "small", "big", "small"]);
        // The next lease continues from the stored times.
        let mut next = s.clone();
        next.fair_clock = update.fair_clock.unwrap();
        next.fair_times = update.fair_times.into_iter().collect();
        let (jobs, _) = q.lease(next, 2);
        let keys: Vec<_> = jobs
            .iter()
            .map(|j| j.fairness_key.clone().unwrap())
            .collect();
        assert_eq!(keys, vec!["big", "small"]);

        // Weight 3 gets three turns per turn of weight 1.
        let mut w = s.clone();
        w.config.fairness_weights.insert("big".into(), 3);
        let (jobs, _) = q.lease(w, 8);
        let big = jobs
            .iter()
            .filter(|j| j.fairness_key.as_deref() == Some("big"))
            .count();
        assert_eq!(big, 6);
    }

    #[test]
    fn a_returning_key_joins_at_the_clock_not_with_saved_turns() {
        let mut specs = vec![(None, Some("new"), 0, None); 10];
        specs.extend(vec![(None, Some("old"), 0, None); 10]);
        let q = Queue::new(&specs);
        let mut s = snap(QueueConfig {
            policy: QueuePolicy::Fair,
            ..Default::default()
        });
        s.fair_clock = 500.0;
        s.fair_times.insert("old".into(), 500.5);
        let (jobs, _) = q.lease(s, 4);
        let keys: Vec<_> = jobs
            .iter()
            .map(|j| j.fairness_key.clone().unwrap())
            .collect();
        assert_eq!(keys, vec!["new", "old", "new", "old"]);
    }

    #[test]
    fn shortest_first_orders_by_estimate_within_priority() {
        let q = Queue::new(&[
            (None, None, 0, Some(500)),
            (None, None, 0, None),
            (None, None, 0, Some(5)),
            (None, None, 1, Some(10_000)),
        ]);
        let s = snap(QueueConfig {
            policy: QueuePolicy::ShortestFirst,
            ..Default::default()
        });
        let (jobs, _) = q.lease(s, 4);
        let est: Vec<_> = jobs.iter().map(|j| j.estimated_ms).collect();
        assert_eq!(est, vec![Some(10_000), Some(5), Some(500), None]);
    }

    #[test]
    fn limits_compose() {
        let mut specs = vec![(Some("a"), Some("t1"), 0, None); 20];
        specs.extend(vec![(Some("b"), Some("t2"), 0, None); 20]);
        let q = Queue::new(&specs);
        let mut s = snap(QueueConfig {
            policy: QueuePolicy::Fair,
            concurrency: Some(5),
            key_concurrency: Some(2),
            rate: Some(RateLimit {
                limit: 3,
                period_ms: 1000,
                burst: None,
            }),
            ..Default::default()
        });
        s.running_by_key.insert("a".into(), 2);
        let (jobs, _) = q.lease(s, 10);
        // The rate allows 3, key a is full, key b allows 2.
        assert_eq!(jobs.len(), 2);
        assert!(
            jobs.iter()
                .all(|j| j.concurrency_key.as_deref() == Some("b"))
        );
    }

    #[test]
    fn a_paused_queue_plans_nothing() {
        let q = Queue::new(&[(None, None, 0, None); 3]);
        let s = snap(QueueConfig {
            paused: true,
            policy: QueuePolicy::Fair,
            ..Default::default()
        });
        assert!(q.lease(s, 3).0.is_empty());
    }
}
