//! Per-queue, per-state job counts, kept in memory.
//!
//! Only the writer changes jobs, so it knows every state change. It collects them as
//! [`Effects`] while a batch runs and applies them here after the commit succeeds; counts are
//! loaded once at open with one scan. Queue listings and metrics then cost nothing however
//! many jobs there are.

use std::collections::{BTreeMap, HashMap};

use hopper_types::JobState;
use rusqlite::Connection;

use crate::rows::sql_error;
use hopper_store::StoreError;

fn slot(s: JobState) -> usize {
    JobState::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// Jobs per state for every (namespace, queue).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    by_queue: HashMap<(String, String), [i64; 8]>,
}

impl Counts {
    /// Counts every job in the database.
    pub(crate) fn load(conn: &Connection) -> Result<Counts, StoreError> {
        let mut counts = Counts::default();
        let mut stmt = conn
            .prepare("SELECT namespace, queue, state, count(*) FROM jobs GROUP BY namespace, queue, state")
            .map_err(sql_error)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql_error)?;
        for row in rows {
            let (ns, q, st, n) = row.map_err(sql_error)?;
            let st: JobState = st.parse().map_err(|e: hopper_types::state::UnknownState| {
                StoreError::Internal(e.to_string())
            })?;
            counts.by_queue.entry((ns, q)).or_default()[slot(st)] += n;
        }
        Ok(counts)
    }

    /// Applies the moves of a committed batch.
    pub(crate) fn apply(&mut self, moves: &[CountMove]) {
        for m in moves {
            let entry = self
                .by_queue
                .entry((m.namespace.clone(), m.queue.clone()))
                .or_default();
            if let Some(f) = m.from {
                entry[slot(f)] -= 1;
            }
            if let Some(t) = m.to {
                entry[slot(t)] += 1;
            }
        }
    }

    /// Queues of a namespace that hold any job, with their counts.
    pub(crate) fn queues(&self, namespace: &str) -> Vec<(String, BTreeMap<JobState, u64>)> {
        self.by_queue
            .iter()
            .filter(|((ns, _), c)| ns == namespace && c.iter().any(|n| *n > 0))
            .map(|((_, q), c)| (q.clone(), to_map(c)))
            .collect()
    }

    /// Whether any of `queues` has an available job (paused or not).
    pub(crate) fn any_available(&self, namespace: &str, queues: &[String]) -> bool {
        let slot = slot(JobState::Available);
        queues.iter().any(|q| {
            self.by_queue
                .get(&(namespace.to_string(), q.clone()))
                .is_some_and(|c| c[slot] > 0)
        })
    }

    /// One queue's counts (zeros when it has no jobs).
    pub(crate) fn queue(&self, namespace: &str, queue: &str) -> BTreeMap<JobState, u64> {
        let zero = [0; 8];
        to_map(
            self.by_queue
                .get(&(namespace.to_string(), queue.to_string()))
                .unwrap_or(&zero),
        )
    }
}

fn to_map(c: &[i64; 8]) -> BTreeMap<JobState, u64> {
    JobState::ALL
        .iter()
        .map(|s| (*s, c[slot(*s)].max(0) as u64))
        .collect()
}

/// One job moving between states (`None` = not existing).
#[derive(Debug, Clone)]
pub(crate) struct CountMove {
    pub namespace: String,
    pub queue: String,
    pub from: Option<JobState>,
    pub to: Option<JobState>,
}

/// What a write did that must be published after its commit: count moves and wake-ups.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub moves: Vec<CountMove>,
    /// (namespace, queue) pairs that gained available jobs.
    pub wake: Vec<(String, String)>,
    /// Rate-limited queues and when their rate next allows a start (none: it does now).
    pub hold: Vec<(String, String, Option<hopper_types::Timestamp>)>,
}

impl Effects {
    pub(crate) fn merge(&mut self, other: Effects) {
        self.moves.extend(other.moves);
        self.wake.extend(other.wake);
        self.hold.extend(other.hold);
    }
}
