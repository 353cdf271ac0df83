//! `hopper schedules list | get | create | delete | pause | resume | trigger`: cron schedules
//! over the SDK client. Validation is the server's; only the flag syntax is checked here.

use anyhow::{Context, bail};
use hopper_worker::{EnqueueRequest, Misfire, ScheduleRequest, ScheduleView, Timestamp};
use serde_json::value::RawValue;

use super::Ctx;
use crate::cli::{ScheduleCreateArgs, SchedulesCommand};
use crate::output::print_json;
use crate::table::{Table, ellipsize};

/// Runs one `schedules` subcommand.
pub async fn run(ctx: &Ctx, cmd: SchedulesCommand) -> anyhow::Result<()> {
    let c = &ctx.client;
    match cmd {
        SchedulesCommand::List => {
            let schedules = c.schedules().await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "schedules": schedules }));
            }
            if schedules.is_empty() {
                println!("no schedules");
            } else {
                print!("{}", table(&schedules).render());
            }
        }
        SchedulesCommand::Get { name } => {
            let s = c.schedule(&name).await?;
            if ctx.json {
                return print_json(&s);
            }
            print!("{}", detail(&s));
        }
        SchedulesCommand::Create(args) => {
            let s = c.create_schedule(&request(args)?).await?;
            if ctx.json {
                return print_json(&s);
            }
            println!(
                "schedule {} created; next fire at {}",
                s.name,
                next_fire(&s)
            );
        }
        SchedulesCommand::Delete { name } => {
            c.delete_schedule(&name).await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "deleted": name }));
            }
            println!("deleted schedule {name}");
        }
        SchedulesCommand::Pause { name } => {
            let s = c.pause_schedule(&name).await?;
            if ctx.json {
                return print_json(&s);
            }
            println!("schedule {} paused", s.name);
        }
        SchedulesCommand::Resume { name } => {
            let s = c.resume_schedule(&name).await?;
            if ctx.json {
                return print_json(&s);
            }
            println!(
                "schedule {} resumed; next fire at {}",
                s.name,
                next_fire(&s)
            );
        }
        SchedulesCommand::Trigger { name } => {
            let job = c.trigger_schedule(&name).await?;
            if ctx.json {
                return print_json(&job);
            }
            println!(
                "enqueued: {} (queue {}, kind {}, state {})",
                job.id, job.queue, job.kind, job.state
            );
        }
    }
    Ok(())
}

/// `skip`, `run_once` or `catch_up:N`.
pub fn parse_misfire(text: &str) -> anyhow::Result<Misfire> {
    let text = text.trim();
    match text {
        "skip" => Ok(Misfire::Skip),
        "run_once" => Ok(Misfire::RunOnce),
        _ => match text.strip_prefix("catch_up:") {
            Some(n) => {
                let max = n
                    .trim()
                    .parse()
                    .with_context(|| format!("catch_up:N needs a number, not `{n}`"))?;
                Ok(Misfire::CatchUp { max })
            }
            None => bail!("--misfire takes skip, run_once or catch_up:N, not `{text}`"),
        },
    }
}

/// The schedule the flags describe; the args must be valid JSON.
pub fn request(args: ScheduleCreateArgs) -> anyhow::Result<ScheduleRequest> {
    let json_args = match args.args {
        Some(text) => Some(
            RawValue::from_string(text)
                .context("--args must be valid JSON (e.g. '{\"to\": 1}')")?,
        ),
        None => None,
    };
    let misfire = args.misfire.as_deref().map(parse_misfire).transpose()?;
    Ok(ScheduleRequest {
        name: Some(args.name),
        cron: args.cron,
        timezone: args.timezone,
        job: EnqueueRequest {
            kind: args.kind,
            queue: args.queue,
            args: json_args,
            ..EnqueueRequest::default()
        },
        jitter_ms: args.jitter_ms,
        misfire,
        paused: args.paused.then_some(true),
    })
}

