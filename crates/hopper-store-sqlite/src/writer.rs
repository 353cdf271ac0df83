//! The single writer and its group commit.
//!
//! All changes run on one thread that owns the only read-write connection. It takes every
//! command that is waiting (up to [`MAX_BATCH`]), runs each inside its own savepoint of one
//! transaction (a failed command rolls back alone), commits once, and only after the commit
//! answers the callers and publishes count changes and wake-ups. Under `durability = "full"`
//! that one commit is one fsync for the whole batch, which is how fsync-per-answer stays fast
//! under concurrency. Under `relaxed` the WAL is written at commit and synced at least once a
//! second by this thread.
//!
//! A single writer also makes every read-modify-write atomic without locks: idempotency keys,
//! leases and outcomes cannot race.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use hopper_store::{QueueSignals, StoreError};
use hopper_types::lifecycle::Change;
use hopper_types::{Clock, Job, Timestamp};
use rand::rngs::ThreadRng;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::Durability;
use crate::counts::{CountMove, Counts, Effects};
use crate::rows::{insert_event, sql_error};

/// Most commands one transaction takes; bounds the latency of the first one in line.
const MAX_BATCH: usize = 2048;

/// How often `relaxed` durability syncs the WAL at the latest.
const RELAXED_SYNC_EVERY: Duration = Duration::from_secs(1);

/// What a write command sees: the connection inside the batch's transaction, the time of the
/// command, randomness for backoff jitter, and the effects to publish after commit.
pub(crate) struct WriteCtx<'a> {
    pub conn: &'a Connection,
    pub now: Timestamp,
    pub rng: &'a mut ThreadRng,
    pub effects: Effects,
}

