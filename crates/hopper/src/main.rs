//! `hopper`: the command line of Hopper, a thin layer over the SDK (`hopper-worker`) and the
//! server crates.
//!
//! - [`cli`]: the grammar (clap).
//! - [`commands`]: server, migrate, enqueue, jobs, queues, schedules, workflows, workers.
//! - [`stores`]: the stores a command line names (data directories, PostgreSQL URLs).
//! - [`exec`]: `hopper worker --exec`, jobs as child processes.
//! - [`bench`]: `hopper bench`, the workloads of the benchmarks.
//! - [`output`], [`table`]: human and JSON output; [`logging`]: logs on stderr;
//!   [`telemetry`]: trace export over OTLP (`--otlp-endpoint`).
//!
//! Exit status: 0 on success (and after a graceful shutdown on SIGTERM/SIGINT), 1 on any
//! error (printed on stderr), 2 for a usage error.

mod bench;
mod cli;
mod commands;
mod exec;
mod logging;
mod output;
mod stores;
mod table;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;
use hopper_worker::Client;

use cli::{Cli, Command};
use commands::Ctx;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(cli.command, Command::Server(_) | Command::Worker(_));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only with an endpoint: otherwise no exporter, thread or subscriber layer exists.
    let exporter = match cli.otlp() {
        None => None,
        Some((endpoint, service)) => {
            match telemetry::Exporter::start(endpoint, service, runtime.handle().clone()) {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    logging::init(
        cli.log_format,
        if long_running { "info" } else { "warn" },
        exporter.as_ref().map(telemetry::Exporter::layer),
    );
    if let Some(e) = &exporter {
        tracing::info!(url = %e.url(), "exporting traces");
    }
    // Spawned rather than run on the main thread: the command then shares a worker thread
    // with the connection tasks it talks through, instead of every request and answer
    // crossing between the main thread and a worker (a futex wake each way).
    let outcome = runtime.block_on(async {
        tokio::spawn(run(cli))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the command panicked: {e}")))
    });
    // While the runtime still runs: the last export requests run on it.
    if let Some(e) = exporter {
        e.shutdown();
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = || {
        cli.server
            .clone()
            .unwrap_or_else(|| hopper_worker::DEFAULT_URL.to_string())
    };
    let client =
        || Client::with_credentials(url(), cli.api_key.as_deref(), cli.namespace.as_deref());
    let ctx = || -> anyhow::Result<Ctx> {
        Ok(Ctx {
            client: client()?,
            json: cli.json,
        })
    };
    match cli.command {
        Command::Server(args) => commands::server::run(args).await,
        Command::Worker(args) => exec::run(client()?, args).await,
        Command::Enqueue(args) => commands::enqueue::run(&ctx()?, args).await,
        Command::Jobs(cmd) => commands::jobs::run(&ctx()?, cmd).await,
        Command::Queues(cmd) => commands::queues::run(&ctx()?, cmd).await,
        Command::Schedules(cmd) => commands::schedules::run(&ctx()?, cmd).await,
        Command::Workflows(cmd) => commands::workflows::run(&ctx()?, cmd).await,
        Command::Workers => commands::workers::run(&ctx()?).await,
        Command::Keys(cmd) => commands::keys::run(&ctx()?, cmd).await,
        Command::Events(args) => commands::events::run(&ctx()?, args).await,
        Command::Bench(args) => {
            bench::run(cli.server.clone(), cli.api_key.clone(), args, cli.json).await
        }
        Command::Migrate(args) => commands::migrate::run(args, cli.json).await,
    }
}
