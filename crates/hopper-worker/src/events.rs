//! The live event stream (`GET /v1/events`) as an [`EventStream`]: every job transition the
//! filter selects, in order, each once, across dropped connections and server restarts.
//!
//! The stream remembers the last event's `seq` and reconnects with `Last-Event-ID`, so the
//! server replays what happened while it was away (from its history of recent events). When
//! the server cannot (the client was away longer than that history reaches), the stream says
//! so with [`StreamMessage::Gap`]: the caller should refetch whatever it derives from events.

use std::time::Duration;

use hopper_types::{JobId, JobState, StreamEvent};
use reqwest::Url;

use crate::error::Error;

/// Longest silence before the connection is taken for dead: the server sends a comment every
/// 15 s on an idle stream.
const IDLE_LIMIT: Duration = Duration::from_secs(45);
/// Reconnection delay when the server named none (its `retry:` field).
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Longest delay between reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Which events to receive: any of the listed values of each field (an empty list allows all).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these queues.
    pub queues: Vec<String>,
    /// Only these kinds.
    pub kinds: Vec<String>,
    /// Only these jobs.
    pub job_ids: Vec<JobId>,
    /// Only events reaching these states.
    pub types: Vec<JobState>,
    /// Start after this seq (replaying what the server's history holds) instead of now.
    pub after: Option<i64>,
}

/// One message of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// A job transition.
    Event(StreamEvent),
    /// Events after `after` may have been missed.
    Gap {
        /// The newest seq that had been offered to this stream.
        after: i64,
    },
}

/// A subscription to the event stream; read it with [`EventStream::next`].
pub struct EventStream {
    http: reqwest::Client,
    url: Url,
    last_seq: Option<i64>,
    response: Option<reqwest::Response>,
    buffer: Vec<u8>,
    retry: Duration,
    max_reconnects: u32,
}

