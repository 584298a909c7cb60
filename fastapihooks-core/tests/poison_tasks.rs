//! A task whose leases keep expiring without a settle — it crashes or stalls every worker that
//! takes it — is dead-lettered past `WorkerConfig::max_leases`, with the reason, instead of
//! being leased for ever. The SQL outbox and Redis; earlier crashed leases are made the way a
//! crashed sidecar leaves them.
#![cfg(all(feature = "redis", feature = "sql"))]

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::{
    Backend, Event, Queue, RetryPolicy, SqlStore, Store, Subscription, Worker, WorkerConfig,
};
use fastapihooks_testkit::{Receiver, TempSqlite, eventually_async, outbox};
use sea_orm::ConnectionTrait;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const MAX_LEASES: u32 = 3;

/// Runs a worker allowing `MAX_LEASES` over `queue` until the queue holds one dead letter and
/// nothing else; says whether it did, and that nothing was sent.
async fn the_worker_dead_letters_it<Q: Queue>(store: Arc<SqlStore>, queue: Arc<Q>) {
    let receiver = Receiver::ok().await;
    store
        .add_subscription(Subscription::new("*", &receiver.url("/hook")).unwrap())
        .await
        .unwrap();
    let worker = Worker::new(
        queue.clone(),
        fastapihooks_testkit::engine(store, RetryPolicy::none()),
        WorkerConfig {
            max_leases: MAX_LEASES,
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let dead = eventually_async(WAIT, || async {
        queue.dead_letters().await.unwrap() == 1 && queue.depth().await.unwrap() == 0
    })
    .await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(dead, "the poison task was not dead-lettered: {report:?}");
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(receiver.arrived(), 0, "the poison task was run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_leased_too_often_in_the_outbox_is_dead_lettered() {
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    let queue = outbox(&store);
    queue
        .publish(Event::new("order.created", &1).unwrap())
        .await
        .unwrap();
    // What MAX_LEASES crashed sidecars leave: the count up, the last lease expired.
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE fastapihooks_outbox SET leases = {MAX_LEASES}, lease = 'crashed'"
        ))
        .await
        .unwrap();
    the_worker_dead_letters_it(store, queue.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_leased_too_often_in_redis_is_dead_lettered() {
    let Some(url) = fastapihooks_testkit::redis_url("poison task on Redis").await else {
        return;
    };
    let mut keys = fastapihooks_testkit::TestKeys::new(&url, "poison");
    keys.config.visibility_timeout = Duration::from_millis(2500); // HTTP timeout 1 s + margin
    let queue = keys.backend().await;
    queue
        .publish(Event::new("order.created", &1).unwrap())
        .await
        .unwrap();
    // What crashed sidecars leave: read once, then claimed by each next one, never settled.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let tasks = keys.config.tasks_key();
    let group = keys.config.group.clone();
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&tasks)
        .arg(&group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(&group)
        .arg("crashed-0")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&tasks)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let id = read.keys[0].ids[0].id.clone();
    for n in 1..MAX_LEASES {
        redis::cmd("XCLAIM")
            .arg(&tasks)
            .arg(&group)
            .arg(format!("crashed-{n}"))
            .arg(0)
            .arg(&id)
            .query_async::<redis::Value>(&mut conn)
            .await
            .unwrap();
    }
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    // The worker takes it over once the last crashed lease expires: its lease number MAX + 1.
    the_worker_dead_letters_it(store, queue).await;
}
