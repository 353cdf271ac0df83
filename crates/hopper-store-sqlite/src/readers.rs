//! A small pool of read-only connections. In WAL mode readers see the last commit and never
//! wait for the writer, so reads (get, list, events) stay fast while the writer is busy.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hopper_store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::rows::sql_error;

/// Idle connections beyond this are closed rather than kept.
const MAX_IDLE: usize = 8;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf) -> Arc<Readers> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(sql_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_error)?;
        // A bounded page cache per connection keeps memory flat as the database grows.
        conn.execute_batch("PRAGMA cache_size = -8000; PRAGMA query_only = 1;")
            .map_err(sql_error)?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection, off the async runtime.
    pub(crate) async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let popped = this.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match popped {
                Some(c) => c,
                None => this.open()?,
            };
            let result = f(&conn);
            let mut idle = this.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}
