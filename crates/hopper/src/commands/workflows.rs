//! `hopper workflows submit | list | get | cancel | retry`: workflow runs (DAGs of jobs) over
//! the SDK client. A run is submitted as the JSON the API takes, from a file or stdin; the
//! graph's validation (names, dependencies, cycles) is the server's, which names the field at
//! fault.

use std::io::Read;

use anyhow::Context;
use hopper_worker::{Job, Workflow, WorkflowId, WorkflowRequest, WorkflowRun, WorkflowState};

use super::Ctx;
use crate::cli::WorkflowsCommand;
use crate::output::print_json;
use crate::table::{Table, ellipsize};

/// Runs one `workflows` subcommand.
pub async fn run(ctx: &Ctx, cmd: WorkflowsCommand) -> anyhow::Result<()> {
    let c = &ctx.client;
    match cmd {
        WorkflowsCommand::Submit { file } => {
            let req = read_request(&file)?;
            let run = c.submit_workflow(&req).await?;
            if ctx.json {
                return print_json(&run);
            }
            println!(
                "workflow run {} submitted: {} steps",
                run.workflow.id,
                run.steps.len()
            );
            print!("{}", steps_table(&run.steps).render());
        }
        WorkflowsCommand::List {
            state,
            limit,
            cursor,
        } => {
            let state = state.as_deref().map(parse_state).transpose()?;
            let page = c.workflows(state, limit, cursor.as_deref()).await?;
            if ctx.json {
                return print_json(&page);
            }
            if page.workflows.is_empty() {
                println!("no workflow runs");
            } else {
                print!("{}", runs_table(&page.workflows).render());
            }
            if let Some(c) = page.next_cursor {
                println!("more: --cursor {c}");
            }
        }
        WorkflowsCommand::Get { id } => {
            let run = c.workflow(parse_workflow_id(&id)?).await?;
            if ctx.json {
                return print_json(&run);
            }
            print!("{}", detail(&run));
        }
        WorkflowsCommand::Cancel { id } => {
            let w = c.cancel_workflow(parse_workflow_id(&id)?).await?;
            if ctx.json {
                return print_json(&w);
            }
            if w.state.is_finished() {
                println!("workflow run {} is now {}", w.id, w.state.as_str());
            } else {
                println!(
                    "workflow run {}: cancel requested, {} running steps stop at their next heartbeat",
                    w.id, w.open_steps
                );
            }
        }
        WorkflowsCommand::Retry { id } => {
            let w = c.retry_workflow(parse_workflow_id(&id)?).await?;
            if ctx.json {
                return print_json(&w);
            }
            println!(
                "workflow run {} is now {}: {} steps to run",
                w.id,
                w.state.as_str(),
                w.open_steps
            );
        }
    }
    Ok(())
}

/// The run in `file` (`-` for stdin), checked to be a workflow request before it is sent.
fn read_request(file: &str) -> anyhow::Result<WorkflowRequest> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the workflow from stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
    };
    parse_request(&text).with_context(|| {
        let from = if file == "-" { "stdin" } else { file };
        format!("{from} is not a workflow (a JSON object with `steps`, each with `step` and `job`)")
    })
}

/// A workflow request from its JSON text.
pub fn parse_request(text: &str) -> anyhow::Result<WorkflowRequest> {
    Ok(serde_json::from_str(text)?)
}

/// A run id from the command line, with an error that says what was wrong.
pub fn parse_workflow_id(id: &str) -> anyhow::Result<WorkflowId> {
    id.trim()
        .parse()
        .with_context(|| format!("`{id}` is not a workflow run id (a UUID)"))
}

/// A run state from `--state`.
pub fn parse_state(state: &str) -> anyhow::Result<WorkflowState> {
    state.trim().parse().ok().with_context(|| {
        format!("--state takes running, completed, failed or cancelled, not `{state}`")
    })
}

fn opt_time(t: Option<hopper_worker::Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
}

