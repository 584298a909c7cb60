//! What the `Store` trait's default batch methods do for a store that has only single calls:
//! they overlap the calls, up to `DEFAULT_BATCH_CONCURRENCY` at once (the sidecar runs one batch
//! of each kind at a time, so a store without batch statements still has its writes overlap),
//! and keep the order of one delivery's attempts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fastapihooks_core::event::{Event, EventName};
use fastapihooks_core::id::{DeliveryId, EventId, SubscriptionId};
use fastapihooks_core::replay::Reopen;
use fastapihooks_core::store::DEFAULT_BATCH_CONCURRENCY;
use fastapihooks_core::{
    Attempt, Delivery, DeliveryQuery, EventQuery, MemoryStore, Result, Store, Subscription,
    SubscriptionQuery,
};
use fastapihooks_testkit::fixtures::{attempt, delivery, event, response, subscription};

/// A `MemoryStore` with only the required methods, whose `record_attempt` takes a while and
/// counts how many run at once and in what order they start.
#[derive(Default)]
struct SingleCallStore {
    inner: MemoryStore,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    started: Mutex<Vec<u32>>,
}

#[async_trait]
impl Store for SingleCallStore {
    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<()> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        self.started.lock().unwrap().push(a.number);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.inner.record_attempt(d, a).await
    }
    async fn add_subscription(&self, s: Subscription) -> Result<()> {
        self.inner.add_subscription(s).await
    }
    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.inner.get_subscription(id).await
    }
    async fn update_subscription(&self, s: Subscription) -> Result<()> {
        self.inner.update_subscription(s).await
    }
    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        self.inner.remove_subscription(id).await
    }
    async fn list_subscriptions(&self, q: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        self.inner.list_subscriptions(q).await
    }
    async fn matching(&self, e: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        self.inner.matching(e, owner).await
    }
    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.inner.record_deliveries(deliveries).await
    }
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.inner.get_delivery(id).await
    }
    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
        self.inner.list_deliveries(q).await
    }
    async fn list_attempts(&self, d: &DeliveryId) -> Result<Vec<Attempt>> {
        self.inner.list_attempts(d).await
    }
    async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
        self.inner.get_event(id).await
    }
    async fn list_events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        self.inner.list_events(q).await
    }
    async fn replay_delivery(&self, id: &DeliveryId, resend: bool) -> Result<Option<Reopen>> {
        self.inner.replay_delivery(id, resend).await
    }
}

/// `n` recorded deliveries of one event.
async fn recorded(store: &SingleCallStore, n: usize) -> Vec<Delivery> {
    let event = event("order.created", None);
    let deliveries: Vec<Delivery> = (0..n)
        .map(|_| delivery(&event, &subscription("*").id))
        .collect();
    store.record_deliveries(&deliveries).await.unwrap();
    deliveries
}

#[tokio::test]
async fn the_default_records_the_attempts_of_distinct_deliveries_at_once_up_to_the_bound() {
    let store = SingleCallStore::default();
    let deliveries = recorded(&store, 20).await;
    let batch: Vec<(Delivery, Attempt)> = deliveries
        .iter()
        .map(|d| (d.clone(), attempt(d, 1, response(200))))
        .collect();

    store.record_attempts(&batch).await.unwrap();

    assert_eq!(
        store.most_at_once.load(Ordering::SeqCst),
        DEFAULT_BATCH_CONCURRENCY
    );
    for d in &deliveries {
        assert_eq!(store.list_attempts(&d.id).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn the_default_records_two_attempts_of_one_delivery_in_order() {
    let store = SingleCallStore::default();
    let d = recorded(&store, 1).await.remove(0);
    let batch = vec![
        (d.clone(), attempt(&d, 1, response(500))),
        (d.clone(), attempt(&d, 2, response(200))),
    ];

    store.record_attempts(&batch).await.unwrap();

    assert_eq!(store.most_at_once.load(Ordering::SeqCst), 1);
    assert_eq!(*store.started.lock().unwrap(), [1, 2]);
}
