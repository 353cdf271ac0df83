//! How the PostgreSQL store connects.

use std::sync::Arc;
use std::time::Duration;

use hopper_types::{Clock, SystemClock};

/// Default number of pooled connections per node.
pub const DEFAULT_POOL_SIZE: u32 = 10;
/// Default limit on one statement's run time.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval of the fallback wake-up: the longest a lost notification can delay a job.
pub const DEFAULT_FALLBACK_POLL: Duration = Duration::from_secs(1);

/// Settings of a [`crate::PgStore`].
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database?sslmode=...`.
    pub url: String,
    /// Connections in this node's pool (one more is held for notifications).
    pub pool_size: u32,
    /// PostgreSQL's `statement_timeout` for every pooled connection.
    pub statement_timeout: Duration,
    /// Every long-polling worker re-checks its queues this often even without a notification.
    pub fallback_poll: Duration,
    /// The clock every change is stamped with. Nodes sharing a database must have clocks in
    /// step (NTP), as with any system that hands out time-limited leases.
    pub clock: Arc<dyn Clock>,
}

impl PgConfig {
    /// Defaults and the system clock.
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            pool_size: DEFAULT_POOL_SIZE,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            fallback_poll: DEFAULT_FALLBACK_POLL,
            clock: Arc::new(SystemClock),
        }
    }
}
