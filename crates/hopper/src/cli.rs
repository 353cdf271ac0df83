//! The command line grammar (clap derive): every subcommand, flag and environment variable.
//! Nothing here runs anything; `main` dispatches each command to its module.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Hopper: a durable job queue.
#[derive(Debug, Parser)]
#[command(name = "hopper", version, about, propagate_version = true)]
pub struct Cli {
    /// The server to talk to [default: http://127.0.0.1:7480]. `hopper bench` without it
    /// starts a server of its own.
    #[arg(long, global = true, env = "HOPPER_URL")]
    pub server: Option<String>,

    /// The API key client commands send (`Authorization: Bearer`); needed once the server
    /// has keys.
    #[arg(long, global = true, env = "HOPPER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// The namespace client commands act in [default: the key's only namespace, else
    /// `default`].
    #[arg(long, global = true, env = "HOPPER_NAMESPACE")]
    pub namespace: Option<String>,

    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log format on stderr (the level comes from RUST_LOG, default `info` for the server and
    /// workers, `warn` for the rest).
    #[arg(long, global = true, env = "HOPPER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The trace export the command asks for: the collector endpoint and the default service
    /// name. Only the long-running commands export.
    pub fn otlp(&self) -> Option<(&str, &'static str)> {
        match &self.command {
            Command::Server(a) => a.otlp.endpoint().map(|e| (e, "hopper-server")),
            Command::Worker(a) => a.otlp.endpoint().map(|e| (e, "hopper-worker")),
            _ => None,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Hopper server on the embedded SQLite store, or on PostgreSQL with --database-url.
    Server(ServerArgs),
    /// Run a worker that executes jobs as commands.
    Worker(WorkerArgs),
    /// Enqueue one job.
    Enqueue(EnqueueArgs),
    /// List, inspect, cancel, retry and delete jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// List queues; pause, resume, retry or purge one.
    #[command(subcommand)]
    Queues(QueuesCommand),
    /// List, create, pause, resume, trigger and delete cron schedules.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Submit, list, inspect, cancel and retry workflow runs (DAGs of jobs); define, trigger
    /// and backfill named workflow definitions.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// List the workers seen in the last minute.
    Workers,
    /// Create, list and revoke API keys (admin).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Follow job transitions as they happen (the live event stream).
    Events(EventsArgs),
    /// Run the benchmark workloads (W1-W7, M1, WF; `all` is W1-W4).
    Bench(BenchArgs),
    /// Copy every queue setting, job (with its history) and idempotency key from one store to
    /// another, e.g. from the embedded SQLite store to PostgreSQL. No server may run on the
    /// source; running it again after an interruption finishes the copy.
    Migrate(MigrateArgs),
}

/// `hopper keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its text is printed once, on stdout.
    Create {
        /// A label for people.
        #[arg(long)]
        name: String,
        /// admin, producer, worker or viewer.
        #[arg(long)]
        role: String,
        /// A namespace it sees (repeatable; `*` for all) [default: the caller's namespace].
        #[arg(long = "key-namespace", value_name = "NAMESPACE")]
        namespace: Vec<String>,
        /// When it stops working (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        /// Requests per second it may make on each node.
        #[arg(long)]
        rate_limit: Option<u32>,
    },
    /// List the keys (revoked ones included).
    #[command(name = "ls", alias = "list")]
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id (the 16 hex digits after `hop_`).
        id: String,
    },
}

/// `hopper server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free one (the line printed at start names it).
    #[arg(long, env = "HOPPER_BIND", default_value = "127.0.0.1:7480")]
    pub bind: SocketAddr,

    /// Directory of the embedded database (created when missing); unused with
    /// --database-url.
    #[arg(long, env = "HOPPER_DATA_DIR", default_value = "./hopper-data")]
    pub data_dir: PathBuf,

    /// `full` syncs every commit before answering (survives power loss); `relaxed` syncs at
    /// least once a second (survives a process crash). Embedded store only: PostgreSQL's own
    /// settings decide its durability.
    #[arg(long, env = "HOPPER_DURABILITY", value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,

