//! [`Frame`]: one event rendered once for every subscriber, and [`EventFilter`], what a
//! subscriber asked to see.

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use hopper_types::{JobId, JobState, StreamEvent};

/// An event as subscribers receive it: the filter fields, and its JSON and Server-Sent Events
/// encodings, rendered once by the tailer however many subscribers there are.
#[derive(Debug)]
pub struct Frame {
    /// Its position in the event log.
    pub seq: i64,
    /// Tenant, queue, kind, job and type: what filters select on.
    pub namespace: String,
    /// The job's queue.
    pub queue: String,
    /// The job's kind.
    pub kind: String,
    /// The job.
    pub job_id: JobId,
    /// The state reached.
    pub event_type: JobState,
    /// The event as JSON (a WebSocket text message; cloning it shares the bytes).
    pub json: Utf8Bytes,
    /// The event as one SSE message: `id: <seq>\ndata: <json>\n\n`.
    pub sse: Bytes,
}

impl Frame {
    /// Renders `event`.
    pub fn render(event: &StreamEvent) -> Frame {
        // Serializing a struct of strings, ids and timestamps cannot fail.
        let json = serde_json::to_string(event).unwrap_or_default();
        let sse = Bytes::from(format!("id: {}\ndata: {json}\n\n", event.seq));
        Frame {
            seq: event.seq,
            namespace: event.namespace.clone(),
            queue: event.queue.clone(),
            kind: event.kind.clone(),
            job_id: event.job_id,
            event_type: event.event_type,
            json: Utf8Bytes::from(json),
            sse,
        }
    }
}

/// What one subscriber sees: events of its namespace, narrowed by any of the listed queues,
/// kinds, jobs and types (an empty list allows all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// The tenant whose events are shown.
    pub namespace: String,
    /// Only these queues.
    pub queues: Vec<String>,
    /// Only these kinds.
    pub kinds: Vec<String>,
    /// Only these jobs.
    pub job_ids: Vec<JobId>,
    /// Only these states reached.
    pub types: Vec<JobState>,
}

impl EventFilter {
    /// True when `frame` is for this subscriber.
    pub fn matches(&self, frame: &Frame) -> bool {
        fn allows<T: PartialEq>(list: &[T], v: &T) -> bool {
            list.is_empty() || list.contains(v)
        }
        frame.namespace == self.namespace
            && allows(&self.queues, &frame.queue)
            && allows(&self.kinds, &frame.kind)
            && allows(&self.job_ids, &frame.job_id)
            && allows(&self.types, &frame.event_type)
    }
}

/// A test event: job `seq`'s enqueue into `queue` (kind `k`).
#[cfg(test)]
pub(crate) fn test_event(seq: i64, queue: &str) -> StreamEvent {
    StreamEvent {
        seq,
        event_type: JobState::Available,
        job_id: JobId::new(),
        namespace: "default".into(),
        queue: queue.into(),
        kind: "k".into(),
        from: None,
        to: JobState::Available,
        at: hopper_types::Timestamp(0),
        actor: "api".into(),
        reason: "enqueue".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(queue: &str, to: JobState) -> StreamEvent {
        StreamEvent {
            event_type: to,
            to,
            kind: "mail".into(),
            ..test_event(42, queue)
        }
    }

    #[test]
    fn renders_one_sse_message_carrying_the_json() {
        let f = Frame::render(&event("q", JobState::Available));
        let sse = std::str::from_utf8(&f.sse).unwrap();
        assert_eq!(sse, format!("id: 42\ndata: {}\n\n", f.json.as_str()));
        let v: serde_json::Value = serde_json::from_str(f.json.as_str()).unwrap();
        assert_eq!(v["type"], "available");
        assert_eq!(v["queue"], "q");
        assert_eq!(v["seq"], 42);
        assert!(!f.json.as_str().contains('\n'), "one data line");
    }

    #[test]
    fn filter_needs_the_namespace_and_any_listed_value_of_each_field() {
        let f = Frame::render(&event("q", JobState::Dead));
        let base = EventFilter {
            namespace: "default".into(),
            ..EventFilter::default()
        };
        assert!(base.matches(&f));
        let other_ns = EventFilter {
            namespace: "b".into(),
            ..EventFilter::default()
        };
        assert!(!other_ns.matches(&f));
        let q = EventFilter {
            queues: vec!["x".into(), "q".into()],
            ..base.clone()
        };
        assert!(q.matches(&f));
        let t = EventFilter {
            types: vec![JobState::Completed],
            ..base.clone()
        };
        assert!(!t.matches(&f));
        let j = EventFilter {
            job_ids: vec![f.job_id],
            types: vec![JobState::Dead],
            kinds: vec!["mail".into()],
            ..base
        };
        assert!(j.matches(&f));
    }
}
