//! Endpoint health: a subscription whose endpoint keeps failing is disabled with its reason,
//! its deliveries are kept as failed (never dropped), and enabling it then replaying brings
//! them to the receiver. Real receivers on 127.0.0.1, the in-process backend and the SQL outbox
//! drained by a `Worker`.
#![cfg(feature = "sql")]

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::engine::DeliveryEngine;
use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::{
    AttemptErrorKind, AttemptOutcome, Backend, BackgroundConfig, BackgroundTaskBackend,
    DeliveryQuery, DeliveryStatus, MemoryStore, Queue, Replay, RetryPolicy, Store, Subscription,
    SubscriptionId, Worker, WorkerConfig,
};
use fastapihooks_testkit::{
    Receiver, Reply, TempSqlite, events, eventually_async, outbox, quick_retries,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// Disables after 3 failed attempts over at least 150 ms: the production thresholds, scaled.
fn impatient() -> HealthPolicy {
    HealthPolicy::disable_after(Duration::from_millis(150), 3)
}

fn engine(store: Arc<dyn Store>, retry: RetryPolicy) -> DeliveryEngine {
    fastapihooks_testkit::engine(store, retry).with_health(impatient())
}

async fn subscribe(store: &dyn Store, receiver: &Receiver) -> SubscriptionId {
    let sub = Subscription::new("*", &receiver.url("/hook")).unwrap();
    let id = sub.id.clone();
    store.add_subscription(sub).await.unwrap();
    id
}

/// Waits (bounded) until exactly `n` deliveries are in `status`.
async fn until(store: &dyn Store, status: DeliveryStatus, n: usize) -> bool {
    eventually_async(WAIT, || async {
        count(store, DeliveryQuery::status(status)).await == n
    })
    .await
}

async fn count(store: &dyn Store, query: DeliveryQuery) -> usize {
    store
        .list_deliveries(&query.limit(10_000))
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_the_policy_is_disabled_with_its_reason() {
    let receiver = Receiver::replying(Reply::status(503)).await;
    let store = Arc::new(MemoryStore::new());
    let id = subscribe(store.as_ref(), &receiver).await;
    let retry = quick_retries(50, Duration::from_millis(60));
    let backend =
        BackgroundTaskBackend::start(engine(store.clone(), retry), BackgroundConfig::default())
            .unwrap();
    backend.publish(events(1).remove(0)).await.unwrap();

    let disabled = eventually_async(WAIT, || async {
        let sub = store.get_subscription(&id).await.unwrap().unwrap();
        !sub.enabled
    })
    .await;
    assert!(disabled, "the subscription was never disabled");
    let sub = store.get_subscription(&id).await.unwrap().unwrap();
    let reason = &sub.disabled.as_ref().expect("a reason").reason;
    assert!(reason.contains("failed attempts"), "{reason}");
    assert!(sub.health.failures >= 3, "{:?}", sub.health);

    // The delivery is not left pending with retries to go: it is kept as failed, not sent.
    let failed = until(store.as_ref(), DeliveryStatus::Failed, 1).await;
    assert!(failed, "the delivery did not end as failed");
    let delivery = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap()
        .remove(0);
    let attempts = store.list_attempts(&delivery.id).await.unwrap();
    let last = attempts.last().unwrap();
    assert!(
        matches!(
            last.outcome,
            AttemptOutcome::Error {
                kind: AttemptErrorKind::NotSent,
                ..
            }
        ),
        "{last:?}"
    );
    assert_eq!(
        receiver.arrived(),
        attempts.len() - 1,
        "nothing sent after disabling"
    );
    backend.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_ends_the_failure_streak() {
    // Fails twice, then answers: never long enough to disable.
    let receiver = Receiver::scripted(|_, nth| {
        if nth < 2 {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    })
    .await;
    let store = Arc::new(MemoryStore::new());
    let id = subscribe(store.as_ref(), &receiver).await;
    let backend = BackgroundTaskBackend::start(
        engine(store.clone(), quick_retries(5, Duration::from_millis(20))),
        BackgroundConfig::default(),
    )
    .unwrap();
    backend.publish(events(1).remove(0)).await.unwrap();
    let delivered = until(store.as_ref(), DeliveryStatus::Delivered, 1).await;
    assert!(delivered);
    let healthy = eventually_async(WAIT, || async {
        let sub = store.get_subscription(&id).await.unwrap().unwrap();
        sub.health.is_healthy()
    })
    .await;
    let sub = store.get_subscription(&id).await.unwrap().unwrap();
    assert!(healthy, "{:?}", sub.health);
    assert!(sub.enabled);
    backend.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_a_disabled_subscription_are_kept_and_arrive_once_enabled_and_replayed() {
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    let queue = outbox(&store);
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::scripted(move |_, _| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    })
    .await;
    let id = subscribe(store.as_ref(), &receiver).await;
    let worker = Worker::new(
        queue.clone(),
        engine(store.clone(), quick_retries(100, Duration::from_millis(50))),
        WorkerConfig::default(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    for event in events(5) {
        queue.publish(event).await.unwrap();
    }

    // Disabled by its health; every delivery ends failed, none pending, none dropped.
    let all_failed = until(store.as_ref(), DeliveryStatus::Failed, 5).await;
    let sub = store.get_subscription(&id).await.unwrap().unwrap();
    assert!(all_failed && !sub.enabled, "{:?}", sub.disabled);
    let since = sub.health.failing_since.expect("the streak's start");

    let before = receiver.counts();
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    store.set_enabled(&id, true).await.unwrap();
    let query = DeliveryQuery::default()
        .subscription(id.clone())
        .changed_since(since);
    let summary = Replay::new(store.clone(), queue.clone())
        .matching(&query, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.queued, 5, "{summary:?}");
    let delivered = until(store.as_ref(), DeliveryStatus::Delivered, 5).await;
    assert!(delivered);
    let after = receiver.counts();
    assert_eq!(after.len(), 5);
    for (id, n) in &after {
        assert_eq!(
            n - before.get(id).copied().unwrap_or(0),
            1,
            "{id} arrived once once the subscription was back"
        );
    }
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_a_removed_subscription_are_kept_as_failed_not_dropped() {
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    let queue = outbox(&store);
    let receiver = Receiver::replying(Reply::status(503)).await;
    let id = subscribe(store.as_ref(), &receiver).await;
    let worker = Worker::new(
        queue.clone(),
        fastapihooks_testkit::engine(
            store.clone(),
            quick_retries(100, Duration::from_millis(100)),
        ),
        WorkerConfig::default(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    for event in events(3) {
        queue.publish(event).await.unwrap();
    }
    // Each delivery failed once and waits for its retry; then the subscription goes.
    assert!(receiver.wait_for(3).await.len() >= 3);
    store.remove_subscription(&id).await.unwrap();

    let all_failed = until(store.as_ref(), DeliveryStatus::Failed, 3).await;
    stop.cancel();
    running.await.unwrap();
    assert!(
        all_failed,
        "the deliveries were left pending (dropped with their tasks)"
    );
    let delivery = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap()
        .remove(0);
    let attempts = store.list_attempts(&delivery.id).await.unwrap();
    let AttemptOutcome::Error { kind, message } = &attempts.last().unwrap().outcome else {
        panic!("{attempts:?}");
    };
    assert_eq!(*kind, AttemptErrorKind::NotSent);
    assert!(message.contains("removed"), "{message}");
    assert_eq!(queue.depth().await.unwrap(), 0, "nothing left to retry");
}
