//! `hopper workflows submit | list | get | cancel | retry`: workflow runs (DAGs of jobs) over
//! the SDK client. A run is submitted as the JSON the API takes, from a file or stdin; the
//! graph's validation (names, dependencies, cycles) is the server's, which names the field at
//! fault.
//!
//! `hopper workflows define | definitions | definition | undefine | trigger | backfill |
//! backfill-status`: named definitions (run templates with parameters and an optional cron
//! expression), runs of them for a logical date, and backfills over a range of dates. A
//! definition is read as the JSON the API takes; `--param KEY=VALUE` values are JSON when they
//! parse as JSON, strings otherwise.

use std::io::Read;

use anyhow::Context;
use hopper_worker::{
    BackfillRequest, BackfillStatus, DefinitionRequest, Job, TriggerRequest, TriggeredRun,
    Workflow, WorkflowDefinition, WorkflowId, WorkflowRequest, WorkflowRun, WorkflowState,
};
use serde_json::{Map, Value};

use super::Ctx;
use crate::cli::{ParamArgs, WorkflowsCommand};
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
        WorkflowsCommand::Define { name, file } => {
            let req = read_definition(&file)?;
            let d = c.put_workflow_definition(&name, &req).await?;
            if ctx.json {
                return print_json(&d);
            }
            let cron = match &d.cron {
                Some(cron) => format!(
                    ", cron `{cron}` ({}), next at {}",
                    d.timezone,
                    opt_time(d.next_fire_at)
                ),
                None => String::new(),
            };
            println!(
                "workflow definition {} stored: {}, {}{cron}",
                d.name,
                counted(d.steps.len(), "step"),
                counted(d.params.len(), "parameter")
            );
        }
        WorkflowsCommand::Definitions => {
            let defs = c.workflow_definitions().await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "definitions": defs }));
            }
            if defs.is_empty() {
                println!("no workflow definitions");
            } else {
                print!("{}", definitions_table(&defs).render());
            }
        }
        WorkflowsCommand::Definition { name } => {
            let d = c.workflow_definition(&name).await?;
            if ctx.json {
                return print_json(&d);
            }
            print!("{}", definition_detail(&d));
        }
        WorkflowsCommand::Undefine { name } => {
            c.delete_workflow_definition(&name).await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("workflow definition {name} deleted (its runs stay)");
        }
        WorkflowsCommand::Trigger {
            name,
            params,
            logical_date,
        } => {
            let req = TriggerRequest {
                params: parse_params(&params)?,
                logical_date,
            };
            let run = c.trigger_workflow(&name, &req).await?;
            if ctx.json {
                return print_json(&run);
            }
            print!("{}", triggered(&run));
        }
        WorkflowsCommand::Backfill {
            name,
            from,
            to,
            max_running,
            params,
        } => {
            let req = BackfillRequest {
                from,
                to,
                params: parse_params(&params)?,
                max_running,
            };
            let status = c.backfill_workflow(&name, &req).await?;
            if ctx.json {
                return print_json(&status);
            }
            let b = &status.backfill;
            if status.created == Some(false) {
                println!(
                    "backfill {} of {} from {} to {} already exists",
                    b.id, b.definition, b.from, b.to
                );
            } else {
                println!(
                    "backfill {} of {} submitted: {} dates from {} to {}, at most {} at a time",
                    b.id, b.definition, status.progress.dates, b.from, b.to, b.max_running
                );
            }
            println!("follow it with: hopper workflows backfill-status {}", b.id);
        }
        WorkflowsCommand::BackfillStatus { id } => {
            let id = id
                .trim()
                .parse()
                .with_context(|| format!("`{id}` is not a backfill id (a UUID)"))?;
            let status = c.backfill(id).await?;
            if ctx.json {
                return print_json(&status);
            }
            print!("{}", backfill_detail(&status));
        }
    }
    Ok(())
}

