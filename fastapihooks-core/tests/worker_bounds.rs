//! The worker's two bounds ([`WorkerConfig`]): `concurrency` requests to subscribers in flight,
//! held for the HTTP exchange only, and `tasks_in_flight` leased tasks running — attempting, or
//! waiting for the store to record what came of their attempt. Against the machine's real
//! Redis and a receiver on 127.0.0.1, with a store whose records are held until released.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::backend::RedisBackend;
use fastapihooks_core::{
    DeliveryQuery, DeliveryStatus, Event, Queue, Store, Subscription, Worker, WorkerConfig,
    WorkerReport, WorkerStatus,
};
use fastapihooks_testkit::{
    FaultyStore, Receiver, Reply, TestKeys, duplicates, engine, eventually, eventually_async,
    quick_retries, redis_url,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

/// A running worker: its stop, its run, and its status.
type Running = (CancellationToken, JoinHandle<WorkerReport>, WorkerStatus);

/// A worker on `queue` delivering through `store`, with `concurrency` requests and
/// `tasks_in_flight` tasks at most.
fn start(
    queue: Arc<RedisBackend>,
    store: Arc<FaultyStore>,
    concurrency: usize,
    tasks_in_flight: usize,
) -> Running {
    let config = WorkerConfig {
        concurrency,
        tasks_in_flight: Some(tasks_in_flight),
        lease_batch: 8,
        drain_deadline: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    let engine = engine(store, quick_retries(3, Duration::from_millis(50)));
    let worker = Worker::new(queue, engine, config).expect("worker");
    let status = worker.status();
    let stop = CancellationToken::new();
    (stop.clone(), tokio::spawn(worker.run(stop)), status)
}

/// A store subscribed to by `receiver`.
async fn subscribed_store(receiver: &Receiver) -> Arc<FaultyStore> {
    let store = Arc::new(FaultyStore::new());
    let subscription = Subscription::new("*", &receiver.url("/hook")).unwrap();
    store.add_subscription(subscription).await.unwrap();
    store
}

/// A store holding its records, subscribed to by `receiver`.
async fn held_store(receiver: &Receiver) -> Arc<FaultyStore> {
    let store = subscribed_store(receiver).await;
    store.hold_records();
    store
}

async fn publish(queue: &RedisBackend, n: usize) {
    let events: Vec<Event> = (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect();
    queue.publish_many(&events).await.expect("publish");
}

async fn delivered_in_store(store: &FaultyStore) -> usize {
    let deliveries = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    deliveries
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivered)
        .count()
}

/// With one request allowed at a time, deliveries whose records the store has not committed
/// yet do not keep the next ones from being sent: the request slot is given back when the
/// response is in, not when the store has written it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_waiting_for_its_record_leaves_its_request_slot_to_the_next() {
    let Some(url) = redis_url("a_delivery_waiting_for_its_record_leaves_its_slot").await else {
        return;
    };
    let keys = TestKeys::new(&url, "request-slot");
    let receiver = Receiver::ok().await;
    let store = held_store(&receiver).await;
    let queue = keys.backend().await;
    publish(&queue, 4).await;
    let (stop, running, _) = start(queue.clone(), store.clone(), 1, 4);

    let all_sent = eventually(WAIT, || receiver.distinct() == 4).await;
    let (sent_while_held, recorded_then) = (receiver.distinct(), delivered_in_store(&store).await);
    store.release_records();
    let settled = eventually_async(WAIT, || async { queue.depth().await.unwrap() == 0 }).await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(
        all_sent,
        "{sent_while_held} of 4 sent while the first record waited: the request slot was held for the record"
    );
    assert_eq!(
        recorded_then, 0,
        "a record went through while they were held"
    );
    assert!(receiver.max_in_flight() <= 1, "over the concurrency");
    assert!(settled, "{report:?}");
    assert_eq!(report.delivered, 4, "{report:?}");
    assert_eq!(delivered_in_store(&store).await, 4);
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
}

/// Tasks waiting for the store count against `tasks_in_flight`: with every record held, the
/// worker leases and sends no more than that many, however many requests it may make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_waiting_for_their_records_never_exceed_the_tasks_in_flight() {
    let Some(url) = redis_url("tasks_waiting_for_their_records_are_bounded").await else {
        return;
    };
    let keys = TestKeys::new(&url, "tasks-bound");
    let receiver = Receiver::ok().await;
    let store = held_store(&receiver).await;
    let queue = keys.backend().await;
    publish(&queue, 6).await;
    let (stop, running, _) = start(queue.clone(), store.clone(), 2, 2);

    let bound_reached = eventually(WAIT, || receiver.distinct() >= 2).await;
    // Room to go over the bound, were it not kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent_while_held, recorded_then) = (receiver.distinct(), delivered_in_store(&store).await);
    store.release_records();
    let all = eventually(WAIT, || receiver.distinct() == 6).await;
    stop.cancel();
    let report = running.await.unwrap();
    assert!(bound_reached, "the first two were never sent");
    assert_eq!(
        (sent_while_held, recorded_then),
        (2, 0),
        "sent, and recorded, while the records were held"
    );
    assert!(all, "{report:?}");
    assert_eq!(report.delivered, 6, "{report:?}");
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
}

/// A stop drains the tasks past their attempt too: they are recorded and settled before the
/// worker returns, not abandoned to their leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_the_tasks_still_recording_their_attempt() {
    let Some(url) = redis_url("a_stop_waits_for_the_tasks_still_recording").await else {
        return;
    };
    let keys = TestKeys::new(&url, "drain-recording");
    let receiver = Receiver::ok().await;
    let store = held_store(&receiver).await;
    let queue = keys.backend().await;
    publish(&queue, 3).await;
    let (stop, running, _) = start(queue.clone(), store.clone(), 1, 4);

    let sent = eventually(WAIT, || {
        receiver.distinct() == 3 && store.records_waiting() > 0
    })
    .await;
    stop.cancel();
    let released = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            store.release_records();
        })
    };
    let report = running.await.unwrap();
    released.await.unwrap();
    assert!(sent, "the three were never sent");
    assert_eq!((report.delivered, report.abandoned), (3, 0), "{report:?}");
    assert_eq!(queue.depth().await.unwrap(), 0, "every lease settled");
    assert_eq!(delivered_in_store(&store).await, 3);
}

/// A stop sends nothing new: tasks still waiting for a request slot are given back to the
/// queue unsent, due at once, and the next worker delivers them — each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_gives_back_unsent_the_tasks_waiting_for_a_request_slot() {
    let Some(url) = redis_url("a_stop_gives_back_the_tasks_waiting_for_a_slot").await else {
        return;
    };
    let keys = TestKeys::new(&url, "give-back-unsent");
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(500))).await;
    let store = subscribed_store(&receiver).await;
    let queue = keys.backend().await;
    publish(&queue, 4).await;
    let (stop, running, status) = start(queue.clone(), store.clone(), 1, 4);

    // One request out, the three other tasks running and waiting for its slot.
    let waiting = eventually(WAIT, || {
        status.in_flight() == 4 && receiver.in_flight() == 1
    })
    .await;
    stop.cancel();
    let report = running.await.unwrap();
    let sent_by_the_first = receiver.arrived();
    let (next_stop, next, _) = start(queue.clone(), store.clone(), 4, 16);
    let all = eventually(WAIT, || receiver.distinct() == 4).await;
    next_stop.cancel();
    next.await.unwrap();
    assert!(waiting, "the tasks never all ran");
    assert_eq!(
        (sent_by_the_first, report.delivered, report.abandoned),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(all, "the next worker got {} of 4", receiver.distinct());
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
}
