//! `hopper queues ls | pause | resume | retry | purge`.

use anyhow::Context;
use hopper_worker::JobState;

use super::Ctx;
use crate::cli::QueuesCommand;
use crate::output::{print_json, queues_table};

/// Runs one `queues` subcommand.
pub async fn run(ctx: &Ctx, cmd: QueuesCommand) -> anyhow::Result<()> {
    let c = &ctx.client;
    match cmd {
        QueuesCommand::Ls => {
            let queues = c.queues().await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "queues": queues }));
            }
            if queues.is_empty() {
                println!("no queues");
            } else {
                print!("{}", queues_table(&queues).render());
            }
        }
        QueuesCommand::Pause { queue } => {
            let q = c.pause_queue(&queue).await?;
            if ctx.json {
                return print_json(&q);
            }
            println!("queue {} paused", q.name);
        }
        QueuesCommand::Resume { queue } => {
            let q = c.resume_queue(&queue).await?;
            if ctx.json {
                return print_json(&q);
            }
            println!("queue {} resumed", q.name);
        }
        QueuesCommand::Retry { queue } => {
            let n = c.retry_queue(&queue).await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "count": n }));
            }
            println!("retried {n} dead jobs of queue {queue}");
        }
        QueuesCommand::Purge { queue, state } => {
            let state: JobState = state
                .trim()
                .parse()
                .context("--state takes completed, dead or cancelled")?;
            let n = c.purge_queue(&queue, state).await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "count": n }));
            }
            println!("deleted {n} {state} jobs of queue {queue}");
        }
    }
    Ok(())
}
