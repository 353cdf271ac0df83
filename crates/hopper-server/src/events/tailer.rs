//! [`EventTailer`]: the task that reads new rows of the store's event log and publishes them.
//!
//! It keeps a cursor: every event at or below it was published (or is known to be gone). It
//! reads the rows after it in `seq` order and moves it row by row. A missing `seq` is final
//! on a store whose events become visible in order; elsewhere (PostgreSQL) it may belong to a
//! transaction that has not committed yet, so the tailer holds back everything after it until
//! it shows up or `gap_wait_ms` passes (a rolled-back or deleted row). That keeps the stream in
//! `seq` order, which is what makes `Last-Event-ID` a complete resume point.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hopper_store::{EventLogRow, Store};
use hopper_types::StreamEvent;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::frame::Frame;
use super::hub::EventHub;

/// The event stream's settings.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Events kept for `Last-Event-ID` resumes (10,000).
    pub history: usize,
    /// Published batches a subscriber may be behind before it catches up from the history
    /// (1,024).
    pub channel: usize,
    /// How often the log is read when the last read found nothing new (50 ms): the stream's
    /// latency when idle, and a cheap indexed query otherwise.
    pub poll_interval_ms: u64,
    /// Rows per read (1,000).
    pub batch: usize,
    /// How long a missing `seq` may hold the stream back before it is taken as gone (2 s).
    pub gap_wait_ms: u64,
    /// A comment line is sent to idle subscribers this often, so proxies keep the connection
    /// and dead clients are noticed (15 s).
    pub keepalive_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            history: 10_000,
            channel: 1_024,
            poll_interval_ms: 50,
            batch: 1_000,
            gap_wait_ms: 2_000,
            keepalive_ms: 15_000,
        }
    }
}

/// Reads the event log into an [`EventHub`].
pub struct EventTailer {
    store: Arc<dyn Store>,
    hub: Arc<EventHub>,
    config: EventsConfig,
    cursor: Cursor,
}

impl EventTailer {
    /// Starts tailing in a task that ends when `stop` is cancelled. The history is first
    /// filled with the most recent events (up to its size), so a client reconnecting to a
    /// restarted server can still resume.
    ///
    /// `started_after` is the newest event when the server started (read before it accepted
    /// any request): events up to it are history, later ones news for subscribers. Without
    /// it, the tailer reads it itself.
    pub fn start(
        store: Arc<dyn Store>,
        hub: Arc<EventHub>,
        config: EventsConfig,
        started_after: Option<i64>,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tailer = EventTailer {
                store,
                hub,
                config,
                cursor: Cursor::default(),
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tailer.run(started_after) => {}
            }
        })
    }

    async fn run(&mut self, started_after: Option<i64>) {
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        let last = loop {
            if let Some(last) = started_after {
                break last;
            }
            match self.store.events_last_seq().await {
                Ok(last) => break last,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: reading the log failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        self.cursor.position = (last - self.config.history as i64).max(0);
        self.hub.reset(self.cursor.position);
        let in_order = self.store.events_visible_in_seq_order();
        let wait = Duration::from_millis(self.config.gap_wait_ms);
        loop {
            let rows = match self
                .store
                .events_after(self.cursor.position, self.config.batch)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: reading the log failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let full = rows.len() == self.config.batch;
            let start = self.cursor.position;
            let frames: Vec<Arc<Frame>> = self
                .cursor
                .advance(rows, in_order, wait, Instant::now())
                .iter()
                .map(|e| Arc::new(Frame::render(e)))
                .collect();
            // What happened before this server started is history to resume from, not news
            // for the subscribers already connected.
            let split = frames.partition_point(|f| f.seq <= last);
            self.hub.remember(&frames[..split]);
            self.hub.publish(frames[split..].to_vec());
            if !(full && self.cursor.position != start) {
                tokio::time::sleep(poll).await;
            }
        }
    }
}

/// How far the log has been read: every event at or below `position` was published or is
/// known to be gone.
#[derive(Debug, Default)]
struct Cursor {
    position: i64,
    // Since when the row right after the position has been missing while later ones exist.
    gap_since: Option<Instant>,
}

impl Cursor {
    // Takes `rows` (read after the position, in seq order) up to the first gap that may still
    // fill, and returns the events among them; `now` is when they were read.
    fn advance(
        &mut self,
        rows: Vec<EventLogRow>,
        in_order: bool,
        wait: Duration,
        now: Instant,
    ) -> Vec<StreamEvent> {
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            if row.seq != self.position + 1 && !in_order {
                let since = *self.gap_since.get_or_insert(now);
                if now.duration_since(since) < wait {
                    break;
                }
                tracing::debug!(
                    after = self.position,
                    next = row.seq,
                    "event stream: skipping seqs that never appeared"
                );
            }
            self.gap_since = None;
            self.position = row.seq;
            events.extend(row.event);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> EventLogRow {
        EventLogRow {
            seq,
            event: Some(crate::events::frame::test_event(seq, "q")),
        }
    }

    fn seqs(events: &[StreamEvent]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    const WAIT: Duration = Duration::from_millis(2_000);

    #[test]
    fn a_gap_holds_later_rows_back_until_it_fills() {
        let t0 = Instant::now();
        let mut c = Cursor::default();
        // Seq 3 is not visible yet (its transaction has not committed).
        let got = c.advance(vec![row(1), row(2), row(4), row(5)], false, WAIT, t0);
        assert_eq!((seqs(&got), c.position), (vec![1, 2], 2));
        let got = c.advance(vec![row(4), row(5)], false, WAIT, t0 + WAIT / 2);
        assert!(got.is_empty(), "still waiting for 3");
        // It commits: everything follows, in order.
        let got = c.advance(vec![row(3), row(4), row(5)], false, WAIT, t0 + WAIT / 2);
        assert_eq!((seqs(&got), c.position), (vec![3, 4, 5], 5));
        assert!(c.gap_since.is_none());
    }

    #[test]
    fn a_gap_that_never_fills_is_skipped_after_the_wait() {
        let t0 = Instant::now();
        let mut c = Cursor::default();
        assert!(c.advance(vec![row(2)], false, WAIT, t0).is_empty());
        let got = c.advance(vec![row(2), row(3)], false, WAIT, t0 + WAIT);
        assert_eq!((seqs(&got), c.position), (vec![2, 3], 3));
        // A later gap waits its own full time.
        assert!(
            c.advance(vec![row(5)], false, WAIT, t0 + WAIT * 2)
                .is_empty()
        );
        assert_eq!(c.position, 3);
    }

    #[test]
    fn in_order_stores_skip_gaps_at_once_and_rows_without_a_job_move_the_cursor() {
        let mut c = Cursor::default();
        let gone = EventLogRow {
            seq: 4,
            event: None,
        };
        let got = c.advance(vec![row(2), gone, row(7)], true, WAIT, Instant::now());
        assert_eq!((seqs(&got), c.position), (vec![2, 7], 7));
    }
}
