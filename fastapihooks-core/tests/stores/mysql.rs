//! The contract and the SQL behaviours on MariaDB/MySQL, each test in its own database.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use fastapihooks_core::{Error, SqlStore, SqlStoreOptions, Store};
use futures_util::FutureExt;
use sea_orm::ConnectionTrait;

use crate::services;

const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

async fn with_sql_store(behaviour: impl AsyncFnOnce(&SqlStore)) {
    let url = services::url("FASTAPIHOOKS_TEST_MYSQL", DEFAULT_URL);
    let Some(admin) = services::admin("MariaDB", &url).await else {
        return;
    };
    let database = services::unique_name();
    admin
        .execute_unprepared(&format!("CREATE DATABASE `{database}`"))
        .await
        .unwrap();
    let mut own = url::Url::parse(&url).unwrap();
    own.set_path(&database);
    let store = SqlStoreOptions::new(own.as_str())
        .max_connections(4)
        .connect()
        .await
        .unwrap();
    let outcome = AssertUnwindSafe(behaviour(&store)).catch_unwind().await;
    store.connection().clone().close().await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE `{database}`"))
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
    with_sql_store(async |store: &SqlStore| behaviour(store).await).await;
}

store_contract!(with_store);
sql_store_behaviours!(with_sql_store);

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
