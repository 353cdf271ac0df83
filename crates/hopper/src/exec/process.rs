//! Running one job's command as a child process in a process group of its own.
//!
//! The group is what makes stopping reliable: a command is often a script that starts other
//! programs, and killing only the direct child would leave those running after a timeout or a
//! cancel. Every way the run ends kills the whole group: dropping [`run`]'s future (timeout,
//! shutdown past grace, lost lease) kills it with SIGKILL from a guard's `Drop`; a normal exit
//! kills any stragglers the command left behind, which also closes the output pipes they
//! inherited so reading them ends.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How much of each output stream is kept: the end, where errors and results usually are.
pub const TAIL_BYTES: usize = 4096;

/// What to run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Variables added to the worker's environment.
    pub env: Vec<(String, String)>,
    /// Working directory; the worker's when none.
    pub cwd: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// The last [`TAIL_BYTES`] of stdout.
    pub stdout_tail: String,
    /// The last [`TAIL_BYTES`] of stderr.
    pub stderr_tail: String,
}

/// A way to signal a running command's process group while waiting for it.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pgid: Option<i32>,
}

impl Group {
    /// Sends `signal` to every process of the group.
    pub fn signal(self, signal: i32) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg has no memory effects; a group that is gone answers ESRCH.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    }
}

/// Kills a process group when dropped, unless disarmed.
#[derive(Debug)]
struct GroupGuard {
    group: Group,
}

impl GroupGuard {
    /// Kills what is left of the group and forgets it, so a later drop cannot signal a group
    /// that reuses the id.
    fn kill_and_disarm(&mut self) {
        self.group.signal(libc::SIGKILL);
        self.group.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill_and_disarm();
    }
}

/// A started command: wait for it with [`Running::wait`]; signal it through [`Running::group`].
pub struct Running {
    child: tokio::process::Child,
    guard: GroupGuard,
}

/// Starts `spec` with stdin closed and stdout/stderr captured, as the leader of a new process
/// group.
pub fn spawn(spec: &ProcessSpec) -> io::Result<Running> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        // The worker's own trace context (a `TRACEPARENT` it was started with) is not the
        // job's: a command gets one only from its job (see `job_command::job_env`), so a job
        // without one never joins an unrelated trace.
        .env_remove("TRACEPARENT")
        .env_remove("TRACESTATE")
        .envs(
            spec.env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn()?;
    // The child leads its own group, so its pid is the group id.
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    Ok(Running {
        child,
        guard: GroupGuard {
            group: Group { pgid },
        },
    })
}

impl Running {
    /// The group, to signal it (SIGTERM on cancel) while waiting.
    pub fn group(&self) -> Group {
        self.guard.group
    }

    /// Waits for the command to exit, kills whatever it left in its group, and returns its
    /// status and the tails of its output. Dropping this future kills the group.
    pub async fn wait(mut self) -> io::Result<Finished> {
        let stdout = self.child.stdout.take();
        let stderr = self.child.stderr.take();
        let child = &mut self.child;
        let guard = &mut self.guard;
        // The pipes are read while waiting: a command that writes more than a pipe buffer
        // would otherwise block forever.
        let wait_then_clean = async move {
            let status = child.wait().await;
            guard.kill_and_disarm();
            status
        };
        let (status, stdout_tail, stderr_tail) =
            tokio::join!(wait_then_clean, read_tail(stdout), read_tail(stderr));
        Ok(Finished {
            status: status?,
            stdout_tail,
            stderr_tail,
        })
    }
}

/// Reads a stream to its end, keeping the last [`TAIL_BYTES`], as text.
async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * TAIL_BYTES {
                    kept.drain(..kept.len() - TAIL_BYTES);
                }
            }
        }
    }
    tail_text(&kept, TAIL_BYTES)
}

/// The last `max` bytes as text, starting at a character boundary.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let mut start = bytes.len().saturating_sub(max);
    if start > 0 {
        // Skip UTF-8 continuation bytes so the cut does not start mid-character.
        while start < bytes.len() && (bytes[start] & 0b1100_0000) == 0b1000_0000 {
            start += 1;
        }
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    fn sh(script: &str) -> ProcessSpec {
        ProcessSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }
    }

    #[test]
    fn tails_start_on_a_character() {
        assert_eq!(tail_text(b"hello", 10), "hello");
        assert_eq!(tail_text(b"hello", 3), "llo");
        assert_eq!(tail_text("aé".as_bytes(), 1), "");
        assert_eq!(tail_text("xé".as_bytes(), 2), "é");
    }

    #[tokio::test]
    async fn captures_status_and_output_tails() {
        let f = spawn(&sh("echo out; echo err >&2; exit 3"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(f.status.code(), Some(3));
        assert_eq!(f.stdout_tail, "out\n");
        assert_eq!(f.stderr_tail, "err\n");
    }

    #[tokio::test]
    async fn keeps_only_the_tail_of_long_output() {
        let f = spawn(&sh("yes x | head -c 100000; echo END"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(f.status.success());
        assert_eq!(f.stdout_tail.len(), TAIL_BYTES);
        assert!(f.stdout_tail.ends_with("END\n"));
    }

    #[tokio::test]
    async fn env_and_cwd_apply() {
        let mut spec = sh("echo $GREETING; pwd");
        spec.env = vec![("GREETING".into(), "hi".into())];
        spec.cwd = Some(std::env::temp_dir());
        let f = spawn(&spec).unwrap().wait().await.unwrap();
        let dir = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(f.stdout_tail, format!("hi\n{}\n", dir.display()));
    }

    #[tokio::test]
    async fn stragglers_do_not_hold_the_run_open() {
        // The background sleep keeps stdout open; the run must still end when `sh` exits.
        let started = std::time::Instant::now();
        let f = spawn(&sh("sleep 30 & echo started"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(f.status.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let running = spawn(&sh(&script)).unwrap();
        let wait = running.wait();
        // Let the script start its grandchild, then give up on the run.
        let _ = tokio::time::timeout(Duration::from_millis(500), wait).await;
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is immediate, but reaping by init may take a moment.
        let mut alive = true;
        for _ in 0..50 {
            // SAFETY: signal 0 only checks whether the process exists.
            alive = unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "the grandchild {pid} survived");
    }

    #[tokio::test]
    async fn signals_reach_the_group() {
        let running = spawn(&sh("sleep 30")).unwrap();
        running.group().signal(libc::SIGTERM);
        let f = running.wait().await.unwrap();
        assert_eq!(f.status.signal(), Some(libc::SIGTERM));
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }
}
