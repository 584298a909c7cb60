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
parent_behaviours!(with_sql_store);

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

/// A one-connection store in `schema` whose connections carry `app` as their application name
/// (so the test can find them on the server), checking connections idle for `ping_after`.
async fn store_named(schema: &TempSchema, app: &str, ping_after: Duration) -> SqlStore {
    let separator = if schema.url().contains('?') { '&' } else { '?' };
    SqlStoreOptions::new(format!("{}{separator}application_name={app}", schema.url()))
        .postgres_schema(schema.name())
        .max_connections(1)
        .ping_idle_connections_after(ping_after)
        .connect()
        .await
        .unwrap()
}

/// Closes every connection named `app` from the server's side (as a restart, a proxy or a
/// firewall would); returns how many.
async fn close_connections_of(url: &str, app: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let admin = sea_orm::Database::connect(url).await.unwrap();
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1",
            [app.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    admin.close().await.unwrap();
    row.try_get("", "n").unwrap()
}

/// A one-connection store, checking connections idle for `ping_after`, whose connection was
/// used then closed by the server 200 ms ago. `None` when PostgreSQL does not answer.
async fn store_whose_idle_connection_was_closed(
    ping_after: Duration,
) -> Option<(TempSchema, SqlStore)> {
    let schema = TempSchema::create("a connection closed while idle").await?;
    let app = fastapihooks_testkit::unique_name();
    let store = store_named(&schema, &app, ping_after).await;
    store.list_subscriptions(&Default::default()).await.unwrap();
    assert_eq!(close_connections_of(schema.url(), &app).await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Some((schema, store))
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced_before_use() {
    let Some((schema, store)) =
        store_whose_idle_connection_was_closed(Duration::from_millis(50)).await
    else {
        return;
    };

    let listed = store.list_subscriptions(&Default::default()).await;
    assert!(
        listed.is_ok(),
        "checked, found closed, replaced: {listed:?}"
    );
    store.connection().clone().close().await.unwrap();
    schema.remove().await;
}

#[tokio::test]
async fn a_connection_used_recently_is_not_checked_so_its_closing_fails_one_statement_with_a_storage_error()
 {
    let Some((schema, store)) =
        store_whose_idle_connection_was_closed(Duration::from_secs(3600)).await
    else {
        return;
    };

    let first = store.list_subscriptions(&Default::default()).await;
    assert!(
        matches!(first, Err(Error::Storage { .. })),
        "not checked: the closed connection fails its statement: {first:?}"
    );
    let next = store.list_subscriptions(&Default::default()).await;
    assert!(
        next.is_ok(),
        "the broken connection was not pooled again: {next:?}"
    );
    store.connection().clone().close().await.unwrap();
    schema.remove().await;
}

/// Whether the store's connection is encrypted, as the server sees it.
async fn reached_over_tls(store: &SqlStore) -> bool {
    use sea_orm::{ConnectionTrait, Statement};
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "ssl").unwrap()
}

/// Whether the test server offers TLS at all (Debian's PostgreSQL does, with its own
/// certificate).
async fn server_offers_tls(url: &str) -> bool {
    use sea_orm::{ConnectionTrait, Statement};
    let admin = sea_orm::Database::connect(url).await.unwrap();
    let row = admin
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SHOW ssl",
        ))
        .await
        .unwrap()
        .unwrap();
    admin.close().await.unwrap();
    row.try_get::<String>("", "ssl").unwrap() == "on"
}

#[tokio::test]
async fn a_server_on_this_machine_is_reached_without_tls_when_the_url_leaves_it_unsaid() {
    let Some(schema) = TempSchema::create("no TLS on loopback").await else {
        return;
    };
    assert!(
        schema.url().contains("@127.0.0.1") || schema.url().contains("@localhost"),
        "the test server is on this machine: {}",
        schema.url()
    );
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .max_connections(1)
        .connect()
        .await
        .unwrap();

    assert!(!reached_over_tls(&store).await);
    store.connection().clone().close().await.unwrap();
    schema.remove().await;
}

#[tokio::test]
async fn an_sslmode_in_the_url_is_kept() {
    let Some(schema) = TempSchema::create("sslmode kept").await else {
        return;
    };
    if !server_offers_tls(schema.url()).await {
        eprintln!("skipped: the test PostgreSQL does not offer TLS (ssl = off)");
        return;
    }
    let separator = if schema.url().contains('?') { '&' } else { '?' };
    let store = SqlStoreOptions::new(format!("{}{separator}sslmode=require", schema.url()))
        .postgres_schema(schema.name())
        .max_connections(1)
        .connect()
        .await
        .unwrap();

    assert!(reached_over_tls(&store).await);
    store.connection().clone().close().await.unwrap();
    schema.remove().await;
}

/// On PostgreSQL a delivery written with its first attempt keeps the attempt in its own row:
/// no row of the attempts' table for it (a heap tuple and two index entries fewer per
/// delivery); a first attempt of a delivery recorded before, and every later attempt, is a row
/// there. Each reads back as written.
#[tokio::test]
async fn a_delivery_written_with_its_first_attempt_keeps_it_in_its_own_row() {
    use fastapihooks_core::{AttemptOutcome, DeliveryStatus, SubscriptionId};
    use fastapihooks_testkit::fixtures::{attempt, delivery, event};

    with_sql_store(async |store: &SqlStore| {
        let e = event("order.created", None);
        let attempted = |d: &fastapihooks_core::Delivery, number, status| {
            let mut d = d.clone();
            (d.attempts, d.status, d.next_attempt_at) = (number, status, None);
            let a = attempt(
                &d,
                number,
                AttemptOutcome::Response {
                    status: 200,
                    body_excerpt: "ok".into(),
                },
            );
            (d, a)
        };
        let new = delivery(&e, &SubscriptionId::new());
        let first = attempted(&new, 1, DeliveryStatus::Delivered);
        store
            .record_first_attempts(std::slice::from_ref(&first))
            .await
            .unwrap();
        assert_eq!(crate::sql::count(store, "fastapihooks_attempts").await, 0);
        assert_eq!(store.list_attempts(&new.id).await.unwrap(), [first.1]);

        let known = delivery(&e, &SubscriptionId::new());
        store
            .record_deliveries(std::slice::from_ref(&known))
            .await
            .unwrap();
        let late = attempted(&known, 1, DeliveryStatus::Delivered);
        store
            .record_first_attempts(std::slice::from_ref(&late))
            .await
            .unwrap();
        assert_eq!(crate::sql::count(store, "fastapihooks_attempts").await, 1);
        assert_eq!(store.list_attempts(&known.id).await.unwrap(), [late.1]);
    })
    .await;
}
