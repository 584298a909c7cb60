//! The contract and the SQL behaviours on MariaDB/MySQL, each test in its own database.

use std::time::Duration;

use fastapihooks_core::inbox::Inbox;
use fastapihooks_core::{Error, SqlStore, SqlStoreOptions, Store};
use fastapihooks_testkit::TempDatabase;

/// A store in a database of the test's own, dropped with the guard (on a panic too).
async fn with_sql_store(behaviour: impl AsyncFnOnce(&SqlStore)) {
    let Some(database) = TempDatabase::mysql("store on MariaDB").await else {
        return;
    };
    let store = SqlStoreOptions::new(database.url())
        .max_connections(4)
        .connect()
        .await
        .unwrap();
    behaviour(&store).await;
    store.connection().clone().close().await.unwrap();
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
parent_behaviours!(with_sql_store);

#[tokio::test]
async fn a_server_that_never_answers_gives_a_connect_error_not_a_hang() {
    // Accepts TCP connections (the kernel completes them) but never sends MySQL's greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mysql://root@{}/test", silent.local_addr().unwrap());
    let connecting = SqlStoreOptions::new(url)
        .connect_timeout(Duration::from_millis(500))
        .connect();
    let result = tokio::time::timeout(Duration::from_secs(30), connecting)
        .await
        .expect("connect gave up within its timeout");
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Storage {
                what: "store.connect",
                ..
            }
        ),
        "{err:?}"
    );
}
