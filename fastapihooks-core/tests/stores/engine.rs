//! End to end on the embedded default: an `Emitter` delivering to a real receiver on
//! 127.0.0.1, with a `SqlStore` on SQLite keeping subscriptions and recording every attempt.

use std::time::Duration;

use fastapihooks_core::{
    DeliveryQuery, DeliveryStatus, Emitter, RetryPolicy, Secret, SqlStore, Store, Subscription,
};
use fastapihooks_testkit::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_delivery_is_recorded_with_every_attempt_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("e2e.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    // 503 to the first request, 200 to the rest.
    let receiver = Receiver::scripted(|_, nth| match nth {
        0 => Reply::status(503),
        _ => Reply::ok(),
    })
    .await;
    let sub = Subscription::new("order.*", &receiver.url("/hook"))
        .unwrap()
        .with_secret(Secret::new("subscription-secret").unwrap());
    store.add_subscription(sub.clone()).await.unwrap();

    let emitter = Emitter::builder()
        // The receiver is on 127.0.0.1, which the SSRF guard refuses unless told.
        .http(fastapihooks_core::HttpConfig::default().allow_loopback())
        .store(store.clone())
        .retry(RetryPolicy::schedule([Duration::from_millis(20)]))
        // The subscription signs with its own secret; there is no default one.
        .unsigned()
        .build()
        .unwrap();
    let event = emitter
        .emit("order.created", &serde_json::json!({"id": 7}))
        .await
        .unwrap();
    emitter.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(receiver.arrived(), 2, "one failure, one success");
    let delivered = store
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    let delivery = &delivered[0];
    assert_eq!(delivery.event.id(), event.id());
    assert_eq!(&delivery.event.payload()[..], br#"{"id":7}"#);
    assert_eq!(delivery.subscription_id, sub.id);
    assert_eq!(delivery.attempts, 2);
    let statuses: Vec<_> = store
        .list_attempts(&delivery.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status_code())
        .collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
}
