//! [`FaultyStore`]: a `MemoryStore` whose faults a test switches on and off — an outage, a
//! write that fails alone, a slow commit, records held until released.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fastapihooks_core::replay::Reopen;
use fastapihooks_core::{
    Attempt, Delivery, DeliveryId, DeliveryQuery, Error, Event, EventId, EventName, EventQuery,
    MemoryStore, Result, Store, Subscription, SubscriptionId, SubscriptionQuery,
};
use tokio::sync::Notify;

/// A [`MemoryStore`] with switchable faults, for the worker's failure tests:
///
/// - down ([`set_down`](Self::set_down)): every call fails as a database outage would;
/// - [`with_failing_records`](Self::with_failing_records): the next `n` calls of
///   `record_attempt` fail (a write that fails alone);
/// - [`with_slow_records`](Self::with_slow_records): every `record_attempt` takes that much
///   longer (a database slow to commit);
/// - [`hold_records`](Self::hold_records): every `record_attempt` waits until
///   [`release_records`](Self::release_records) (a commit that has not returned yet).
///
/// Every record of an attempt — `record_attempts` and `record_first_attempts` included, whose
/// defaults call it — goes through `record_attempt`.
#[derive(Default)]
pub struct FaultyStore {
    inner: MemoryStore,
    down: AtomicBool,
    failing_records: AtomicUsize,
    slow_records: Duration,
    records_held: AtomicBool,
    records_waiting: AtomicUsize,
    released: Notify,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("down", &self.down)
            .field("failing_records", &self.failing_records)
            .field("slow_records", &self.slow_records)
            .field("records_held", &self.records_held)
            .field("records_waiting", &self.records_waiting)
            .finish_non_exhaustive()
    }
}

impl FaultyStore {
    /// A store without faults (yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` records of an attempt fail.
    pub fn with_failing_records(self, n: usize) -> Self {
        self.failing_records.store(n, Ordering::SeqCst);
        self
    }

    /// Every record of an attempt takes `slow` longer.
    pub fn with_slow_records(mut self, slow: Duration) -> Self {
        self.slow_records = slow;
        self
    }

    /// The store without its faults: to set a test up behind the worker's back.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    /// Every call fails while `down`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Records of attempts wait from now on until [`release_records`](Self::release_records).
    pub fn hold_records(&self) {
        self.records_held.store(true, Ordering::SeqCst);
    }

    /// Lets every held record through, and those to come.
    pub fn release_records(&self) {
        self.records_held.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    /// Records of attempts waiting for [`release_records`](Self::release_records) now.
    pub fn records_waiting(&self) -> usize {
        self.records_waiting.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(Error::storage(
                "test.outage",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            ))
        } else {
            Ok(())
        }
    }

    async fn wait_while_held(&self) {
        if !self.records_held.load(Ordering::SeqCst) {
            return;
        }
        self.records_waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            // Registered before the flag is read again: a release in between still wakes it.
            let released = self.released.notified();
            if !self.records_held.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        self.records_waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn add_subscription(&self, s: Subscription) -> Result<()> {
        self.check()?;
        self.inner.add_subscription(s).await
    }
    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.check()?;
        self.inner.get_subscription(id).await
    }
    async fn update_subscription(&self, s: Subscription) -> Result<()> {
        self.check()?;
        self.inner.update_subscription(s).await
    }
    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        self.check()?;
        self.inner.remove_subscription(id).await
    }
    async fn list_subscriptions(&self, q: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        self.check()?;
        self.inner.list_subscriptions(q).await
    }
    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        self.check()?;
        self.inner.matching(event, owner).await
    }
    async fn record_deliveries(&self, d: &[Delivery]) -> Result<()> {
        self.check()?;
        self.inner.record_deliveries(d).await
    }
    async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<()> {
        self.check()?;
        self.wait_while_held().await;
        tokio::time::sleep(self.slow_records).await;
        if self
            .failing_records
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::storage(
                "test.record_attempt",
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            ));
        }
        self.inner.record_attempt(d, a).await
    }
    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>> {
        self.check()?;
        self.inner.replay_delivery(id, resend_delivered).await
    }
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.check()?;
        self.inner.get_delivery(id).await
    }
    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
        self.check()?;
        self.inner.list_deliveries(q).await
    }
    async fn list_attempts(&self, id: &DeliveryId) -> Result<Vec<Attempt>> {
        self.check()?;
        self.inner.list_attempts(id).await
    }
    async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
        self.check()?;
        self.inner.get_event(id).await
    }
    async fn list_events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        self.check()?;
        self.inner.list_events(q).await
    }
}
