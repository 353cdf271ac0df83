//! The stores a command line names: an embedded SQLite data directory or a PostgreSQL URL,
//! how each is opened, and how one is shown in messages (never with its password).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use hopper_store_postgres::{PgConfig, PgStore};
use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_types::SystemClock;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded store's data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Location {
    /// Reads `postgres://...`, `postgresql://...`, `sqlite:PATH` or a bare path.
    pub fn parse(s: &str) -> anyhow::Result<Location> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Location::Postgres(s.to_string()));
        }
        let path = match s.strip_prefix("sqlite:") {
            Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
            None if s.contains("://") => anyhow::bail!(
                "`{}` is neither a data directory nor a postgres:// URL",
                redact(s)
            ),
            None => s,
        };
        anyhow::ensure!(!path.is_empty(), "a store location must not be empty");
        Ok(Location::Sqlite(PathBuf::from(path)))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "sqlite:{}", dir.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// A URL with its password, if any, replaced by `***` (in the user info and in a
/// `password=` query parameter), fit for messages and logs.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Opens the embedded store in `dir` with full durability and the system clock. Fails with
/// "another Hopper server is using ..." while a server runs on it.
pub fn open_sqlite(dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(SqliteConfig {
        data_dir: dir.to_path_buf(),
        durability: Durability::Full,
        clock: Arc::new(SystemClock),
    })
    .with_context(|| format!("opening the store in {}", dir.display()))
}

/// Connects to PostgreSQL (applying Hopper's migrations when needed).
pub async fn connect_postgres(config: PgConfig) -> anyhow::Result<PgStore> {
    let shown = redact(&config.url);
    PgStore::connect(config)
        .await
        .with_context(|| format!("connecting to {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let pg = "postgres://u:p@db:5432/hopper?sslmode=require";
        assert_eq!(Location::parse(pg).unwrap(), Location::Postgres(pg.into()));
        assert_eq!(
            Location::parse("postgresql://db/h").unwrap(),
            Location::Postgres("postgresql://db/h".into())
        );
        assert_eq!(
            Location::parse("./data").unwrap(),
            Location::Sqlite("./data".into())
        );
        assert_eq!(
            Location::parse("sqlite:/var/lib/hopper").unwrap(),
            Location::Sqlite("/var/lib/hopper".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/hopper").unwrap(),
            Location::Sqlite("/var/lib/hopper".into())
        );
        assert!(Location::parse("mysql://u:secret@db/x").is_err());
        assert!(Location::parse("sqlite:").is_err());
        assert!(Location::parse("  ").is_err());
    }

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://hopper:s3cr@t@db:5432/h?sslmode=require"),
            "postgres://hopper:***@db:5432/h?sslmode=require"
        );
        assert_eq!(redact("postgres://db/h"), "postgres://db/h");
        assert_eq!(redact("postgres://user@db/h"), "postgres://user@db/h");
        assert_eq!(
            redact("postgres://db/h?user=u&password=x&sslmode=disable"),
            "postgres://db/h?user=u&password=***&sslmode=disable"
        );
        let err = Location::parse("mysql://u:secret@db/x").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert_eq!(
            Location::Postgres("postgres://u:pw@db/h".into()).to_string(),
            "postgres://u:***@db/h"
        );
    }
}