/// One line per run.
fn runs_table(runs: &[Workflow]) -> Table {
    let mut t = Table::new([
        "ID", "NAME", "STATE", "STEPS", "OPEN", "FAILED", "CREATED", "FINISHED",
    ])
    .align_right(&[3, 4, 5]);
    for w in runs {
        t.row([
            w.id.to_string(),
            ellipsize(w.name.as_deref().unwrap_or("-"), 40),
            w.state.as_str().to_string(),
            w.steps.to_string(),
            w.open_steps.to_string(),
            w.failed_steps.to_string(),
            w.created_at.to_string(),
            opt_time(w.finished_at),
        ]);
    }
    t
}

/// One line per step, in the order the server answers them (each after its parents).
fn steps_table(steps: &[Job]) -> Table {
    let mut t = Table::new([
        "STEP",
        "STATE",
        "KIND",
        "QUEUE",
        "WAITING_ON",
        "DEPENDS_ON",
        "JOB",
    ])
    .align_right(&[4]);
    for j in steps {
        let (step, waiting_on, depends_on) = match &j.workflow {
            Some(w) => (
                w.step.clone(),
                w.waiting_on.to_string(),
                if w.depends_on.is_empty() {
                    "-".to_string()
                } else {
                    w.depends_on.join(",")
                },
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        t.row([
            step,
            j.state.to_string(),
            ellipsize(&j.kind, 40),
            j.queue.clone(),
            waiting_on,
            ellipsize(&depends_on, 60),
            j.id.to_string(),
        ]);
    }
    t
}

/// The run's fields, then its steps.
fn detail(run: &WorkflowRun) -> String {
    let w = &run.workflow;
    let mut fields = Table::new(["FIELD", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", w.id.to_string()),
        ("name", w.name.clone().unwrap_or_else(|| "-".into())),
        ("state", w.state.as_str().to_string()),
        (
            "steps",
            format!(
                "{} ({} open, {} failed)",
                w.steps, w.open_steps, w.failed_steps
            ),
        ),
        (
            "cancel_requested",
            if w.cancel_requested { "yes" } else { "no" }.into(),
        ),
        ("created_at", w.created_at.to_string()),
        ("finished_at", opt_time(w.finished_at)),
    ];
    for (k, v) in rows {
        fields.row([k.to_string(), v]);
    }
    let mut out = fields.render();
    out.push_str("\nsteps:\n");
    out.push_str(&steps_table(&run.steps).render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn requests_are_checked_before_they_are_sent() {
        let r = parse_request(
            r#"{"name": "etl", "steps": [
                {"step": "extract", "job": {"kind": "x"}},
                {"step": "load", "depends_on": ["extract"], "on_failure": "continue",
                 "job": {"kind": "l", "queue": "q"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("etl"));
        assert_eq!(r.steps[1].depends_on, ["extract"]);
        assert!(
            parse_request(r#"{"steps": [{"step": "a", "job": {"kind": "k"}, "x": 1}]}"#).is_err()
        );
        assert!(parse_request("[]").is_err());
    }

    #[test]
    fn states_and_ids_are_checked() {
        assert_eq!(parse_state("failed").unwrap(), WorkflowState::Failed);
        let e = parse_state("done").unwrap_err().to_string();
        assert!(e.contains("running, completed"), "{e}");
        assert!(parse_workflow_id("nope").is_err());
        assert!(parse_workflow_id(" 0190f5c6-0000-7000-8000-000000000001 ").is_ok());
    }

    #[test]
    fn the_grammar_takes_every_subcommand() {
        let parse = |argv: &[&str]| {
            let mut all = vec!["hopper", "workflows"];
            all.extend_from_slice(argv);
            match Cli::try_parse_from(all).unwrap().command {
                Command::Workflows(c) => c,
                other => panic!("not workflows: {other:?}"),
            }
        };
        assert!(
            matches!(parse(&["submit", "-"]), WorkflowsCommand::Submit { file } if file == "-")
        );
        assert!(matches!(
            parse(&["ls", "--state", "running", "--limit", "5"]),
            WorkflowsCommand::List { state: Some(s), limit: Some(5), cursor: None } if s == "running"
        ));
        assert!(matches!(parse(&["get", "x"]), WorkflowsCommand::Get { .. }));
        assert!(matches!(
            parse(&["cancel", "x"]),
            WorkflowsCommand::Cancel { .. }
        ));
        assert!(matches!(
            parse(&["retry", "x"]),
            WorkflowsCommand::Retry { .. }
        ));
    }
}
