//! How client commands print: JSON for `--json`, tables and sentences otherwise, always on
//! stdout (logs and progress go to stderr, so output can be piped).

use anyhow::Context;
use hopper_worker::{Job, QueueInfo, Timestamp, WorkerInfo};
use serde::Serialize;

use crate::table::{Table, ellipsize, thousands};

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("encoding the output as JSON")?;
    println!("{text}");
    Ok(())
}

/// The state columns `hopper queues ls` shows, in lifecycle order.
const QUEUE_STATES: [&str; 8] = [
    "pending",
    "scheduled",
    "available",
    "running",
    "retryable",
    "completed",
    "dead",
    "cancelled",
];

/// One line per job.
pub fn jobs_table(jobs: &[Job]) -> Table {
    let mut t = Table::new(["ID", "QUEUE", "KIND", "STATE", "ATTEMPT", "CREATED"]);
    for j in jobs {
        t.row([
            j.id.to_string(),
            j.queue.clone(),
            ellipsize(&j.kind, 40),
            j.state.to_string(),
            format!("{}/{}", j.attempt, j.max_attempts),
            j.created_at.to_string(),
        ]);
    }
    t
}

/// One line per queue with its counts per state.
pub fn queues_table(queues: &[QueueInfo]) -> Table {
    let mut header = vec!["QUEUE".to_string(), "PAUSED".to_string()];
    header.extend(QUEUE_STATES.iter().map(|s| s.to_uppercase()));
    header.push("OLDEST".to_string());
    let right: Vec<usize> = (2..header.len()).collect();
    let mut t = Table::new(header).align_right(&right);
    for q in queues {
        let mut row = vec![
            q.name.clone(),
            if q.paused { "yes" } else { "no" }.to_string(),
        ];
        for s in QUEUE_STATES {
            row.push(thousands(q.counts.get(s).copied().unwrap_or(0)));
        }
        row.push(
            q.oldest_available_age_ms
                .map(human_duration_ms)
                .unwrap_or_else(|| "-".to_string()),
        );
        t.row(row);
    }
    t
}

/// One line per worker.
pub fn workers_table(workers: &[WorkerInfo]) -> Table {
    let mut t = Table::new(["WORKER", "QUEUES", "RUNNING", "LAST SEEN"]).align_right(&[2]);
    for w in workers {
        t.row([
            w.id.clone(),
            w.queues.join(","),
            w.running.to_string(),
            w.last_seen_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".to_string()),
        ]);
    }
    t
}

/// A job in detail: its fields, then its errors and attempts.
pub fn job_detail(j: &Job) -> String {
    let opt_time = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
    let mut fields = Table::new(["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", j.id.to_string()),
        ("queue", j.queue.clone()),
        ("kind", j.kind.clone()),
        ("state", j.state.to_string()),
        ("attempt", format!("{}/{}", j.attempt, j.max_attempts)),
        ("priority", j.priority.to_string()),
        ("args", ellipsize(j.args.get(), 200)),
        ("tags", j.tags.join(",")),
        ("created_at", j.created_at.to_string()),
        ("available_at", j.available_at.to_string()),
        ("started_at", opt_time(j.started_at)),
        ("finished_at", opt_time(j.finished_at)),
        ("timeout_ms", j.timeout_ms.to_string()),
        ("lease_seq", j.lease_seq.to_string()),
        (
            "worker_id",
            j.worker_id.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "cancel_requested",
            if j.cancel_requested { "yes" } else { "no" }.into(),
        ),
        (
            "result",
            j.result
                .as_ref()
                .map(|r| ellipsize(r.get(), 200))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "progress",
            j.progress
                .as_ref()
                .map(|r| ellipsize(r.get(), 200))
                .unwrap_or_else(|| "-".into()),
        ),
    ];
    for (k, v) in rows {
        fields.row([k.to_string(), v]);
    }
    let mut out = fields.render();
    if !j.errors.is_empty() {
        let mut t = Table::new(["ATTEMPT", "AT", "KIND", "MESSAGE"]);
        for e in &j.errors {
            t.row([
                e.attempt.to_string(),
                e.at.to_string(),
                e.kind.clone(),
                ellipsize(&e.message.replace('\n', " "), 100),
            ]);
        }
        out.push_str("\nerrors:\n");
        out.push_str(&t.render());
    }
    if !j.attempts.is_empty() {
        let mut t = Table::new(["LEASE", "WORKER", "STARTED", "FINISHED", "OUTCOME"]);
        for a in &j.attempts {
            t.row([
                a.lease_seq.to_string(),
                a.worker_id.clone(),
                a.started_at.to_string(),
                opt_time(a.finished_at),
                a.outcome
                    .map(|o| {
                        serde_json::to_value(o)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    })
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str("\nattempts:\n");
        out.push_str(&t.render());
    }
    out
}

/// `1234` ms as `1.2s`, `90000` as `1m30s`: ages are read at a glance.
pub fn human_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h{}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration_ms(120), "120ms");
        assert_eq!(human_duration_ms(1234), "1.2s");
        assert_eq!(human_duration_ms(90_000), "1m30s");
        assert_eq!(human_duration_ms(7_260_000), "2h1m");
    }

    #[test]
    fn queue_rows_show_every_state() {
        let q = QueueInfo {
            name: "default".into(),
            paused: true,
            counts: BTreeMap::from([("available".to_string(), 3), ("dead".to_string(), 1200)]),
            oldest_available_age_ms: Some(120),
            config: Default::default(),
        };
        let text = queues_table(&[q]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("QUEUE    PAUSED  PENDING"), "{text}");
        assert!(lines[1].starts_with("default  yes"), "{text}");
        assert!(lines[1].contains("1,200"), "{text}");
        assert!(lines[1].ends_with("120ms"), "{text}");
    }
}
