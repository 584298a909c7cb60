//! The contract and the SQL behaviours on PostgreSQL, each test in its own schema.

use std::time::Duration;

use fastapihooks_core::inbox::Inbox;
use fastapihooks_core::{Error, SqlStore, SqlStoreOptions, Store};
use fastapihooks_testkit::TempSchema;

/// A store in a schema of the test's own, dropped with the guard (on a panic too).
async fn with_sql_store(behaviour: impl AsyncFnOnce(&SqlStore)) {
    let Some(schema) = TempSchema::create("store on PostgreSQL").await else {
        return;
    };
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
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

#[tokio::test]
async fn a_server_that_never_answers_gives_a_connect_error_not_a_hang() {
    // Accepts TCP connections (the kernel completes them) but never speaks PostgreSQL.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://postgres@{}/test", silent.local_addr().unwrap());
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

#[tokio::test]
async fn a_closed_port_gives_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let result = SqlStoreOptions::new(format!("postgres://postgres@127.0.0.1:{port}/test"))
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await;
    assert!(
        matches!(
            result,
            Err(Error::Storage {
                what: "store.connect",
                ..
            })
        ),
        "{result:?}"
    );
}
