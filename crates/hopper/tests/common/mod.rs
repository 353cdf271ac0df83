//! Shared helpers of the integration tests: the real `hopper` binary as a server on
//! `127.0.0.1:0` with a temporary data directory, CLI invocations against it, and waiting for
//! a job to reach a state.

#![allow(dead_code)] // Each test file uses a different subset.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hopper_worker::{Client, Job, JobId, JobState};

/// The binary under test.
pub const HOPPER: &str = env!("CARGO_BIN_EXE_hopper");

/// A `hopper server` child, stopped (SIGTERM) when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data directory, removed at drop.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server and waits for its announcement.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        Server::spawn(dir, &["--data-dir".as_ref(), data.as_os_str()])
    }

    /// Starts a server on the embedded store in `data_dir` (which outlives it).
    pub fn start_at(data_dir: &Path) -> Server {
        Server::start_at_bind(data_dir, "127.0.0.1:0")
    }

    /// Starts a server on the embedded store in `data_dir`, listening on `bind` (to restart
    /// one on the address it had).
    pub fn start_at_bind(data_dir: &Path, bind: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Server::spawn_on(
            dir,
            bind,
            &["--data-dir".as_ref(), data_dir.as_os_str()],
            &[],
        )
    }

    /// Starts a server on the embedded store in `dir/data` (`dir` lives as long as the
    /// server) with extra `args` and environment `env` (keys, TLS).
    pub fn start_with(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        let data = dir.path().join("data");
        let mut all: Vec<&OsStr> = vec!["--data-dir".as_ref(), data.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        Server::spawn_on(dir, "127.0.0.1:0", &all, env)
    }

    /// Starts a server on PostgreSQL at `database_url`.
    pub fn start_on_postgres(database_url: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Server::spawn(dir, &["--database-url".as_ref(), database_url.as_ref()])
    }

    /// Starts `hopper server` on a free port with `store_args` naming its store, and waits
    /// for its announcement.
    fn spawn(dir: tempfile::TempDir, store_args: &[&OsStr]) -> Server {
        Server::spawn_on(dir, "127.0.0.1:0", store_args, &[])
    }

    fn spawn_on(
        dir: tempfile::TempDir,
        bind: &str,
        args: &[&OsStr],
        env: &[(&str, &str)],
    ) -> Server {
        let mut child = Command::new(HOPPER)
            .args(["server", "--bind", bind, "--durability", "relaxed"])
            .args(args)
            .envs(env.iter().copied())
            // The store is the one named here, whatever the environment says.
            .env_remove("HOPPER_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn hopper server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the announcement");
        let url = line
            .trim()
            .strip_prefix("hopper listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Server {
            child: Some(child),
            url,
            dir,
        }
    }

    /// An SDK client for this server.
    pub fn client(&self) -> Client {
        Client::new(&self.url).expect("client")
    }

    /// `hopper ARGS` against this server, to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(HOPPER)
            .args(args)
            .env("HOPPER_URL", &self.url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run hopper")
    }

    /// `hopper --json ARGS`, expecting success, parsed.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "hopper {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// Enqueues through the CLI; returns the job id.
    pub fn enqueue(&self, args: &[&str]) -> JobId {
        let mut all = vec!["enqueue"];
        all.extend_from_slice(args);
        let job = self.cli_json(&all);
        job["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// Starts `hopper worker ARGS` in the background; its stderr is collected as it comes so
    /// the worker never blocks on a full pipe.
    pub fn spawn_worker(&self, args: &[&str]) -> WorkerProc {
        let mut child = Command::new(HOPPER)
            .arg("worker")
            .args(args)
            .env("HOPPER_URL", &self.url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hopper worker");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        WorkerProc { child, stderr }
    }

    /// SIGKILL: the server gets no chance to clean up (a crash, a lost machine).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        terminate(&mut child, Duration::from_secs(30))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10));
        }
    }
}

/// SIGTERM, then wait up to `limit` (SIGKILL after that, reported as a failure status).
pub fn terminate(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    sigterm(child);
    wait_exit(child, limit)
}

/// Sends SIGTERM to a child.
pub fn sigterm(child: &Child) {
    // SAFETY: kill has no memory effects; the pid is our own unreaped child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// Waits for a child to exit, killing it past `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            let status = child.wait().expect("wait");
            panic!("process did not exit within {limit:?} (killed: {status})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `hopper worker` child.
pub struct WorkerProc {
    /// The process.
    pub child: Child,
    stderr: Arc<Mutex<String>>,
}

impl WorkerProc {
    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// SIGTERM, then its exit status (within `limit`).
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        terminate(&mut self.child, limit)
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Polls a job until `done` holds for it, or panics after `limit`.
pub async fn wait_job(
    client: &Client,
    id: JobId,
    limit: Duration,
    done: impl Fn(&Job) -> bool,
) -> Job {
    let deadline = Instant::now() + limit;
    loop {
        let job = client.get(id).await.expect("get job");
        if done(&job) {
            return job;
        }
        if Instant::now() > deadline {
            panic!("job {id} did not get there in {limit:?}: {job:#?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls a job until it is in `state`.
pub async fn wait_state(client: &Client, id: JobId, state: JobState, limit: Duration) -> Job {
    wait_job(client, id, limit, |j| j.state == state).await
}

/// Whether process `pid` still runs (a zombie does not count).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Reads a pid a test command wrote, waiting for the file to appear.
pub fn read_pid(path: &Path, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pid` is gone.
pub fn wait_dead(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
