//! [`EventHub`]: the bounded history of recent events and the broadcast of new ones.
//!
//! Publishing appends to the history and broadcasts under one lock, and subscribing takes its
//! backlog from the history and its receiver under the same lock, so a subscriber sees every
//! event after its resume point exactly once: from the backlog or from the channel (it drops
//! the few that are in both by `seq`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::frame::Frame;

/// A batch of frames as the tailer published it, in `seq` order.
pub type Batch = Arc<[Arc<Frame>]>;

/// The recent events, and the channel of new ones.
pub struct EventHub {
    state: Mutex<History>,
    sender: broadcast::Sender<Batch>,
}

struct History {
    frames: VecDeque<Arc<Frame>>,
    capacity: usize,
    // Every event with a seq at or below this may be missing from `frames`: evicted, or older
    // than where the tailer started. A resume point below it cannot be served without a gap.
    complete_after: i64,
}

/// What the history holds after a resume point.
pub struct Backlog {
    /// The events after it that the history holds, in order.
    pub frames: Vec<Arc<Frame>>,
    /// True when events after the resume point may be missing (it is older than the history).
    pub gap: bool,
}

impl EventHub {
    /// A hub keeping the last `history` events and up to `channel` unreceived batches per
    /// subscriber; `start` is the seq the tailer starts after.
    pub fn new(history: usize, channel: usize, start: i64) -> EventHub {
        EventHub {
            state: Mutex::new(History {
                frames: VecDeque::with_capacity(history.min(65_536)),
                capacity: history.max(1),
                complete_after: start,
            }),
            sender: broadcast::channel(channel.max(1)).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // The lock guards plain data that no code path leaves half-updated, so a poisoned lock
        // (a panic elsewhere while holding it) still holds consistent data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets everything and restarts the history after `start` (the tailer's first position).
    pub fn reset(&self, start: i64) {
        let mut h = self.lock();
        h.frames.clear();
        h.complete_after = start;
    }

    /// Appends `frames` (in seq order, after everything published before) to the history and
    /// broadcasts them. Never waits for subscribers.
    pub fn publish(&self, frames: Vec<Arc<Frame>>) {
        if frames.is_empty() {
            return;
        }
        let mut h = self.lock();
        h.append(&frames);
        // An error only means nobody is subscribed.
        let _ = self.sender.send(frames.into());
    }

    /// Appends `frames` to the history only: events from before the server started, there to
    /// resume from, not news for live subscribers.
    pub fn remember(&self, frames: &[Arc<Frame>]) {
        self.lock().append(frames);
    }

    /// The history after `after` (nothing when none), a receiver of everything published from
    /// now on, and the subscriber's position: `after`, or the newest event published so far.
    pub fn subscribe(&self, after: Option<i64>) -> (Backlog, broadcast::Receiver<Batch>, i64) {
        let h = self.lock();
        let receiver = self.sender.subscribe();
        match after {
            None => {
                let newest = h.frames.back().map_or(h.complete_after, |f| f.seq);
                let none = Backlog {
                    frames: Vec::new(),
                    gap: false,
                };
                (none, receiver, newest)
            }
            Some(after) => (backlog_of(&h, after), receiver, after),
        }
    }

    /// The history after `after` (to catch up a subscriber that fell behind the channel).
    pub fn since(&self, after: i64) -> Backlog {
        backlog_of(&self.lock(), after)
    }

    /// How many subscribers are connected.
    pub fn subscribers(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The newest event published, if any.
    pub fn last_seq(&self) -> Option<i64> {
        self.lock().frames.back().map(|f| f.seq)
    }
}

impl History {
    fn append(&mut self, frames: &[Arc<Frame>]) {
        for f in frames {
            if self.frames.len() == self.capacity
                && let Some(old) = self.frames.pop_front()
            {
                self.complete_after = old.seq;
            }
            self.frames.push_back(f.clone());
        }
    }
}

fn backlog_of(h: &History, after: i64) -> Backlog {
    let start = h.frames.partition_point(|f| f.seq <= after);
    Backlog {
        frames: h.frames.range(start..).cloned().collect(),
        gap: after < h.complete_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: i64) -> Arc<Frame> {
        Arc::new(Frame::render(&crate::events::frame::test_event(seq, "q")))
    }

    fn seqs(frames: &[Arc<Frame>]) -> Vec<i64> {
        frames.iter().map(|f| f.seq).collect()
    }

    #[test]
    fn resumes_from_the_history_and_reports_a_gap_when_it_is_too_old() {
        let hub = EventHub::new(3, 8, 10);
        hub.publish((11..=15).map(frame).collect());
        // 11 and 12 were evicted: only 13, 14, 15 remain.
        let b = hub.since(12);
        assert_eq!((seqs(&b.frames), b.gap), (vec![13, 14, 15], false));
        let b = hub.since(11);
        assert_eq!((seqs(&b.frames), b.gap), (vec![13, 14, 15], true));
        let b = hub.since(15);
        assert_eq!((seqs(&b.frames), b.gap), (vec![], false));
        // Before the tailer's start: a gap.
        let hub = EventHub::new(100, 8, 10);
        assert!(hub.since(9).gap);
        assert!(!hub.since(10).gap);
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_backlog_then_live_batches() {
        let hub = EventHub::new(100, 8, 0);
        hub.publish(vec![frame(1), frame(2)]);
        let (backlog, mut rx, at) = hub.subscribe(Some(1));
        assert_eq!(at, 1);
        assert_eq!(seqs(&backlog.frames), vec![2]);
        hub.publish(vec![frame(3)]);
        assert_eq!(seqs(&rx.recv().await.unwrap()), vec![3]);
        let (backlog, _rx, at) = hub.subscribe(None);
        assert!(backlog.frames.is_empty() && !backlog.gap);
        assert_eq!(at, 3, "a live subscriber starts after the newest event");
        assert_eq!(hub.subscribers(), 2);
    }

    #[tokio::test]
    async fn publishing_never_waits_for_a_subscriber_that_does_not_read() {
        let hub = EventHub::new(10, 2, 0);
        let (_, mut stalled, _) = hub.subscribe(None);
        for s in 1..=100 {
            hub.publish(vec![frame(s)]);
        }
        // The stalled receiver lost the old batches and is told so.
        assert!(matches!(
            stalled.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        assert_eq!(hub.last_seq(), Some(100));
    }
}