/// The text of `file` (`-` for stdin); `what` names it in errors.
fn read_input(file: &str, what: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("reading the {what} from stdin"))?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
    }
}

/// The definition in `file` (`-` for stdin), checked to be a definition request before it is
/// sent.
fn read_definition(file: &str) -> anyhow::Result<DefinitionRequest> {
    let text = read_input(file, "workflow definition")?;
    parse_definition(&text).with_context(|| {
        let from = if file == "-" { "stdin" } else { file };
        format!(
            "{from} is not a workflow definition (a JSON object with `steps`, and optionally \
             `params`, `cron` and `timezone`)"
        )
    })
}

/// A definition request from its JSON text.
pub fn parse_definition(text: &str) -> anyhow::Result<DefinitionRequest> {
    Ok(serde_json::from_str(text)?)
}

/// `n` and `noun`, plural unless `n` is 1.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The `--param KEY=VALUE` flags as a parameter map; a value is JSON when it parses as JSON,
/// a string otherwise. A key given twice keeps its last value.
pub fn parse_params(args: &ParamArgs) -> anyhow::Result<Map<String, Value>> {
    let mut params = Map::new();
    for p in &args.params {
        let (key, value) = p
            .split_once('=')
            .with_context(|| format!("--param takes KEY=VALUE, not `{p}`"))?;
        let key = key.trim();
        anyhow::ensure!(!key.is_empty(), "--param `{p}` has no key");
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        params.insert(key.to_string(), value);
    }
    Ok(params)
}

/// What a trigger did, then the run's steps.
fn triggered(t: &TriggeredRun) -> String {
    let w = &t.workflow;
    let date = w.logical_date.as_deref().unwrap_or("-");
    let mut out = if t.created {
        format!(
            "workflow run {} started for {date}: {} steps\n",
            w.id,
            t.steps.len()
        )
    } else {
        format!(
            "workflow run {} for {date} already exists ({}): no new run\n",
            w.id,
            w.state.as_str()
        )
    };
    out.push_str(&steps_table(&t.steps).render());
    out
}

/// One line per definition.
fn definitions_table(defs: &[WorkflowDefinition]) -> Table {
    let mut t = Table::new(["NAME", "STEPS", "CRON", "NEXT FIRE"]).align_right(&[1]);
    for d in defs {
        t.row([
            ellipsize(&d.name, 60),
            d.steps.len().to_string(),
            match &d.cron {
                Some(c) if d.timezone != "UTC" => format!("{c} ({})", d.timezone),
                Some(c) => c.clone(),
                None => "-".into(),
            },
            opt_time(d.next_fire_at),
        ]);
    }
    t
}

/// A definition's fields, then its step templates.
fn definition_detail(d: &WorkflowDefinition) -> String {
    let mut fields = Table::new(["FIELD", "VALUE"]);
    let params = if d.params.is_empty() {
        "-".to_string()
    } else {
        Value::Object(d.params.clone()).to_string()
    };
    let rows: Vec<(&str, String)> = vec![
        ("name", d.name.clone()),
        ("params", ellipsize(&params, 200)),
        ("cron", d.cron.clone().unwrap_or_else(|| "-".into())),
        ("timezone", d.timezone.clone()),
        ("next_fire_at", opt_time(d.next_fire_at)),
        ("created_at", d.created_at.to_string()),
        ("updated_at", d.updated_at.to_string()),
    ];
    for (k, v) in rows {
        fields.row([k.to_string(), v]);
    }
    let mut steps = Table::new(["STEP", "KIND", "QUEUE", "DEPENDS_ON", "ARGS"]);
    for s in &d.steps {
        steps.row([
            s.step.clone(),
            ellipsize(&s.job.kind, 40),
            s.job.queue.clone().unwrap_or_else(|| "default".into()),
            if s.depends_on.is_empty() {
                "-".to_string()
            } else {
                ellipsize(&s.depends_on.join(","), 60)
            },
            s.job
                .args
                .as_ref()
                .map_or_else(|| "-".to_string(), |a| ellipsize(a.get(), 80)),
        ]);
    }
    let mut out = fields.render();
    out.push_str("\nsteps:\n");
    out.push_str(&steps.render());
    out
}

