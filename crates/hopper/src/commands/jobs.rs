//! `hopper jobs ls | show | cancel | retry | rm`.

use anyhow::Context;
use hopper_worker::{JobState, ListJobs};

use super::{Ctx, parse_job_id};
use crate::cli::{JobsCommand, JobsLsArgs};
use crate::output::{job_detail, jobs_table, print_json};

/// Runs one `jobs` subcommand.
pub async fn run(ctx: &Ctx, cmd: JobsCommand) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Ls(args) => list(ctx, args).await,
        JobsCommand::Show { id } => {
            let job = ctx.client.get(parse_job_id(&id)?).await?;
            if ctx.json {
                return print_json(&job);
            }
            print!("{}", job_detail(&job));
            Ok(())
        }
        JobsCommand::Explain { id } => {
            let e = ctx.client.explain(parse_job_id(&id)?).await?;
            if ctx.json {
                return print_json(&e);
            }
            println!(
                "{} ({})",
                e["summary"].as_str().unwrap_or(""),
                e["state"].as_str().unwrap_or("")
            );
            for r in e["reasons"].as_array().into_iter().flatten().skip(1) {
                println!("  also: {}", r["message"].as_str().unwrap_or(""));
            }
            Ok(())
        }
        JobsCommand::Cancel { id } => {
            let job = ctx.client.cancel(parse_job_id(&id)?).await?;
            if ctx.json {
                return print_json(&job);
            }
            if job.cancel_requested && !job.state.is_finished() {
                println!(
                    "job {} is running: cancel requested, it stops at its next heartbeat",
                    job.id
                );
            } else {
                println!("job {} is now {}", job.id, job.state);
            }
            Ok(())
        }
        JobsCommand::Retry { id } => {
            let job = ctx.client.retry(parse_job_id(&id)?).await?;
            if ctx.json {
                return print_json(&job);
            }
            println!("job {} is now {}", job.id, job.state);
            Ok(())
        }
        JobsCommand::Rm { id } => {
            let id = parse_job_id(&id)?;
            ctx.client.delete(id).await?;
            if ctx.json {
                return print_json(&serde_json::json!({"deleted": id}));
            }
            println!("deleted job {id}");
            Ok(())
        }
    }
}

/// The list filter the flags describe; state names are checked here so a typo is named.
pub fn filter(args: JobsLsArgs) -> anyhow::Result<ListJobs> {
    let states = args
        .state
        .iter()
        .map(|s| s.trim().parse::<JobState>())
        .collect::<Result<Vec<_>, _>>()
        .context("--state takes pending, scheduled, available, running, retryable, completed, dead or cancelled")?;
    Ok(ListJobs {
        queue: args.queue,
        states,
        kind: args.kind,
        tag: args.tag,
        q: args.q,
        limit: args.limit,
        cursor: args.cursor,
    })
}

async fn list(ctx: &Ctx, args: JobsLsArgs) -> anyhow::Result<()> {
    let page = ctx.client.list(&filter(args)?).await?;
    if ctx.json {
        // Serialized as it is, not through `json!`: a job's raw args are printed as the
        // server holds them, and nothing here can fail on odd numbers.
        #[derive(serde::Serialize)]
        struct Page<'a> {
            jobs: &'a [hopper_worker::Job],
            next_cursor: &'a Option<String>,
        }
        return print_json(&Page {
            jobs: &page.jobs,
            next_cursor: &page.next_cursor,
        });
    }
    if page.jobs.is_empty() {
        println!("no jobs");
    } else {
        print!("{}", jobs_table(&page.jobs).render());
    }
    if let Some(c) = page.next_cursor {
        println!("more: --cursor {c}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_checked() {
        let args = |states: &[&str]| JobsLsArgs {
            queue: None,
            state: states.iter().map(|s| s.to_string()).collect(),
            kind: None,
            tag: None,
            q: None,
            limit: None,
            cursor: None,
        };
        assert_eq!(
            filter(args(&["dead", "cancelled"])).unwrap().states,
            vec![JobState::Dead, JobState::Cancelled]
        );
        assert!(filter(args(&["done"])).is_err());
    }
}
