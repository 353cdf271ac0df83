//! Counters of what a [`crate::Worker`] did, readable while it runs: for logs, for tests, and
//! for benchmarks that need to know when the last completion was recorded.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::AckOutcome;

/// Live counters of one worker. Outcomes count once the server answered them 2xx.
#[derive(Debug, Default)]
pub struct WorkerStats {
    lease_requests: AtomicU64,
    leased: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    cancelled: AtomicU64,
    undelivered: AtomicU64,
}

/// A copy of [`WorkerStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Lease requests answered (with or without jobs).
    pub lease_requests: u64,
    /// Jobs leased.
    pub leased: u64,
    /// Handlers started.
    pub started: u64,
    /// Completions the server recorded.
    pub completed: u64,
    /// Failures the server recorded (retryable, permanent and timeouts).
    pub failed: u64,
    /// Releases the server recorded.
    pub released: u64,
    /// Cancellations the server recorded.
    pub cancelled: u64,
    /// Outcomes the server refused (lease lost) or that could not be delivered.
    pub undelivered: u64,
}

impl WorkerStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            lease_requests: get(&self.lease_requests),
            leased: get(&self.leased),
            started: get(&self.started),
            completed: get(&self.completed),
            failed: get(&self.failed),
            released: get(&self.released),
            cancelled: get(&self.cancelled),
            undelivered: get(&self.undelivered),
        }
    }

    /// Completions the server recorded so far.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    pub(crate) fn record_leased(&self, n: usize) {
        self.lease_requests.fetch_add(1, Ordering::Relaxed);
        self.leased.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn record_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_ack(&self, outcome: &AckOutcome) {
        let c = match outcome {
            AckOutcome::Completed { .. } => &self.completed,
            AckOutcome::Failed { .. } => &self.failed,
            AckOutcome::Released => &self.released,
            AckOutcome::Cancelled => &self.cancelled,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_undelivered(&self, n: usize) {
        self.undelivered.fetch_add(n as u64, Ordering::Relaxed);
    }
}
