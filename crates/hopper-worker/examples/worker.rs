//! A worker with one typed handler.
//!
//! Start a server (`hopper server`), enqueue a few jobs
//! (`hopper enqueue send_email --args '{"to": "ada@example.com", "subject": "hi"}'`), then:
//!
//! ```text
//! cargo run -p hopper-worker --example worker            # HOPPER_URL overrides the address
//! ```
//!
//! Ctrl-C (or SIGTERM) stops it gracefully.

use std::time::Duration;

use anyhow::Context;
use hopper_worker::{Client, JobContext, Outcome, Worker};
use serde::Deserialize;

/// The args of a `send_email` job, decoded from its JSON args. Jobs whose args do not fit
/// fail permanently (kind `invalid_args`) without reaching the handler.
#[derive(Debug, Deserialize)]
struct SendEmail {
    to: String,
    subject: String,
}

async fn send_email(ctx: JobContext, email: SendEmail) -> anyhow::Result<Outcome> {
    if !email.to.contains('@') {
        // No retry fixes an address: send the job to the dead-letter queue at once.
        return Ok(Outcome::fail_permanently(format!(
            "`{}` is not an email address",
            email.to
        )));
    }
    tracing::info!(job = %ctx.id(), attempt = ctx.attempt(), to = %email.to, "sending");
    tokio::select! {
        // Stand-in for the real work; a cancel or timeout stops it early.
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        _ = ctx.cancelled() => return Ok(Outcome::Cancelled),
    }
    ctx.progress(&serde_json::json!({"stage": "sent"}))
        .await
        .context("reporting progress")?;
    Ok(Outcome::complete_with(
        &serde_json::json!({"sent_to": email.to, "subject": email.subject}),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let url = std::env::var("HOPPER_URL").unwrap_or_else(|_| hopper_worker::DEFAULT_URL.into());
    let worker = Worker::builder(Client::new(&url)?)
        .queues(["default"])
        .concurrency(10)
        .register("send_email", send_email)
        .build()?;
    worker.run().await?;
    Ok(())
}
