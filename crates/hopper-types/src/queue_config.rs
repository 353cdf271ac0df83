//! A queue's configuration: whether it is paused, how long its finished jobs are kept, the
//! limits on how its jobs start (global and per-key concurrency, rates) and the order leases
//! follow (priority, fair round robin, shortest job first).
//!
//! Configuration is stored per (namespace, queue) and read by every lease, so a change is in
//! force on every node at once. Limits compose: a job starts only when every limit allows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Timestamp, ValidationError};

/// Largest period of a rate limit: one day.
pub const MAX_RATE_PERIOD_MS: i64 = 86_400_000;
/// Largest retention: ten years.
pub const MAX_RETENTION_MS: i64 = 10 * 365 * 86_400_000;
/// Most weighted fairness keys a queue may list.
pub const MAX_FAIRNESS_WEIGHTS: usize = 1000;

/// The order in which a queue's available jobs are leased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueuePolicy {
    /// Highest priority first, then oldest (the default of the semantics document).
    #[default]
    Priority,
    /// Round robin over `fairness_key`s (weighted), priority order within each key.
    Fair,
    /// Highest priority first, then the smallest `estimated_ms` (jobs without one last).
    ShortestFirst,
}

/// At most `limit` starts per `period_ms`, as a token bucket holding up to `burst` tokens
/// (default `limit`) that refills continuously.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Starts allowed per period, 1..1,000,000.
    pub limit: u32,
    /// The period, 1 ms..1 day.
    pub period_ms: i64,
    /// Most starts at once after an idle spell; `limit` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A token bucket's stored level: `tokens` as of `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens held at `at` (may be fractional).
    pub tokens: f64,
    /// When `tokens` was measured.
    pub at: Timestamp,
}

impl RateLimit {
    fn capacity(&self) -> f64 {
        f64::from(self.burst.unwrap_or(self.limit))
    }

    fn per_ms(&self) -> f64 {
        f64::from(self.limit) / self.period_ms as f64
    }

    /// Tokens in the bucket at `now`; a bucket never used is full.
    pub fn level(&self, bucket: Option<Bucket>, now: Timestamp) -> f64 {
        match bucket {
            None => self.capacity(),
            Some(b) => {
                let elapsed = now.millis_since(b.at).max(0) as f64;
                (b.tokens + elapsed * self.per_ms()).min(self.capacity())
            }
        }
    }

    /// Whole starts the bucket allows at `now`.
    pub fn available(&self, bucket: Option<Bucket>, now: Timestamp) -> u64 {
        // The epsilon absorbs float error: 0.999999999 tokens after an exact refill is one.
        (self.level(bucket, now) + 1e-9).floor().max(0.0) as u64
    }

    /// The bucket after `n` starts at `now`. Its time never moves backwards: a lease stamped
    /// a little earlier than the one before it (it waited for the lock) refills nothing twice.
    pub fn take(&self, bucket: Option<Bucket>, now: Timestamp, n: u64) -> Bucket {
        let at = bucket.map_or(now, |b| b.at.max(now));
        Bucket {
            tokens: self.level(bucket, at) - n as f64,
            at,
        }
    }

    /// How long an emptied bucket takes to fill up: a bucket last used longer ago than this
    /// is full, the same as one never used.
    pub fn refill_ms(&self) -> i64 {
        (self.capacity() / self.per_ms()).ceil() as i64
    }

    /// When the bucket next holds a whole token (`now` if it does already).
    pub fn next_token_at(&self, bucket: Option<Bucket>, now: Timestamp) -> Timestamp {
        let missing = 1.0 - self.level(bucket, now);
        if missing <= 1e-9 {
            now
        } else {
            now.plus_ms((missing / self.per_ms()).ceil() as i64)
        }
    }

