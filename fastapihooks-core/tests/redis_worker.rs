//! The sidecar worker draining the Redis queue, against the machine's real Redis and real HTTP
//! receivers on 127.0.0.1. Each test has its own key prefix.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fastapihooks_core::backend::RedisBackend;
use fastapihooks_core::engine::DeliveryEngine;
use fastapihooks_core::{
    Backend, DeliveryQuery, DeliveryStatus, Event, Queue, Store, Worker, WorkerConfig, WorkerReport,
};
use fastapihooks_testkit::{
    Receiver, Reply, TempSqlite, TestKeys, duplicates, engine, engine_with_timeout, eventually,
    eventually_async, quick_retries, redis_url, store_with_subscribers, url_of,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

struct Running {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<WorkerReport>,
}

impl Running {
    async fn stop(self) -> WorkerReport {
        self.stop.cancel();
        self.handle.await.expect("worker task")
    }
}

fn start(queue: Arc<RedisBackend>, engine: DeliveryEngine, concurrency: usize) -> Running {
    start_with_tasks(queue, engine, concurrency, None)
}

/// [`start`], with at most `tasks_in_flight` tasks running (`None`: the default).
fn start_with_tasks(
    queue: Arc<RedisBackend>,
    engine: DeliveryEngine,
    concurrency: usize,
    tasks_in_flight: Option<usize>,
) -> Running {
    let config = WorkerConfig {
        concurrency,
        tasks_in_flight,
        lease_batch: 32,
        drain_deadline: Duration::from_secs(10),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(queue, engine, config).expect("worker");
    let stop = CancellationToken::new();
    let handle = tokio::spawn(worker.run(stop.clone()));
    Running { stop, handle }
}

async fn publish_events(queue: &RedisBackend, n: usize) -> Vec<Event> {
    let events: Vec<Event> = (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect();
    queue.publish_many(&events).await.expect("publish");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_both_subscribers_exactly_once() {
    let Some(url) = redis_url("every_event_reaches_both_subscribers_exactly_once").await else {
        return;
    };
    let keys = TestKeys::new(&url, "exactly-once");
    let (a, b) = (Receiver::ok().await, Receiver::ok().await);
    let store = store_with_subscribers(&[a.url("/hook"), b.url("/hook")]).await;
    let queue = keys.backend().await;
    let started = Instant::now();
    // Published one by one and concurrently: the multiplexed connection pipelines them.
    let events: Vec<Event> = (0..2000)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).unwrap())
        .collect();
    let publishes = events.iter().cloned().map(|e| queue.publish(e));
    for result in futures_util::future::join_all(publishes).await {
        result.expect("publish");
    }
    let published_in = started.elapsed();
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        32,
    );

    let all = eventually(WAIT, || a.distinct() == 2000 && b.distinct() == 2000).await;
    let report = worker.stop().await;
    assert!(
        all,
        "a got {}, b got {} of 2000",
        a.distinct(),
        b.distinct()
    );
    let (ca, cb) = (a.counts(), b.counts());
    eprintln!(
        "2000 events x 2 subscribers: published in {published_in:?}, {} deliveries in {:?}, duplicates {:?} / {:?}, {report:?}",
        ca.len() + cb.len(),
        started.elapsed(),
        duplicates(&ca),
        duplicates(&cb)
    );
    assert_eq!(duplicates(&ca), (0, 0));
    assert_eq!(duplicates(&cb), (0, 0));
    assert_eq!(report.delivered, 4000);
    assert_eq!(queue.depth().await.unwrap(), 0, "nothing left in the queue");
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered).limit(5000))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_once_it_is_up() {
    let Some(url) = redis_url("a_receiver_down_for_a_while_gets_everything_once_it_is_up").await
    else {
        return;
    };
    let keys = TestKeys::new(&url, "receiver-down");
    let addr = Receiver::reserve_port().await;
    let store = store_with_subscribers(&[url_of(addr, "/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 50).await;
    let worker = start(
        queue.clone(),
        engine(
            store.clone(),
            quick_retries(100, Duration::from_millis(100)),
        ),
        16,
    );

    // Down: every attempt is refused and scheduled again.
    let refused = eventually_async(WAIT, || async {
        let d = store
            .list_deliveries(&DeliveryQuery::default().limit(100))
            .await
            .unwrap();
        d.len() == 50 && d.iter().all(|d| d.attempts >= 2)
    })
    .await;
    assert!(
        refused,
        "every delivery was tried at least twice while the receiver was down"
    );
    let receiver = Receiver::replying_on(addr, Reply::ok()).await;

    let all = eventually(WAIT, || receiver.distinct() == 50).await;
    let report = worker.stop().await;
    assert!(all, "got {} of 50", receiver.distinct());
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
    assert!(report.retried >= 100, "{report:?}");
    assert_eq!(report.delivered, 50);
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_work_without_double_delivery() {
    let Some(url) = redis_url("two_workers_share_the_work_without_double_delivery").await else {
        return;
    };
    let keys = TestKeys::new(&url, "two-workers");
    let behaviour = Reply::ok().after(Duration::from_millis(10));
    let (a, b) = (
        Receiver::replying(behaviour.clone()).await,
        Receiver::replying(behaviour).await,
    );
    let store = store_with_subscribers(&[a.url("/hook"), b.url("/hook")]).await;
    let publisher = keys.backend().await;
    publish_events(&publisher, 300).await;
    let retry = quick_retries(3, Duration::from_millis(50));
    let first = start(
        keys.backend().await,
        engine(store.clone(), retry.clone()),
        8,
    );
    let second = start(keys.backend().await, engine(store.clone(), retry), 8);

    let all = eventually(WAIT, || a.distinct() == 300 && b.distinct() == 300).await;
    let (r1, r2) = (first.stop().await, second.stop().await);
    assert!(all, "a got {}, b got {} of 300", a.distinct(), b.distinct());
    eprintln!("shared: first {r1:?}, second {r2:?}");
    assert_eq!(duplicates(&a.counts()), (0, 0));
    assert_eq!(duplicates(&b.counts()), (0, 0));
    assert_eq!(r1.delivered + r2.delivered, 600);
    assert!(
        r1.delivered > 0 && r2.delivered > 0,
        "both took part: {r1:?} {r2:?}"
    );
    assert_eq!(r1.leases_lost + r2.leases_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_never_exceed_the_concurrency() {
    let Some(url) = redis_url("in_flight_requests_never_exceed_the_concurrency").await else {
        return;
    };
    let keys = TestKeys::new(&url, "concurrency");
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(20))).await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 150).await;
    // The lease batch (32) is larger than the concurrency, and 16 tasks may run (the default 4 ×):
    // only 4 requests are in flight at once all the same.
    let worker = start(
        queue.clone(),
        engine(store, quick_retries(3, Duration::from_millis(50))),
        4,
    );

    let all = eventually(WAIT, || receiver.distinct() == 150).await;
    worker.stop().await;
    assert!(all, "got {} of 150", receiver.distinct());
    eprintln!(
        "max in flight at the receiver: {}",
        receiver.max_in_flight()
    );
    assert_concurrent_within(&receiver, 4, "deliveries did run concurrently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscriber_is_retried_then_dead_lettered_in_the_stream_and_the_store() {
    let Some(url) = redis_url("a_failing_subscriber_is_retried_then_dead_lettered").await else {
        return;
    };
    let keys = TestKeys::new(&url, "dead-letter");
    let receiver = Receiver::replying(Reply::status(500)).await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 5).await;
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(2, Duration::from_millis(30))),
        8,
    );

    let dead = eventually_async(WAIT, || async { queue.dead_letters().await.unwrap() == 5 }).await;
    // Each dead letter publishes a `fastapihooks.delivery.dead` event onto the same queue: the
    // queue is empty once the worker has fanned those out too (no subscriber names them).
    let drained = eventually_async(WAIT, || async { queue.depth().await.unwrap() == 0 }).await;
    let report = worker.stop().await;
    assert!(dead, "5 dead letters in the stream");
    assert!(
        drained,
        "the queue drained, the dead-letter events included"
    );
    assert!(
        receiver.counts().values().all(|&n| n == 3),
        "one attempt and two retries each: {:?}",
        receiver.counts()
    );
    assert_eq!(report.dead_lettered, 5);
    let letters = keys.dead_letters().await;
    assert_eq!(letters.len(), 5);
    assert_out_of_retries_after(&letters, 3);
    let in_store = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Dead))
        .await
        .unwrap();
    assert_eq!(in_store.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_one_subscriber_is_delivered_on_its_own_lease_without_a_delivery_task() {
    let Some(url) = redis_url("an_event_with_one_subscriber_is_delivered_on_its_own_lease").await
    else {
        return;
    };
    let keys = TestKeys::new(&url, "one-subscriber");
    let receiver = Receiver::ok().await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 20).await;
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        8,
    );

    let all = eventually(WAIT, || receiver.distinct() == 20).await;
    let drained = eventually_async(WAIT, || async { queue.depth().await.unwrap() == 0 }).await;
    let report = worker.stop().await;
    assert!(all && drained, "{report:?}");
    assert_eq!((report.fanned_out, report.delivered), (20, 20));
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
    assert_eq!(
        delivery_tasks_ever_queued(&url, &keys).await,
        0,
        "no delivery task was ever queued"
    );
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_deliveries_to_several_subscribers_are_made_on_its_own_lease_without_delivery_tasks()
 {
    let Some(url) = redis_url("several_subscribers_on_the_events_lease").await else {
        return;
    };
    let keys = TestKeys::new(&url, "several-subscribers");
    let (a, b) = (Receiver::ok().await, Receiver::ok().await);
    let store = store_with_subscribers(&[a.url("/one"), a.url("/two"), b.url("/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 20).await;
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(3, Duration::from_millis(50))),
        8,
    );

    let all = eventually(WAIT, || a.distinct() == 40 && b.distinct() == 20).await;
    let drained = eventually_async(WAIT, || async { queue.depth().await.unwrap() == 0 }).await;
    let report = worker.stop().await;
    assert!(all && drained, "{report:?}");
    assert_eq!((report.fanned_out, report.delivered), (20, 60));
    assert_eq!(duplicates(&a.counts()), (0, 0));
    assert_eq!(duplicates(&b.counts()), (0, 0));
    assert_eq!(
        delivery_tasks_ever_queued(&url, &keys).await,
        0,
        "no delivery task was ever queued"
    );
}

/// A failed delivery of an event made on the event's lease comes back as a task of its own,
/// after its retry delay, and is retried alone: the event's other deliveries are not sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscriber_of_an_event_is_retried_alone_and_the_others_get_it_once() {
    let Some(url) = redis_url("failing_subscriber_retried_alone").await else {
        return;
    };
    let keys = TestKeys::new(&url, "retried-alone");
    let (good, failing) = (
        Receiver::ok().await,
        Receiver::replying(Reply::status(503)).await,
    );
    let store =
        store_with_subscribers(&[good.url("/one"), good.url("/two"), failing.url("/hook")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 5).await;
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(2, Duration::from_millis(50))),
        8,
    );

    let dead = eventually_async(WAIT, || async { keys.dead_letters().await.len() == 5 }).await;
    let report = worker.stop().await;
    assert!(dead, "{report:?}");
    assert_eq!(good.distinct(), 10);
    assert_eq!(duplicates(&good.counts()), (0, 0), "sent once each");
    assert_eq!(failing.distinct(), 5);
    assert!(
        failing.counts().values().all(|&n| n == 3),
        "one attempt and two retries each: {:?}",
        failing.counts()
    );
    assert_out_of_retries_after(&keys.dead_letters().await, 3);
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 10);
}