    /// Store everything in PostgreSQL at this `postgres://` URL instead of the embedded store;
    /// any number of servers may share one database.
    #[arg(
        long,
        env = "HOPPER_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Connections in this server's PostgreSQL pool.
    #[arg(long, env = "HOPPER_PG_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub pg_pool_size: u32,

    /// PostgreSQL's statement_timeout for every statement of this server, in milliseconds (0
    /// disables it).
    #[arg(long, env = "HOPPER_PG_STATEMENT_TIMEOUT_MS", default_value_t = 30_000)]
    pub pg_statement_timeout_ms: u64,

    /// Allow binding a non-loopback address while no API key exists (anyone who can reach it
    /// can enqueue and run jobs).
    #[arg(long)]
    pub insecure: bool,

    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "HOPPER_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "HOPPER_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Let webhooks deliver to loopback and private addresses (off: a namespace's admin could
    /// otherwise make the server reach services only it can).
    #[arg(long, env = "HOPPER_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: bool,

    /// When the store has no API key yet, create an admin key and print it once on stderr.
    #[arg(long)]
    pub create_admin_key: bool,

    /// An admin key (`hop_<16 hex>_<64 hex>`) to install at start if its id is not stored yet:
    /// for automated setups that choose the key ahead.
    #[arg(
        long = "admin-key",
        env = "HOPPER_ADMIN_KEY",
        hide_env_values = true,
        hide = true
    )]
    pub admin_key: Option<String>,

    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// Trace export, shared by `hopper server` and `hopper worker`.
#[derive(Debug, Clone, Args)]
pub struct OtlpArgs {
    /// Export traces over OTLP/HTTP (protobuf) to this collector base URL (spans go to
    /// URL/v1/traces); service name `hopper-server` or `hopper-worker` unless
    /// OTEL_SERVICE_NAME says otherwise. Without it nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl OtlpArgs {
    /// The endpoint, unless absent or empty (an empty variable means "not configured").
    pub fn endpoint(&self) -> Option<&str> {
        self.otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }
}

/// The store's durability setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// fsync before answering.
    Full,
    /// fsync at least once a second.
    Relaxed,
}

impl DurabilityArg {
    /// The name the server's `--durability` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            DurabilityArg::Full => "full",
            DurabilityArg::Relaxed => "relaxed",
        }
    }
}

/// `hopper migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store to copy from: a data directory (or `sqlite:PATH`), or a `postgres://` URL.
    /// Nothing is changed in it.
    #[arg(long, value_name = "SOURCE")]
    pub from: String,

    /// The store to copy into, in the same forms (a data directory is created when missing).
    /// Rows it already holds are kept; nothing in it is overwritten.
    #[arg(long, value_name = "DEST")]
    pub to: String,

    /// Jobs (and idempotency keys) copied per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_size: u64,
}

