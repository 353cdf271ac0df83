//! The registry of workers seen lately, for `GET /v1/workers`. A worker is named by its
//! namespace and `worker_id`: the same id in two namespaces is two workers, and a namespace's
//! list never shows another's.
//!
//! Kept in memory, where every lease, heartbeat and ack updates it at no cost; nodes sharing a
//! store exchange it through the store every few seconds ([`crate::worker_sync`]): each node
//! writes the workers it saw since the last round and merges in what the others saw, so every
//! node lists every worker. A restarted server relearns every live worker the same way. Heartbeats and acks carry no worker id on the wire, so
//! the registry remembers which worker holds each lease it handed out and credits the worker
//! when the lease is heartbeated or acked. Entries are dropped once their worker has not been
//! seen for the window (or their lease ran out), so memory stays bounded by live activity.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use hopper_store::WorkerSeen;
use hopper_types::{Job, JobId, Timestamp};

/// A worker as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenWorker {
    /// Its `worker_id`.
    pub id: String,
    /// The queues of its latest lease request.
    pub queues: Vec<String>,
    /// When it last leased, heartbeated or acked.
    pub last_seen_at: Timestamp,
}

/// How many workers were seen within the window, in all and per queue they poll (for the
/// metrics; a queue no worker polls is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Distinct workers seen.
    pub seen: u64,
    /// Per queue named in a worker's latest lease request: how many such workers.
    pub per_queue: BTreeMap<String, u64>,
}

/// Which workers were seen when, and who holds the leases handed out.
#[derive(Debug)]
pub struct WorkerRegistry {
    window_ms: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    // By (namespace, worker id).
    workers: HashMap<WorkerKey, Seen>,
    leases: HashMap<JobId, Holder>,
    last_prune: Timestamp,
    // Workers seen here since the last sync round: what this node has to tell the others.
    dirty: HashSet<WorkerKey>,
}

#[derive(Debug)]
struct Seen {
    queues: BTreeSet<String>,
    last_seen: Timestamp,
}

#[derive(Debug)]
struct Holder {
    worker: WorkerKey,
    // After this (plus the window) the entry can only be stale: the lease is over.
    expires_at: Timestamp,
}

/// How often, at most, stale entries are swept.
const PRUNE_EVERY_MS: i64 = 1_000;

// (namespace, worker id).
type WorkerKey = (String, String);

