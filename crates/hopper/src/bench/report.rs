//! What one workload measured, and the table or JSON `hopper bench` prints.

use serde::Serialize;

use crate::table::{Table, thousands};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// One workload's figure. Only verified runs produce one: a run that lost or duplicated a
/// job is an error, not a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadResult {
    /// `W1`..`W4`.
    pub workload: &'static str,
    /// What was measured, in a few words.
    pub description: &'static str,
    /// Jobs in the timed phase.
    pub jobs: u64,
    /// Length of the timed phase.
    pub seconds: f64,
    /// Jobs per second over the timed phase.
    pub jobs_per_sec: f64,
    /// Enqueue → handler start, for W4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// What else was going on (W3 with event-stream subscribers: what they received).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Everything a bench run prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The server measured.
    pub server: String,
    /// The bench started the server itself.
    pub own_server: bool,
    /// The own server's durability (unknown for an external one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<&'static str>,
    /// One entry per workload run.
    pub results: Vec<WorkloadResult>,
}

impl BenchReport {
    /// The human table.
    pub fn render(&self) -> String {
        let mut t = Table::new([
            "WORKLOAD", "JOBS", "SECONDS", "JOBS/S", "P50 MS", "P95 MS", "P99 MS", "WHAT",
        ])
        .align_right(&[1, 2, 3, 4, 5, 6]);
        for r in &self.results {
            let (p50, p95, p99) = match r.latency {
                Some(l) => (ms(l.p50_ms), ms(l.p95_ms), ms(l.p99_ms)),
                None => ("-".into(), "-".into(), "-".into()),
            };
            t.row([
                r.workload.to_string(),
                thousands(r.jobs),
                format!("{:.2}", r.seconds),
                thousands(r.jobs_per_sec.round() as u64),
                p50,
                p95,
                p99,
                match &r.note {
                    Some(note) => format!("{} ({note})", r.description),
                    None => r.description.to_string(),
                },
            ]);
        }
        let server = match (self.own_server, self.durability) {
            (true, Some(d)) => format!("own server at {} (durability {d})", self.server),
            _ => format!("server at {}", self.server),
        };
        format!(
            "{}\n{server}; every count verified\n",
            t.render().trim_end()
        )
    }
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_throughput_and_latency() {
        let r = BenchReport {
            server: "http://127.0.0.1:1".into(),
            own_server: true,
            durability: Some("full"),
            results: vec![
                WorkloadResult {
                    workload: "W1",
                    description: "enqueue one by one",
                    jobs: 20_000,
                    seconds: 2.0,
                    jobs_per_sec: 10_000.0,
                    latency: None,
                    note: None,
                },
                WorkloadResult {
                    workload: "W4",
                    description: "enqueue → start",
                    jobs: 2000,
                    seconds: 1.5,
                    jobs_per_sec: 1333.3,
                    latency: Some(Latency {
                        p50_ms: 0.8,
                        p95_ms: 1.25,
                        p99_ms: 3.0,
                        max_ms: 9.0,
                    }),
                    note: None,
                },
            ],
        };
        let text = r.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("WORKLOAD    JOBS  SECONDS"), "{text}");
        assert!(
            lines[1].contains("20,000") && lines[1].contains("10,000"),
            "{text}"
        );
        assert!(
            lines[2].contains("0.80") && lines[2].contains("3.00"),
            "{text}"
        );
        assert!(lines[3].contains("durability full"), "{text}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["results"][1]["latency"]["p99_ms"], 3.0);
        assert!(json["results"][0].get("latency").is_none());
    }
}
