//! Token buckets, keyed: the per-key request limit and the per-namespace enqueue rate.
//!
//! A bucket holds up to one second's worth of tokens (`rate`), refills continuously, and a
//! request that finds it short learns how long until enough tokens are back: the 429's
//! `Retry-After`. Limits are per node: N nodes admit up to N times the rate, which is what a
//! limit meant to stop one runaway client needs, without a store round trip per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets by key.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes `n` tokens from `key`'s bucket of `rate` per second at `now`; `Err(wait)` when it
    /// holds fewer, taking nothing. A request for more than a whole bucket is let through when
    /// the bucket is full (it could never succeed otherwise) and empties it.
    pub fn take(&self, key: &str, rate: u32, n: u32, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(rate.max(1));
        let want = f64::from(n).min(rate);
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock only means another request panicked mid-update; limiting is
            // not worth failing requests over.
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Bounded memory whatever the traffic: full buckets carry no information.
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() * rate < rate);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.at = now;
        if b.tokens + 1e-9 >= want {
            b.tokens -= want;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((want - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_rate_then_refuses_until_refilled() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.take("k", 5, 1, t0).is_ok());
        }
        let wait = l.take("k", 5, 1, t0).expect_err("empty");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(l.take("other", 5, 1, t0).is_ok());
        // 200 ms later one token is back, not two.
        let t1 = t0 + Duration::from_millis(200);
        assert!(l.take("k", 5, 1, t1).is_ok());
        assert!(l.take("k", 5, 1, t1).is_err());
    }

    #[test]
    fn a_request_larger_than_the_bucket_passes_only_when_full() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        assert!(l.take("k", 10, 50, t0).is_ok());
        assert!(l.take("k", 10, 1, t0).is_err());
        let wait = l.take("k", 10, 50, t0).expect_err("empty");
        assert!(wait <= Duration::from_secs(1));
    }
}
