//! `hopper worker --exec`: a worker that runs each job as a child process, on the SDK's
//! [`Worker`] runtime (leasing, heartbeats, timeouts, batched outcomes, graceful shutdown).
//!
//! - [`template`]: `--command KIND=TEMPLATE`, filled from job args without a shell.
//! - [`job_command`]: job → process, process exit → outcome.
//! - [`process`]: spawning in a process group, output tails, killing the group.
//!
//! A cancel request sends SIGTERM to the command's group; if it has not exited when the SDK's
//! cancel grace runs out, or on timeout, or at shutdown past the grace period, the handler is
//! dropped and the group killed with SIGKILL.

pub mod job_command;
pub mod process;
pub mod template;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hopper_worker::{Client, JobContext, Outcome, Worker};

use crate::cli::WorkerArgs;
use job_command::{CmdArgs, KIND_SPAWN_FAILED, from_cmd_args, from_template, job_env, outcome_of};
use process::ProcessSpec;
use template::{CommandTemplate, parse_spec};

/// The warning `--allow-any-command` prints at start.
pub const ANY_COMMAND_WARNING: &str = "warning: --allow-any-command: this worker runs any \
command a job names in its args ({\"cmd\": [...]}); anyone who can enqueue to its queues can \
run programs as this user";

/// Runs the exec worker until SIGTERM or SIGINT.
pub async fn run(client: Client, args: WorkerArgs) -> anyhow::Result<()> {
    if !args.exec {
        anyhow::bail!(
            "the command line runs only --exec workers (jobs as commands); write other workers \
             with the hopper-worker SDK"
        );
    }
    let mut seen = HashSet::new();
    let mut templates: Vec<(String, Arc<CommandTemplate>)> = Vec::new();
    for spec in &args.commands {
        let (kind, template) = parse_spec(spec).context("in --command")?;
        if !seen.insert(kind.clone()) {
            anyhow::bail!("--command names kind `{kind}` twice");
        }
        tracing::info!(%kind, command = %template, "command registered");
        templates.push((kind, Arc::new(template)));
    }
    if templates.is_empty() && !args.allow_any_command {
        anyhow::bail!(
            "nothing to run: give --command KIND='prog {{arg}}' (repeatable), or \
             --allow-any-command to run the commands jobs name"
        );
    }
    if args.allow_any_command {
        eprintln!("{ANY_COMMAND_WARNING}");
        tracing::warn!("--allow-any-command is on");
    }

    let mut builder = Worker::builder(client)
        .queues(args.queues)
        .concurrency(args.concurrency)
        .lease_ms(args.lease_ms)
        .grace_period(Duration::from_secs(args.grace_period_secs));
    if let Some(id) = args.worker_id {
        builder = builder.worker_id(id);
    }
    for (kind, template) in templates {
        builder = builder.register(kind, move |ctx: JobContext, job_args: serde_json::Value| {
            let template = template.clone();
            async move {
                Ok::<_, Infallible>(match from_template(&template, &job_args) {
                    Ok(spec) => execute(&ctx, spec).await,
                    Err(refused) => refused,
                })
            }
        });
    }
    if args.allow_any_command {
        builder = builder.fallback(|ctx: JobContext, job_args: CmdArgs| async move {
            Ok::<_, Infallible>(match from_cmd_args(job_args) {
                Ok(spec) => execute(&ctx, spec).await,
                Err(refused) => refused,
            })
        });
    }
    let worker = builder.build()?;
    tracing::info!(worker_id = worker.worker_id(), "exec worker ready");
    worker.run().await?;
    Ok(())
}

/// Runs one command for one job. On a cancel request the command's group gets SIGTERM and
/// this keeps waiting (its exit is then reported as `cancelled`); dropping this future kills
/// the group.
async fn execute(ctx: &JobContext, mut spec: ProcessSpec) -> Outcome {
    // Last, so a job's own env cannot pose as another job.
    spec.env.extend(job_env(ctx));
    let running = match process::spawn(&spec) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Fail {
                message: format!("cannot start `{}`: {e}", spec.argv[0]),
                kind: KIND_SPAWN_FAILED.to_string(),
            };
        }
    };
    let group = running.group();
    let wait = running.wait();
    tokio::pin!(wait);
    let finished = tokio::select! {
        r = &mut wait => r,
        _ = ctx.cancelled() => {
            tracing::info!(job_id = %ctx.id(), reason = ?ctx.cancel_reason(), "stopping the command");
            group.signal(libc::SIGTERM);
            wait.await
        }
    };
    match finished {
        Ok(f) => outcome_of(&f),
        Err(e) => Outcome::Fail {
            message: format!("waiting for `{}` failed: {e}", spec.argv[0]),
            kind: KIND_SPAWN_FAILED.to_string(),
        },
    }
}
