//! [`Store`]: what must outlive a process — subscriptions and the delivery history.
//!
//! [`MemoryStore`] ships for development and tests; a SQL store and users' own stores implement
//! the same trait. Every implementation must agree with [`Subscription::receives`] in `matching`.

mod batched;
mod memory;
mod retention;
#[cfg(feature = "sql")]
pub mod sql;

pub(crate) use batched::BatchedStore;
pub use memory::MemoryStore;
pub use retention::{MAX_PRUNE_BATCHES, Pruned, prune_history};
#[cfg(feature = "sql")]
pub use sql::{SqlStore, SqlStoreOptions};

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

pub use crate::query::{DeliveryQuery, EventQuery};

use crate::delivery::{Attempt, Delivery};
use crate::delivery_counts::{CountBy, DeliveryCount, EventNameCount};
use crate::error::Result;
use crate::event::{Event, EventName};
use crate::health::{Disabled, EndpointHealth};
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::replay::Reopen;
use crate::subscription::Subscription;

/// Which subscriptions to list, oldest first, one page at a time.
#[derive(Clone, Debug)]
pub struct SubscriptionQuery {
    /// Only this owner's subscriptions.
    pub owner: Option<String>,
    /// Keyset pagination: only subscriptions made after this one.
    pub after: Option<SubscriptionId>,
    /// Page size.
    pub limit: usize,
}

impl Default for SubscriptionQuery {
    fn default() -> Self {
        Self {
            owner: None,
            after: None,
            limit: 100,
        }
    }
}

/// How many single calls the default batch methods of [`Store`] make at once
/// (`get_deliveries`, `get_subscriptions`, `record_attempts`): a store without batch
/// statements still has its calls overlap, and the sidecar runs one batch of each kind at a
/// time.
pub const DEFAULT_BATCH_CONCURRENCY: usize = 8;

/// The default batch methods' single `calls`, [`DEFAULT_BATCH_CONCURRENCY`] at a time; the
/// first error, or every answer (in any order). The calls come collected: a lazy `map` in the
/// stream trips the `Send` check of the trait's futures.
async fn at_once<T, F>(calls: Vec<F>) -> Result<Vec<T>>
where
    F: std::future::Future<Output = Result<T>>,
{
    stream::iter(calls)
        .buffer_unordered(DEFAULT_BATCH_CONCURRENCY)
        .try_collect()
        .await
}