impl WriteCtx<'_> {
    /// Records a transition of `job` (already saved): its event, the count move, and a wake-up
    /// when it became available. A workflow step that finished also moves its run and its
    /// children on, in this same transaction (see [`crate::ops::workflow::step_finished`]).
    pub(crate) fn record(
        &mut self,
        job: &Job,
        change: Change,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.record_transition(job, change, actor)?;
        if job.workflow.is_some() && change.to.is_finished() && change.from != Some(change.to) {
            crate::ops::workflow::step_finished(self, job, actor)?;
        }
        Ok(())
    }

    /// [`WriteCtx::record`] without the workflow follow-up, for the steps that follow-up moves.
    pub(crate) fn record_transition(
        &mut self,
        job: &Job,
        change: Change,
        actor: &str,
    ) -> Result<(), StoreError> {
        insert_event(
            self.conn,
            job,
            change.from,
            change.to,
            self.now,
            actor,
            change.reason,
        )?;
        if change.from != Some(change.to) {
            self.effects.moves.push(CountMove {
                namespace: job.namespace.clone(),
                queue: job.queue.clone(),
                from: change.from,
                to: Some(change.to),
            });
        }
        // A job becoming available wakes its queue's workers; so does a running job ending,
        // since a concurrency limit may now let a waiting job start. (An empty lease on a
        // queue with nothing available never reaches the writer, so this costs little.)
        if change.to == hopper_types::JobState::Available
            || (change.from == Some(hopper_types::JobState::Running)
                && change.to != hopper_types::JobState::Running)
        {
            self.wake(job);
        }
        Ok(())
    }

    /// Records that `job` arrived whole from another store (`import`): it enters the counts
    /// in its current state, and its queue is woken when it is available. Its history came
    /// with it, so no event is written here.
    pub(crate) fn record_import(&mut self, job: &Job) {
        self.effects.moves.push(CountMove {
            namespace: job.namespace.clone(),
            queue: job.queue.clone(),
            from: None,
            to: Some(job.state),
        });
        if job.state == hopper_types::JobState::Available {
            self.wake(job);
        }
    }

    /// Records that `job` (in `state`) was deleted.
    pub(crate) fn record_delete(
        &mut self,
        namespace: &str,
        queue: &str,
        state: hopper_types::JobState,
    ) {
        self.effects.moves.push(CountMove {
            namespace: namespace.to_string(),
            queue: queue.to_string(),
            from: Some(state),
            to: None,
        });
    }

    fn wake(&mut self, job: &Job) {
        let key = (job.namespace.clone(), job.queue.clone());
        if !self.effects.wake.contains(&key) {
            self.effects.wake.push(key);
        }
    }
}

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// Runs with the batch's context, or with `None` when the batch could not start (it must then
/// only produce its reply).
type Command = Box<dyn FnOnce(Option<&mut WriteCtx<'_>>) -> (bool, Reply) + Send>;

enum Msg {
    Run(Command),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
}

/// What the writer thread needs besides its connection.
pub(crate) struct WriterParts {
    pub clock: Arc<dyn Clock>,
    pub durability: Durability,
    pub wal_path: PathBuf,
    pub counts: Arc<RwLock<Counts>>,
    pub signals: Arc<QueueSignals>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection, parts: WriterParts) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("hopper-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, parts))
            .map_err(|e| StoreError::Internal(format!("spawn writer: {e}")))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
        })
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.send(msg).map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    /// Runs `f` in the next batch; answers after the batch committed.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let cmd: Command = Box::new(move |ctx: Option<&mut WriteCtx<'_>>| {
            let result = match ctx {
                Some(ctx) => f(ctx),
                None => Err(StoreError::Unavailable("the write could not start".into())),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit: Result<(), StoreError>| {
                let _ = tx.send(commit.and(result));
            });
            (ok, reply)
        });
        self.send(Msg::Run(cmd))?;
        rx.await
            .map_err(|_| StoreError::Internal("the write failed unexpectedly".into()))?
    }

    /// Finishes queued writes, checkpoints, and stops the thread. Later writes are refused.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        if self.send(Msg::Close(tx)).is_err() {
            return Ok(()); // already closed
        }
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        rx.await.unwrap_or(Ok(()))
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Msg>, parts: WriterParts) {
    let mut rng = rand::rng();
    let mut unsynced = false;
    let mut last_sync = Instant::now();
    let relaxed = parts.durability == Durability::Relaxed;
    loop {
        let first = if relaxed {
            match rx.recv_timeout(RELAXED_SYNC_EVERY.saturating_sub(last_sync.elapsed())) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if unsynced {
                        sync_wal(&parts.wal_path);
                        unsynced = false;
                    }
                    last_sync = Instant::now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let close = run_batch(&conn, batch, &parts, &mut rng);
        unsynced = true;
        if relaxed && last_sync.elapsed() >= RELAXED_SYNC_EVERY {
            sync_wal(&parts.wal_path);
            unsynced = false;
            last_sync = Instant::now();
        }
        if let Some(done) = close {
            let result = conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(sql_error);
            let _ = done.send(result);
            return;
        }
    }
    // Every handle is gone: leave the database checkpointed.
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Runs one batch in one transaction; returns the close request if the batch held one.
fn run_batch(
    conn: &Connection,
    batch: Vec<Msg>,
    parts: &WriterParts,
    rng: &mut ThreadRng,
) -> Option<oneshot::Sender<Result<(), StoreError>>> {
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut effects = Effects::default();
    let mut close = None;
    let begin = conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_error);
    for msg in batch {
        match msg {
            Msg::Close(done) => close = Some(done),
            Msg::Run(cmd) => {
                if let Err(e) = &begin {
                    let err = e.clone();
                    let (_, reply) = cmd(None);
                    replies.push(Box::new(move |_| reply(Err(err))));
                    continue;
                }
                replies.push(run_command(conn, cmd, parts, rng, &mut effects));
            }
        }
    }
    let commit = match begin {
        Err(e) => Err(e),
        Ok(()) => conn.execute_batch("COMMIT").map_err(sql_error),
    };
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        tracing::error!(error = ?commit, "commit failed; the batch was rolled back");
    } else {
        parts
            .counts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&effects.moves);
        for (ns, q, at) in &effects.hold {
            parts.signals.hold_until(ns, q, *at);
        }
        for (ns, q) in &effects.wake {
            parts.signals.notify(ns, q);
        }
    }
    for reply in replies {
        reply(commit.clone());
    }
    close
}

fn run_command(
    conn: &Connection,
    cmd: Command,
    parts: &WriterParts,
    rng: &mut ThreadRng,
    effects: &mut Effects,
) -> Reply {
    let sp = conn
        .prepare_cached("SAVEPOINT cmd")
        .and_then(|mut s| s.execute([]));
    if let Err(e) = sp {
        let err = sql_error(e);
        let (_, reply) = cmd(None);
        return Box::new(move |_| reply(Err(err)));
    }
    let mut ctx = WriteCtx {
        conn,
        now: parts.clock.now(),
        rng,
        effects: Effects::default(),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| cmd(Some(&mut ctx))));
    let (ok, reply) = match outcome {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("a write command panicked; it was rolled back");
            (false, Box::new(|_| {}) as Reply)
        }
    };
    if ok {
        let _ = conn
            .prepare_cached("RELEASE cmd")
            .and_then(|mut s| s.execute([]));
        effects.merge(ctx.effects);
    } else {
        let _ = conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd;");
    }
    reply
}

fn sync_wal(path: &PathBuf) {
    match std::fs::File::open(path).and_then(|f| f.sync_data()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "syncing the WAL failed"),
    }
}
