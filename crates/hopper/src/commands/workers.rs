//! `hopper workers`: who holds leases.

use super::Ctx;
use crate::output::{print_json, workers_table};

/// Lists the workers seen in the last minute.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let workers = ctx.client.workers().await?;
    if ctx.json {
        return print_json(&serde_json::json!({ "workers": workers }));
    }
    if workers.is_empty() {
        println!("no workers seen in the last minute");
    } else {
        print!("{}", workers_table(&workers).render());
    }
    Ok(())
}