/// An event's deliveries take the worker's free task permits, never more: one event's deliveries
/// run in parallel, and the concurrency bounds the attempts in flight however many subscribers
/// the event has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_deliveries_run_in_parallel_within_the_concurrency() {
    let Some(url) = redis_url("an_events_deliveries_within_the_concurrency").await else {
        return;
    };
    let keys = TestKeys::new(&url, "fan-out-concurrency");
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(20))).await;
    let paths: Vec<String> = (0..12).map(|i| receiver.url(&format!("/{i}"))).collect();
    let store = store_with_subscribers(&paths).await;
    let queue = keys.backend().await;
    publish_events(&queue, 1).await;
    let worker = start(
        queue.clone(),
        engine(store, quick_retries(3, Duration::from_millis(50))),
        4,
    );

    let all = eventually(WAIT, || receiver.distinct() == 12).await;
    worker.stop().await;
    assert!(all, "got {} of 12", receiver.distinct());
    assert_concurrent_within(&receiver, 4, "the event's deliveries did run concurrently");
}

/// An endpoint slow to answer on the event's own task does not hold back the event's other
/// deliveries: those still waiting for a task permit after a second are queued as tasks of
/// their own and run on the next free one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_deliveries_waiting_behind_a_slow_endpoint_are_handed_to_the_queue() {
    let Some(url) = redis_url("deliveries_behind_a_slow_endpoint").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "hand-off");
    keys.config.visibility_timeout = Duration::from_secs(10);
    let slow = Receiver::replying(Reply::ok().after(Duration::from_secs(3))).await;
    let fast = Receiver::ok().await;
    let store = store_with_subscribers(&[slow.url("/hook"), fast.url("/1"), fast.url("/2")]).await;
    let queue = keys.backend().await;
    publish_events(&queue, 1).await;
    let retries = quick_retries(3, Duration::from_millis(50));
    let engine = engine_with_timeout(store.clone(), retries, Duration::from_secs(5));
    // One task for the event (its first delivery: the slow endpoint), one for the rest.
    let worker = start_with_tasks(queue.clone(), engine, 2, Some(2));

    let fast_arrived = eventually(WAIT, || fast.distinct() == 2).await;
    let slow_answered_by_then = slow.answered();
    let all = eventually(WAIT, || slow.distinct() == 1).await;
    let report = worker.stop().await;
    assert!(fast_arrived && all, "{report:?}");
    assert_eq!(
        slow_answered_by_then, 0,
        "the other deliveries waited for the slow endpoint's answer"
    );
    assert_eq!((report.delivered, report.fanned_out), (3, 1));
    assert_eq!(duplicates(&fast.counts()), (0, 0));
    assert_eq!(slow.arrived(), 1);
}

