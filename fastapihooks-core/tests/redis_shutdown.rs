//! Stopping a sidecar: it stops leasing at once, finishes what is in flight within the drain
//! deadline, and what it abandons comes back to another worker. Real Redis, real receivers.
#![cfg(feature = "redis")]

use std::time::Duration;

use fastapihooks_core::backend::{Leased, Receipt, Replacement, Task};
use fastapihooks_core::{
    Backend, DeliveryQuery, DeliveryStatus, Event, Queue, Store, Worker, WorkerConfig,
};
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
        ..WorkerConfig::default()
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
        ..WorkerConfig::default()
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

/// A queue whose lease calls hang (a queue server that stopped answering mid-call).
struct HangingLease<Q> {
    inner: std::sync::Arc<Q>,
    leasing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl<Q: Queue> Backend for HangingLease<Q> {
    async fn publish(&self, event: Event) -> fastapihooks_core::Result<()> {
        self.inner.publish(event).await
    }
}

#[async_trait::async_trait]
impl<Q: Queue> Queue for HangingLease<Q> {
    async fn lease(&self, _max: usize) -> fastapihooks_core::Result<Vec<Leased>> {
        self.leasing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(Vec::new())
    }
    async fn replace(&self, r: &Receipt, next: &[Task]) -> fastapihooks_core::Result<bool> {
        self.inner.replace(r, next).await
    }
    async fn replace_each(
        &self,
        r: &Receipt,
        next: &[Replacement],
    ) -> fastapihooks_core::Result<bool> {
        self.inner.replace_each(r, next).await
    }
    async fn retry_in(
        &self,
        r: &Receipt,
        task: &Task,
        delay: Duration,
    ) -> fastapihooks_core::Result<bool> {
        self.inner.retry_in(r, task, delay).await
    }
    async fn dead_letter(
        &self,
        r: &Receipt,
        task: &Task,
        reason: &str,
    ) -> fastapihooks_core::Result<bool> {
        self.inner.dead_letter(r, task, reason).await
    }
    async fn extend(&self, r: &Receipt) -> fastapihooks_core::Result<bool> {
        self.inner.extend(r).await
    }
    fn visibility_timeout(&self) -> Duration {
        self.inner.visibility_timeout()
    }
    async fn depth(&self) -> fastapihooks_core::Result<u64> {
        self.inner.depth().await
    }
    async fn dead_letters(&self) -> fastapihooks_core::Result<u64> {
        self.inner.dead_letters().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_its_deadline_when_a_lease_call_hangs() {
    let Some(url) = redis_url("shutdown_keeps_its_deadline_when_a_lease_call_hangs").await else {
        return;
    };
    let keys = TestKeys::new(&url, "hanging-lease");
    let queue = std::sync::Arc::new(HangingLease {
        inner: keys.backend().await,
        leasing: std::sync::atomic::AtomicBool::new(false),
    });
    let store = store_with_subscribers(&[]).await;
    let config = WorkerConfig {
        drain_deadline: Duration::from_millis(300),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(
        queue.clone(),
        engine(store, quick_retries(1, Duration::ZERO)),
        config,
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    assert!(
        eventually(WAIT, || queue
            .leasing
            .load(std::sync::atomic::Ordering::SeqCst))
        .await
    );

    stop.cancel();
    // Bounded far below the hanging call's 600 s: run returns once the drain deadline passes.
    let returned = tokio::time::timeout(WAIT, running).await;
    assert!(returned.is_ok(), "shutdown waited for the lease call");
}