    fn validate(&self, field: &str) -> Result<(), ValidationError> {
        if !(1..=1_000_000).contains(&self.limit) {
            return Err(ValidationError::invalid(
                format!("{field}.limit"),
                "limit must be between 1 and 1000000",
            ));
        }
        if !(1..=MAX_RATE_PERIOD_MS).contains(&self.period_ms) {
            return Err(ValidationError::invalid(
                format!("{field}.period_ms"),
                format!("period_ms must be between 1 and {MAX_RATE_PERIOD_MS}"),
            ));
        }
        if let Some(b) = self.burst
            && !(1..=1_000_000).contains(&b)
        {
            return Err(ValidationError::invalid(
                format!("{field}.burst"),
                "burst must be between 1 and 1000000",
            ));
        }
        Ok(())
    }
}

/// How long finished jobs of a queue are kept; the server's defaults where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Completed jobs, in ms after they finished.
    #[serde(default)]
    pub completed_ms: Option<i64>,
    /// Cancelled jobs.
    #[serde(default)]
    pub cancelled_ms: Option<i64>,
    /// Dead jobs.
    #[serde(default)]
    pub dead_ms: Option<i64>,
}

impl Retention {
    /// True when every state keeps the server's default.
    pub fn is_default(&self) -> bool {
        *self == Retention::default()
    }
}

/// Everything configurable about a queue (`PUT /v1/queues/{name}` replaces it whole).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// A paused queue hands out no leases.
    #[serde(default)]
    pub paused: bool,
    /// Lease order.
    #[serde(default)]
    pub policy: QueuePolicy,
    /// Most jobs of the queue running at once, across every worker and node.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Most running jobs per `concurrency_key` (jobs without a key are not limited by it).
    #[serde(default)]
    pub key_concurrency: Option<u32>,
    /// Starts per period for the whole queue.
    #[serde(default)]
    pub rate: Option<RateLimit>,
    /// Starts per period for each `concurrency_key`.
    #[serde(default)]
    pub key_rate: Option<RateLimit>,
    /// Weights of a `fair` queue's keys (default 1): a key of weight 3 gets three leases per
    /// round for every one of a key of weight 1.
    #[serde(default)]
    pub fairness_weights: BTreeMap<String, u32>,
    /// How long finished jobs are kept.
    #[serde(default)]
    pub retention: Retention,
}

impl QueueConfig {
    /// True when leasing must consult the configuration beyond `paused`: any limit, or a
    /// policy other than priority order.
    pub fn shapes_leases(&self) -> bool {
        self.policy != QueuePolicy::Priority
            || self.concurrency.is_some()
            || self.key_concurrency.is_some()
            || self.rate.is_some()
            || self.key_rate.is_some()
    }

    /// True when a job's `concurrency_key` matters.
    pub fn limits_keys(&self) -> bool {
        self.key_concurrency.is_some() || self.key_rate.is_some()
    }

    /// The weight of a fairness key.
    pub fn weight(&self, key: &str) -> u32 {
        self.fairness_weights.get(key).copied().unwrap_or(1)
    }

