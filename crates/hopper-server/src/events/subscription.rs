//! [`Subscription`]: one subscriber's view of the hub — its filter, its position, and catching
//! up when it falls behind.
//!
//! The position is the newest `seq` the subscriber has been offered (sent or filtered out).
//! Every delivery moves it forward, so an event is never offered twice, and a subscriber that
//! lagged behind the channel resumes from the history right after it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::frame::{EventFilter, Frame};
use super::hub::{Batch, EventHub};

/// What a subscriber gets next.
#[derive(Debug)]
pub enum Delivery {
    /// Events for it, in `seq` order.
    Frames(Vec<Arc<Frame>>),
    /// Events after `after` may have been skipped: the subscriber fell further behind than the
    /// history reaches (or resumed from a point older than it).
    Gap {
        /// The newest seq it had been offered.
        after: i64,
    },
}

/// A subscriber's position in the stream.
pub struct Subscription {
    hub: Arc<EventHub>,
    receiver: broadcast::Receiver<Batch>,
    filter: EventFilter,
    position: i64,
    backlog: VecDeque<Arc<Frame>>,
    gap: bool,
}

impl Subscription {
    /// Subscribes with `filter`, resuming after `after` (the `Last-Event-ID`), or from now.
    pub fn new(hub: Arc<EventHub>, filter: EventFilter, after: Option<i64>) -> Subscription {
        let (backlog, receiver, position) = hub.subscribe(after);
        Subscription {
            hub,
            receiver,
            filter,
            position,
            backlog: backlog.frames.into(),
            gap: backlog.gap,
        }
    }

    /// The newest seq offered so far.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Waits for the next events for this subscriber; none once the hub is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if std::mem::take(&mut self.gap) {
                return Some(Delivery::Gap {
                    after: self.position,
                });
            }
            if !self.backlog.is_empty() {
                let backlog = std::mem::take(&mut self.backlog);
                if let Some(frames) = self.offer(backlog.iter()) {
                    return Some(Delivery::Frames(frames));
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(batch) => {
                    if let Some(frames) = self.offer(batch.iter()) {
                        return Some(Delivery::Frames(frames));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // The channel dropped batches this subscriber had not read; the history
                    // usually still holds them.
                    let since = self.hub.since(self.position);
                    self.backlog = since.frames.into();
                    self.gap = since.gap;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    // The frames of `batch` past the position that pass the filter (none when empty), moving
    // the position past the whole batch.
    fn offer<'a>(
        &mut self,
        batch: impl Iterator<Item = &'a Arc<Frame>>,
    ) -> Option<Vec<Arc<Frame>>> {
        let mut out = Vec::new();
        for f in batch {
            if f.seq <= self.position {
                continue;
            }
            self.position = f.seq;
            if self.filter.matches(f) {
                out.push(f.clone());
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: i64, queue: &str) -> Arc<Frame> {
        Arc::new(Frame::render(&crate::events::frame::test_event(seq, queue)))
    }

    fn all() -> EventFilter {
        EventFilter {
            namespace: "default".into(),
            ..EventFilter::default()
        }
    }

    async fn seqs(s: &mut Subscription) -> Vec<i64> {
        match s.next().await {
            Some(Delivery::Frames(f)) => f.iter().map(|f| f.seq).collect(),
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn resume_delivers_the_backlog_then_live_events_once_each() {
        let hub = Arc::new(EventHub::new(100, 4, 0));
        hub.publish(vec![frame(1, "q"), frame(2, "q")]);
        let mut s = Subscription::new(hub.clone(), all(), Some(1));
        // Published after subscribing: in the channel only.
        hub.publish(vec![frame(3, "q")]);
        assert_eq!(seqs(&mut s).await, vec![2]);
        assert_eq!(seqs(&mut s).await, vec![3]);
        assert_eq!(s.position(), 3);
    }

    #[tokio::test]
    async fn filtered_out_events_move_the_position_but_are_not_delivered() {
        let hub = Arc::new(EventHub::new(100, 4, 0));
        let filter = EventFilter {
            queues: vec!["b".into()],
            ..all()
        };
        let mut s = Subscription::new(hub.clone(), filter, None);
        hub.publish(vec![frame(1, "a"), frame(2, "a")]);
        hub.publish(vec![frame(3, "b"), frame(4, "a")]);
        assert_eq!(seqs(&mut s).await, vec![3]);
        assert_eq!(s.position(), 4);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_catches_up_from_the_history_without_a_gap() {
        let hub = Arc::new(EventHub::new(1_000, 2, 0));
        let mut s = Subscription::new(hub.clone(), all(), None);
        for seq in 1..=50 {
            hub.publish(vec![frame(seq, "q")]);
        }
        let mut got = Vec::new();
        while got.len() < 50 {
            got.extend(seqs(&mut s).await);
        }
        assert_eq!(got, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_history_gets_a_gap_then_what_remains() {
        let hub = Arc::new(EventHub::new(5, 2, 0));
        let mut s = Subscription::new(hub.clone(), all(), None);
        for seq in 1..=20 {
            hub.publish(vec![frame(seq, "q")]);
        }
        assert!(matches!(s.next().await, Some(Delivery::Gap { after: 0 })));
        let mut got = Vec::new();
        while got.last() != Some(&20) {
            got.extend(seqs(&mut s).await);
        }
        assert_eq!(got, (16..=20).collect::<Vec<_>>());
    }
}
