//! One module per subcommand: the client ones parse their flags into SDK calls and print the
//! answer; `server` and `migrate` open stores. No queue logic lives here; the SDK, the server
//! and the stores own it.

pub mod enqueue;
pub mod events;
pub mod jobs;
pub mod keys;
pub mod migrate;
pub mod queue_config;
pub mod queues;
pub mod schedules;
pub mod server;
pub mod workers;
pub mod workflows;

use anyhow::Context;
use hopper_worker::{Client, JobId};

/// What every client command needs: the SDK client and the output mode.
pub struct Ctx {
    /// Talks to the server.
    pub client: Client,
    /// `--json` was given.
    pub json: bool,
}

/// A job id from the command line, with an error that says what was wrong.
pub fn parse_job_id(id: &str) -> anyhow::Result<JobId> {
    id.trim()
        .parse()
        .with_context(|| format!("`{id}` is not a job id (a UUID)"))
}