impl WorkerRegistry {
    /// A registry listing workers seen within `window_ms`.
    pub fn new(window_ms: i64) -> WorkerRegistry {
        WorkerRegistry {
            window_ms,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked: every update is one insert.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A lease request from `worker_id` for `queues` at `now`, which got `jobs`.
    pub fn leased(
        &self,
        namespace: &str,
        worker_id: &str,
        queues: &[String],
        jobs: &[Job],
        now: Timestamp,
    ) {
        let mut inner = self.lock();
        inner.prune(now, self.window_ms);
        let key: WorkerKey = (namespace.to_string(), worker_id.to_string());
        inner.workers.insert(
            key.clone(),
            Seen {
                queues: queues.iter().cloned().collect(),
                last_seen: now,
            },
        );
        if !inner.dirty.contains(&key) {
            inner.dirty.insert(key.clone());
        }
        for j in jobs {
            inner.leases.insert(
                j.id,
                Holder {
                    worker: key.clone(),
                    expires_at: j.lease_expires_at.unwrap_or(now),
                },
            );
        }
    }

    /// A heartbeat of `job` that extended its lease to `expires_at`.
    pub fn heartbeat(&self, job: JobId, expires_at: Timestamp, now: Timestamp) {
        let mut inner = self.lock();
        let worker = match inner.leases.get_mut(&job) {
            Some(h) => {
                h.expires_at = expires_at;
                h.worker.clone()
            }
            None => return,
        };
        inner.touch(&worker, now);
    }

    /// An outcome for `job` was applied; the job as the store returned it names the worker.
    pub fn acked(&self, job: &Job, now: Timestamp) {
        let mut inner = self.lock();
        let holder = inner.leases.remove(&job.id).map(|h| h.worker);
        let named = || job.worker_id.clone().map(|w| (job.namespace.clone(), w));
        if let Some(w) = holder.or_else(named) {
            inner.touch(&w, now);
        }
    }

    /// When a worker last asked for jobs of `queue`, if one did within the window.
    pub fn last_poll(&self, namespace: &str, queue: &str, now: Timestamp) -> Option<Timestamp> {
        let mut inner = self.lock();
        inner.prune(now, self.window_ms);
        inner
            .workers
            .iter()
            .filter(|((ns, _), s)| ns == namespace && s.queues.contains(queue))
            .map(|(_, s)| s)
            .map(|s| s.last_seen)
            .max()
    }

    /// How many workers were seen within the window, in all and per queue.
    pub fn counts(&self, now: Timestamp) -> WorkerCounts {
        let mut inner = self.lock();
        inner.prune(now, self.window_ms);
        let mut counts = WorkerCounts::default();
        for s in inner
            .workers
            .values()
            .filter(|s| now.millis_since(s.last_seen) <= self.window_ms)
        {
            counts.seen += 1;
            for q in &s.queues {
                *counts.per_queue.entry(q.clone()).or_default() += 1;
            }
        }
        counts
    }

    /// The workers seen here since the last call, as rows for the store (`namespace`,
    /// this `node`).
    pub fn take_dirty(&self, node: &str) -> Vec<WorkerSeen> {
        let mut inner = self.lock();
        let dirty = std::mem::take(&mut inner.dirty);
        dirty
            .into_iter()
            .filter_map(|key| {
                let s = inner.workers.get(&key)?;
                let (namespace, worker_id) = key;
                Some(WorkerSeen {
                    namespace,
                    worker_id,
                    queues: s.queues.iter().cloned().collect(),
                    last_seen_at: s.last_seen,
                    node: node.to_string(),
                })
            })
            .collect()
    }

    /// Merges what the store says every node saw: a sighting newer than this node's own
    /// replaces it (and is not this node's to tell the others).
    pub fn merge_remote(&self, seen: Vec<WorkerSeen>) {
        let mut inner = self.lock();
        for w in seen {
            let key: WorkerKey = (w.namespace, w.worker_id);
            match inner.workers.get_mut(&key) {
                Some(local) if local.last_seen >= w.last_seen_at => {}
                Some(local) => {
                    local.last_seen = w.last_seen_at;
                    if !w.queues.is_empty() {
                        local.queues = w.queues.into_iter().collect();
                    }
                }
                None => {
                    inner.workers.insert(
                        key,
                        Seen {
                            queues: w.queues.into_iter().collect(),
                            last_seen: w.last_seen_at,
                        },
                    );
                }
            }
        }
    }

    /// Workers seen within the window, by id.
    pub fn recent(&self, namespace: &str, now: Timestamp) -> Vec<SeenWorker> {
        let mut inner = self.lock();
        inner.prune(now, self.window_ms);
        let mut out: Vec<SeenWorker> = inner
            .workers
            .iter()
            .filter(|((ns, _), s)| {
                ns == namespace && now.millis_since(s.last_seen) <= self.window_ms
            })
            .map(|((_, id), s)| SeenWorker {
                id: id.clone(),
                queues: s.queues.iter().cloned().collect(),
                last_seen_at: s.last_seen,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

impl Inner {
    fn touch(&mut self, worker: &WorkerKey, now: Timestamp) {
        if !self.dirty.contains(worker) {
            self.dirty.insert(worker.clone());
        }
        match self.workers.get_mut(worker) {
            Some(s) => s.last_seen = s.last_seen.max(now),
            None => {
                // Known from a lease made before the worker's entry was swept, or from the
                // store after a restart: list it, its queues are learnt at its next lease.
                self.workers.insert(
                    worker.clone(),
                    Seen {
                        queues: BTreeSet::new(),
                        last_seen: now,
                    },
                );
            }
        }
    }

    fn prune(&mut self, now: Timestamp, window_ms: i64) {
        if now.millis_since(self.last_prune) < PRUNE_EVERY_MS {
            return;
        }
        self.last_prune = now;
        self.workers
            .retain(|_, s| now.millis_since(s.last_seen) <= window_ms);
        self.leases
            .retain(|_, h| now.millis_since(h.expires_at) <= window_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: JobId, expires: Timestamp) -> Job {
        let r: hopper_types::EnqueueRequest = serde_json::from_str(r#"{"kind":"k"}"#).unwrap();
        let new = hopper_types::EnqueueRequestExt::validate_default(r, &Default::default());
        let (mut j, _) = hopper_types::lifecycle::insert(new, Timestamp(0));
        j.id = id;
        j.lease_expires_at = Some(expires);
        j
    }

    #[test]
    fn heartbeats_and_acks_credit_the_lease_holder() {
        let r = WorkerRegistry::new(60_000);
        let id = JobId::new();
        let j = job(id, Timestamp(30_000));
        r.leased(
            "default",
            "w1",
            &["q".into()],
            std::slice::from_ref(&j),
            Timestamp(0),
        );
        r.heartbeat(id, Timestamp(90_000), Timestamp(50_000));
        assert_eq!(
            r.recent("default", Timestamp(50_000))[0].last_seen_at,
            Timestamp(50_000)
        );
        r.acked(&j, Timestamp(100_000));
        let seen = r.recent("default", Timestamp(100_000));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].id, "w1");
        assert_eq!(seen[0].queues, vec!["q".to_string()]);
        assert_eq!(seen[0].last_seen_at, Timestamp(100_000));
    }

    #[test]
    fn namespaces_keep_their_workers_apart() {
        let r = WorkerRegistry::new(60_000);
        r.leased("a", "w1", &["q".into()], &[], Timestamp(0));
        r.leased("b", "w1", &["r".into()], &[], Timestamp(0));
        let a = r.recent("a", Timestamp(1));
        assert_eq!((a.len(), a[0].queues.clone()), (1, vec!["q".to_string()]));
        assert!(r.recent("c", Timestamp(1)).is_empty());
        assert_eq!(r.last_poll("b", "q", Timestamp(1)), None);
        let mut dirty: Vec<String> = r.take_dirty("n").into_iter().map(|w| w.namespace).collect();
        dirty.sort();
        assert_eq!(dirty, vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn workers_fall_out_after_the_window() {
        let r = WorkerRegistry::new(60_000);
        r.leased("default", "w1", &["q".into()], &[], Timestamp(0));
        assert_eq!(r.recent("default", Timestamp(60_000)).len(), 1);
        assert!(r.recent("default", Timestamp(60_001)).is_empty());
        assert_eq!(r.counts(Timestamp(60_001)), WorkerCounts::default());
    }

    #[test]
    fn counts_workers_per_queue_of_their_latest_request() {
        let r = WorkerRegistry::new(60_000);
        r.leased(
            "default",
            "w1",
            &["a".into(), "b".into()],
            &[],
            Timestamp(0),
        );
        r.leased("default", "w2", &["a".into()], &[], Timestamp(10));
        // A worker's latest request replaces the queues it is counted for.
        r.leased("default", "w3", &["c".into()], &[], Timestamp(20));
        r.leased("default", "w3", &["b".into()], &[], Timestamp(30));
        let c = r.counts(Timestamp(40));
        assert_eq!(c.seen, 3);
        let per: Vec<(&str, u64)> = c.per_queue.iter().map(|(q, n)| (q.as_str(), *n)).collect();
        assert_eq!(per, vec![("a", 2), ("b", 2)]);
    }

    #[test]
    fn what_this_node_saw_is_taken_once_and_newer_remote_sightings_merge_in() {
        let r = WorkerRegistry::new(60_000);
        let j = job(JobId::new(), Timestamp(30_000));
        r.leased(
            "default",
            "w1",
            &["q".into()],
            std::slice::from_ref(&j),
            Timestamp(1_000),
        );
        let rows = r.take_dirty("n1");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].worker_id.as_str(),
                rows[0].queues.clone(),
                rows[0].last_seen_at
            ),
            ("w1", vec!["q".to_string()], Timestamp(1_000))
        );
        assert!(r.take_dirty("n1").is_empty(), "taken once");

        let remote = |id: &str, q: &str, at: i64| WorkerSeen {
            namespace: "default".into(),
            worker_id: id.into(),
            queues: vec![q.into()],
            last_seen_at: Timestamp(at),
            node: "n2".into(),
        };
        // Another node saw w2 (new here) and w1 earlier than this node did.
        r.merge_remote(vec![remote("w2", "r", 2_000), remote("w1", "old", 500)]);
        let seen = r.recent("default", Timestamp(3_000));
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].queues,
            vec!["q".to_string()],
            "the older sighting lost"
        );
        assert_eq!(
            (seen[1].id.as_str(), seen[1].last_seen_at),
            ("w2", Timestamp(2_000))
        );
        assert_eq!(
            r.last_poll("default", "r", Timestamp(3_000)),
            Some(Timestamp(2_000))
        );
        assert!(r.take_dirty("n1").is_empty(), "merged rows are not retold");
    }
}
