//! [`BatchedStore`]: a [`Store`] whose hot calls are group-committed — what the sidecar's
//! worker puts in front of the store it records into.
//!
//! The calls every task makes — read a delivery, read a subscription, find the subscriptions
//! of an event, record a fan-out, record an attempt — each join a [`GroupCommit`]: the calls
//! made while a batch is being written go together in the next one, through the store's batch
//! methods ([`Store::get_deliveries`], [`Store::get_subscriptions`],
//! [`Store::record_attempts`], [`Store::record_first_attempts`], one
//! [`Store::record_new_deliveries`] for several fan-outs, one
//! [`Store::matching_shared`] per distinct event name and owner, its subscriptions
//! shared by the fan-outs that asked). Every other call goes straight
//! through. What each call means is unchanged; only the round trips are shared.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{DeliveryQuery, EventQuery, Pruned, Store, SubscriptionQuery};
use crate::delivery::{Attempt, Delivery};
use crate::error::Result;
use crate::event::{Event, EventName};
use crate::group_commit::{Flush, GroupCommit, fail_all};
use crate::health::{Disabled, EndpointHealth};
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::replay::Reopen;
use crate::subscription::Subscription;

/// Requests per batched call. Under load a sidecar's attempt records fill every batch (the reads,
/// of several ids each, do not): 256 per batch took less CPU per delivery than 128, on the
/// sidecar's side and on PostgreSQL's, and delivered 1–11 % more per second (BENCHMARKS.md,
/// session 27).
const MAX_BATCH: usize = 256;
/// Batched calls of one kind in flight at once: one. The next batch fills while it runs, so
/// under load the batches grow instead of splitting into more, smaller statements — the
/// database's work per delivery is mostly per statement and per commit. Measured with the
/// sidecar against PostgreSQL (BENCHMARKS.md, session 9): one read and one write of each kind
/// in flight took 15 % less sidecar CPU per delivery and delivered more per second than two
/// reads and three writes, with the same idle latency. Two attempt writes in flight (session
/// 27) delivered up to 14 % more per second, but cost PostgreSQL up to 22 % more CPU per
/// delivery (two inserters on the same index pages): not made.
const IN_FLIGHT: usize = 1;

/// Group-commits the hot calls of `inner` (see the [module docs](self)). Needs a tokio runtime
/// to be built: the batches are written by tasks of their own.
pub(crate) struct BatchedStore {
    inner: Arc<dyn Store>,
    get_delivery: GroupCommit<DeliveryId, Option<Delivery>>,
    get_subscription: GroupCommit<SubscriptionId, Option<Subscription>>,
    matching: GroupCommit<(EventName, Option<String>), Vec<Arc<Subscription>>>,
    record_deliveries: GroupCommit<Vec<Delivery>, Option<Vec<bool>>>,
    record_attempt: GroupCommit<(Delivery, Attempt), ()>,
    record_first_attempt: GroupCommit<(Delivery, Attempt), ()>,
}

impl std::fmt::Debug for BatchedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedStore").finish_non_exhaustive()
    }
}

impl BatchedStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            get_delivery: GroupCommit::start(
                "store.get_deliveries",
                MAX_BATCH,
                IN_FLIGHT,
                get_deliveries(inner.clone()),
            ),
            get_subscription: GroupCommit::start(
                "store.get_subscriptions",
                MAX_BATCH,
                IN_FLIGHT,
                get_subscriptions(inner.clone()),
            ),
            matching: GroupCommit::start(
                "store.matching",
                MAX_BATCH,
                IN_FLIGHT,
                matching(inner.clone()),
            ),
            record_deliveries: GroupCommit::start(
                "store.record_deliveries",
                MAX_BATCH,
                IN_FLIGHT,
                record_deliveries(inner.clone()),
            ),
            record_attempt: GroupCommit::start(
                "store.record_attempts",
                MAX_BATCH,
                IN_FLIGHT,
                record_attempts(inner.clone()),
            ),
            record_first_attempt: GroupCommit::start(
                "store.record_first_attempts",
                MAX_BATCH,
                IN_FLIGHT,
                record_first_attempts(inner.clone()),
            ),
            inner,
        }
    }
}