/// `hopper worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Run jobs as child processes (the only kind of worker the command line runs; write
    /// others in Rust with the hopper-worker SDK).
    #[arg(long)]
    pub exec: bool,

    /// Queues to lease from, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub queues: Vec<String>,

    /// Most commands running at once.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,

    /// The command for one job kind, as `KIND='prog --flag {arg}'`: each `{name}` takes the
    /// job's `args.name`, as separate arguments, never through a shell. Repeatable.
    #[arg(long = "command", value_name = "KIND=TEMPLATE")]
    pub commands: Vec<String>,

    /// Also run jobs whose args say what to run: `{"cmd": ["prog", "arg"], "env": {..},
    /// "cwd": ".."}`. Anyone who can enqueue can then run anything as this user.
    #[arg(long)]
    pub allow_any_command: bool,

    /// Seconds running commands may finish after SIGTERM/SIGINT before they are killed and
    /// their jobs released.
    #[arg(long, default_value_t = 25)]
    pub grace_period_secs: u64,

    /// Lease length in milliseconds; heartbeats renew it every third of it.
    #[arg(long, default_value_t = hopper_worker::worker::DEFAULT_LEASE_MS)]
    pub lease_ms: u64,

    /// The id shown by `hopper workers` (default `host:pid-N`).
    #[arg(long)]
    pub worker_id: Option<String>,

    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// `hopper enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job's kind (its handler's name).
    pub kind: String,
    /// The job's args, as JSON.
    #[arg(long)]
    pub args: Option<String>,
    /// Queue name.
    #[arg(long)]
    pub queue: Option<String>,
    /// Higher runs first (-32768..32767).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Run no sooner than this many milliseconds from now.
    #[arg(long, conflicts_with = "run_at")]
    pub delay_ms: Option<i64>,
    /// Run no sooner than this RFC 3339 time.
    #[arg(long)]
    pub run_at: Option<String>,
    /// Counted attempts before the job is dead (1..1000).
    #[arg(long)]
    pub max_attempts: Option<i64>,
    /// Limit on one attempt's run time, in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<i64>,
    /// Deduplication key (one job per key; the CLI makes one up when absent).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A tag; repeatable.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Key for the queue's per-key concurrency and rate limits (e.g. a customer id).
    #[arg(long)]
    pub concurrency_key: Option<String>,
    /// Key for a fair queue's round robin (e.g. a tenant id).
    #[arg(long)]
    pub fairness_key: Option<String>,
    /// Expected run time in ms, for a shortest-first queue.
    #[arg(long)]
    pub estimated_ms: Option<i64>,
}

/// `hopper jobs ...`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    Ls(JobsLsArgs),
    /// Show one job with its errors and attempts.
    Show {
        /// The job's id.
        id: String,
    },
    /// Say why a job is not running (yet): every reason that holds it back.
    Explain {
        /// The job's id.
        id: String,
    },
    /// Cancel a job (a running one is flagged and stops at its next heartbeat).
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Run a finished job again, or a waiting one now.
    Retry {
        /// The job's id.
        id: String,
    },
    /// Delete a finished job.
    Rm {
        /// The job's id.
        id: String,
    },
}

/// `hopper jobs ls`.
#[derive(Debug, Args)]
pub struct JobsLsArgs {
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only jobs in these states (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub state: Vec<String>,
    /// Only this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only jobs with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Substring of kind, id or a tag.
    #[arg(long)]
    pub q: Option<String>,
    /// Page size (1..500).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The cursor printed under the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `hopper queues set`: each flag replaces one setting; `--reset` starts from the defaults.
#[derive(Debug, clap::Args)]
pub struct QueueSetArgs {
    /// Queue name.
    pub queue: String,
    /// Start from the default configuration instead of the current one.
    #[arg(long)]
    pub reset: bool,
    /// Lease order: priority, fair or shortest_first.
    #[arg(long)]
    pub policy: Option<String>,
    /// Most jobs of the queue running at once (0 removes the limit).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Most running jobs per concurrency key (0 removes the limit).
    #[arg(long)]
    pub key_concurrency: Option<u32>,
    /// Starts per period for the queue, as LIMIT/PERIOD_MS[/BURST] (e.g. 100/1000), or `none`.
    #[arg(long)]
    pub rate: Option<String>,
    /// Starts per period for each concurrency key, as LIMIT/PERIOD_MS[/BURST], or `none`.
    #[arg(long)]
    pub key_rate: Option<String>,
    /// A fairness key's weight, as KEY=WEIGHT (repeatable; weight 1 removes it).
    #[arg(long = "weight")]
    pub weights: Vec<String>,
    /// Keep completed jobs this many ms.
    #[arg(long)]
    pub retain_completed_ms: Option<i64>,
    /// Keep cancelled jobs this many ms.
    #[arg(long)]
    pub retain_cancelled_ms: Option<i64>,
    /// Keep dead jobs this many ms.
    #[arg(long)]
    pub retain_dead_ms: Option<i64>,
}

/// `hopper queues ...`.
#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// List queues with their job counts.
    Ls,
    /// Show one queue's counts and configuration (as JSON).
    Get {
        /// Queue name.
        queue: String,
    },
    /// Change a queue's configuration: the flags given change, the rest stays.
    Set(QueueSetArgs),
    /// Stop leasing from a queue (running jobs keep their leases).
    Pause {
        /// Queue name.
        queue: String,
    },
    /// Lease from a paused queue again.
    Resume {
        /// Queue name.
        queue: String,
    },
    /// Retry every dead job of a queue.
    Retry {
        /// Queue name.
        queue: String,
    },
    /// Delete a queue's finished jobs of one state.
    Purge {
        /// Queue name.
        queue: String,
        /// `completed`, `dead` or `cancelled`.
        #[arg(long)]
        state: String,
    },
}

/// `hopper schedules ...`.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// List schedules with their next fire time.
    #[command(alias = "ls")]
    List,
    /// Show one schedule: its definition, next fire times and last runs.
    Get {
        /// Schedule name.
        name: String,
    },
    /// Create a schedule.
    Create(ScheduleCreateArgs),
    /// Delete a schedule (the jobs it enqueued stay).
    #[command(alias = "rm")]
    Delete {
        /// Schedule name.
        name: String,
    },
    /// Stop firing a schedule.
    Pause {
        /// Schedule name.
        name: String,
    },
    /// Fire a paused schedule again (missed ticks follow its misfire policy).
    Resume {
        /// Schedule name.
        name: String,
    },
    /// Enqueue one job from a schedule's template now.
    Trigger {
        /// Schedule name.
        name: String,
    },
}

