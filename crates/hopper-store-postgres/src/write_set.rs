//! What one transaction changed, written in one statement at its end.
//!
//! Operations compute each job's new state with `hopper_types::lifecycle` (under the row locks
//! they took) and hand it here; [`WriteSet::flush`] then writes every changed job, every event
//! and the notifications that wake workers on every node as parts of one `WITH` statement, one
//! round trip whatever the batch size. PostgreSQL delivers those only when the transaction commits, so
//! no worker is ever woken for a job it cannot yet see.

use std::collections::HashMap;

use hopper_store::StoreError;
use hopper_types::lifecycle::Change;
use hopper_types::{Job, JobState, Timestamp};
use sqlx::PgConnection;

use crate::notify;
use crate::rows::{EventColumns, JobColumns, write_changes};

/// Changes of one transaction, in the order they happened.
pub(crate) struct WriteSet {
    /// The time every change of this transaction is stamped with.
    pub(crate) now: Timestamp,
    inserted: Vec<Job>,
    updated: Vec<Job>,
    // Where each id sits in `updated`: a job changed twice in one call (two acks for it in one
    // batch) is written once, in its final state.
    updated_at_index: HashMap<hopper_types::JobId, usize>,
    events: EventColumns,
    wake: Vec<(String, String)>,
    // Queues where a running job stopped: a concurrency limit there may now let a job start.
    freed: Vec<(String, String)>,
}

impl WriteSet {
    pub(crate) fn new(now: Timestamp) -> WriteSet {
        WriteSet {
            now,
            inserted: Vec::new(),
            updated: Vec::new(),
            updated_at_index: HashMap::new(),
            events: EventColumns::default(),
            wake: Vec::new(),
            freed: Vec::new(),
        }
    }

    /// A new job and its enqueue event.
    pub(crate) fn inserted(&mut self, job: &Job, change: Change, actor: &str) {
        self.event(job, change, actor);
        self.inserted.push(job.clone());
    }

    /// An existing job whose state changed, with the event recording why.
    pub(crate) fn changed(&mut self, job: &Job, change: Change, actor: &str) {
        self.event(job, change, actor);
        self.updated(job);
    }

    /// An existing job changed without a transition (a heartbeat).
    pub(crate) fn updated(&mut self, job: &Job) {
        match self.updated_at_index.get(&job.id) {
            Some(&i) => self.updated[i] = job.clone(),
            None => {
                self.updated_at_index.insert(job.id, self.updated.len());
                self.updated.push(job.clone());
            }
        }
    }

    fn event(&mut self, job: &Job, change: Change, actor: &str) {
        self.events.push(
            job.id,
            &job.namespace,
            change.from,
            change.to,
            self.now,
            actor,
            change.reason,
        );
        if change.to == JobState::Available {
            self.wake(&job.namespace, &job.queue);
        } else if change.from == Some(JobState::Running)
            && change.to != JobState::Running
            && !self
                .freed
                .iter()
                .any(|(n, q)| *n == job.namespace && *q == job.queue)
        {
            self.freed.push((job.namespace.clone(), job.queue.clone()));
        }
    }

    /// Workers of `queue` should look again once this commits.
    pub(crate) fn wake(&mut self, namespace: &str, queue: &str) {
        if !self.wake.iter().any(|(n, q)| n == namespace && q == queue) {
            self.wake.push((namespace.to_string(), queue.to_string()));
        }
    }

    /// Writes everything and queues the notifications; returns the queues to wake locally
    /// after the commit.
    pub(crate) async fn flush(
        self,
        conn: &mut PgConnection,
        node: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        if !self.inserted.is_empty() {
            let mut cols = JobColumns::default();
            for job in &self.inserted {
                cols.push(job)?;
            }
            cols.insert(conn).await?;
        }
        let mut cols = JobColumns::default();
        for job in &self.updated {
            cols.push(job)?;
        }
        // Freed queues are announced to other nodes only when their limits make it matter
        // (decided in SQL), and locally always (a wasted look there costs nothing remote).
        let freed: Vec<_> = self
            .freed
            .into_iter()
            .filter(|f| !self.wake.contains(f))
            .collect();
        write_changes(
            conn,
            cols,
            self.events,
            notify::payloads(node, &self.wake),
            notify::payloads(node, &freed),
            freed.iter().map(|(n, _)| n.clone()).collect(),
            freed.iter().map(|(_, q)| q.clone()).collect(),
        )
        .await?;
        let mut wake = self.wake;
        wake.extend(freed);
        Ok(wake)
    }
}
