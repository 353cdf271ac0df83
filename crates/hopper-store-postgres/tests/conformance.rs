//! The shared conformance suite (`hopper-store-tests`) against the PostgreSQL backend: every
//! test gets a fresh database on the server the test command started.

use std::sync::Arc;

use hopper_store_postgres::{PgConfig, PgStore, testing};
use hopper_store_tests::{Clock, Harness, Store, StoreError, TestDatabase, async_trait};

/// A fresh database per test.
struct PgHarness;

/// One database (left to the throwaway cluster's deletion at the end of the run).
struct PgDatabase(String);

#[async_trait]
impl Harness for PgHarness {
    async fn new_database(&self) -> Box<dyn TestDatabase> {
        Box::new(PgDatabase(testing::fresh_database_url().await))
    }
}

#[async_trait]
impl TestDatabase for PgDatabase {
    async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, StoreError> {
        let mut config = PgConfig::new(&self.0);
        config.pool_size = 4;
        config.clock = clock;
        Ok(Arc::new(PgStore::connect(config).await?))
    }
}

hopper_store_tests::conformance_suite!(PgHarness);
