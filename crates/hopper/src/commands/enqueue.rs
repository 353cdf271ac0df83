//! `hopper enqueue`: one job from flags.

use anyhow::Context;
use hopper_worker::EnqueueRequest;
use serde_json::value::RawValue;

use super::Ctx;
use crate::cli::EnqueueArgs;
use crate::output::print_json;

/// The enqueue request the flags describe; the args must be valid JSON.
pub fn request(args: EnqueueArgs) -> anyhow::Result<EnqueueRequest> {
    let json_args = match args.args {
        Some(text) => Some(
            RawValue::from_string(text)
                .context("--args must be valid JSON (e.g. '{\"to\": 1}')")?,
        ),
        None => None,
    };
    Ok(EnqueueRequest {
        kind: args.kind,
        queue: args.queue,
        args: json_args,
        priority: args.priority,
        run_at: args.run_at,
        delay_ms: args.delay_ms,
        max_attempts: args.max_attempts,
        timeout_ms: args.timeout_ms,
        idempotency_key: args.idempotency_key,
        tags: (!args.tags.is_empty()).then_some(args.tags),
        concurrency_key: args.concurrency_key,
        fairness_key: args.fairness_key,
        estimated_ms: args.estimated_ms,
        ..EnqueueRequest::default()
    })
}

/// Enqueues and prints the job (or its id and state).
pub async fn run(ctx: &Ctx, args: EnqueueArgs) -> anyhow::Result<()> {
    let job = ctx.client.enqueue(request(args)?).await?;
    if ctx.json {
        return print_json(&job);
    }
    let what = if job.duplicate == Some(true) {
        "already enqueued (same idempotency key)"
    } else {
        "enqueued"
    };
    println!(
        "{what}: {} (queue {}, kind {}, state {})",
        job.id, job.queue, job.kind, job.state
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(argv: &[&str]) -> EnqueueArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Enqueue(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_request() {
        let r = request(parse(&[
            "hopper",
            "enqueue",
            "send_email",
            "--args",
            r#"{"to":"a@b"}"#,
            "--queue",
            "mail",
            "--max-attempts",
            "3",
            "--tag",
            "x",
            "--tag",
            "y",
        ]))
        .unwrap();
        assert_eq!(r.kind, "send_email");
        assert_eq!(r.queue.as_deref(), Some("mail"));
        assert_eq!(r.args.unwrap().get(), r#"{"to":"a@b"}"#);
        assert_eq!(r.max_attempts, Some(3));
        assert_eq!(r.tags, Some(vec!["x".into(), "y".into()]));
        assert_eq!(r.idempotency_key, None);
    }

    #[test]
    fn bad_json_args_are_refused() {
        let e = request(parse(&["hopper", "enqueue", "k", "--args", "{nope"])).unwrap_err();
        assert!(e.to_string().contains("--args"), "{e}");
    }
}
