//! The worker surviving what goes wrong in production: a sidecar that dies mid-delivery, and a
//! Redis that loses its data. Real Redis, real HTTP receivers on 127.0.0.1, own key prefixes.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastapihooks_core::backend::RedisBackend;
use fastapihooks_core::{DeliveryQuery, Event, Queue, Store, Subscription, Worker, WorkerConfig};
use fastapihooks_testkit::{
    FaultyStore, Receiver, Reply, TestKeys, duplicates, engine, eventually, eventually_async,
    quick_retries, redis_url, store_with_subscribers,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect()
}

fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        lease_batch: 16,
        drain_deadline: Duration::from_secs(10),
        ..WorkerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_leases_are_taken_over_after_the_visibility_timeout() {
    let Some(url) = redis_url("a_crashed_workers_leases_are_taken_over").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "crash");
    keys.config.visibility_timeout = Duration::from_millis(2500); // HTTP timeout 1 s + margin
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(200))).await;
    // The store stands for a database: it outlives the crashed sidecar.
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let publisher = keys.backend().await;
    publisher.publish_many(&events(200)).await.unwrap();
    let retry = quick_retries(5, Duration::from_millis(50));

    // The doomed sidecar runs on a runtime of its own, so that dropping the runtime kills it
    // mid-delivery like a SIGKILL: its tasks stop where they are, its leases stay taken.
    let crashed_concurrency = 8;
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let doomed_config = keys.config.clone().consumer("doomed");
    let doomed_engine = engine(store.clone(), retry.clone());
    doomed.spawn(async move {
        let queue = Arc::new(RedisBackend::connect(doomed_config).await.unwrap());
        let worker = Worker::new(queue, doomed_engine, config(crashed_concurrency)).unwrap();
        worker.run(CancellationToken::new()).await
    });
    assert!(eventually(WAIT, || receiver.distinct() >= 40).await);
    doomed.shutdown_background();
    let crashed_at = Instant::now();
    let received_at_crash = receiver.distinct();

    let survivor = Worker::new(keys.backend().await, engine(store, retry), config(8)).unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(survivor.run(stop.clone()));
    // Everything arrived, and the queue is empty: the crashed worker's leases were taken over
    // and settled too (their deliveries may repeat; nothing else may).
    let all = eventually_async(WAIT, || async {
        receiver.distinct() == 200 && publisher.depth().await.unwrap() == 0
    })
    .await;
    let recovered_in = crashed_at.elapsed();
    stop.cancel();
    let report = running.await.unwrap();

    let counts = receiver.counts();
    let (dup_ids, extra) = duplicates(&counts);
    eprintln!(
        "crash: {received_at_crash} received before the crash, 200 events, lost {}, duplicates {dup_ids} ({extra} extra requests), all delivered {recovered_in:?} after the crash; survivor {report:?}",
        200 - counts.len()
    );
    assert!(all, "lost {} deliveries", 200 - counts.len());
    assert!(
        extra <= crashed_concurrency,
        "only deliveries in flight at the crash may repeat: {extra} extra"
    );
    // A delivery in flight at the crash is sent again only once its lease has expired.
    let gaps: Vec<Duration> = receiver
        .arrivals()
        .values()
        .filter(|at| at.len() > 1)
        .map(|at| at[1] - at[0])
        .collect();
    eprintln!("re-sent after {:?}", gaps.iter().min());
    for (id, at) in receiver.arrivals().iter().filter(|(_, at)| at.len() > 1) {
        let gap = at[1] - at[0];
        assert!(
            gap >= Duration::from_millis(1500),
            "{id} was re-sent {gap:?} after its first attempt, before its 2.5 s lease expired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_carries_on_after_redis_loses_the_queue_keys() {
    let Some(url) = redis_url("a_worker_carries_on_after_redis_loses_the_queue_keys").await else {
        return;
    };
    let keys = TestKeys::new(&url, "data-loss");
    let receiver = Receiver::ok().await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    let worker = Worker::new(
        queue.clone(),
        engine(store, quick_retries(3, Duration::from_millis(50))),
        config(8),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));

    queue.publish_many(&events(20)).await.unwrap();
    assert!(eventually(WAIT, || receiver.distinct() == 20).await);
    keys.delete_keys().await; // what a Redis restart without persistence looks like
    queue.publish_many(&events(20)).await.unwrap();
    let carried_on = eventually(WAIT, || receiver.distinct() == 40).await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(carried_on, "got {} of 40", receiver.distinct());
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
    assert_eq!(report.delivered, 40);
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_delays_fan_out_but_loses_no_event() {
    let Some(url) = redis_url("a_store_outage_delays_fan_out_but_loses_no_event").await else {
        return;
    };
    let keys = TestKeys::new(&url, "store-outage");
    let receiver = Receiver::ok().await;
    let store = Arc::new(FaultyStore::new());
    store.set_down(true);
    store
        .inner()
        .add_subscription(Subscription::new("*", &receiver.url("/hook")).unwrap())
        .await
        .unwrap();
    let queue = keys.backend().await;
    queue.publish_many(&events(10)).await.unwrap();
    let worker = Worker::new(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        config(8),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));

    // Down for longer than the retry policy allows: fan-out keeps waiting (at the policy's
    // longest delay) instead of giving the events up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.distinct(),
        0,
        "nothing can be sent without the store"
    );
    assert_eq!(
        queue.depth().await.unwrap(),
        10,
        "every event is still queued"
    );
    store.set_down(false);

    let all = eventually(WAIT, || receiver.distinct() == 10).await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(all, "got {} of 10", receiver.distinct());
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
    assert_eq!(report.fanned_out, 10);
}