fn get_deliveries(store: Arc<dyn Store>) -> Flush<DeliveryId, Option<Delivery>> {
    read_by_id(
        "store.get_deliveries",
        move |ids: Vec<DeliveryId>| {
            let store = store.clone();
            async move { store.get_deliveries(&ids).await }
        },
        |d: &Delivery| &d.id,
    )
}

fn get_subscriptions(store: Arc<dyn Store>) -> Flush<SubscriptionId, Option<Subscription>> {
    read_by_id(
        "store.get_subscriptions",
        move |ids: Vec<SubscriptionId>| {
            let store = store.clone();
            async move { store.get_subscriptions(&ids).await }
        },
        |s: &Subscription| &s.id,
    )
}

/// A batched read by id: each distinct id of the batch asked once, each caller answered with
/// what has its id (`None` when the store has nothing under it).
fn read_by_id<Id, T, F, Fut>(
    what: &'static str,
    read: F,
    id_of: fn(&T) -> &Id,
) -> Flush<Id, Option<T>>
where
    Id: Clone + Eq + std::hash::Hash + Send + Sync + 'static,
    T: Clone + Send + 'static,
    F: Fn(Vec<Id>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<T>>> + Send + 'static,
{
    let read = Arc::new(read);
    Arc::new(move |ids: Vec<Id>| {
        let read = read.clone();
        Box::pin(async move {
            let distinct: Vec<Id> = ids
                .iter()
                .cloned()
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            match read(distinct).await {
                Ok(found) => {
                    let by_id: HashMap<Id, T> =
                        found.into_iter().map(|t| (id_of(&t).clone(), t)).collect();
                    ids.iter().map(|id| Ok(by_id.get(id).cloned())).collect()
                }
                Err(e) => fail_all(what, ids.len(), &e),
            }
        })
    })
}

/// One `matching` per distinct name and owner in the batch, its subscriptions shared by every
/// caller that asked for them.
fn matching(store: Arc<dyn Store>) -> Flush<(EventName, Option<String>), Vec<Arc<Subscription>>> {
    Arc::new(move |keys: Vec<(EventName, Option<String>)>| {
        let store = store.clone();
        Box::pin(async move {
            let mut answers: HashMap<(EventName, Option<String>), Vec<Arc<Subscription>>> =
                HashMap::new();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                if !answers.contains_key(&key) {
                    match store.matching_shared(&key.0, key.1.as_deref()).await {
                        Ok(found) => {
                            answers.insert(key.clone(), found);
                        }
                        Err(e) => {
                            out.extend(fail_all("store.matching", 1, &e));
                            continue;
                        }
                    }
                }
                out.push(Ok(answers.get(&key).cloned().unwrap_or_default()));
            }
            out
        })
    })
}

/// The fan-outs of the batch in one call, each told which of its deliveries were new when the
/// store can tell.
fn record_deliveries(store: Arc<dyn Store>) -> Flush<Vec<Delivery>, Option<Vec<bool>>> {
    Arc::new(move |fan_outs: Vec<Vec<Delivery>>| {
        let store = store.clone();
        Box::pin(async move {
            let all: Vec<Delivery> = fan_outs.iter().flatten().cloned().collect();
            match store.record_new_deliveries(&all).await {
                Ok(Some(new)) if new.len() == all.len() => {
                    let mut new = new.into_iter();
                    fan_outs
                        .iter()
                        .map(|fan_out| Ok(Some(new.by_ref().take(fan_out.len()).collect())))
                        .collect()
                }
                // A store that cannot tell (or miscounts) tells nothing.
                Ok(_) => fan_outs.iter().map(|_| Ok(None)).collect(),
                Err(e) => fail_all("store.record_deliveries", fan_outs.len(), &e),
            }
        })
    })
}