/// Subscriptions and delivery history.
///
/// The in-process backend records an event's deliveries at fan-out, before any attempt
/// ([`record_deliveries`](Self::record_deliveries)); the sidecar records each with its first
/// attempt ([`record_first_attempts`](Self::record_first_attempts)). After that, each attempt
/// is recorded together with the delivery's new state. Either way a redelivered event never
/// re-sends to a subscription whose delivery was recorded delivered.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a subscription; its id must be new.
    async fn add_subscription(&self, subscription: Subscription) -> Result<()>;
    /// The subscription with this id, if any.
    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>>;
    /// Replaces a subscription (matched by id); `SubscriptionNotFound` if there is none. Its
    /// failure streak (`health`) should be kept as stored — it is the engine's to write, and an
    /// update read before a failure was counted must not undo it — unless the store relies on
    /// the default `record_health`, which writes the streak through this method.
    async fn update_subscription(&self, subscription: Subscription) -> Result<()>;
    /// Removes a subscription; `SubscriptionNotFound` if there is none.
    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()>;
    /// A page of subscriptions, oldest first.
    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>>;
    /// The enabled subscriptions that receive an event of this name and owner.
    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>>;
    /// [`matching`](Self::matching), each subscription shared rather than copied: what the
    /// engine fans an event out to. A store that keeps or batches its answers hands every
    /// caller the same subscriptions; the default wraps `matching`'s answer.
    async fn matching_shared(
        &self,
        event: &EventName,
        owner: Option<&str>,
    ) -> Result<Vec<Arc<Subscription>>> {
        let found = self.matching(event, owner).await?;
        Ok(found.into_iter().map(Arc::new).collect())
    }
    /// Enables or disables a subscription by hand. Enabling also clears why the engine
    /// disabled it and its failure streak: it starts afresh. The default writes through
    /// `update_subscription`; a store whose update keeps the streak overrides this too.
    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        let mut sub = self
            .get_subscription(id)
            .await?
            .ok_or_else(|| crate::Error::SubscriptionNotFound { id: id.to_string() })?;
        sub.enabled = enabled;
        if enabled {
            sub.disabled = None;
            sub.health = EndpointHealth::default();
        }
        self.update_subscription(sub).await
    }

    /// Disables an enabled subscription, recording why and when (a 410 Gone, a failure streak
    /// too long for the [`HealthPolicy`](crate::health::HealthPolicy)). Returns whether this call
    /// disabled it: `false` when it was disabled already (or is not in the store), so one
    /// disabling is reported once however many sidecars see the failures.
    async fn disable_subscription(&self, id: &SubscriptionId, disabled: Disabled) -> Result<bool> {
        let Some(mut sub) = self.get_subscription(id).await? else {
            return Ok(false);
        };
        if !sub.enabled {
            return Ok(false);
        }
        sub.enabled = false;
        sub.disabled = Some(Box::new(disabled));
        self.update_subscription(sub).await?;
        Ok(true)
    }

    /// Adds one attempt's outcome at `at` to the subscription's failure streak
    /// ([`EndpointHealth::after`]) and returns the streak after it (healthy when the store does
    /// not hold the subscription: a subscriber kept in code has no stored health).
    async fn record_health(
        &self,
        id: &SubscriptionId,
        delivered: bool,
        at: DateTime<Utc>,
    ) -> Result<EndpointHealth> {
        let Some(mut sub) = self.get_subscription(id).await? else {
            return Ok(EndpointHealth::default());
        };
        sub.health = sub.health.after(delivered, at);
        let health = sub.health;
        self.update_subscription(sub).await?;
        Ok(health)
    }

    /// Records new deliveries, before any attempt (the in-process backend's fan-out, the
    /// sidecar's hand-offs to the queue). Idempotent: a delivery whose id is
    /// already recorded is left as it is (fan-out run again for a redelivered event must not reset
    /// a delivery that already succeeded).
    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()>;
    /// [`record_deliveries`](Self::record_deliveries), saying for each delivery, in order,
    /// whether this call recorded it (`true`) or found it recorded already (`false`); `None`
    /// when the store cannot tell. A delivery given twice in one call is new at most once. The
    /// default records them and cannot tell.
    async fn record_new_deliveries(&self, deliveries: &[Delivery]) -> Result<Option<Vec<bool>>> {
        self.record_deliveries(deliveries).await?;
        Ok(None)
    }
    /// Records an attempt and the delivery's new state after it. The state is taken only while
    /// the stored delivery is pending and in the same run (`replays`): a final status never goes
    /// back, and a late attempt of an earlier run is history, not the current state.
    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()>;
    /// Starts a new run of a delivery, for a replay, in one atomic step: a dead letter (failed
    /// or dead) — or, with `resend_delivered`, a delivered one — becomes pending again with
    /// `replays` incremented and `attempts_before_replay` set to its attempts so far; its
    /// attempts stay. A pending delivery, or a delivered one without `resend_delivered`, is left
    /// as it is. Two replays racing start one run: the other sees it pending. `None` when there
    /// is no such delivery.
    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>>;
    /// The delivery with this id, if any.
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>>;
    /// Whether the event of every delivery that is not final stays readable through
    /// [`get_delivery`](Self::get_delivery) (payload included) until that delivery is final.
    /// When it does, the sidecar queues delivery tasks with the event's id only and reads the
    /// payload back when it sends: the payload is stored once per event, not once per
    /// subscription. The default says no (a store that forgets history under a bound, like
    /// [`MemoryStore`], must); the SQL store keeps them (retention removes only delivered
    /// deliveries and events none refers to).
    fn keeps_events(&self) -> bool {
        false
    }
    /// The deliveries with these ids that exist, in any order: the sidecar reads the state of
    /// a batch of tasks at once. The default asks [`get_delivery`](Self::get_delivery) for
    /// each, [`DEFAULT_BATCH_CONCURRENCY`] at a time; a store that can read them in one query
    /// should.
    async fn get_deliveries(&self, ids: &[DeliveryId]) -> Result<Vec<Delivery>> {
        let calls = ids.iter().map(|id| self.get_delivery(id)).collect();
        Ok(at_once(calls).await?.into_iter().flatten().collect())
    }
    /// The subscriptions with these ids that exist, in any order. The default asks
    /// [`get_subscription`](Self::get_subscription) for each, [`DEFAULT_BATCH_CONCURRENCY`] at
    /// a time; a store that can read them in one query should.
    async fn get_subscriptions(&self, ids: &[SubscriptionId]) -> Result<Vec<Subscription>> {
        let calls = ids.iter().map(|id| self.get_subscription(id)).collect();
        Ok(at_once(calls).await?.into_iter().flatten().collect())
    }
    /// [`record_attempt`](Self::record_attempt) for several attempts (of distinct
    /// deliveries), with the same rules for each: the sidecar group-commits the attempts that
    /// end at about the same time. An error means none may be recorded (each is then made
    /// again). The default records them with [`record_attempt`](Self::record_attempt),
    /// [`DEFAULT_BATCH_CONCURRENCY`] at a time — one after the other when one delivery appears
    /// twice, so its attempts keep their order; a store that can write them in one transaction
    /// should.
    async fn record_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        let distinct = attempts
            .iter()
            .map(|(delivery, _)| delivery.id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len()
            == attempts.len();
        if !distinct {
            for (delivery, attempt) in attempts {
                self.record_attempt(delivery, attempt).await?;
            }
            return Ok(());
        }
        let calls = attempts
            .iter()
            .map(|(d, a)| self.record_attempt(d, a))
            .collect();
        at_once(calls).await?;
        Ok(())
    }
    /// Records deliveries that were attempted before they were recorded, each with its first
    /// attempt and in its state after it: what [`record_deliveries`](Self::record_deliveries)
    /// of each delivery as it was before the attempt (pending), then
    /// [`record_attempts`](Self::record_attempts), leave — which is the default. A delivery
    /// recorded meanwhile keeps the rules of `record_attempts` (a final or replayed one keeps
    /// its state; the attempt is still history), and an error may leave a delivery recorded
    /// pending, never in a state its attempt was not recorded with. The sidecar records an
    /// event's deliveries this way when it attempts them on the event's lease: a delivery
    /// delivered at its first attempt is written once, in its final state, instead of inserted
    /// pending and then updated (BENCHMARKS.md, session 16). A store that can write both in one
    /// transaction should.
    ///
    /// ```
    /// # block_on(async {
    /// use fastapihooks_core::{Attempt, AttemptId, AttemptOutcome, Delivery, DeliveryStatus};
    /// use fastapihooks_core::{Event, MemoryStore, Store, SubscriptionId};
    ///
    /// let store = MemoryStore::new();
    /// let event = Event::new("order.created", &serde_json::json!({ "id": 1 }))?;
    /// let mut delivery = Delivery::new(event, SubscriptionId::new());
    /// let attempt = Attempt {
    ///     id: AttemptId::new(),
    ///     delivery_id: delivery.id.clone(),
    ///     number: 1,
    ///     started_at: chrono::Utc::now(),
    ///     duration: std::time::Duration::from_millis(3),
    ///     outcome: AttemptOutcome::Response { status: 200, body_excerpt: String::new() },
    /// };
    /// delivery.attempts = 1;
    /// delivery.status = DeliveryStatus::Delivered;
    /// store.record_first_attempts(&[(delivery.clone(), attempt)]).await?;
    /// let stored = store.get_delivery(&delivery.id).await?.expect("recorded");
    /// assert_eq!(stored.status, DeliveryStatus::Delivered);
    /// assert_eq!(store.list_attempts(&delivery.id).await?.len(), 1);
    /// # Ok::<_, fastapihooks_core::Error>(()) });
    /// # fn block_on<F: std::future::Future<Output = Result<(), fastapihooks_core::Error>>>(f: F) {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap()
    /// # }
    /// ```
    async fn record_first_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        let before: Vec<Delivery> = attempts
            .iter()
            .map(|(d, attempt)| Delivery {
                status: crate::delivery::DeliveryStatus::Pending,
                attempts: attempt.number.saturating_sub(1),
                next_attempt_at: None,
                ..d.clone()
            })
            .collect();
        self.record_deliveries(&before).await?;
        self.record_attempts(attempts).await
    }
    /// One delivery recorded with its first attempt:
    /// [`record_first_attempts`](Self::record_first_attempts) of one, which is the default. A
    /// store that batches its writes (the sidecar's) takes the pair into its next batch as it
    /// is, without a batch of one around it.
    async fn record_first_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        self.record_first_attempts(&[(delivery.clone(), attempt.clone())])
            .await
    }
    /// A page of the deliveries passing every filter of `query` and older than its cursor,
    /// newest first (by id): the deliveries [`DeliveryQuery::matches`] accepts.
    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>>;
    /// The deliveries passing every filter of `query` (its cursor and page size aside),
    /// counted by status per bucket of time or per subscription ([`CountBy`]), sorted by group
    /// then status. The default reads them all page by page; the SQL store counts with one
    /// `GROUP BY`.
    async fn count_deliveries(
        &self,
        query: &DeliveryQuery,
        by: CountBy,
    ) -> Result<Vec<DeliveryCount>> {
        by.bucket_micros()?;
        let mut page = query.clone();
        page.before = None;
        page.limit = 500;
        let mut all = Vec::new();
        loop {
            let found = self.list_deliveries(&page).await?;
            let Some(last) = found.last() else { break };
            page.before = Some(last.id.clone());
            all.extend(found);
        }
        crate::delivery_counts::count(&all, by)
    }
    /// The names of the stored events passing every filter of `query` (its cursor and page
    /// size aside), each with how many events bear it and when the newest was made, sorted by
    /// name. The default reads them all page by page; the SQL store counts with one `GROUP BY`.
    async fn count_events(&self, query: &EventQuery) -> Result<Vec<EventNameCount>> {
        let mut page = query.clone();
        page.before = None;
        page.limit = 500;
        let mut all = Vec::new();
        loop {
            let found = self.list_events(&page).await?;
            let Some(last) = found.last() else { break };
            page.before = Some(last.id().clone());
            all.extend(found);
        }
        Ok(crate::delivery_counts::count_names(&all))
    }
    /// The attempts of a delivery, in order.
    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>>;
    /// The event with this id, if it is stored (events are stored with their deliveries).
    async fn get_event(&self, id: &EventId) -> Result<Option<Event>>;
    /// A page of the stored events passing every filter of `query` and older than its cursor,
    /// newest first (by id): the events [`EventQuery::matches`] accepts.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<Event>>;

    /// Retention: removes at most `limit` **delivered** deliveries whose `updated_at` is before
    /// `older_than`, their attempts, and the events they leave with no delivery at all (an
    /// event is kept while any delivery of it remains). Returns what it removed.
    ///
    /// Failed, dead and pending deliveries are never removed: dead letters stay until they are
    /// replayed (and delivered) or removed by hand. Which of the old deliveries go first is the
    /// store's choice (the SQL store takes the least recently updated).
    ///
    /// One call is one short step — one small transaction on a SQL store, so it holds no lock
    /// for long: to prune everything old, call it again until a call removes nothing
    /// ([`Pruned::is_empty`]). For a dry run, list the deliveries that would go:
    /// `DeliveryQuery::status(Delivered).until(older_than)` (made before the cut-off) and keep
    /// those with `updated_at < older_than`.
    ///
    /// A delivery removed is forgotten: if fan-out ever ran again for its event (a queue
    /// redelivering a message older than the retention), it would be recorded and sent anew.
    ///
    /// The default refuses with [`Error::Unsupported`](crate::Error::Unsupported) (`store.prune`):
    /// a store of one's own that does not prune says so, rather than letting a retention setting
    /// be silently ignored.
    async fn prune(&self, older_than: DateTime<Utc>, limit: usize) -> Result<Pruned> {
        let _ = (older_than, limit);
        Err(crate::Error::Unsupported {
            what: "store.prune",
        })
    }
}
