//! The contract and the SQL behaviours on SQLite, each test with its own temporary file.

use std::panic::AssertUnwindSafe;

use fastapihooks_core::inbox::Inbox;
use fastapihooks_core::{SqlStore, SqlStoreOptions, Store};
use futures_util::FutureExt;
use sea_orm::{ConnectionTrait, Statement};

use fastapihooks_testkit::fixtures::subscription;

fn url_of(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("fastapihooks.db").display()
    )
}

async fn with_sql_store(behaviour: impl AsyncFnOnce(&SqlStore)) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&url_of(&dir)).await.unwrap();
    let outcome = AssertUnwindSafe(behaviour(&store)).catch_unwind().await;
    store.connection().clone().close().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
    with_sql_store(async |store: &SqlStore| behaviour(store).await).await;
}

fastapihooks_testkit::store_contract!(with_store);

async fn with_inbox(behaviour: impl AsyncFnOnce(&dyn Inbox)) {
    with_sql_store(async |store: &SqlStore| behaviour(store).await).await;
}

fastapihooks_testkit::inbox_contract!(with_inbox);
sql_store_behaviours!(with_sql_store);

#[tokio::test]
async fn the_database_is_in_wal_mode() {
    with_sql_store(async |store: &SqlStore| {
        let db = store.connection();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA journal_mode",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "wal");
    })
    .await;
}

#[tokio::test]
async fn subscriptions_survive_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let sub = subscription("order.*");
    let first = SqlStore::connect(&url_of(&dir)).await.unwrap();
    first.add_subscription(sub.clone()).await.unwrap();
    first.connection().clone().close().await.unwrap();
    let second = SqlStore::connect(&url_of(&dir)).await.unwrap();
    assert_eq!(second.get_subscription(&sub.id).await.unwrap(), Some(sub));
}

#[tokio::test]
async fn a_store_made_without_migrations_has_them_all_pending() {
    use sea_orm_migration::MigratorTrait;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStoreOptions::new(url_of(&dir))
        .run_migrations(false)
        .connect()
        .await
        .unwrap();
    let pending = store.pending_migrations().await.unwrap();
    let all = fastapihooks_core::store::sql::Migrator::migrations().len();
    assert_eq!(pending.len(), all, "{pending:?}");
    store.migrate().await.unwrap();
    assert!(store.pending_migrations().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_in_memory_database_keeps_its_tables_across_the_pool() {
    let store = SqlStoreOptions::new("sqlite::memory:")
        .max_connections(8)
        .connect()
        .await
        .unwrap();
    let sub = subscription("a");
    // Several concurrent reads would each open a connection of their own if the pool allowed:
    // a fresh in-memory database without the tables.
    store.add_subscription(sub.clone()).await.unwrap();
    let reads = (0..4).map(|_| store.get_subscription(&sub.id));
    for read in futures_util::future::join_all(reads).await {
        assert_eq!(read.unwrap().as_ref(), Some(&sub));
    }
}
