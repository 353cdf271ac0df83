//! The embedded storage backend: one SQLite database file in WAL mode.
//!
//! Shape:
//! - [`writer`]: every change goes through one writer thread. It drains whatever commands are
//!   queued, runs each in its own savepoint inside one transaction, commits once (one fsync
//!   under `durability = "full"`), and only then answers each caller: group commit.
//! - [`readers`]: a small pool of read connections; WAL lets them read while the writer writes.
//! - [`schema`]: versioned migrations applied at open.
//! - [`rows`]: how a [`hopper_types::Job`] maps to a row (indexed columns plus a JSON body).
//! - [`ops`]: the SQL of each operation, run inside the writer or a reader.
//! - [`counts`]: per-queue, per-state job counts kept in memory by the writer, so queue
//!   listings and metrics never scan the table.
//! - [`store`]: [`SqliteStore`], the [`hopper_store::Store`] implementation tying them together.
//!
//! Architecture invariant: SQL lives only in this crate (and other store crates).

mod config;
mod counts;
mod ops;
mod readers;
mod rows;
mod schema;
mod store;
mod writer;

pub use config::{Durability, SqliteConfig};
pub use store::SqliteStore;
