//! A big event to many subscriptions — 256 KiB to 500 — through every durable queue: the
//! fan-out's delivery tasks go in statements sized by bytes (MariaDB refuses one over its
//! 16 MiB `max_allowed_packet`, every time: the event used to wedge for ever), and each
//! delivery arrives. Real databases, real Redis, a real receiver on 127.0.0.1.
#![cfg(all(feature = "redis", feature = "sql"))]

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::{
    Event, Queue, RetryPolicy, SqlStore, SqlStoreOptions, Store, Subscription, Worker, WorkerConfig,
};
use fastapihooks_testkit::{Receiver, TempSqlite, eventually_async, outbox};
use tokio_util::sync::CancellationToken;

const SUBSCRIPTIONS: usize = 500;
const PAYLOAD_BYTES: usize = 256 * 1024 - 64;
const WAIT: Duration = Duration::from_secs(120);

async fn every_subscription_gets_the_big_event<Q: Queue>(store: Arc<SqlStore>, queue: Arc<Q>) {
    let receiver = Receiver::ok().await;
    for _ in 0..SUBSCRIPTIONS {
        let sub = Subscription::new("*", &receiver.url("/hook")).unwrap();
        store.add_subscription(sub).await.unwrap();
    }
    let text = "x".repeat(PAYLOAD_BYTES);
    let event = Event::new("order.created", &serde_json::json!({ "blob": text })).unwrap();
    let worker = Worker::new(
        queue.clone(),
        fastapihooks_testkit::engine(store.clone(), RetryPolicy::none()),
        WorkerConfig {
            concurrency: 32,
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    queue.publish(event).await.unwrap();

    let all = eventually_async(WAIT, || async {
        receiver.distinct() == SUBSCRIPTIONS && queue.depth().await.unwrap() == 0
    })
    .await;
    stop.cancel();
    running.await.unwrap();
    assert!(
        all,
        "{} of {SUBSCRIPTIONS} received; queue depth {}",
        receiver.distinct(),
        queue.depth().await.unwrap()
    );
    assert_eq!(receiver.arrived(), SUBSCRIPTIONS, "each once");
    assert_eq!(queue.dead_letters().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_event_reaches_500_subscriptions_through_the_sqlite_outbox() {
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    let queue = outbox(&store);
    every_subscription_gets_the_big_event(store, queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_event_reaches_500_subscriptions_through_the_postgres_outbox() {
    let Some(schema) = fastapihooks_testkit::TempSchema::create("big fan-out on PostgreSQL").await
    else {
        return;
    };
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .max_connections(8)
        .connect()
        .await
        .unwrap();
    let connection = store.connection().clone();
    let queue = outbox(&store);
    every_subscription_gets_the_big_event(Arc::new(store), queue).await;
    connection.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_event_reaches_500_subscriptions_through_the_mariadb_outbox() {
    let Some(database) = fastapihooks_testkit::TempDatabase::mysql("big fan-out on MariaDB").await
    else {
        return;
    };
    let store = SqlStoreOptions::new(database.url())
        .max_connections(8)
        .connect()
        .await
        .unwrap();
    let connection = store.connection().clone();
    let queue = outbox(&store);
    every_subscription_gets_the_big_event(Arc::new(store), queue).await;
    connection.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_event_reaches_500_subscriptions_through_redis() {
    let Some(url) = fastapihooks_testkit::redis_url("big fan-out on Redis").await else {
        return;
    };
    let keys = fastapihooks_testkit::TestKeys::new(&url, "big-fan-out");
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    every_subscription_gets_the_big_event(store, keys.backend().await).await;
}