/// A delivery handed to the queue is recorded first: its task then travels with the event's id
/// only (the SQL store keeps events) and still finds what to send. Had it been handed off
/// unrecorded, it would be a dead letter ("nothing to send").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_handed_to_the_queue_is_recorded_before_its_task_leaves() {
    let Some(url) = redis_url("a_delivery_handed_to_the_queue_is_recorded").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "hand-off-recorded");
    keys.config.visibility_timeout = Duration::from_secs(10);
    let slow = Receiver::replying(Reply::ok().after(Duration::from_secs(2))).await;
    let fast = Receiver::ok().await;
    let (_dir, store) = TempSqlite::store().await;
    assert!(store.keeps_events());
    for url in [slow.url("/hook"), fast.url("/1"), fast.url("/2")] {
        let subscription = fastapihooks_core::Subscription::new("*", &url).unwrap();
        store.add_subscription(subscription).await.unwrap();
    }
    let store = Arc::new(store);
    let queue = keys.backend().await;
    publish_events(&queue, 1).await;
    let retries = quick_retries(3, Duration::from_millis(50));
    let engine = engine_with_timeout(store.clone(), retries, Duration::from_secs(5));
    let worker = start_with_tasks(queue.clone(), engine, 2, Some(2));

    let all = eventually(WAIT, || fast.distinct() == 2 && slow.distinct() == 1).await;
    let report = worker.stop().await;
    assert!(all, "{report:?}");
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (3, 0),
        "{report:?}"
    );
    assert!(
        delivery_tasks_ever_queued(&url, &keys).await >= 1,
        "no delivery was handed off: the test proves nothing"
    );
    let deliveries = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Delivered),
        "{deliveries:?}"
    );
}

