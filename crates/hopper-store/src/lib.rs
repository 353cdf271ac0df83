//! The storage boundary of Hopper.
//!
//! [`Store`] is one flat list of operations named noun + verb, each taking a params struct.
//! Every backend (embedded SQLite, PostgreSQL) implements all of it, owns its SQL and its
//! migrations, and maps its own errors to the portable [`StoreError`] kinds, so nothing above
//! this crate ever sees SQL or a driver error. State changes are computed by
//! `hopper_types::lifecycle`, so backends differ only in how they persist and lock.
//!
//! [`lease_plan`] decides, for every backend alike, which jobs a lease takes from a queue
//! whose limits or policy shape leases.
//!
//! [`workflow_plan`] decides, for every backend alike, how new workflow steps start, what a
//! finished step does to its children, and what a retry of a run reopens.
//!
//! One conformance suite (`hopper-store-tests`) runs against every backend.

mod error;
pub mod lease_plan;
mod params;
mod schedule_params;
mod signals;
mod store;
mod workflow_params;
pub mod workflow_plan;

pub use error::StoreError;
pub use params::*;
pub use schedule_params::*;
pub use signals::QueueSignals;
pub use store::Store;
pub use workflow_params::*;
