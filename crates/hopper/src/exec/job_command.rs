//! From a leased job to the process to run, and from how the process ended to the job's
//! outcome.
//!
//! Two sources of commands: the worker's own `--command KIND=TEMPLATE` (the default, and the
//! only one unless the operator opts in), and, with `--allow-any-command`, a job whose args say
//! what to run: `{"cmd": ["prog", "arg"], "env": {"K": "V"}, "cwd": "/dir"}`.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use hopper_worker::{JobContext, Outcome};
use serde::Deserialize;

use super::process::{Finished, ProcessSpec};
use super::template::CommandTemplate;

/// The error kind of a command that exited non-zero or was killed.
pub const KIND_COMMAND_FAILED: &str = "command_failed";
/// The error kind of a command that could not be started.
pub const KIND_SPAWN_FAILED: &str = "spawn_failed";

/// The args of a job that names its own command (`--allow-any-command`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CmdArgs {
    /// Program and arguments.
    pub cmd: Vec<String>,
    /// Variables added to the worker's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// Variables every command gets, so a script knows which job and lease it runs for
/// (`HOPPER_LEASE_SEQ` fences its own writes, like the SDK's `lease_seq`), and the W3C
/// `TRACEPARENT` its own tracing continues: the worker's `job` span when traces are exported
/// (so the command's spans nest under it), else the job's own traceparent.
pub fn job_env(ctx: &JobContext) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOPPER_JOB_ID".to_string(), ctx.id().to_string()),
        ("HOPPER_JOB_KIND".to_string(), ctx.kind().to_string()),
        ("HOPPER_JOB_QUEUE".to_string(), ctx.queue().to_string()),
        ("HOPPER_JOB_ATTEMPT".to_string(), ctx.attempt().to_string()),
        ("HOPPER_LEASE_SEQ".to_string(), ctx.lease_seq().to_string()),
    ];
    let traceparent = hopper_worker::trace::current_traceparent()
        .or_else(|| ctx.traceparent().map(str::to_string));
    if let Some(tp) = traceparent {
        env.push(("TRACEPARENT".to_string(), tp));
    }
    env
}

/// The process for a job of a templated kind; args that do not fit fail the job for good.
pub fn from_template(
    template: &CommandTemplate,
    args: &serde_json::Value,
) -> Result<ProcessSpec, Outcome> {
    let argv = template
        .expand(args)
        .map_err(|e| Outcome::FailPermanently {
            message: e.to_string(),
            kind: hopper_worker::outcome::KIND_INVALID_ARGS.to_string(),
        })?;
    Ok(ProcessSpec {
        argv,
        env: Vec::new(),
        cwd: None,
    })
}

/// The process a job's own args name.
pub fn from_cmd_args(args: CmdArgs) -> Result<ProcessSpec, Outcome> {
    if args.cmd.is_empty() || args.cmd[0].is_empty() {
        return Err(Outcome::FailPermanently {
            message: "args.cmd must name a program".to_string(),
            kind: hopper_worker::outcome::KIND_INVALID_ARGS.to_string(),
        });
    }
    if args.cmd.iter().any(|a| a.contains('\0')) {
        return Err(Outcome::FailPermanently {
            message: "args.cmd contains a NUL byte".to_string(),
            kind: hopper_worker::outcome::KIND_INVALID_ARGS.to_string(),
        });
    }
    Ok(ProcessSpec {
        argv: args.cmd,
        env: args.env.into_iter().collect(),
        cwd: args.cwd,
    })
}

/// The outcome of a finished command: exit 0 completes with the tail of stdout as the
/// result; anything else is a retryable failure carrying the tail of stderr.
pub fn outcome_of(f: &Finished) -> Outcome {
    if f.status.success() {
        return Outcome::Complete(serde_json::Value::String(f.stdout_tail.clone()));
    }
    let how = match (f.status.code(), f.status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "ended abnormally".to_string(),
    };
    let detail = f.stderr_tail.trim_end();
    Outcome::Fail {
        message: if detail.is_empty() {
            how
        } else {
            format!("{how}: {detail}")
        },
        kind: KIND_COMMAND_FAILED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::process::ExitStatus;

    fn finished(raw_status: i32, out: &str, err: &str) -> Finished {
        Finished {
            status: ExitStatus::from_raw(raw_status),
            stdout_tail: out.into(),
            stderr_tail: err.into(),
        }
    }

    #[test]
    fn exit_zero_completes_with_stdout() {
        assert_eq!(
            outcome_of(&finished(0, "done\n", "noise")),
            Outcome::Complete(json!("done\n"))
        );
    }

    #[test]
    fn non_zero_fails_with_stderr() {
        // Raw wait status: exit code in the high byte.
        assert_eq!(
            outcome_of(&finished(2 << 8, "", "no such file\n")),
            Outcome::Fail {
                message: "exit status 2: no such file".into(),
                kind: KIND_COMMAND_FAILED.into()
            }
        );
        assert_eq!(
            outcome_of(&finished(9, "", "")),
            Outcome::Fail {
                message: "killed by signal 9".into(),
                kind: KIND_COMMAND_FAILED.into()
            }
        );
    }

    #[test]
    fn cmd_args_are_strict() {
        let ok: CmdArgs =
            serde_json::from_value(json!({"cmd": ["echo", "hi"], "env": {"A": "1"}})).unwrap();
        let spec = from_cmd_args(ok).unwrap();
        assert_eq!(spec.argv, vec!["echo", "hi"]);
        assert_eq!(spec.env, vec![("A".to_string(), "1".to_string())]);
        assert!(serde_json::from_value::<CmdArgs>(json!({"cmd": ["x"], "shell": true})).is_err());
        let empty: CmdArgs = serde_json::from_value(json!({"cmd": []})).unwrap();
        assert!(matches!(
            from_cmd_args(empty),
            Err(Outcome::FailPermanently { .. })
        ));
    }

    #[test]
    fn template_args_that_do_not_fit_fail_for_good() {
        let t = CommandTemplate::parse("echo {name}").unwrap();
        assert!(matches!(
            from_template(&t, &json!({})),
            Err(Outcome::FailPermanently { kind, .. }) if kind == "invalid_args"
        ));
        assert_eq!(
            from_template(&t, &json!({"name": "x"})).unwrap().argv,
            vec!["echo", "x"]
        );
    }
}
