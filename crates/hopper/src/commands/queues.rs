//! `hopper queues ls | get | set | pause | resume | retry | purge`.

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
        QueuesCommand::Get { queue } => {
            let q = c.queue(&queue).await?;
            print_json(&q)?;
        }
        QueuesCommand::Set(args) => {
            let current = c.queue(&args.queue).await?.config;
            let config = super::queue_config::apply(current, &args)?;
            let q = c.configure_queue(&args.queue, &config).await?;
            if ctx.json {
                return print_json(&q);
            }
            println!(
                "queue {} configured: {}",
                q.name,
                serde_json::to_string(&q.config)?
            );
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
