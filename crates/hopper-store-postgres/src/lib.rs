//! The shared storage backend: PostgreSQL 15+, for any number of Hopper nodes over one
//! database, with no single point of failure in Hopper itself.
//!
//! Shape:
//! - [`schema`]: versioned migrations in the `hopper` schema, applied at connect under an
//!   advisory lock (nodes starting together migrate once).
//! - [`rows`]: how a [`hopper_types::Job`] maps to a row (indexed columns plus a JSON body,
//!   as in the embedded store), and multi-row writes with `UNNEST`.
//! - [`ops`]: the SQL of each operation. Changes are computed by `hopper_types::lifecycle`
//!   under row locks (`FOR UPDATE`; `SKIP LOCKED` where any row will do, as in leasing).
//! - [`write_set`]: what a transaction changed, written in a few statements at its end.
//!   Before that, the workflow steps it finished are settled (`ops::workflow`): their
//!   children move on and their runs' counters change in the same transaction.
//! - [`notify`]: LISTEN/NOTIFY wake-ups across nodes, with a fallback poll.
//! - [`enqueue`]: [`enqueue_in`], inserting jobs inside the application's own transaction.
//! - [`store`]: [`PgStore`], the [`hopper_store::Store`] implementation.
//!
//! Durability is PostgreSQL's: a change is answered after its commit returns, so it survives
//! whatever the server's `synchronous_commit` and replication settings promise.

mod config;
mod enqueue;
mod error;
mod notify;
mod ops;
mod rows;
mod schema;
mod store;
mod write_set;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{DEFAULT_FALLBACK_POLL, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_TIMEOUT, PgConfig};
pub use enqueue::enqueue_in;
pub use store::PgStore;