/// `hopper workflows ...`.
#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// Submit a workflow run from a JSON file: `{"name": "...", "steps": [{"step": "a",
    /// "depends_on": [], "on_failure": "cancel_dependents", "job": {"kind": "..."}}, ...]}`.
    Submit {
        /// The file with the run's JSON; `-` reads it from stdin.
        file: String,
    },
    /// List workflow runs, newest first.
    #[command(alias = "ls")]
    List {
        /// Only runs in this state: running, completed, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Page size (1..500).
        #[arg(long)]
        limit: Option<u32>,
        /// The cursor printed under the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one run and a table of its steps.
    #[command(alias = "show")]
    Get {
        /// The run's id.
        id: String,
    },
    /// Cancel a running run: waiting steps end cancelled, running ones stop at their next
    /// heartbeat.
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Run a finished run's dead and cancelled steps again (completed steps keep their
    /// results).
    Retry {
        /// The run's id.
        id: String,
    },
    /// Store a named workflow definition from a JSON file, replacing one of the same name:
    /// `{"steps": [...], "params": {"table": "users"}, "cron": "@daily", "timezone": "UTC"}`.
    /// Job args may hold `{{params.NAME}}` and `{{logical_date}}`.
    Define {
        /// The definition's name.
        name: String,
        /// The file with the definition's JSON; `-` reads it from stdin.
        file: String,
    },
    /// List workflow definitions, by name.
    #[command(alias = "defs")]
    Definitions,
    /// Show one workflow definition: its parameters, cron expression and step templates.
    #[command(alias = "show-definition")]
    Definition {
        /// The definition's name.
        name: String,
    },
    /// Delete a workflow definition (its runs stay).
    #[command(alias = "delete-definition")]
    Undefine {
        /// The definition's name.
        name: String,
    },
    /// Start a run of a definition. A definition has one run per logical date: triggering
    /// it again for the same date answers the existing run.
    Trigger {
        /// The definition's name.
        name: String,
        #[command(flatten)]
        params: ParamArgs,
        /// The run's logical date (e.g. 2026-11-30) [default: now].
        #[arg(long)]
        logical_date: Option<String>,
    },
    /// Backfill a definition: one run per date from --from to --to (inclusive), at most
    /// --max-running at a time. Repeating it answers the same backfill.
    Backfill {
        /// The definition's name.
        name: String,
        /// First date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last date, YYYY-MM-DD (inclusive).
        #[arg(long)]
        to: String,
        /// Runs at once, 1..100 [default: 4].
        #[arg(long)]
        max_running: Option<u32>,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Show a backfill and how many of its dates have run.
    BackfillStatus {
        /// The backfill's id (printed by `backfill`).
        id: String,
    },
}

/// The `--param` flags of `hopper workflows trigger` and `backfill`.
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// A parameter over the definition's defaults, as KEY=VALUE (repeatable). VALUE is read
    /// as JSON when it is JSON (`n=3`, `flags=[1,2]`, `s="7"`), as a string otherwise
    /// (`table=users`).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

/// `hopper schedules create`.
#[derive(Debug, Args)]
pub struct ScheduleCreateArgs {
    /// The schedule's name.
    pub name: String,
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds
    /// first, or an alias such as @daily.
    #[arg(long)]
    pub cron: String,
    /// IANA time zone the expression is read in [default: UTC].
    #[arg(long)]
    pub timezone: Option<String>,
    /// The kind of the job each tick enqueues.
    #[arg(long)]
    pub kind: String,
    /// The job's queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// The job's args, as JSON.
    #[arg(long)]
    pub args: Option<String>,
    /// Missed ticks: `skip`, `run_once` (the default) or `catch_up:N`.
    #[arg(long)]
    pub misfire: Option<String>,
    /// Delay each tick's job by up to this many milliseconds (0..3,600,000).
    #[arg(long)]
    pub jitter_ms: Option<i64>,
    /// Create it paused.
    #[arg(long)]
    pub paused: bool,
}

/// `hopper events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this queue (repeatable).
    #[arg(long = "queue", value_name = "NAME")]
    pub queues: Vec<String>,
    /// Only this kind (repeatable).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Only this job (repeatable).
    #[arg(long = "job", value_name = "ID")]
    pub jobs: Vec<String>,
    /// Only events reaching this state (repeatable): available, running, completed, ...
    #[arg(long = "type", value_name = "STATE")]
    pub types: Vec<String>,
    /// Start after this event seq (replaying the server's recent history) instead of now.
    #[arg(long)]
    pub after: Option<i64>,
    /// Exit after printing this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

/// `hopper bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which workload to run.
    #[arg(value_enum)]
    pub workload: WorkloadArg,
    /// Jobs per workload (defaults: W1 20,000; W2 200,000; W3 200,000; W4 2,000; W6 200,000
    /// in each part; W7 100,000; WF 1,000 fan-in runs);
    /// W5 offers --rate × --seconds instead.
    #[arg(long)]
    pub jobs: Option<u64>,
    /// W7: another node of the same database besides --server, by URL; repeatable.
    #[arg(long = "node", value_name = "URL")]
    pub nodes: Vec<String>,
    /// Durability of the server the bench starts (ignored with an explicit --server).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Full)]
    pub durability: DurabilityArg,
    /// W3: configure the drained queue first (a `PUT /v1/queues/{name}` body), to measure
    /// what a limit or policy costs.
    #[arg(long, value_name = "JSON")]
    pub queue_config: Option<String>,
    /// W3: spread the jobs over this many concurrency and fairness keys (`k0`, `k1`, ...).
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// W3: keep this many unfiltered event-stream subscribers (`GET /v1/events`) reading
    /// throughout, to measure what the live stream costs.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// W5: jobs offered per second.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate: u64,
    /// W5: for how many seconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub seconds: u64,
    /// Run with authentication on: the bench's own server gets a fresh admin key and every
    /// call of the bench sends it (with --server, pass the key with --api-key instead).
    #[arg(long)]
    pub auth: bool,
}

