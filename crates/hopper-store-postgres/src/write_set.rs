//! What one transaction changed, written in one statement at its end.
//!
//! Operations compute each job's new state with `hopper_types::lifecycle` (under the row locks
//! they took) and hand it here; [`WriteSet::flush`] then writes every changed job, every event
//! and the notifications that wake workers on every node as parts of one `WITH` statement, one
//! round trip whatever the batch size. PostgreSQL delivers those only when the transaction commits, so
//! no worker is ever woken for a job it cannot yet see.
//!
//! It also remembers which workflow steps finished, so [`crate::ops::workflow::settle`] can
//! move their children and their runs in the same transaction before the flush, and answers
//! what a job looks like in this transaction so far (the database still has the version
//! before it: nothing is written until the flush).

use std::collections::{HashMap, HashSet};

use hopper_store::StoreError;
use hopper_types::lifecycle::Change;
use hopper_types::{Job, JobId, JobState, Timestamp};
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
    updated_at_index: HashMap<JobId, usize>,
    // Workflow steps that entered a finished state, in the order they did, each once, with
    // the actor of that change (the changes they cause downstream are recorded as theirs).
    finished_steps: Vec<(JobId, String)>,
    finished_seen: HashSet<JobId>,
    // How many of `finished_steps` settle() has handled already.
    settled: usize,
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
            finished_steps: Vec::new(),
            finished_seen: HashSet::new(),
            settled: 0,
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

    /// An existing job whose state changed, with the event recording why. A workflow step
    /// that enters a finished state here is remembered for [`crate::ops::workflow::settle`].
    /// (A step inserted already finished is not: planning it counted it in its run.)
    pub(crate) fn changed(&mut self, job: &Job, change: Change, actor: &str) {
        self.event(job, change, actor);
        self.updated(job);
        if change.to.is_finished()
            && change.from != Some(change.to)
            && job.workflow.is_some()
            && self.finished_seen.insert(job.id)
        {
            self.finished_steps.push((job.id, actor.to_string()));
        }
    }

    /// The job as this transaction last changed it, if it did (the row in the database is
    /// older until the flush).
    pub(crate) fn get(&self, id: &JobId) -> Option<&Job> {
        self.updated_at_index.get(id).map(|&i| &self.updated[i])
    }

    /// Steps that finished in this transaction and that settle() has not handled yet, oldest
    /// first, with the actor that finished them. Steps finishing while they are handled
    /// (cascades) show up in the next call.
    pub(crate) fn unsettled_steps(&self) -> &[(JobId, String)] {
        &self.finished_steps[self.settled..]
    }

    /// Marks the first `n` of [`WriteSet::unsettled_steps`] as handled.
    pub(crate) fn mark_settled(&mut self, n: usize) {
        self.settled = (self.settled + n).min(self.finished_steps.len());
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
