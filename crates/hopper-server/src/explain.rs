//! "Why is this job not running?": turns what the store knows about a job's wait
//! ([`JobWait`]) and when workers last asked for its queue into reasons, each with a code,
//! a sentence and the figures behind it. Pure, so every reason is tested without a server.

use hopper_store::{JobWait, MAX_AHEAD_COUNTED};
use hopper_types::{JobState, QueuePolicy, Timestamp};
use serde::Serialize;

/// How long without a lease request for a queue before "no worker" is a reason.
pub const NO_WORKER_WINDOW_MS: i64 = 60_000;

/// One thing holding a job back (or, for `in_line` and `next`, where it stands).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// Stable machine-readable kind: `running`, `finished`, `dependencies`, `run_at`,
    /// `retry_backoff`, `queue_paused`, `queue_concurrency`, `key_concurrency`, `queue_rate`,
    /// `key_rate`, `no_workers`, `in_line`, `next`.
    pub code: &'static str,
    /// The reason in plain words.
    pub message: String,
    /// True when this reason alone keeps the job from starting now.
    pub blocking: bool,
    /// The limit involved (concurrency or rate starts per period).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Jobs running against that limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<u64>,
    /// The concurrency or fairness key involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When this reason stops holding (run_at, end of backoff, next rate token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Jobs ahead in line (at least this many when `ahead_capped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    /// When a worker last asked for the queue, if within the server's memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<Timestamp>,
}

impl Reason {
    fn new(code: &'static str, blocking: bool, message: String) -> Reason {
        Reason {
            code,
            message,
            blocking,
            limit: None,
            running: None,
            key: None,
            until: None,
            ahead: None,
            last_seen_at: None,
        }
    }
}

/// The answer of `GET /v1/jobs/{id}/explain`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// The job.
    pub job_id: String,
    /// Its state.
    pub state: JobState,
    /// True when nothing but its place in line keeps it from the next worker that asks.
    pub runnable: bool,
    /// The first blocking reason, or where the job stands.
    pub summary: String,
    /// Every reason that applies, blocking ones first.
    pub reasons: Vec<Reason>,
}