    /// Checks every field, naming the one at fault.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(c) = self.concurrency
            && !(1..=1_000_000).contains(&c)
        {
            return Err(ValidationError::invalid(
                "concurrency",
                "concurrency must be between 1 and 1000000",
            ));
        }
        if let Some(c) = self.key_concurrency
            && !(1..=1_000_000).contains(&c)
        {
            return Err(ValidationError::invalid(
                "key_concurrency",
                "key_concurrency must be between 1 and 1000000",
            ));
        }
        if let Some(r) = &self.rate {
            r.validate("rate")?;
        }
        if let Some(r) = &self.key_rate {
            r.validate("key_rate")?;
        }
        if self.fairness_weights.len() > MAX_FAIRNESS_WEIGHTS {
            return Err(ValidationError::invalid(
                "fairness_weights",
                format!("at most {MAX_FAIRNESS_WEIGHTS} weighted keys"),
            ));
        }
        for (k, w) in &self.fairness_weights {
            let field = format!("fairness_weights.{k}");
            if k.is_empty() || k.chars().count() > 256 {
                return Err(ValidationError::invalid(
                    field,
                    "a fairness key must be 1 to 256 characters",
                ));
            }
            if !(1..=1000).contains(w) {
                return Err(ValidationError::invalid(
                    field,
                    "a weight must be between 1 and 1000",
                ));
            }
        }
        for (field, v) in [
            ("retention.completed_ms", self.retention.completed_ms),
            ("retention.cancelled_ms", self.retention.cancelled_ms),
            ("retention.dead_ms", self.retention.dead_ms),
        ] {
            if let Some(ms) = v
                && !(0..=MAX_RETENTION_MS).contains(&ms)
            {
                return Err(ValidationError::invalid(
                    field,
                    format!("{field} must be between 0 and {MAX_RETENTION_MS}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(limit: u32, period_ms: i64, burst: Option<u32>) -> RateLimit {
        RateLimit {
            limit,
            period_ms,
            burst,
        }
    }

    #[test]
    fn a_fresh_bucket_is_full_and_refills_at_the_rate() {
        let r = rate(10, 1000, None);
        let t0 = Timestamp(1_000_000);
        assert_eq!(r.available(None, t0), 10);
        let b = r.take(None, t0, 10);
        assert_eq!(r.available(Some(b), t0), 0);
        assert_eq!(r.next_token_at(Some(b), t0), t0.plus_ms(100));
        assert_eq!(r.available(Some(b), t0.plus_ms(99)), 0);
        assert_eq!(r.available(Some(b), t0.plus_ms(100)), 1);
        assert_eq!(r.available(Some(b), t0.plus_ms(550)), 5);
        // Never above the burst, however long idle.
        assert_eq!(r.available(Some(b), t0.plus_ms(1_000_000)), 10);
    }

    #[test]
    fn a_late_stamped_take_does_not_refill_twice() {
        let r = rate(10, 1000, None);
        let b = r.take(None, Timestamp(5000), 10);
        // A lease stamped before the previous one: no refill, and the bucket keeps its time.
        let b2 = r.take(Some(b), Timestamp(4000), 0);
        assert_eq!(b2.at, Timestamp(5000));
        assert_eq!(r.available(Some(b2), Timestamp(5000)), 0);
        assert_eq!(r.available(Some(b2), Timestamp(5100)), 1);
    }

    #[test]
    fn burst_caps_the_bucket_below_the_rate() {
        let r = rate(100, 1000, Some(5));
        assert_eq!(r.available(None, Timestamp(0)), 5);
        let b = r.take(None, Timestamp(0), 5);
        assert_eq!(r.available(Some(b), Timestamp(1000)), 5);
        assert_eq!(r.available(Some(b), Timestamp(30)), 3);
    }

    #[test]
    fn config_parses_with_defaults_and_names_bad_fields() {
        let c: QueueConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, QueueConfig::default());
        assert!(!c.shapes_leases());
        let c: QueueConfig = serde_json::from_str(
            r#"{"policy":"fair","concurrency":3,"rate":{"limit":5,"period_ms":1000},
                "fairness_weights":{"big":2},"retention":{"dead_ms":60000}}"#,
        )
        .unwrap();
        assert!(c.shapes_leases());
        assert_eq!(c.weight("big"), 2);
        assert_eq!(c.weight("other"), 1);
        c.validate().unwrap();
        for (json, field) in [
            (r#"{"concurrency":0}"#, "concurrency"),
            (r#"{"key_concurrency":0}"#, "key_concurrency"),
            (r#"{"rate":{"limit":0,"period_ms":1}}"#, "rate.limit"),
            (
                r#"{"key_rate":{"limit":1,"period_ms":0}}"#,
                "key_rate.period_ms",
            ),
            (
                r#"{"rate":{"limit":1,"period_ms":10,"burst":0}}"#,
                "rate.burst",
            ),
            (r#"{"fairness_weights":{"a":0}}"#, "fairness_weights.a"),
            (
                r#"{"retention":{"completed_ms":-1}}"#,
                "retention.completed_ms",
            ),
        ] {
            let c: QueueConfig = serde_json::from_str(json).unwrap();
            assert_eq!(c.validate().unwrap_err().field, field, "{json}");
        }
        assert!(serde_json::from_str::<QueueConfig>(r#"{"policy":"lifo"}"#).is_err());
        assert!(serde_json::from_str::<QueueConfig>(r#"{"nope":1}"#).is_err());
    }
}
