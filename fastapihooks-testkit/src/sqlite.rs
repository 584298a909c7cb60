//! A SQLite store of the test's own, and the outbox in it with test timings.

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::SqlStore;
use fastapihooks_core::backend::{SqlBackend, SqlOutboxConfig};

/// A migrated SQLite store in a file of a temporary directory, deleted with the guard: keep
/// the guard alive as long as the store.
#[derive(Debug)]
pub struct TempSqlite {
    dir: tempfile::TempDir,
}

impl TempSqlite {
    /// A new directory and the store in it (`app.db`).
    pub async fn store() -> (Self, SqlStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let guard = Self { dir };
        let store = SqlStore::connect(&guard.url()).await.expect("open SQLite");
        (guard, store)
    }

    /// The store's URL (e.g. for `fastapihooks … --database`).
    pub fn url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join("app.db").display()
        )
    }
}

/// The outbox in `store`'s database with test timings: 5 s leases (the test engines' HTTP
/// timeout is 1 s), an empty outbox looked at every 20 ms, lease calls of at most 200 ms.
pub fn outbox(store: &SqlStore) -> Arc<SqlBackend> {
    let config = SqlOutboxConfig {
        visibility_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        block: Duration::from_millis(200),
    };
    Arc::new(SqlBackend::with_config(store.connection().clone(), config).expect("valid config"))
}