/// Explains `wait` at `now`; `last_poll` is when a worker last asked for the job's queue.
pub fn explain(wait: &JobWait, now: Timestamp, last_poll: Option<Timestamp>) -> Explanation {
    let job = &wait.job;
    let flow = &wait.flow;
    let c = &flow.config;
    let q = &job.queue;
    let mut reasons = Vec::new();
    match job.state {
        JobState::Running => reasons.push(Reason::new(
            "running",
            false,
            format!(
                "It is running (attempt {} of {}) on worker {}.",
                job.attempt,
                job.max_attempts,
                job.worker_id.as_deref().unwrap_or("unknown")
            ),
        )),
        s if s.is_finished() => reasons.push(Reason::new(
            "finished",
            false,
            format!("It has finished: it is {}.", s.as_str()),
        )),
        JobState::Pending => reasons.push(Reason::new(
            "dependencies",
            true,
            "It waits for the jobs it depends on to finish.".to_string(),
        )),
        JobState::Scheduled => {
            let mut r = Reason::new(
                "run_at",
                true,
                format!("It is scheduled to run at {}.", job.available_at),
            );
            r.until = Some(job.available_at);
            reasons.push(r);
        }
        JobState::Retryable => {
            let mut r = Reason::new(
                "retry_backoff",
                true,
                format!(
                    "Attempt {} failed; it retries at {}.",
                    job.attempt, job.available_at
                ),
            );
            r.until = Some(job.available_at);
            reasons.push(r);
        }
        _ => {}
    }
    if job.state == JobState::Available {
        let key = job.concurrency_key.clone();
        if c.paused {
            reasons.push(Reason::new(
                "queue_paused",
                true,
                format!("Queue {q} is paused: it hands out no jobs until it is resumed."),
            ));
        }
        if let Some(cap) = c.concurrency
            && flow.running >= u64::from(cap)
        {
            let mut r = Reason::new(
                "queue_concurrency",
                true,
                format!(
                    "Queue {q} runs at most {cap} jobs at once, and {} are running.",
                    flow.running
                ),
            );
            r.limit = Some(u64::from(cap));
            r.running = Some(flow.running);
            reasons.push(r);
        }
        if let (Some(cap), Some(k)) = (c.key_concurrency, key.as_ref()) {
            let running = flow.running_by_key.get(k).copied().unwrap_or(0);
            if running >= u64::from(cap) {
                let mut r = Reason::new(
                    "key_concurrency",
                    true,
                    format!(
                        "Queue {q} runs at most {cap} jobs per concurrency key at once, and {running} of key {k} are running."
                    ),
                );
                r.limit = Some(u64::from(cap));
                r.running = Some(running);
                r.key = Some(k.clone());
                reasons.push(r);
            }
        }
        if let Some(rate) = &c.rate
            && rate.available(flow.rate_bucket, now) == 0
        {
            let mut r = Reason::new(
                "queue_rate",
                true,
                format!(
                    "Queue {q} starts at most {} jobs per {} ms; the next start is allowed at {}.",
                    rate.limit,
                    rate.period_ms,
                    rate.next_token_at(flow.rate_bucket, now)
                ),
            );
            r.limit = Some(u64::from(rate.limit));
            r.until = Some(rate.next_token_at(flow.rate_bucket, now));
            reasons.push(r);
        }
        if let (Some(rate), Some(k)) = (&c.key_rate, key.as_ref()) {
            let bucket = flow.key_buckets.get(k).copied();
            if rate.available(bucket, now) == 0 {
                let at = rate.next_token_at(bucket, now);
                let mut r = Reason::new(
                    "key_rate",
                    true,
                    format!(
                        "Queue {q} starts at most {} jobs of one concurrency key per {} ms; key {k}'s next start is allowed at {at}.",
                        rate.limit, rate.period_ms
                    ),
                );
                r.limit = Some(u64::from(rate.limit));
                r.key = Some(k.clone());
                r.until = Some(at);
                reasons.push(r);
            }
        }
        let polled = last_poll.filter(|t| now.millis_since(*t) <= NO_WORKER_WINDOW_MS);
        if polled.is_none() {
            let mut r = Reason::new(
                "no_workers",
                true,
                format!("No worker has asked for jobs of queue {q} in the last minute."),
            );
            r.last_seen_at = last_poll;
            reasons.push(r);
        }
        let mut r = if wait.ahead == 0 {
            Reason::new(
                "next",
                false,
                "It is first in line: the next lease of its queue takes it.".to_string(),
            )
        } else {
            let more = if wait.ahead >= MAX_AHEAD_COUNTED {
                "at least "
            } else {
                ""
            };
            let line = match (c.policy, job.fairness_key.as_deref()) {
                (QueuePolicy::Fair, Some(k)) => format!("of fairness key {k} "),
                (QueuePolicy::Fair, None) => "without a fairness key ".to_string(),
                _ => String::new(),
            };
            Reason::new(
                "in_line",
                false,
                format!("{more}{} jobs {line}lease before it.", wait.ahead),
            )
        };
        r.ahead = Some(wait.ahead);
        if c.policy == QueuePolicy::Fair {
            r.key = Some(job.fairness_key.clone().unwrap_or_default());
        }
        reasons.push(r);
    }
    reasons.sort_by_key(|r| !r.blocking);
    let runnable = job.state == JobState::Available && !reasons.iter().any(|r| r.blocking);
    let summary = reasons
        .first()
        .map(|r| r.message.clone())
        .unwrap_or_default();
    Explanation {
        job_id: job.id.to_string(),
        state: job.state,
        runnable,
        summary,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hopper_store::lease_plan::FlowSnapshot;
    use hopper_types::{
        Bucket, EnqueueRequest, EnqueueRequestExt, Job, Limits, QueueConfig, lifecycle,
    };

    const NOW: Timestamp = Timestamp(1_000_000);

    fn job(json: &str) -> Job {
        let req: EnqueueRequest = serde_json::from_str(json).unwrap();
        lifecycle::insert(req.validate_default(&Limits::default()), NOW).0
    }

    fn wait(job: Job, config: &str) -> JobWait {
        JobWait {
            job,
            flow: FlowSnapshot {
                config: serde_json::from_str::<QueueConfig>(config).unwrap(),
                now: NOW,
                ..Default::default()
            },
            ahead: 0,
        }
    }

    fn codes(e: &Explanation) -> Vec<&'static str> {
        e.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn an_available_job_first_in_line_with_workers_is_runnable() {
        let e = explain(&wait(job(r#"{"kind":"k"}"#), "{}"), NOW, Some(NOW));
        assert!(e.runnable);
        assert_eq!(codes(&e), ["next"]);
        let mut w = wait(job(r#"{"kind":"k"}"#), "{}");
        w.ahead = 12;
        let e = explain(&w, NOW, Some(NOW));
        assert!(e.runnable);
        assert_eq!(codes(&e), ["in_line"]);
        assert_eq!(e.reasons[0].ahead, Some(12));
        assert_eq!(e.summary, "12 jobs lease before it.");
    }

    #[test]
    fn no_worker_in_the_last_minute_is_named() {
        let w = wait(job(r#"{"kind":"k","queue":"mail"}"#), "{}");
        let e = explain(&w, NOW, None);
        assert!(!e.runnable);
        assert_eq!(codes(&e), ["no_workers", "next"]);
        let e = explain(&w, NOW, Some(NOW.plus_ms(-NO_WORKER_WINDOW_MS - 1)));
        assert_eq!(e.reasons[0].code, "no_workers");
        assert!(e.summary.contains("queue mail"));
    }

    #[test]
    fn waiting_states_name_their_time() {
        let w = wait(job(r#"{"kind":"k","delay_ms":5000}"#), "{}");
        let e = explain(&w, NOW, Some(NOW));
        assert_eq!(codes(&e), ["run_at"]);
        assert_eq!(e.reasons[0].until, Some(NOW.plus_ms(5000)));
        let mut j = job(r#"{"kind":"k"}"#);
        j.state = JobState::Retryable;
        j.attempt = 1;
        j.available_at = NOW.plus_ms(900);
        let e = explain(&wait(j, "{}"), NOW, Some(NOW));
        assert_eq!(codes(&e), ["retry_backoff"]);
        let mut j = job(r#"{"kind":"k"}"#);
        j.state = JobState::Pending;
        assert_eq!(codes(&explain(&wait(j, "{}"), NOW, None)), ["dependencies"]);
        let mut j = job(r#"{"kind":"k"}"#);
        j.state = JobState::Completed;
        let e = explain(&wait(j, "{}"), NOW, None);
        assert_eq!(codes(&e), ["finished"]);
        assert!(!e.runnable);
    }

    #[test]
    fn each_limit_is_named_with_its_figures() {
        let mut w = wait(
            job(r#"{"kind":"k","concurrency_key":"acme"}"#),
            r#"{"paused":true,"concurrency":2,"key_concurrency":1,
                "rate":{"limit":10,"period_ms":1000},"key_rate":{"limit":1,"period_ms":60000}}"#,
        );
        w.flow.running = 2;
        w.flow.running_by_key.insert("acme".into(), 1);
        w.flow.rate_bucket = Some(Bucket {
            tokens: 0.0,
            at: NOW,
        });
        w.flow.key_buckets.insert(
            "acme".into(),
            Bucket {
                tokens: 0.5,
                at: NOW,
            },
        );
        let e = explain(&w, NOW, Some(NOW));
        assert_eq!(
            codes(&e),
            [
                "queue_paused",
                "queue_concurrency",
                "key_concurrency",
                "queue_rate",
                "key_rate",
                "next"
            ]
        );
        let by = |c: &str| e.reasons.iter().find(|r| r.code == c).unwrap().clone();
        assert_eq!(by("queue_concurrency").running, Some(2));
        assert_eq!(by("queue_concurrency").limit, Some(2));
        assert_eq!(by("key_concurrency").key.as_deref(), Some("acme"));
        assert_eq!(by("queue_rate").until, Some(NOW.plus_ms(100)));
        assert_eq!(by("key_rate").until, Some(NOW.plus_ms(30_000)));
        assert!(e.summary.starts_with("Queue default is paused"));

        // Below every limit, none is named.
        let mut w = wait(
            job(r#"{"kind":"k","concurrency_key":"acme"}"#),
            r#"{"concurrency":2,"key_concurrency":1,"rate":{"limit":10,"period_ms":1000}}"#,
        );
        w.flow.running = 1;
        assert!(explain(&w, NOW, Some(NOW)).runnable);
    }

    #[test]
    fn a_fair_queue_counts_the_line_of_the_jobs_key() {
        let mut w = wait(
            job(r#"{"kind":"k","fairness_key":"tenant-9"}"#),
            r#"{"policy":"fair"}"#,
        );
        w.ahead = 3;
        let e = explain(&w, NOW, Some(NOW));
        assert_eq!(
            e.summary,
            "3 jobs of fairness key tenant-9 lease before it."
        );
        assert_eq!(e.reasons[0].key.as_deref(), Some("tenant-9"));
    }
}
