//! `hopper events`: follows the live event stream, one line per job transition (JSON lines with
//! `--json`), until interrupted or `--count` events were printed.

use std::io::Write;

use anyhow::Context;
use hopper_worker::{EventFilter, JobState, StreamMessage};

use super::{Ctx, parse_job_id};
use crate::cli::EventsArgs;

/// Prints events as they happen. Reconnection and resuming are the SDK's.
pub async fn run(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<()> {
    let types = args
        .types
        .iter()
        .map(|t| {
            t.parse::<JobState>()
                .map_err(|_| anyhow::anyhow!("`{t}` is not a job state"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let job_ids = args
        .jobs
        .iter()
        .map(|j| parse_job_id(j))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let filter = EventFilter {
        queues: args.queues,
        kinds: args.kinds,
        job_ids,
        types,
        after: args.after,
    };
    let mut stream = ctx.client.events(&filter).await?;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    while args.count.is_none_or(|n| printed < n) {
        let line = match stream.next().await? {
            StreamMessage::Event(e) if ctx.json => {
                serde_json::to_string(&e).context("encoding an event as JSON")?
            }
            StreamMessage::Event(e) => format!(
                "{}  {}  {}/{}  {}  {} → {}  {}  {}",
                e.seq,
                e.at,
                e.queue,
                e.kind,
                e.job_id,
                e.from.map_or("-", |s| s.as_str()),
                e.to.as_str(),
                e.reason,
                e.actor
            ),
            StreamMessage::Gap { after } => {
                eprintln!(
                    "events after {after} may be missing (the server's history did not reach back)"
                );
                continue;
            }
        };
        printed += 1;
        // Line by line, so a pipe sees each event as it happens.
        let mut out = stdout.lock();
        writeln!(out, "{line}").and_then(|_| out.flush())?;
    }
    Ok(())
}
