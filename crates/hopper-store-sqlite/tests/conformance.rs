//! The shared conformance suite (`hopper-store-tests`) against the embedded SQLite backend:
//! every test opens a store in its own temporary directory, with full durability.

use std::sync::Arc;

use hopper_store_sqlite::{Durability, SqliteConfig, SqliteStore};
use hopper_store_tests::{Clock, Harness, Store, StoreError, TestDatabase, async_trait};
use tempfile::TempDir;

/// A fresh temporary data directory per test.
struct SqliteHarness;

/// One data directory; removed when the test ends.
struct SqliteDatabase(TempDir);

#[async_trait]
impl Harness for SqliteHarness {
    async fn new_database(&self) -> Box<dyn TestDatabase> {
        Box::new(SqliteDatabase(
            tempfile::tempdir().expect("create a temporary data directory"),
        ))
    }
}

#[async_trait]
impl TestDatabase for SqliteDatabase {
    async fn open(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, StoreError> {
        let store = SqliteStore::open(SqliteConfig {
            data_dir: self.0.path().to_path_buf(),
            durability: Durability::Full,
            clock,
        })?;
        Ok(Arc::new(store))
    }
}

hopper_store_tests::conformance_suite!(SqliteHarness);