fn misfire_text(m: Misfire) -> String {
    match m {
        Misfire::Skip => "skip".into(),
        Misfire::RunOnce => "run_once".into(),
        Misfire::CatchUp { max } => format!("catch_up:{max}"),
    }
}

fn next_fire(s: &ScheduleView) -> String {
    if s.paused {
        return "- (paused)".into();
    }
    s.next_fire_times
        .first()
        .map_or_else(|| "never".into(), Timestamp::to_string)
}

/// One line per schedule.
fn table(schedules: &[ScheduleView]) -> Table {
    let mut t = Table::new([
        "NAME", "CRON", "TIMEZONE", "KIND", "QUEUE", "PAUSED", "MISFIRE", "NEXT",
    ]);
    for s in schedules {
        t.row([
            s.name.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            ellipsize(&s.job.kind, 40),
            s.job.queue.clone().unwrap_or_else(|| "default".into()),
            if s.paused { "yes" } else { "no" }.to_string(),
            misfire_text(s.misfire),
            next_fire(s),
        ]);
    }
    t
}

/// Every field of one schedule, then its next fire times and last runs.
fn detail(s: &ScheduleView) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    line("name", s.name.clone());
    line("cron", format!("{} ({})", s.cron, s.timezone));
    line("kind", s.job.kind.clone());
    line(
        "queue",
        s.job.queue.clone().unwrap_or_else(|| "default".into()),
    );
    if let Some(args) = &s.job.args {
        line("args", args.get().to_string());
    }
    line("paused", if s.paused { "yes" } else { "no" }.to_string());
    line("misfire", misfire_text(s.misfire));
    line("jitter_ms", s.jitter_ms.to_string());
    line("created_at", s.created_at.to_string());
    line("updated_at", s.updated_at.to_string());
    out.push_str("next fire times:\n");
    if s.next_fire_times.is_empty() {
        out.push_str("  none\n");
    }
    for t in &s.next_fire_times {
        out.push_str(&format!("  {t}\n"));
    }
    out.push_str("last runs:\n");
    if s.last_runs.is_empty() {
        out.push_str("  none\n");
    }
    for r in &s.last_runs {
        out.push_str(&format!(
            "  tick {}  job {}  enqueued {}\n",
            r.tick_at, r.job_id, r.enqueued_at
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn create_args(argv: &[&str]) -> ScheduleCreateArgs {
        let mut all = vec!["hopper", "schedules", "create"];
        all.extend_from_slice(argv);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Schedules(SchedulesCommand::Create(a)) => a,
            other => panic!("not schedules create: {other:?}"),
        }
    }

    #[test]
    fn misfire_flags_parse() {
        assert_eq!(parse_misfire("skip").unwrap(), Misfire::Skip);
        assert_eq!(parse_misfire("run_once").unwrap(), Misfire::RunOnce);
        assert_eq!(
            parse_misfire("catch_up:7").unwrap(),
            Misfire::CatchUp { max: 7 }
        );
        assert!(parse_misfire("catch_up:x").is_err());
        assert!(parse_misfire("sometimes").is_err());
    }

    #[test]
    fn create_flags_become_a_request() {
        let r = request(create_args(&[
            "nightly",
            "--cron",
            "0 3 * * *",
            "--timezone",
            "Europe/Berlin",
            "--kind",
            "report",
            "--queue",
            "reports",
            "--args",
            r#"{"full":true}"#,
            "--misfire",
            "catch_up:3",
            "--jitter-ms",
            "500",
        ]))
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("nightly"));
        assert_eq!(r.cron, "0 3 * * *");
        assert_eq!(r.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(r.job.kind, "report");
        assert_eq!(r.job.queue.as_deref(), Some("reports"));
        assert_eq!(r.job.args.unwrap().get(), r#"{"full":true}"#);
        assert_eq!(r.misfire, Some(Misfire::CatchUp { max: 3 }));
        assert_eq!((r.jitter_ms, r.paused), (Some(500), None));
        assert!(
            request(create_args(&[
                "n", "--cron", "@daily", "--kind", "k", "--args", "{"
            ]))
            .is_err()
        );
    }
}