/// A backfill's fields and progress.
fn backfill_detail(s: &BackfillStatus) -> String {
    let b = &s.backfill;
    let p = &s.progress;
    let mut fields = Table::new(["FIELD", "VALUE"]);
    let params = if b.params.is_empty() {
        "-".to_string()
    } else {
        Value::Object(b.params.clone()).to_string()
    };
    let rows: Vec<(&str, String)> = vec![
        ("id", b.id.to_string()),
        ("definition", b.definition.clone()),
        ("dates", format!("{} to {} ({})", b.from, b.to, p.dates)),
        ("params", ellipsize(&params, 200)),
        ("max_running", b.max_running.to_string()),
        ("created", format!("{} of {}", p.created, p.dates)),
        ("running", p.running.to_string()),
        ("completed", p.completed.to_string()),
        ("failed", p.failed.to_string()),
        ("created_at", b.created_at.to_string()),
        ("finished_at", opt_time(b.finished_at)),
    ];
    for (k, v) in rows {
        fields.row([k.to_string(), v]);
    }
    fields.render()
}

/// The run in `file` (`-` for stdin), checked to be a workflow request before it is sent.
fn read_request(file: &str) -> anyhow::Result<WorkflowRequest> {
    let text = read_input(file, "workflow")?;
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
        assert!(matches!(
            parse(&["define", "nightly", "-"]),
            WorkflowsCommand::Define { name, file } if name == "nightly" && file == "-"
        ));
        assert!(matches!(parse(&["defs"]), WorkflowsCommand::Definitions));
        assert!(matches!(
            parse(&["show-definition", "n"]),
            WorkflowsCommand::Definition { .. }
        ));
        assert!(matches!(
            parse(&["delete-definition", "n"]),
            WorkflowsCommand::Undefine { .. }
        ));
        assert!(matches!(
            parse(&["trigger", "n", "--param", "a=1", "--param", "b=x", "--logical-date", "2026-01-01"]),
            WorkflowsCommand::Trigger { params, logical_date: Some(d), .. }
                if params.params.len() == 2 && d == "2026-01-01"
        ));
        assert!(matches!(
            parse(&[
                "backfill",
                "n",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-03",
                "--max-running",
                "2"
            ]),
            WorkflowsCommand::Backfill {
                max_running: Some(2),
                ..
            }
        ));
        assert!(matches!(
            parse(&["backfill-status", "x"]),
            WorkflowsCommand::BackfillStatus { .. }
        ));
    }

    #[test]
    fn params_are_json_when_they_parse_and_strings_otherwise() {
        let args = |ps: &[&str]| ParamArgs {
            params: ps.iter().map(|p| p.to_string()).collect(),
        };
        let p = parse_params(&args(&[
            "table=users",
            "limit=10",
            "quoted=\"10\"",
            "list=[1, 2]",
            "eq=a=b",
            "empty=",
            "limit=11",
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(p),
            serde_json::json!({"table": "users", "limit": 11, "quoted": "10", "list": [1, 2],
                "eq": "a=b", "empty": ""})
        );
        let e = parse_params(&args(&["nokey"])).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        assert!(parse_params(&args(&["=1"])).is_err());
    }

    #[test]
    fn definitions_are_checked_before_they_are_sent() {
        let d = parse_definition(
            r#"{"params": {"t": "x"}, "cron": "@daily",
                "steps": [{"step": "a", "job": {"kind": "k", "args": {"t": "{{params.t}}"}}}]}"#,
        )
        .unwrap();
        assert_eq!(d.cron.as_deref(), Some("@daily"));
        assert!(parse_definition(r#"{"steps": [], "name": "x"}"#).is_err());
    }
}
