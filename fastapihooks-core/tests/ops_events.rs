//! Operational events (`fastapihooks.delivery.dead`, `fastapihooks.subscription.disabled`)
//! reach whoever subscribes to them, through the same pipeline as the application's events —
//! the in-process backend and the SQL outbox drained by a `Worker` — and never about
//! themselves. Real receivers on 127.0.0.1.
#![cfg(feature = "sql")]

use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::{
    Backend, BackgroundConfig, BackgroundTaskBackend, EventFilter, EventName, EventQuery,
    MemoryStore, RetryPolicy, Store, Subscription, SubscriptionId, Worker, WorkerConfig,
};
use fastapihooks_testkit::{
    Receiver, Reply, TempSqlite, events, eventually, eventually_async, outbox, quick_retries,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

async fn subscribe(store: &dyn Store, filter: &str, receiver: &Receiver) -> SubscriptionId {
    let sub = Subscription::new(filter, &receiver.url("/hook")).unwrap();
    let id = sub.id.clone();
    store.add_subscription(sub).await.unwrap();
    id
}

fn in_process(store: Arc<MemoryStore>, retry: RetryPolicy) -> BackgroundTaskBackend {
    let engine = fastapihooks_testkit::engine(store, retry);
    BackgroundTaskBackend::start(engine, BackgroundConfig::default()).unwrap()
}

#[test]
fn only_a_subscription_that_names_operational_events_receives_them() {
    let dead = EventName::new("fastapihooks.delivery.dead").unwrap();
    let order = EventName::new("order.created").unwrap();
    let all: EventFilter = "*".parse().unwrap();
    assert!(all.matches(&order));
    assert!(!all.matches(&dead), "`*` is the application's events only");
    for filter in [
        "fastapihooks.*",
        "fastapihooks.delivery.*",
        "fastapihooks.delivery.dead",
    ] {
        let filter: EventFilter = filter.parse().unwrap();
        assert!(filter.matches(&dead), "{filter}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_announced_to_whoever_subscribes_to_it() {
    let refusing = Receiver::replying(Reply::status(400)).await;
    let operator = Receiver::ok().await;
    let store = Arc::new(MemoryStore::new());
    subscribe(store.as_ref(), "*", &refusing).await;
    subscribe(store.as_ref(), "fastapihooks.delivery.dead", &operator).await;
    let backend = in_process(store.clone(), RetryPolicy::none());
    let event = events(1).remove(0).with_owner("acme");
    backend.publish(event.clone()).await.unwrap();

    let got = operator.wait_for(1).await;
    assert_eq!(
        got[0].header("x-fastapihooks-event"),
        "fastapihooks.delivery.dead"
    );
    let body = got[0].json();
    assert_eq!(body["event_id"], event.id().as_str());
    assert_eq!(body["status"], "failed");
    assert_eq!(body["last_attempt"]["status_code"], 400);
    // The `*` subscription got its event only, not the announcement of its failure.
    assert_eq!(refusing.arrived(), 1);
    // Announced for the owner of what failed.
    let announced = store
        .list_events(&EventQuery::default().name("fastapihooks.*").unwrap())
        .await
        .unwrap();
    assert_eq!(announced[0].owner(), Some("acme"));
    backend.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operational_event_that_dies_announces_nothing() {
    let refusing = Receiver::replying(Reply::status(400)).await;
    let broken_alerting = Receiver::replying(Reply::status(400)).await;
    let store = Arc::new(MemoryStore::new());
    subscribe(store.as_ref(), "order.*", &refusing).await;
    subscribe(store.as_ref(), "fastapihooks.*", &broken_alerting).await;
    let backend = in_process(store.clone(), RetryPolicy::none());
    backend.publish(events(1).remove(0)).await.unwrap();

    assert!(eventually(WAIT, || broken_alerting.arrived() == 1).await);
    // Time for a loop to show itself, if there were one.
    let looped = eventually(Duration::from_secs(2), || broken_alerting.arrived() > 1).await;
    assert!(!looped, "an operational event announced its own death");
    let operational = store
        .list_events(&EventQuery::default().name("fastapihooks.*").unwrap())
        .await
        .unwrap();
    assert_eq!(operational.len(), 1, "{operational:?}");
    backend.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_subscription_is_announced_through_the_sidecar_queue() {
    let (_db, store) = TempSqlite::store().await;
    let store = Arc::new(store);
    let queue = outbox(&store);
    let failing = Receiver::replying(Reply::status(503)).await;
    let operator = Receiver::ok().await;
    let failing_id = subscribe(store.as_ref(), "order.*", &failing).await;
    subscribe(
        store.as_ref(),
        "fastapihooks.subscription.disabled",
        &operator,
    )
    .await;
    let engine =
        fastapihooks_testkit::engine(store.clone(), quick_retries(100, Duration::from_millis(50)))
            .with_health(HealthPolicy::disable_after(Duration::from_millis(150), 3));
    let worker = Worker::new(queue.clone(), engine, WorkerConfig::default()).unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    queue.publish(events(1).remove(0)).await.unwrap();

    let got = operator.wait_for(1).await;
    let body = got[0].json();
    assert_eq!(body["subscription_id"], failing_id.as_str());
    assert!(
        body["reason"].as_str().unwrap().contains("failed attempts"),
        "{body}"
    );
    assert!(body["failures"].as_u64().unwrap() >= 3, "{body}");
    let disabled = eventually_async(WAIT, || async {
        !store
            .get_subscription(&failing_id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    })
    .await;
    assert!(disabled);
    stop.cancel();
    running.await.unwrap();
}
