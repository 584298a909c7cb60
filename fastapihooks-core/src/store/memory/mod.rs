//! [`MemoryStore`]: an in-process [`Store`] with a bounded delivery history.

mod history;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockWriteGuard};

use chrono::{DateTime, Utc};

use async_trait::async_trait;

use super::{DeliveryQuery, EventQuery, Pruned, Store, SubscriptionQuery};
use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::event::{Event, EventName};
use crate::health::{Disabled, EndpointHealth};
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::replay::Reopen;
use crate::subscription::Subscription;
use history::DeliveryHistory;

/// Keeps everything in memory: for development, tests and services that need no history across
/// restarts.
///
/// The delivery history is bounded (10,000 deliveries by default): past the bound the oldest
/// deliveries and their attempts are dropped, so a long-running process does not grow without
/// limit.
///
/// ```
/// # tokio_test_block(async {
/// use fastapihooks_core::{MemoryStore, Store, Subscription, EventName};
/// let store = MemoryStore::new();
/// store.add_subscription(Subscription::new("order.*", "https://example.com/h")?).await?;
/// let hits = store.matching(&EventName::new("order.created")?, None).await?;
/// assert_eq!(hits.len(), 1);
/// # Ok::<_, fastapihooks_core::Error>(()) });
/// # fn tokio_test_block<F: std::future::Future<Output = Result<(), fastapihooks_core::Error>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
/// # }
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    subscriptions: RwLock<BTreeMap<SubscriptionId, Subscription>>,
    history: Mutex<DeliveryHistory>,
    /// Received webhooks (this store is also an [`Inbox`](crate::inbox::Inbox)).
    inbox: crate::inbox::MemoryInbox,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// The default history bound.
    pub const DEFAULT_MAX_DELIVERIES: usize = 10_000;

    /// An empty store keeping at most 10,000 deliveries.
    pub fn new() -> Self {
        Self::with_max_deliveries(Self::DEFAULT_MAX_DELIVERIES)
    }

    /// An empty store keeping at most `max` deliveries (the oldest are dropped first).
    pub fn with_max_deliveries(max: usize) -> Self {
        Self {
            subscriptions: RwLock::default(),
            history: Mutex::new(DeliveryHistory::new(max)),
            inbox: crate::inbox::MemoryInbox::default(),
        }
    }

    /// Its inbox, which `impl Inbox for MemoryStore` forwards to.
    pub(crate) fn memory_inbox(&self) -> &crate::inbox::MemoryInbox {
        &self.inbox
    }

    fn subscriptions_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<SubscriptionId, Subscription>> {
        self.subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn history(&self) -> MutexGuard<'_, DeliveryHistory> {
        // A panic elsewhere while holding the lock leaves a valid history (records sorted, at
        // worst fewer of them), so a poisoned lock is still usable.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn add_subscription(&self, subscription: Subscription) -> Result<()> {
        let mut subs = self
            .subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if subs.contains_key(&subscription.id) {
            return Err(Error::SubscriptionExists {
                id: subscription.id.to_string(),
            });
        }
        subs.insert(subscription.id.clone(), subscription);
        Ok(())
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        let subs = self
            .subscriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(subs.get(id).cloned())
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<()> {
        let mut subs = self
            .subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match subs.get_mut(&subscription.id) {
            Some(slot) => {
                // The failure streak is the engine's to write (`record_health`, `set_enabled`).
                let health = slot.health;
                *slot = Subscription {
                    health,
                    ..subscription
                };
                Ok(())
            }
            None => Err(Error::SubscriptionNotFound {
                id: subscription.id.to_string(),
            }),
        }
    }

    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        let mut subs = self
            .subscriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        subs.remove(id)
            .map(drop)
            .ok_or_else(|| Error::SubscriptionNotFound { id: id.to_string() })
    }

    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        let subs = self
            .subscriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let start = match &query.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(subs
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, s)| s)
            .filter(|s| query.owner.is_none() || s.owner == query.owner)
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        let subs = self
            .subscriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(subs
            .values()
            .filter(|s| s.receives(event, owner))
            .cloned()
            .collect())
    }

    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        let mut subs = self.subscriptions_mut();
        let sub = subs
            .get_mut(id)
            .ok_or_else(|| Error::SubscriptionNotFound { id: id.to_string() })?;
        sub.enabled = enabled;
        if enabled {
            sub.disabled = None;
            sub.health = EndpointHealth::default();
        }
        Ok(())
    }

    async fn disable_subscription(&self, id: &SubscriptionId, disabled: Disabled) -> Result<bool> {
        let mut subs = self.subscriptions_mut();
        let Some(sub) = subs.get_mut(id).filter(|s| s.enabled) else {
            return Ok(false);
        };
        sub.enabled = false;
        sub.disabled = Some(Box::new(disabled));
        Ok(true)
    }

    async fn record_health(
        &self,
        id: &SubscriptionId,
        delivered: bool,
        at: DateTime<Utc>,
    ) -> Result<EndpointHealth> {
        let mut subs = self.subscriptions_mut();
        Ok(match subs.get_mut(id) {
            Some(sub) => {
                sub.health = sub.health.after(delivered, at);
                sub.health
            }
            None => EndpointHealth::default(),
        })
    }

    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.record_new_deliveries(deliveries).await.map(drop)
    }

    async fn record_new_deliveries(&self, deliveries: &[Delivery]) -> Result<Option<Vec<bool>>> {
        Ok(Some(self.history().add_all(deliveries)))
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        let mut history = self.history();
        // A delivery evicted by the bound is not brought back: the bound wins.
        if let Some(record) = history.get_mut(&delivery.id) {
            // Status is monotonic: a final delivery keeps its state; the late attempt is still
            // history (it was sent).
            let current = &record.delivery;
            if !current.status.is_final() && current.replays == delivery.replays {
                record.delivery = Delivery {
                    attempts_before_replay: current.attempts_before_replay,
                    ..delivery.clone()
                };
            }
            // The first attempt goes in the record itself; later ones grow the list by one at a
            // time, not to a `Vec`'s first capacity of four (~290 bytes per delivery kept).
            record.attempts.reserve_exact(1);
            record.attempts.push(attempt.clone());
        }
        Ok(())
    }

    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>> {
        let mut history = self.history();
        Ok(history
            .get_mut(id)
            .map(|record| Reopen::apply(&mut record.delivery, resend_delivered)))
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        Ok(self.history().get(id).map(|r| r.delivery.clone()))
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        Ok(self
            .history()
            .before(query.before.as_ref())
            .rev()
            .map(|r| &r.delivery)
            .filter(|d| query.matches(d))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>> {
        Ok(self
            .history()
            .get(delivery)
            .map(|r| r.attempts.to_vec())
            .unwrap_or_default())
    }

    async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
        Ok(self
            .history()
            .iter()
            .map(|r| &r.delivery.event)
            .find(|e| e.id() == id)
            .cloned())
    }

    /// Events are kept with their deliveries: those of the deliveries still in the history.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        Ok(query.page(self.history().iter().map(|r| &r.delivery.event)))
    }

    /// Oldest made first (by id). Events live in their deliveries: one goes with the last.
    async fn prune(&self, older_than: DateTime<Utc>, limit: usize) -> Result<Pruned> {
        let mut history = self.history();
        let old = history.remove_oldest(limit, |d| {
            d.status == DeliveryStatus::Delivered && d.updated_at < older_than
        });
        let mut pruned = Pruned::default();
        let mut events = std::collections::BTreeSet::new();
        for record in old {
            pruned.deliveries += 1;
            pruned.attempts += record.attempts.len() as u64;
            events.insert(record.delivery.event.id().clone());
        }
        if !events.is_empty() {
            for record in history.iter() {
                events.remove(record.delivery.event.id());
            }
        }
        pruned.events = events.len() as u64;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn delivery() -> Delivery {
        Delivery::new(Event::new("a", &1).unwrap(), SubscriptionId::new())
    }

    #[tokio::test]
    async fn history_is_bounded_dropping_the_oldest_first() {
        let store = MemoryStore::with_max_deliveries(3);
        let all: Vec<_> = (0..5)
            .map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                delivery()
            })
            .collect();
        for d in &all {
            store
                .record_deliveries(std::slice::from_ref(d))
                .await
                .unwrap();
        }
        let kept = store
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap();
        let kept_ids: Vec<_> = kept.iter().map(|d| d.id.clone()).collect();
        let newest: Vec<_> = all[2..].iter().rev().map(|d| d.id.clone()).collect();
        assert_eq!(kept_ids, newest);
    }

    #[tokio::test]
    async fn recording_a_delivery_again_keeps_its_state() {
        let store = MemoryStore::new();
        let mut d = delivery();
        store
            .record_deliveries(std::slice::from_ref(&d))
            .await
            .unwrap();
        d.status = crate::DeliveryStatus::Delivered;
        let attempt = Attempt {
            id: crate::AttemptId::new(),
            delivery_id: d.id.clone(),
            number: 1,
            started_at: chrono::Utc::now(),
            duration: std::time::Duration::from_millis(1),
            outcome: crate::AttemptOutcome::Response {
                status: 200,
                body_excerpt: String::new(),
            },
        };
        store.record_attempt(&d, &attempt).await.unwrap();
        let again = Delivery::new(d.event.clone(), d.subscription_id.clone());
        assert_eq!(again.id, d.id);
        store.record_deliveries(&[again]).await.unwrap();
        let kept = store.get_delivery(&d.id).await.unwrap().unwrap();
        assert_eq!(kept.status, crate::DeliveryStatus::Delivered);
        assert_eq!(store.list_attempts(&d.id).await.unwrap().len(), 1);
    }

    /// The contract's pruning behaviours pass on a store that refuses to prune: this one must
    /// not refuse.
    #[tokio::test]
    async fn old_delivered_deliveries_are_pruned_not_refused() {
        let store = MemoryStore::new();
        let mut d = delivery();
        d.status = crate::DeliveryStatus::Delivered;
        store
            .record_deliveries(std::slice::from_ref(&d))
            .await
            .unwrap();
        let later = d.updated_at + chrono::Duration::microseconds(1);
        let pruned = store.prune(later, 10).await.unwrap();
        assert_eq!(
            (pruned.deliveries, pruned.attempts, pruned.events),
            (1, 0, 1)
        );
        assert!(store.get_delivery(&d.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn adding_a_duplicate_subscription_id_is_an_error() {
        let store = MemoryStore::new();
        let s = Subscription::new("a", "http://h.example").unwrap();
        store.add_subscription(s.clone()).await.unwrap();
        assert!(matches!(
            store.add_subscription(s).await,
            Err(Error::SubscriptionExists { .. })
        ));
    }
}
