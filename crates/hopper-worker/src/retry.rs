//! How the SDK retries requests that are safe to repeat: enqueues (every one carries an
//! idempotency key, so a repeat after a lost answer never creates a second job), outcomes (a
//! repeated outcome for the same token is answered 200 and changes nothing) and leases after
//! an outage.

use std::future::Future;
use std::time::Duration;

use crate::Error;

/// Exponential backoff for retryable failures ([`Error::is_retryable`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tries in all, the first included; 1 means never retry.
    pub max_attempts: u32,
    /// Wait after the first failure.
    pub initial_delay: Duration,
    /// Longest wait between two tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six tries over about three seconds: long enough to ride out a server restart's
    /// first moments, short enough that a producer notices a real outage quickly.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy that tries once.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed try number `attempt` (1-based): doubling from `initial_delay`,
    /// capped at `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable, or the tries
    /// run out. A server's `Retry-After` wins over the computed delay when it is longer.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.max_attempts => {
                    let wait = self.delay(attempt).max(e.retry_after().unwrap_or_default());
                    tracing::debug!(error = %e, attempt, ?wait, "{what} failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiError, ErrorCode};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_double_then_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let ds: Vec<u128> = (1..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(ds, vec![100, 200, 400, 500, 500]);
        assert_eq!(p.delay(100), Duration::from_millis(500));
    }

    fn unavailable() -> Error {
        Error::Api(ApiError {
            status: 503,
            code: ErrorCode::Unavailable,
            message: "shutting down".into(),
            field: None,
            retry_after: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_what_is_retryable() {
        let p = RetryPolicy::default();
        let tries = AtomicU32::new(0);
        let r = p
            .run("test", || async {
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(unavailable())
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicU32::new(0);
        let r: Result<(), Error> = p
            .run("test", || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(Error::Api(ApiError {
                    status: 409,
                    code: ErrorCode::LeaseLost,
                    message: String::new(),
                    field: None,
                    retry_after: None,
                }))
            })
            .await;
        assert!(r.unwrap_err().is_lease_lost());
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let tries = AtomicU32::new(0);
        let r: Result<(), Error> = p
            .run("test", || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(unavailable())
            })
            .await;
        assert!(r.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }
}