/// A task is never settled unless its records are written: an attempt the store failed to record
/// runs again (the receiver may see its delivery id twice, as at-least-once allows) and the
/// history ends up showing the delivery delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_the_store_failed_to_record_runs_again_and_is_recorded() {
    let Some(url) = redis_url("an_attempt_the_store_failed_to_record_runs_again").await else {
        return;
    };
    let keys = TestKeys::new(&url, "unrecorded-attempt");
    let receiver = Receiver::ok().await;
    let store = Arc::new(FaultyStore::new().with_failing_records(1));
    store
        .add_subscription(Subscription::new("*", &receiver.url("/hook")).unwrap())
        .await
        .unwrap();
    let queue = keys.backend().await;
    queue.publish_many(&events(1)).await.unwrap();
    let worker = Worker::new(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        config(4),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));

    let delivered = eventually_async(WAIT, async || {
        let done = store
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap();
        done.len() == 1 && done[0].status == fastapihooks_core::DeliveryStatus::Delivered
    })
    .await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(
        delivered,
        "the delivery never showed as delivered in the store"
    );
    let ids: std::collections::HashSet<String> = receiver.counts().into_keys().collect();
    assert_eq!(ids.len(), 1, "one delivery, under one id");
    assert_eq!(
        receiver.arrived(),
        2,
        "sent once unrecorded, once more recorded"
    );
    assert_eq!(report.delivered, 1);
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_slowed_past_its_lease_by_the_store_is_not_taken_over_by_another_sidecar() {
    let Some(url) = redis_url("a_task_slowed_past_its_lease_is_not_taken_over").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "slow-store");
    keys.config.visibility_timeout = Duration::from_millis(2500); // HTTP timeout 1 s + margin
    let receiver = Receiver::ok().await;
    // Each attempt is recorded 4 s after it was sent: past the 2.5 s lease.
    let store = Arc::new(FaultyStore::new().with_slow_records(Duration::from_secs(4)));
    store
        .add_subscription(Subscription::new("*", &receiver.url("/hook")).unwrap())
        .await
        .unwrap();
    let publisher = keys.backend().await;
    publisher.publish_many(&events(10)).await.unwrap();
    let retry = quick_retries(3, Duration::from_millis(50));
    let mut sidecars = Vec::new();
    for _ in 0..2 {
        let worker = Worker::new(
            keys.backend().await,
            engine(store.clone(), retry.clone()),
            config(8),
        )
        .unwrap();
        let stop = CancellationToken::new();
        sidecars.push((stop.clone(), tokio::spawn(worker.run(stop))));
    }
    let settled = eventually_async(WAIT, || async {
        receiver.distinct() == 10 && publisher.depth().await.unwrap() == 0
    })
    .await;
    for (stop, running) in sidecars {
        stop.cancel();
        let stopped = tokio::time::timeout(WAIT, running).await;
        assert!(
            stopped.is_ok(),
            "a sidecar did not stop within its drain deadline"
        );
    }
    assert!(settled, "got {} of 10", receiver.distinct());
    assert_eq!(
        duplicates(&receiver.counts()),
        (0, 0),
        "a running delivery was taken over and sent again"
    );
}
