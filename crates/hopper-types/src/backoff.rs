//! How long a failed job waits before its next attempt.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A retry delay policy, chosen per job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backoff {
    /// `min(cap_ms, base_ms · 2^(attempt−1))`, multiplied by a random factor in
    /// `[1 − jitter, 1 + jitter]`.
    Exponential {
        /// Delay after the first failed attempt.
        #[serde(default = "default_base_ms")]
        base_ms: i64,
        /// Largest delay before jitter.
        #[serde(default = "default_cap_ms")]
        cap_ms: i64,
        /// Relative spread, 0..=1, so retries of many jobs that failed together spread out.
        #[serde(default = "default_jitter")]
        jitter: f64,
    },
    /// The same delay after every attempt.
    Fixed {
        /// The delay.
        delay_ms: i64,
    },
}

fn default_base_ms() -> i64 {
    1_000
}
fn default_cap_ms() -> i64 {
    3_600_000
}
fn default_jitter() -> f64 {
    0.2
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential {
            base_ms: default_base_ms(),
            cap_ms: default_cap_ms(),
            jitter: default_jitter(),
        }
    }
}

/// Largest delay any policy may name: 30 days.
pub const MAX_BACKOFF_MS: i64 = 30 * 24 * 3_600_000;

impl Backoff {
    /// The delay before the attempt after `attempt` (1-based: the attempt that just failed).
    pub fn delay_ms(&self, attempt: i32, rng: &mut impl Rng) -> i64 {
        match *self {
            Backoff::Fixed { delay_ms } => delay_ms,
            Backoff::Exponential {
                base_ms,
                cap_ms,
                jitter,
            } => {
                let exp = attempt.saturating_sub(1).clamp(0, 62) as u32;
                let raw = base_ms.saturating_mul(1_i64.checked_shl(exp).unwrap_or(i64::MAX));
                let capped = raw.min(cap_ms).max(0) as f64;
                let factor = if jitter > 0.0 {
                    rng.random_range(1.0 - jitter..=1.0 + jitter)
                } else {
                    1.0
                };
                (capped * factor).round() as i64
            }
        }
    }

    /// Checks the policy's numbers; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match *self {
            Backoff::Fixed { delay_ms } => {
                if !(0..=MAX_BACKOFF_MS).contains(&delay_ms) {
                    return Err((
                        "delay_ms",
                        format!("delay_ms must be between 0 and {MAX_BACKOFF_MS}"),
                    ));
                }
            }
            Backoff::Exponential {
                base_ms,
                cap_ms,
                jitter,
            } => {
                if !(0..=MAX_BACKOFF_MS).contains(&base_ms) {
                    return Err((
                        "base_ms",
                        format!("base_ms must be between 0 and {MAX_BACKOFF_MS}"),
                    ));
                }
                if !(base_ms..=MAX_BACKOFF_MS).contains(&cap_ms) {
                    return Err((
                        "cap_ms",
                        format!("cap_ms must be between base_ms and {MAX_BACKOFF_MS}"),
                    ));
                }
                if !(0.0..=1.0).contains(&jitter) {
                    return Err(("jitter", "jitter must be between 0 and 1".to_string()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_then_caps_within_jitter() {
        let b = Backoff::Exponential {
            base_ms: 1000,
            cap_ms: 10_000,
            jitter: 0.2,
        };
        let mut rng = rand::rng();
        for (attempt, nominal) in [
            (1, 1000.0),
            (2, 2000.0),
            (3, 4000.0),
            (4, 8000.0),
            (5, 10_000.0),
            (60, 10_000.0),
        ] {
            for _ in 0..200 {
                let d = b.delay_ms(attempt, &mut rng) as f64;
                assert!(
                    d >= nominal * 0.8 - 1.0 && d <= nominal * 1.2 + 1.0,
                    "attempt {attempt}: {d}"
                );
            }
        }
    }

    #[test]
    fn no_jitter_is_exact_and_fixed_is_fixed() {
        let mut rng = rand::rng();
        let b = Backoff::Exponential {
            base_ms: 100,
            cap_ms: 1000,
            jitter: 0.0,
        };
        assert_eq!(b.delay_ms(3, &mut rng), 400);
        assert_eq!(Backoff::Fixed { delay_ms: 7 }.delay_ms(9, &mut rng), 7);
    }

    #[test]
    fn jitter_actually_spreads() {
        let b = Backoff::default();
        let mut rng = rand::rng();
        let ds: std::collections::HashSet<i64> = (0..50).map(|_| b.delay_ms(1, &mut rng)).collect();
        assert!(ds.len() > 10);
    }

    #[test]
    fn validation_names_fields() {
        assert_eq!(
            Backoff::Fixed { delay_ms: -1 }.validate().unwrap_err().0,
            "delay_ms"
        );
        let b = Backoff::Exponential {
            base_ms: 10,
            cap_ms: 5,
            jitter: 0.1,
        };
        assert_eq!(b.validate().unwrap_err().0, "cap_ms");
        let j: Backoff = serde_json::from_str(r#"{"kind":"exponential","base_ms":5}"#).unwrap();
        assert_eq!(
            j,
            Backoff::Exponential {
                base_ms: 5,
                cap_ms: 3_600_000,
                jitter: 0.2
            }
        );
    }
}