/// The benchmark workloads that `hopper bench` implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// One producer enqueues jobs one by one, awaiting each.
    #[value(name = "W1", alias = "w1")]
    W1,
    /// One producer enqueues in batches of 1,000.
    #[value(name = "W2", alias = "w2")]
    W2,
    /// One worker (concurrency 10) drains a queued backlog.
    #[value(name = "W3", alias = "w3")]
    W3,
    /// Enqueue → handler start latency with an idle worker.
    #[value(name = "W4", alias = "w4")]
    W4,
    /// An open-loop producer offers jobs at a fixed rate while one worker runs them.
    #[value(name = "W5", alias = "w5")]
    W5,
    /// W3 beside a large backlog and history (--jobs of each), as a ratio to W3.
    #[value(name = "W6", alias = "w6")]
    W6,
    /// The server's resident memory, idle and with --jobs (1,000,000) waiting.
    #[value(name = "M1", alias = "m1")]
    M1,
    /// W3 spread over several nodes of one PostgreSQL database (--server and every --node),
    /// beside W3 through the first node alone.
    #[value(name = "W7", alias = "w7")]
    W7,
    /// Workflows: fan-in latency over --jobs runs (1,000), a 10-step chain and a 1,000-wide
    /// fan-out.
    #[value(name = "WF", alias = "wf")]
    Wf,
    /// W1 to W4 in turn.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn worker_flags_parse() {
        let cli = Cli::try_parse_from([
            "hopper",
            "worker",
            "--exec",
            "--queues",
            "a,b",
            "--command",
            "resize=convert {src} -resize {size} {dst}",
            "--concurrency",
            "3",
        ])
        .unwrap();
        let Command::Worker(w) = cli.command else {
            panic!("not a worker")
        };
        assert_eq!(w.queues, vec!["a", "b"]);
        assert_eq!(w.concurrency, 3);
        assert_eq!(w.commands.len(), 1);
    }

    #[test]
    fn bench_takes_workload_names_in_either_case() {
        for name in ["W3", "w3"] {
            let cli = Cli::try_parse_from(["hopper", "bench", name, "--jobs", "10"]).unwrap();
            let Command::Bench(b) = cli.command else {
                panic!("not bench")
            };
            assert_eq!(b.workload, WorkloadArg::W3);
            assert_eq!(b.jobs, Some(10));
        }
    }

    #[test]
    fn server_takes_a_database_url_and_pool_settings() {
        let cli = Cli::try_parse_from([
            "hopper",
            "server",
            "--database-url",
            "postgres://h@db/hopper",
            "--pg-pool-size",
            "4",
            "--pg-statement-timeout-ms",
            "500",
        ])
        .unwrap();
        let Command::Server(s) = cli.command else {
            panic!("not server")
        };
        assert_eq!(s.database_url.as_deref(), Some("postgres://h@db/hopper"));
        assert_eq!((s.pg_pool_size, s.pg_statement_timeout_ms), (4, 500));
        assert!(Cli::try_parse_from(["hopper", "server", "--pg-pool-size", "0"]).is_err());
    }

    #[test]
    fn migrate_needs_both_ends() {
        let cli = Cli::try_parse_from(["hopper", "migrate", "--from", "./a", "--to", "sqlite:b"])
            .unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert_eq!(
            (m.from.as_str(), m.to.as_str(), m.batch_size),
            ("./a", "sqlite:b", 500)
        );
        assert!(Cli::try_parse_from(["hopper", "migrate", "--from", "./a"]).is_err());
    }

    #[test]
    fn server_and_worker_take_an_otlp_endpoint() {
        let cli = Cli::try_parse_from([
            "hopper",
            "server",
            "--otlp-endpoint",
            "http://127.0.0.1:4318",
        ])
        .unwrap();
        assert_eq!(cli.otlp(), Some(("http://127.0.0.1:4318", "hopper-server")));
        let cli = Cli::try_parse_from([
            "hopper",
            "worker",
            "--exec",
            "--otlp-endpoint",
            "http://c:4318",
        ])
        .unwrap();
        assert_eq!(cli.otlp(), Some(("http://c:4318", "hopper-worker")));
        let cli = Cli::try_parse_from(["hopper", "server", "--otlp-endpoint", " "]).unwrap();
        assert_eq!(cli.otlp(), None);
        assert!(Cli::try_parse_from(["hopper", "jobs", "ls", "--otlp-endpoint", "x"]).is_err());
    }

    #[test]
    fn negative_priorities_parse() {
        let cli = Cli::try_parse_from(["hopper", "enqueue", "k", "--priority", "-5"]).unwrap();
        let Command::Enqueue(e) = cli.command else {
            panic!("not enqueue")
        };
        assert_eq!(e.priority, Some(-5));
    }
}
