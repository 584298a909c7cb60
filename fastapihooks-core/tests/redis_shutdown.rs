//! Stopping a sidecar: it stops leasing at once, finishes what is in flight within the drain
//! deadline, and what it abandons comes back to another worker. Real Redis, real receivers.
#![cfg(feature = "redis")]

use std::time::Duration;

use fastapihooks_core::{DeliveryQuery, DeliveryStatus, Event, Store, Worker, WorkerConfig};
use fastapihooks_testkit::{
    Receiver, Reply, TestKeys, engine, eventually, quick_retries, redis_url, store_with_subscribers,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_leasing_and_finishes_what_is_in_flight() {
    let Some(url) = redis_url("shutdown_stops_leasing_and_finishes_what_is_in_flight").await else {
        return;
    };
    let keys = TestKeys::new(&url, "drain");
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(300))).await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    queue.publish_many(&events(40)).await.unwrap();
    let config = WorkerConfig {
        concurrency: 4,
        lease_batch: 4,
        drain_deadline: Duration::from_secs(10),
    };
    let worker = Worker::new(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        config,
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    assert!(eventually(WAIT, || receiver.distinct() >= 4).await);

    stop.cancel();
    let report = running.await.unwrap();
    let received = receiver.distinct();
    assert_eq!(report.abandoned, 0);
    assert!(
        received < 80,
        "it stopped leasing: {received} of 40 received"
    );
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered).limit(100))
        .await
        .unwrap();
    assert_eq!(
        delivered.len(),
        received,
        "every request that reached the receiver finished and was recorded"
    );
    assert_eq!(report.delivered as usize, received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_abandoned_at_the_drain_deadline_is_delivered_by_the_next_worker() {
    let Some(url) = redis_url("work_abandoned_at_the_drain_deadline").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "abandon");
    keys.config.visibility_timeout = Duration::from_millis(2500);
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(800))).await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    queue.publish_many(&events(4)).await.unwrap();
    let retry = quick_retries(3, Duration::from_millis(50));
    let config = WorkerConfig {
        concurrency: 4,
        lease_batch: 4,
        drain_deadline: Duration::from_millis(100),
    };
    let first = Worker::new(
        queue.clone(),
        engine(store.clone(), retry.clone()),
        config.clone(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(first.run(stop.clone()));
    assert!(eventually(WAIT, || receiver.distinct() >= 1).await);
    stop.cancel();
    let report = running.await.unwrap();
    assert!(report.abandoned >= 1, "{report:?}");

    let second = Worker::new(keys.backend().await, engine(store.clone(), retry), config).unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(second.run(stop.clone()));
    let all = eventually(WAIT, || receiver.distinct() == 4).await;
    let settled = eventually(WAIT, || {
        futures_util::FutureExt::now_or_never(
            store.list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered)),
        )
        .and_then(Result::ok)
        .is_some_and(|d| d.len() == 4)
    })
    .await;
    stop.cancel();
    running.await.unwrap();
    assert!(all && settled, "got {} of 4", receiver.distinct());
}
