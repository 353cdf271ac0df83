//! The server `hopper bench` starts when no `--server` is given: this same binary as a child
//! process (`hopper server --bind 127.0.0.1:0`), on a fresh temporary data directory, stopped
//! with SIGTERM at the end and its directory removed.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::DurabilityArg;
use crate::commands::server::LISTENING_PREFIX;

/// How long a starting server may take to announce its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running child server.
pub struct OwnServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Removed when the server is dropped.
    _data_dir: tempfile::TempDir,
}

impl OwnServer {
    /// The server process's id (for reading its memory use).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Starts a server and waits for its `hopper listening on` line.
    /// With `admin_key`, the server installs it at start and needs it on every call.
    pub async fn start(
        durability: DurabilityArg,
        admin_key: Option<&str>,
    ) -> anyhow::Result<OwnServer> {
        let exe = std::env::current_exe().context("finding the hopper binary")?;
        let data_dir = tempfile::Builder::new()
            .prefix("hopper-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let mut command = Command::new(exe);
        if let Some(key) = admin_key {
            command.env("HOPPER_ADMIN_KEY", key);
        }
        let mut child = command
            .arg("server")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--durability")
            .arg(durability.as_str())
            // The server's info logs would interleave with the bench's own output.
            .env(
                "RUST_LOG",
                std::env::var("HOPPER_BENCH_SERVER_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting `hopper server`")?;
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout is not captured")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix(LISTENING_PREFIX) {
                    return Ok::<_, std::io::Error>(Some(url.trim().to_string()));
                }
            }
            Ok(None)
        })
        .await
        .context("the server did not announce its address in time")?
        .context("reading the server's output")?
        .context("the server exited before announcing its address")?;
        // Keep reading so the server never blocks on a full stdout pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(OwnServer {
            child,
            url,
            _data_dir: data_dir,
        })
    }

    /// Stops the server with SIGTERM (as an orchestrator would) and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill has no memory effects; the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => anyhow::bail!("the bench server exited with {status}"),
            Ok(Err(e)) => Err(e).context("waiting for the bench server"),
            Err(_) => {
                self.child.kill().await.ok();
                anyhow::bail!("the bench server did not stop within {STOP_TIMEOUT:?} of SIGTERM")
            }
        }
    }
}