fn record_attempts(store: Arc<dyn Store>) -> Flush<(Delivery, Attempt), ()> {
    Arc::new(move |attempts: Vec<(Delivery, Attempt)>| {
        let store = store.clone();
        Box::pin(async move {
            match store.record_attempts(&attempts).await {
                Ok(()) => attempts.iter().map(|_| Ok(())).collect(),
                Err(e) => fail_all("store.record_attempts", attempts.len(), &e),
            }
        })
    })
}

fn record_first_attempts(store: Arc<dyn Store>) -> Flush<(Delivery, Attempt), ()> {
    Arc::new(move |attempts: Vec<(Delivery, Attempt)>| {
        let store = store.clone();
        Box::pin(async move {
            match store.record_first_attempts(&attempts).await {
                Ok(()) => attempts.iter().map(|_| Ok(())).collect(),
                Err(e) => fail_all("store.record_first_attempts", attempts.len(), &e),
            }
        })
    })
}

#[async_trait]
impl Store for BatchedStore {
    async fn add_subscription(&self, subscription: Subscription) -> Result<()> {
        self.inner.add_subscription(subscription).await
    }
    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.get_subscription.call(id.clone()).await
    }
    async fn update_subscription(&self, subscription: Subscription) -> Result<()> {
        self.inner.update_subscription(subscription).await
    }
    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        self.inner.remove_subscription(id).await
    }
    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        self.inner.list_subscriptions(query).await
    }
    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        let shared = self.matching_shared(event, owner).await?;
        Ok(shared.iter().map(|s| Subscription::clone(s)).collect())
    }
    async fn matching_shared(
        &self,
        event: &EventName,
        owner: Option<&str>,
    ) -> Result<Vec<Arc<Subscription>>> {
        self.matching
            .call((event.clone(), owner.map(str::to_owned)))
            .await
    }
    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        self.inner.set_enabled(id, enabled).await
    }
    async fn disable_subscription(&self, id: &SubscriptionId, disabled: Disabled) -> Result<bool> {
        self.inner.disable_subscription(id, disabled).await
    }
    async fn record_health(
        &self,
        id: &SubscriptionId,
        delivered: bool,
        at: DateTime<Utc>,
    ) -> Result<EndpointHealth> {
        self.inner.record_health(id, delivered, at).await
    }
    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.record_deliveries
            .call(deliveries.to_vec())
            .await
            .map(drop)
    }
    async fn record_new_deliveries(&self, deliveries: &[Delivery]) -> Result<Option<Vec<bool>>> {
        self.record_deliveries.call(deliveries.to_vec()).await
    }
    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        self.record_attempt
            .call((delivery.clone(), attempt.clone()))
            .await
    }
    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>> {
        self.inner.replay_delivery(id, resend_delivered).await
    }
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.get_delivery.call(id.clone()).await
    }
    fn keeps_events(&self) -> bool {
        self.inner.keeps_events()
    }
    /// Several at once join one batch (as single calls do): the ids of a fan-out are read
    /// with those of other fan-outs and tasks.
    async fn get_deliveries(&self, ids: &[DeliveryId]) -> Result<Vec<Delivery>> {
        let calls = ids.iter().map(|id| self.get_delivery.call(id.clone()));
        let found = futures_util::future::try_join_all(calls).await?;
        Ok(found.into_iter().flatten().collect())
    }
    async fn get_subscriptions(&self, ids: &[SubscriptionId]) -> Result<Vec<Subscription>> {
        self.inner.get_subscriptions(ids).await
    }
    /// Several at once join one batch (as single calls do).
    async fn record_first_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        let calls = attempts
            .iter()
            .map(|pair| self.record_first_attempt.call(pair.clone()));
        futures_util::future::try_join_all(calls).await.map(drop)
    }
    async fn record_first_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        self.record_first_attempt
            .call((delivery.clone(), attempt.clone()))
            .await
    }
    async fn record_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        self.inner.record_attempts(attempts).await
    }
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        self.inner.list_deliveries(query).await
    }
    async fn count_deliveries(
        &self,
        query: &DeliveryQuery,
        by: crate::delivery_counts::CountBy,
    ) -> Result<Vec<crate::delivery_counts::DeliveryCount>> {
        self.inner.count_deliveries(query, by).await
    }
    async fn count_events(
        &self,
        query: &EventQuery,
    ) -> Result<Vec<crate::delivery_counts::EventNameCount>> {
        self.inner.count_events(query).await
    }
    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>> {
        self.inner.list_attempts(delivery).await
    }
    async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
        self.inner.get_event(id).await
    }
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        self.inner.list_events(query).await
    }
    async fn prune(&self, older_than: DateTime<Utc>, limit: usize) -> Result<Pruned> {
        self.inner.prune(older_than, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn ids(subscriptions: &[Arc<Subscription>]) -> Vec<SubscriptionId> {
        let mut ids: Vec<_> = subscriptions.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        ids
    }

    /// Fan-outs of different events asked together — one batch, several names and owners —
    /// each get the subscriptions of their own event, as the store matches them.
    #[tokio::test]
    async fn shared_matching_answers_each_event_of_a_batch_with_its_own_subscriptions() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for (filter, owner) in [
            ("order.*", None),
            ("order.created", Some("t1")),
            ("invoice.paid", None),
            ("*", Some("t2")),
        ] {
            let mut sub = Subscription::new(filter, "https://receiver.example/hooks").unwrap();
            sub.owner = owner.map(str::to_owned);
            inner.add_subscription(sub).await.unwrap();
        }
        let batched = BatchedStore::new(inner.clone());
        let keys: Vec<(EventName, Option<&str>)> = [
            ("order.created", None),
            ("order.created", Some("t1")),
            ("invoice.paid", Some("t2")),
            ("other", None),
            ("order.created", None),
        ]
        .into_iter()
        .map(|(name, owner)| (EventName::new(name).unwrap(), owner))
        .collect();
        let answers = futures_util::future::try_join_all(
            keys.iter()
                .map(|(name, owner)| batched.matching_shared(name, *owner)),
        )
        .await
        .unwrap();
        for ((name, owner), answer) in keys.iter().zip(&answers) {
            let expected = inner.matching_shared(name, *owner).await.unwrap();
            assert_eq!(ids(answer), ids(&expected), "{name} of {owner:?}");
        }
        assert!(answers.iter().any(|a| a.len() > 1), "{answers:?}");
    }

    /// A first attempt recorded on its own joins the batch of first attempts: its delivery is
    /// written in its state after the attempt, with the attempt.
    #[tokio::test]
    async fn a_first_attempt_recorded_alone_is_written_with_its_delivery() {
        let inner: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let batched = BatchedStore::new(inner.clone());
        let event = Event::new("order.created", &serde_json::json!({ "id": 1 })).unwrap();
        let mut delivery = Delivery::new(event, SubscriptionId::new());
        let attempt = Attempt {
            id: crate::id::AttemptId::new(),
            delivery_id: delivery.id.clone(),
            number: 1,
            started_at: Utc::now(),
            duration: std::time::Duration::from_millis(3),
            outcome: crate::delivery::AttemptOutcome::Response {
                status: 200,
                body_excerpt: String::new(),
            },
        };
        delivery.attempts = 1;
        delivery.status = crate::delivery::DeliveryStatus::Delivered;

        batched
            .record_first_attempt(&delivery, &attempt)
            .await
            .unwrap();

        let stored = inner.get_delivery(&delivery.id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&delivery));
        assert_eq!(inner.list_attempts(&delivery.id).await.unwrap(), [attempt]);
    }
}