impl EventStream {
    /// Subscribes to the server at `base` (its `/v1/events` under it). Fails at once when the
    /// server refuses the filter or cannot be reached.
    pub(crate) async fn open(
        base: &Url,
        user_agent: &str,
        headers: &reqwest::header::HeaderMap,
        filter: &EventFilter,
    ) -> Result<EventStream, Error> {
        // No overall timeout: the answer never ends. Silence is watched by `IDLE_LIMIT`.
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .user_agent(user_agent)
            .default_headers(headers.clone())
            .build()
            .map_err(Error::Transport)?;
        let mut url = base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v1", "events"]);
        }
        {
            let mut q = url.query_pairs_mut();
            for v in &filter.queues {
                q.append_pair("queue", v);
            }
            for v in &filter.kinds {
                q.append_pair("kind", v);
            }
            for v in &filter.job_ids {
                q.append_pair("job_id", &v.to_string());
            }
            for v in &filter.types {
                q.append_pair("type", v.as_str());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut stream = EventStream {
            http,
            url,
            last_seq: filter.after,
            response: None,
            buffer: Vec::new(),
            retry: DEFAULT_RETRY,
            max_reconnects: 30,
        };
        stream.connect().await?;
        Ok(stream)
    }

    /// Gives up after this many failed reconnections in a row (30 by default, about five
    /// minutes of backoff); 0 never reconnects.
    pub fn max_reconnects(mut self, n: u32) -> EventStream {
        self.max_reconnects = n;
        self
    }

    /// The seq of the last event received (or the `after` the stream started from).
    pub fn last_seq(&self) -> Option<i64> {
        self.last_seq
    }

    /// The next message, waiting as long as it takes. A broken or silent connection is
    /// reopened (resuming after the last event) with growing delays; an error means the
    /// server refused the subscription or stayed unreachable.
    pub async fn next(&mut self) -> Result<StreamMessage, Error> {
        let mut failures = 0u32;
        loop {
            if let Some(message) = self.parse_one()? {
                return Ok(message);
            }
            let chunk = match self.response.as_mut() {
                Some(r) => match tokio::time::timeout(IDLE_LIMIT, r.chunk()).await {
                    Ok(Ok(Some(chunk))) => Some(chunk),
                    // Ended, broke, or went silent: reconnect below.
                    Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
                },
                None => None,
            };
            match chunk {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => {
                    self.response = None;
                    // A half-received message is sent again after the resume point.
                    self.buffer.clear();
                    loop {
                        if failures >= self.max_reconnects {
                            return Err(Error::Protocol {
                                status: 0,
                                message: format!(
                                    "the event stream stayed unreachable after {failures} reconnection attempts"
                                ),
                            });
                        }
                        let delay =
                            (self.retry * 2u32.saturating_pow(failures.min(4))).min(MAX_RETRY);
                        tokio::time::sleep(delay).await;
                        match self.connect().await {
                            Ok(()) => break,
                            // Refused (4xx): reconnecting will not help.
                            Err(Error::Api(e)) if e.status < 500 => return Err(Error::Api(e)),
                            Err(_) => failures += 1,
                        }
                    }
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(), Error> {
        let mut req = self.http.get(self.url.clone());
        if let Some(seq) = self.last_seq {
            req = req.header("last-event-id", seq.to_string());
        }
        let resp = req.send().await.map_err(Error::Transport)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(Error::Transport)?;
            return Err(crate::client::api_error(status, &bytes, None));
        }
        self.response = Some(resp);
        Ok(())
    }

    // Takes one complete message off the buffer, if there is one. Comments and `retry:`
    // lines are handled here and produce nothing.
    fn parse_one(&mut self) -> Result<Option<StreamMessage>, Error> {
        loop {
            let Some(end) = find_blank_line(&self.buffer) else {
                return Ok(None);
            };
            let block: Vec<u8> = self.buffer.drain(..end).collect();
            let text = String::from_utf8_lossy(&block);
            let (mut id, mut event, mut data) = (None::<i64>, None::<String>, String::new());
            for line in text.lines() {
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                match field {
                    "" => {} // a comment (keep-alive)
                    "id" => id = value.trim().parse().ok(),
                    "event" => event = Some(value.to_string()),
                    "data" => {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(value);
                    }
                    "retry" => {
                        if let Ok(ms) = value.trim().parse::<u64>() {
                            self.retry = Duration::from_millis(ms.max(100));
                        }
                    }
                    _ => {}
                }
            }
            if data.is_empty() {
                continue;
            }
            let bad = |what: &str| Error::Protocol {
                status: 200,
                message: format!("unreadable {what} in the event stream: {data}"),
            };
            match event.as_deref() {
                None | Some("message") => {
                    let e: StreamEvent = serde_json::from_str(&data).map_err(|_| bad("event"))?;
                    self.last_seq = Some(id.unwrap_or(e.seq));
                    return Ok(Some(StreamMessage::Event(e)));
                }
                Some("gap") => {
                    #[derive(serde::Deserialize)]
                    struct Gap {
                        after: i64,
                    }
                    let g: Gap = serde_json::from_str(&data).map_err(|_| bad("gap"))?;
                    return Ok(Some(StreamMessage::Gap { after: g.after }));
                }
                // A kind of message this SDK does not know yet: skipped.
                Some(_) => continue,
            }
        }
    }
}

// The end (exclusive, including the blank line) of the first complete message in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_with(buffer: &str) -> EventStream {
        EventStream {
            http: reqwest::Client::new(),
            url: Url::parse("http://127.0.0.1:1/v1/events").unwrap(),
            last_seq: None,
            response: None,
            buffer: buffer.as_bytes().to_vec(),
            retry: DEFAULT_RETRY,
            max_reconnects: 0,
        }
    }

    const EVENT: &str = r#"{"seq":7,"type":"completed","job_id":"01a22ad5-a857-7512-a63e-3e1d463ab75c","namespace":"default","queue":"q","kind":"k","from":"running","to":"completed","at":"2026-11-30T10:00:00.123Z","actor":"worker:w","reason":"complete"}"#;

    #[test]
    fn parses_events_gaps_comments_and_retry() {
        let mut s = stream_with(&format!(
            "retry: 2500\n\n: keep-alive\n\nid: 7\ndata: {EVENT}\n\nevent: gap\ndata: {{\"after\":7}}\n\nid: 8\ndata: {{\"half"
        ));
        match s.parse_one().unwrap() {
            Some(StreamMessage::Event(e)) => {
                assert_eq!(
                    (e.seq, e.to, e.queue.as_str()),
                    (7, JobState::Completed, "q")
                );
            }
            other => panic!("expected the event, got {other:?}"),
        }
        assert_eq!(s.retry, Duration::from_millis(2500));
        assert_eq!(s.last_seq(), Some(7));
        assert_eq!(
            s.parse_one().unwrap(),
            Some(StreamMessage::Gap { after: 7 })
        );
        assert_eq!(s.parse_one().unwrap(), None, "an incomplete message waits");
        assert_eq!(s.last_seq(), Some(7));
    }

    #[test]
    fn a_message_that_is_not_an_event_is_a_protocol_error() {
        let mut s = stream_with("id: 1\ndata: {\"not\": \"an event\"}\n\n");
        assert!(matches!(s.parse_one(), Err(Error::Protocol { .. })));
    }
}
