//! Event-stream subscribers kept reading during a workload (`hopper bench W3 --subscribers N`),
//! to measure what the live stream costs the server: the figure to compare is W3 with and
//! without them. Each subscriber reads everything `GET /v1/events` sends and counts events and
//! gaps, so the run also shows whether they kept up.

use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

/// What one subscriber received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Job events.
    pub events: u64,
    /// `gap` messages: times it fell behind the server's history and was skipped ahead.
    pub gaps: u64,
}

/// Subscribers reading in the background.
pub struct Subscribers {
    tasks: Vec<JoinHandle<anyhow::Result<Tally>>>,
}

impl Subscribers {
    /// Opens `n` unfiltered subscriptions to the server at `base` (with `api_key` when given)
    /// and waits until each is in place (its first bytes arrived).
    pub async fn start(base: &str, api_key: Option<&str>, n: usize) -> anyhow::Result<Subscribers> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_key {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {key}")
                    .parse()
                    .context("the API key is not a header value")?,
            );
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .context("building the HTTP client")?;
        let url = format!("{}/v1/events", base.trim_end_matches('/'));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let mut resp = http
                .get(&url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("subscribing to {url}"))?;
            // The server's first bytes (its `retry:` line) mean the subscription is in place.
            resp.chunk()
                .await
                .context("the event stream did not start")?;
            tasks.push(tokio::spawn(read(resp)));
        }
        Ok(Subscribers { tasks })
    }

    /// Waits until every subscriber has been quiet for a second (it has read everything the
    /// workload caused), closes them and returns what each received.
    pub async fn finish(self) -> anyhow::Result<Vec<Tally>> {
        let mut tallies = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            tallies.push(t.await.context("a subscriber panicked")??);
        }
        Ok(tallies)
    }

    /// A one-line summary of `tallies` for the report.
    pub fn summary(tallies: &[Tally]) -> String {
        let min = tallies.iter().map(|t| t.events).min().unwrap_or(0);
        let max = tallies.iter().map(|t| t.events).max().unwrap_or(0);
        let gaps: u64 = tallies.iter().map(|t| t.gaps).sum();
        format!(
            "{} event-stream subscribers, {min}..{max} events each, {gaps} gaps",
            tallies.len()
        )
    }
}

// Reads one subscription until it has been quiet for a second after its first event (the
// workload is over), or for 30 s before it.
async fn read(mut resp: reqwest::Response) -> anyhow::Result<Tally> {
    let mut counter = Counter::default();
    let mut seen_any = false;
    loop {
        let quiet = Duration::from_secs(if seen_any { 1 } else { 30 });
        match tokio::time::timeout(quiet, resp.chunk()).await {
            Err(_) => break,
            Ok(chunk) => match chunk.context("reading the event stream")? {
                Some(chunk) => counter.feed(&chunk),
                None => break,
            },
        }
        seen_any = true;
    }
    Ok(counter.tally())
}

/// Counts `data:` lines (events) and `event: gap` lines in a stream read in chunks; a pattern
/// split between two chunks is found by keeping the last few bytes of each.
#[derive(Default)]
struct Counter {
    carry: Vec<u8>,
    data: u64,
    gaps: u64,
}

impl Counter {
    const DATA: &[u8] = b"\ndata: ";
    const GAP: &[u8] = b"event: gap\n";

    fn feed(&mut self, chunk: &[u8]) {
        // Bytes carried over were searched before: count only matches that end in the chunk.
        let old = self.carry.len();
        self.carry.extend_from_slice(chunk);
        self.data += count_ending_after(&self.carry, Self::DATA, old);
        self.gaps += count_ending_after(&self.carry, Self::GAP, old);
        let keep = self
            .carry
            .len()
            .min(Self::DATA.len().max(Self::GAP.len()) - 1);
        self.carry.drain(..self.carry.len() - keep);
    }

    fn tally(&self) -> Tally {
        // A gap message carries a data line too.
        Tally {
            events: self.data.saturating_sub(self.gaps),
            gaps: self.gaps,
        }
    }
}

// Occurrences of `needle` in `haystack` that end after byte `old`.
fn count_ending_after(haystack: &[u8], needle: &[u8], old: usize) -> u64 {
    let first = (old + 1).saturating_sub(needle.len());
    memchr::memmem::find_iter(haystack.get(first..).unwrap_or_default(), needle).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_events_and_gaps_across_any_chunk_boundary_once() {
        let stream =
            b"retry: 1000\n\nid: 1\ndata: {}\n\nevent: gap\ndata: {}\n\nid: 3\ndata: {}\n\n";
        for split in 1..stream.len() {
            let mut c = Counter::default();
            c.feed(&stream[..split]);
            c.feed(&stream[split..]);
            let t = c.tally();
            assert_eq!((t.events, t.gaps), (2, 1), "split at {split}");
        }
    }
}
