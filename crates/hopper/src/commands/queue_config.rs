//! `hopper queues set`: applies the flags given to a queue's configuration (the current one,
//! or the defaults with `--reset`), leaving every other setting as it was.

use anyhow::{Context, bail};
use hopper_worker::{QueueConfig, QueuePolicy, RateLimit};

use crate::cli::QueueSetArgs;

/// `LIMIT/PERIOD_MS[/BURST]`, or `none` for no rate.
fn parse_rate(flag: &str, text: &str) -> anyhow::Result<Option<RateLimit>> {
    if text.trim() == "none" {
        return Ok(None);
    }
    let parts: Vec<&str> = text.split('/').map(str::trim).collect();
    let num = |s: &str, what: &str| -> anyhow::Result<i64> {
        s.parse()
            .with_context(|| format!("--{flag}: {what} `{s}` is not a whole number"))
    };
    let (limit, period, burst) = match parts.as_slice() {
        [l, p] => (num(l, "the limit")?, num(p, "the period")?, None),
        [l, p, b] => (
            num(l, "the limit")?,
            num(p, "the period")?,
            Some(num(b, "the burst")?),
        ),
        _ => bail!("--{flag} takes LIMIT/PERIOD_MS[/BURST], e.g. 100/1000, or none"),
    };
    Ok(Some(RateLimit {
        limit: u32::try_from(limit).with_context(|| format!("--{flag}: limit out of range"))?,
        period_ms: period,
        burst: burst
            .map(u32::try_from)
            .transpose()
            .with_context(|| format!("--{flag}: burst out of range"))?,
    }))
}

/// The configuration `args` asks for, starting from `current`.
pub fn apply(current: QueueConfig, args: &QueueSetArgs) -> anyhow::Result<QueueConfig> {
    let mut c = if args.reset {
        QueueConfig::default()
    } else {
        current
    };
    if let Some(p) = &args.policy {
        c.policy = match p.trim() {
            "priority" => QueuePolicy::Priority,
            "fair" => QueuePolicy::Fair,
            "shortest_first" => QueuePolicy::ShortestFirst,
            other => bail!("--policy takes priority, fair or shortest_first, not `{other}`"),
        };
    }
    if let Some(n) = args.concurrency {
        c.concurrency = (n > 0).then_some(n);
    }
    if let Some(n) = args.key_concurrency {
        c.key_concurrency = (n > 0).then_some(n);
    }
    if let Some(r) = &args.rate {
        c.rate = parse_rate("rate", r)?;
    }
    if let Some(r) = &args.key_rate {
        c.key_rate = parse_rate("key-rate", r)?;
    }
    for w in &args.weights {
        let (key, weight) = w
            .split_once('=')
            .with_context(|| format!("--weight takes KEY=WEIGHT, not `{w}`"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .with_context(|| format!("--weight {w}: the weight is not a whole number"))?;
        if weight == 1 {
            c.fairness_weights.remove(key);
        } else {
            c.fairness_weights.insert(key.to_string(), weight);
        }
    }
    if let Some(ms) = args.retain_completed_ms {
        c.retention.completed_ms = Some(ms);
    }
    if let Some(ms) = args.retain_cancelled_ms {
        c.retention.cancelled_ms = Some(ms);
    }
    if let Some(ms) = args.retain_dead_ms {
        c.retention.dead_ms = Some(ms);
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut QueueSetArgs)) -> QueueSetArgs {
        let mut a = QueueSetArgs {
            queue: "q".into(),
            reset: false,
            policy: None,
            concurrency: None,
            key_concurrency: None,
            rate: None,
            key_rate: None,
            weights: vec![],
            retain_completed_ms: None,
            retain_cancelled_ms: None,
            retain_dead_ms: None,
        };
        f(&mut a);
        a
    }

    #[test]
    fn flags_change_only_what_they_name() {
        let current = QueueConfig {
            concurrency: Some(3),
            ..Default::default()
        };
        let c = apply(
            current.clone(),
            &args(|a| {
                a.rate = Some("100/1000/20".into());
                a.weights = vec!["vip=4".into()];
                a.policy = Some("fair".into());
            }),
        )
        .unwrap();
        assert_eq!(c.concurrency, Some(3));
        assert_eq!(
            c.rate,
            Some(RateLimit {
                limit: 100,
                period_ms: 1000,
                burst: Some(20)
            })
        );
        assert_eq!(c.fairness_weights.get("vip"), Some(&4));
        assert_eq!(c.policy, QueuePolicy::Fair);
        let c = apply(c, &args(|a| a.concurrency = Some(0))).unwrap();
        assert_eq!(c.concurrency, None);
        let c = apply(c, &args(|a| a.rate = Some("none".into()))).unwrap();
        assert_eq!(c.rate, None);
        let c = apply(c, &args(|a| a.reset = true)).unwrap();
        assert_eq!(c, QueueConfig::default());
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let bad = |f: fn(&mut QueueSetArgs)| {
            format!("{:#}", apply(QueueConfig::default(), &args(f)).unwrap_err())
        };
        assert!(bad(|a| a.rate = Some("10".into())).contains("LIMIT/PERIOD_MS"));
        assert!(bad(|a| a.rate = Some("x/10".into())).contains("limit"));
        assert!(bad(|a| a.policy = Some("lifo".into())).contains("lifo"));
        assert!(bad(|a| a.weights = vec!["vip".into()]).contains("KEY=WEIGHT"));
    }
}
