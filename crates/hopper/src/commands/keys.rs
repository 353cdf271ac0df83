//! `hopper keys`: create, list and revoke API keys through the admin API. The first admin key
//! comes from `hopper server --create-admin-key` or `HOPPER_ADMIN_KEY` (or from this command
//! while the server has no keys at all).

use anyhow::Context;
use hopper_types::Timestamp;
use hopper_types::api_key::Role;
use hopper_worker::admin::NewKey;

use super::Ctx;
use crate::cli::KeysCommand;
use crate::output::print_json;
use crate::table::Table;

/// Runs one `hopper keys` subcommand.
pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create {
            name,
            role,
            namespace,
            expires_at,
            rate_limit,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("`{role}` is not a role: admin, producer, worker or viewer")
            })?;
            let expires_at = expires_at
                .map(|t| {
                    Timestamp::parse_rfc3339(&t)
                        .with_context(|| format!("--expires-at `{t}` is not an RFC 3339 time"))
                })
                .transpose()?;
            let created = ctx
                .client
                .create_key(&NewKey {
                    name,
                    role,
                    namespaces: (!namespace.is_empty()).then_some(namespace),
                    expires_at,
                    rate_limit_per_s: rate_limit,
                })
                .await?;
            if ctx.json {
                return print_json(&serde_json::json!({
                    "key": created.key,
                    "token": created.token,
                }));
            }
            eprintln!(
                "created {} key {} for {} (the key below is shown only now):",
                created.key.role.as_str(),
                created.key.id,
                created.key.namespaces.join(", ")
            );
            println!("{}", created.token);
            Ok(())
        }
        KeysCommand::List => {
            let keys = ctx.client.list_keys().await?;
            if ctx.json {
                return print_json(&serde_json::json!({ "keys": keys }));
            }
            let mut t = Table::new(["ID", "NAME", "ROLE", "NAMESPACES", "EXPIRES", "REVOKED"]);
            for k in &keys {
                let time = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
                t.row([
                    k.id.clone(),
                    k.name.clone(),
                    k.role.as_str().to_string(),
                    k.namespaces.join(","),
                    time(k.expires_at),
                    time(k.revoked_at),
                ]);
            }
            print!("{}", t.render());
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            let key = ctx.client.revoke_key(&id).await?;
            if ctx.json {
                return print_json(&key);
            }
            println!("revoked key {}", key.id);
            Ok(())
        }
    }
}
