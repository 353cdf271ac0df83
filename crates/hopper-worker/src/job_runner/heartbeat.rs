//! The heartbeat of one lease: renews it every third of the lease, from the moment the job was
//! leased until its outcome is queued, whether the job waits for a run slot or runs.
//!
//! The lease runs on the server from the lease on, not from the handler's start: a job leased
//! ahead (the worker holds up to twice its concurrency) that waited unrenewed behind handlers
//! longer than the lease would be rescued as a failed attempt while this worker still holds it.
//! So the job task keeps one [`Heartbeat`] for the job's whole stay and polls it both while it
//! waits and while the handler runs.

use std::time::Duration;

use futures::future::BoxFuture;
use hopper_types::JobId;
use tokio::time::{Instant, sleep_until};

use crate::wire::HeartbeatAnswer;
use crate::{Client, Error};

/// A heartbeat that failed for a reason other than a lost lease is tried again this soon, so
/// a short blip does not let the lease run out.
const HEARTBEAT_RETRY: Duration = Duration::from_secs(1);

/// The shortest interval between heartbeats, whatever the lease.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// What a heartbeat answer means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaseNews {
    /// Someone cancelled the job through the API.
    CancelRequested,
    /// The server no longer recognises the lease (it expired or the attempt timed out there).
    Lost,
}

/// The heartbeat schedule of one lease and the request in flight, if any.
pub(crate) struct Heartbeat {
    client: Client,
    id: JobId,
    lease_token: String,
    lease_ms: u64,
    interval: Duration,
    next: Instant,
    in_flight: Option<BoxFuture<'static, Result<HeartbeatAnswer, Error>>>,
}

impl Heartbeat {
    /// Starts the schedule now: the first heartbeat goes out a third of a lease from now, so
    /// build it as soon as the job is leased.
    pub(crate) fn start(client: Client, id: JobId, lease_token: String, lease_ms: u64) -> Self {
        let interval = Duration::from_millis(lease_ms / 3).max(MIN_INTERVAL);
        Heartbeat {
            client,
            id,
            lease_token,
            lease_ms,
            interval,
            next: Instant::now() + interval,
            in_flight: None,
        }
    }

    /// Sends heartbeats on schedule, and completes at the first answer with news for the job.
    /// Calling it again goes on heartbeating (after a cancel request, say).
    ///
    /// Cancel-safe, to be one branch of a `select!` loop: the schedule and a request in flight
    /// live in `self`, so a dropped call loses nothing and the next call resumes it.
    pub(crate) async fn news(&mut self) -> LeaseNews {
        loop {
            if self.in_flight.is_none() {
                sleep_until(self.next).await;
                let client = self.client.clone();
                let (id, token, lease_ms) = (self.id, self.lease_token.clone(), self.lease_ms);
                self.in_flight = Some(Box::pin(async move {
                    client.heartbeat(id, &token, Some(lease_ms), None).await
                }));
            }
            let answer = self
                .in_flight
                .as_mut()
                .expect("set just above or by an earlier call")
                .await;
            self.in_flight = None;
            self.next = Instant::now() + self.interval;
            match answer {
                Ok(a) if a.cancel_requested => return LeaseNews::CancelRequested,
                Ok(_) => {}
                Err(e) if e.is_lease_lost() => return LeaseNews::Lost,
                Err(e) => {
                    tracing::warn!(job = %self.id, error = %e, "heartbeat failed");
                    self.next = Instant::now() + HEARTBEAT_RETRY.min(self.interval);
                }
            }
        }
    }
}