/// At least two requests were in flight at the receiver at once (`concurrent` says why that
/// matters), and never more than `concurrency`.
fn assert_concurrent_within(receiver: &Receiver, concurrency: usize, concurrent: &str) {
    let most = receiver.max_in_flight();
    assert!(most <= concurrency, "{most} in flight, over {concurrency}");
    assert!(most >= 2, "{concurrent}");
}

/// Every dead letter is a delivery task given up after `attempts` attempts.
fn assert_out_of_retries_after(letters: &[(String, String)], attempts: u32) {
    for (task, reason) in letters {
        let task: serde_json::Value = serde_json::from_str(task).unwrap();
        assert_eq!(task["type"], "deliver");
        assert_eq!(task["attempts"], attempts);
        assert!(reason.contains("out of retries"), "{reason}");
    }
}

/// How many entries the deliveries stream ever had (Redis 7's `entries-added`): settled
/// entries are deleted, so this says whether a delivery task was ever queued.
async fn delivery_tasks_ever_queued(url: &str, keys: &TestKeys) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys.config.deliveries_key())
        .query_async(&mut conn)
        .await
        .unwrap();
    let added = info
        .remove("entries-added")
        .expect("Redis 7 reports entries-added");
    redis::from_redis_value(added).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_fanned_out_again_is_not_sent_again() {
    let Some(url) = redis_url("an_event_fanned_out_again_is_not_sent_again").await else {
        return;
    };
    let keys = TestKeys::new(&url, "refanout");
    let receiver = Receiver::ok().await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let queue = keys.backend().await;
    let events = publish_events(&queue, 3).await;
    let worker = start(
        queue.clone(),
        engine(store, quick_retries(3, Duration::from_millis(50))),
        4,
    );
    assert!(eventually(WAIT, || receiver.distinct() == 3).await);

    // The same events come back (a redelivery after a lost ack): fan-out finds the deliveries
    // it recorded, and each is already delivered.
    queue.publish_many(&events).await.unwrap();
    let drained = eventually_async(WAIT, || async { queue.depth().await.unwrap() == 0 }).await;
    let report = worker.stop().await;
    assert!(drained);
    assert_eq!(report.fanned_out, 6);
    assert_eq!(report.skipped, 3, "{report:?}");
    assert_eq!(duplicates(&receiver.counts()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_rejects_a_visibility_timeout_not_above_the_http_timeout() {
    let Some(url) = redis_url("a_worker_rejects_a_visibility_timeout").await else {
        return;
    };
    let mut keys = TestKeys::new(&url, "visibility");
    keys.config.visibility_timeout = Duration::from_secs(1); // the HTTP timeout is 1 s
    keys.config.block = Duration::from_millis(100);
    let queue = keys.backend().await;
    let store = store_with_subscribers(&[]).await;
    let err = Worker::new(
        queue,
        engine(store, quick_retries(1, Duration::from_millis(10))),
        WorkerConfig::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("queue.visibility_timeout"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_emitting_through_redis_is_delivered_by_the_sidecar() {
    let Some(url) = redis_url("an_app_emitting_through_redis_is_delivered_by_the_sidecar").await
    else {
        return;
    };
    let keys = TestKeys::new(&url, "emitter");
    let receiver = Receiver::ok().await;
    let store = store_with_subscribers(&[receiver.url("/hook")]).await;
    let subscription = store.list_subscriptions(&Default::default()).await.unwrap()[0]
        .id
        .clone();
    // The application: an emitter whose backend is the Redis queue; it never delivers itself.
    let app = fastapihooks_core::Emitter::publisher(
        RedisBackend::connect(keys.config.clone()).await.unwrap(),
    )
    .shared_store(store.clone())
    .build()
    .unwrap();
    let event = app
        .emit("invoice.paid", &serde_json::json!({"invoice": 9}))
        .await
        .unwrap();
    // The sidecar, elsewhere, drains the same keys.
    let sidecar = start(
        keys.backend().await,
        engine(store, quick_retries(3, Duration::from_millis(50))),
        4,
    );
    let delivered = eventually(WAIT, || receiver.distinct() == 1).await;
    sidecar.stop().await;
    assert!(delivered);
    let id = fastapihooks_core::DeliveryId::for_event(event.id(), &subscription);
    assert_eq!(
        receiver.counts().get(id.as_str()),
        Some(&1),
        "delivered under its stable id"
    );
}

/// Payload stored once: with a store that keeps events (the SQL store), a fan-out queues its
/// delivery tasks by the event's id only; each attempt reads the payload back from the store
/// and sends it whole.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_store_that_keeps_events_the_payload_is_not_copied_into_the_queue() {
    let Some(url) = redis_url("payload_once").await else {
        return;
    };
    let keys = TestKeys::new(&url, "payload-once");
    // Every attempt fails, so the delivery tasks wait in the retries set where they can be read.
    let receiver = Receiver::replying(Reply::status(503)).await;
    let (_file, store) = fastapihooks_testkit::TempSqlite::store().await;
    let store = Arc::new(store);
    for _ in 0..3 {
        store
            .add_subscription(receiver.subscription("*", "/hook"))
            .await
            .unwrap();
    }
    let queue = keys.backend().await;
    let marker = "a-payload-kept-once-".repeat(50);
    let event = Event::new("order.created", &serde_json::json!({ "note": marker })).unwrap();
    queue.publish(event.clone()).await.unwrap();
    let worker = start(
        queue.clone(),
        engine(store.clone(), quick_retries(5, Duration::from_secs(5))),
        8,
    );

    let sent = receiver.wait_for(3).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let waiting: Vec<String> = eventually_async(WAIT, async || {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let waiting: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.config.retries_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        (waiting.len() == 3).then_some(waiting)
    })
    .await
    .expect("the three deliveries wait for their retry");
    worker.stop().await;

    for task in &waiting {
        assert!(
            !task.contains(&marker),
            "the payload was copied into the queue: {task}"
        );
        assert!(task.contains(event.id().as_str()), "{task}");
    }
    for request in &sent {
        assert_eq!(
            request.json()["note"],
            marker.as_str(),
            "sent without its payload"
        );
    }
}
