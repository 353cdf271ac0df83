//! Test support (feature `testing`): a fresh, empty database per test on the PostgreSQL server
//! the test command started.
//!
//! `./scripts/test.sh` starts a throwaway cluster and exports `HOPPER_TEST_DATABASE_URL` (a
//! superuser URL). Each call here creates a uniquely named database on it, so tests run in
//! parallel without seeing each other; the whole cluster is deleted when the run ends.

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// The variable naming the test server.
pub const TEST_DATABASE_URL_VAR: &str = "HOPPER_TEST_DATABASE_URL";

/// Creates an empty database and returns its URL.
///
/// # Panics
/// When the variable is unset or the server refuses: the test cannot run, and must not pass.
pub async fn fresh_database_url() -> String {
    let admin_url = std::env::var(TEST_DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{TEST_DATABASE_URL_VAR} is not set: run the tests with ./scripts/test.sh, which \
             starts a PostgreSQL server for them"
        )
    });
    let admin = PgConnectOptions::from_str(&admin_url)
        .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL_VAR} is not a PostgreSQL URL: {e}"));
    let name = format!("hopper_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
    // The name is ours (hex digits), never user text.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    admin.database(&name).to_url_lossy().to_string()
}
