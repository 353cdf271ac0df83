//! How the embedded store is opened.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use hopper_types::{Clock, SystemClock};

/// What a 2xx answer promises about a change surviving a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is fsynced before it is answered: survives power loss.
    #[default]
    Full,
    /// Commits are written but synced at least once a second: a process crash loses nothing,
    /// a power loss at most the last second.
    Relaxed,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Durability::Full),
            "relaxed" => Ok(Durability::Relaxed),
            other => Err(format!(
                "durability must be `full` or `relaxed`, not `{other}`"
            )),
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Full => "full",
            Durability::Relaxed => "relaxed",
        })
    }
}

/// Settings of a [`crate::SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Directory holding `hopper.db` (created when missing).
    pub data_dir: PathBuf,
    /// Sync policy.
    pub durability: Durability,
    /// The clock every change is stamped with.
    pub clock: Arc<dyn Clock>,
}

impl SqliteConfig {
    /// Full durability and the system clock.
    pub fn new(data_dir: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            data_dir: data_dir.into(),
            durability: Durability::Full,
            clock: Arc::new(SystemClock),
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("hopper.db")
    }
}
