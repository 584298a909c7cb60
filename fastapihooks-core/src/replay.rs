//! [`Replay`]: a failed delivery is never a dead end — send it again: one delivery, an event's
//! deliveries, or every dead letter matching a filter.
//!
//! A replay keeps the delivery's id (receivers deduplicate on it) and appends new attempts to
//! its history. It takes two steps, each safe to repeat:
//!
//! 1. **The store starts a new run** ([`Store::replay_delivery`]): a dead letter becomes
//!    `pending` again with its `replays` count raised by one, atomically — two replays racing
//!    start one run. A queued task of an earlier run no longer sends: the worker and the store
//!    fence on `replays`.
//! 2. **The backend queues that run** ([`Backend::redeliver`]) onto the queue the sidecar
//!    drains (Redis, the SQL outbox), or into the in-process engine. The queue keys the task on
//!    (delivery id, run), so queuing the same run again is a no-op.
//!
//! An interrupted bulk replay (Ctrl-C, a crash between the two steps) is resumed by running it
//! again: deliveries already replayed are pending and are not started again, and the pending
//! ones of a replay are queued again — a no-op for those already queued. Nothing is skipped and
//! nothing is queued twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::backend::Backend;
use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::Result;
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::query::DeliveryQuery;
use crate::store::Store;

/// What the store did when asked to start a new run of a delivery
/// ([`Store::replay_delivery`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Reopen {
    /// It was final and is pending again, in a new run: queue it.
    Reopened(Delivery),
    /// It is pending already (its run is under way): nothing changed.
    Pending(Delivery),
    /// It was delivered, and the replay did not ask to resend delivered deliveries: nothing
    /// changed.
    Delivered(Delivery),
}

impl Reopen {
    /// Starts a new run of `delivery` in place if its status allows, and says what it did: the
    /// one definition of the transition, for stores that keep deliveries in memory (and for SQL
    /// stores to compute the row they write).
    ///
    /// ```
    /// use fastapihooks_core::{Delivery, DeliveryStatus, Event, SubscriptionId};
    /// use fastapihooks_core::replay::Reopen;
    /// let mut d = Delivery::new(Event::new("order.created", &1)?, SubscriptionId::new());
    /// d.status = DeliveryStatus::Dead;
    /// d.attempts = 8;
    /// assert!(matches!(Reopen::apply(&mut d, false), Reopen::Reopened(_)));
    /// assert_eq!((d.status, d.replays, d.attempts_before_replay), (DeliveryStatus::Pending, 1, 8));
    /// // Replayed again while pending: nothing changes.
    /// assert!(matches!(Reopen::apply(&mut d, false), Reopen::Pending(_)));
    /// assert_eq!(d.replays, 1);
    /// # Ok::<_, fastapihooks_core::Error>(())
    /// ```
    pub fn apply(delivery: &mut Delivery, resend_delivered: bool) -> Reopen {
        match delivery.status {
            DeliveryStatus::Pending => Reopen::Pending(delivery.clone()),
            DeliveryStatus::Delivered if !resend_delivered => Reopen::Delivered(delivery.clone()),
            DeliveryStatus::Delivered | DeliveryStatus::Failed | DeliveryStatus::Dead => {
                // Microseconds: what SQL stores keep, so the delivery returned is the one stored.
                let now = Utc::now().trunc_subsecs(6);
                delivery.status = DeliveryStatus::Pending;
                delivery.replays = delivery.replays.saturating_add(1);
                delivery.attempts_before_replay = delivery.attempts;
                delivery.next_attempt_at = Some(now);
                delivery.updated_at = now;
                Reopen::Reopened(delivery.clone())
            }
        }
    }

    /// The delivery, as it is now.
    pub fn delivery(&self) -> &Delivery {
        match self {
            Reopen::Reopened(d) | Reopen::Pending(d) | Reopen::Delivered(d) => d,
        }
    }
}

/// What the replay of one delivery came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// A new run was started and queued.
    Queued,
    /// A run started by an earlier, interrupted replay had not been queued: it is now.
    Resumed,
    /// Already pending (on its way, or queued by an earlier replay): nothing to do.
    AlreadyPending,
    /// Delivered, and not resent: resending a delivered delivery needs
    /// [`Replay::resend_delivered`].
    Delivered,
    /// Its subscription is disabled: enable it first (a run queued now would not be sent).
    SubscriptionDisabled,
    /// No delivery has this id.
    NotFound,
}

impl ReplayOutcome {
    /// The lower-case name used in the CLI's output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Resumed => "resumed",
            Self::AlreadyPending => "already_pending",
            Self::Delivered => "delivered",
            Self::SubscriptionDisabled => "subscription_disabled",
            Self::NotFound => "not_found",
        }
    }
}

/// Counts of what a replay of several deliveries came to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ReplaySummary {
    /// New runs started and queued.
    pub queued: u64,
    /// Runs of an interrupted replay queued now.
    pub resumed: u64,
    /// Already pending: nothing to do.
    pub already_pending: u64,
    /// Delivered and not resent.
    pub delivered: u64,
    /// Left alone because their subscription is disabled.
    pub subscription_disabled: u64,
    /// Ids that named no delivery.
    pub not_found: u64,
}

impl ReplaySummary {
    /// Counts one more delivery that came to `outcome`.
    pub fn add(&mut self, outcome: ReplayOutcome) {
        let slot = match outcome {
            ReplayOutcome::Queued => &mut self.queued,
            ReplayOutcome::Resumed => &mut self.resumed,
            ReplayOutcome::AlreadyPending => &mut self.already_pending,
            ReplayOutcome::Delivered => &mut self.delivered,
            ReplayOutcome::SubscriptionDisabled => &mut self.subscription_disabled,
            ReplayOutcome::NotFound => &mut self.not_found,
        };
        *slot += 1;
    }

    /// Deliveries looked at.
    pub fn total(&self) -> u64 {
        self.queued
            + self.resumed
            + self.already_pending
            + self.delivered
            + self.subscription_disabled
            + self.not_found
    }

    /// Deliveries that go out again because of this replay (queued and resumed).
    pub fn sent_again(&self) -> u64 {
        self.queued + self.resumed
    }
}

/// Replays through the same path as every delivery: the store's history and the backend the
/// sidecar (or the in-process engine) drains.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<fastapihooks_core::SqlStore>, queue: std::sync::Arc<fastapihooks_core::backend::RedisBackend>) -> fastapihooks_core::Result<()> {
/// use fastapihooks_core::{DeliveryQuery, DeliveryStatus};
/// use fastapihooks_core::replay::Replay;
///
/// let replay = Replay::new(store, queue);
/// // Every dead letter of the last two hours for `order.*` events.
/// let query = DeliveryQuery::status(DeliveryStatus::Dead)
///     .event("order.*")?
///     .since(chrono::Utc::now() - chrono::Duration::hours(2));
/// let summary = replay.matching(&query, |progress| eprintln!("{} queued", progress.queued)).await?;
/// println!("{} deliveries go out again", summary.sent_again());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Replay {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    resend_delivered: bool,
    concurrency: usize,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("resend_delivered", &self.resend_delivered)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Deliveries read per page by a bulk replay.
const PAGE: usize = 500;

impl Replay {
    /// Replays recorded in `store`, queued through `backend` (the one the application
    /// publishes through, or the sidecar drains).
    pub fn new(store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Self {
        Self {
            store,
            backend,
            resend_delivered: false,
            concurrency: 16,
        }
    }

    /// Sends delivered deliveries again too (off by default: only dead letters are replayed,
    /// and a delivered one is reported as [`ReplayOutcome::Delivered`]).
    pub fn resend_delivered(mut self, yes: bool) -> Self {
        self.resend_delivered = yes;
        self
    }

    /// How many deliveries a bulk replay works on at once (default 16, at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Replays one delivery.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<ReplayOutcome> {
        self.one(id, &mut HashMap::new()).await
    }

    /// Replays the deliveries of one event: to every subscription, or to `subscription` only.
    pub async fn event(
        &self,
        event: &EventId,
        subscription: Option<&SubscriptionId>,
    ) -> Result<ReplaySummary> {
        let mut query = DeliveryQuery::default().event_id(event.clone());
        query.subscription_id = subscription.cloned();
        self.matching(&query, |_| {}).await
    }

    /// Replays every delivery matching `query` — its status if it names one, else every dead
    /// letter (failed and dead, and delivered too with [`resend_delivered`](Self::resend_delivered))
    /// — calling `progress` after each delivery. Run again after an interruption, it resumes: see
    /// the [module docs](self). The query's `before` and `limit` are ignored: every page is read.
    pub async fn matching(
        &self,
        query: &DeliveryQuery,
        mut progress: impl FnMut(&ReplaySummary),
    ) -> Result<ReplaySummary> {
        let mut summary = ReplaySummary::default();
        let mut subscriptions = HashMap::new();
        // First what an interrupted replay left pending and perhaps unqueued; then the rest.
        let mut resumed = self.page_query(query, DeliveryStatus::Pending);
        loop {
            let page = self.next_page(&mut resumed).await?;
            if page.is_empty() {
                break;
            }
            for d in page.iter().filter(|d| d.replays > 0) {
                if self.resume(&d.id, &mut subscriptions).await? {
                    summary.add(ReplayOutcome::Resumed);
                    progress(&summary);
                }
            }
        }
        for status in self.statuses(query) {
            let mut page_query = self.page_query(query, status);
            loop {
                let page = self.next_page(&mut page_query).await?;
                if page.is_empty() {
                    break;
                }
                self.replay_page(&page, &mut subscriptions, &mut summary, &mut progress)
                    .await?;
            }
        }
        Ok(summary)
    }

    /// How many deliveries [`matching`](Self::matching) would replay (for a dry run): those
    /// with a status it replays, whatever their subscription.
    pub async fn count(&self, query: &DeliveryQuery) -> Result<u64> {
        let mut n = 0u64;
        for status in self.statuses(query) {
            let mut page_query = self.page_query(query, status);
            loop {
                let page = self.next_page(&mut page_query).await?;
                if page.is_empty() {
                    break;
                }
                n += page.len() as u64;
            }
        }
        Ok(n)
    }

    /// The next page of `query`, moving its cursor past it; empty at the end.
    async fn next_page(&self, query: &mut DeliveryQuery) -> Result<Vec<Delivery>> {
        let page = self.store.list_deliveries(query).await?;
        if let Some(last) = page.last() {
            query.before = Some(last.id.clone());
        }
        Ok(page)
    }

    /// Replays one page, `concurrency` deliveries at a time.
    async fn replay_page(
        &self,
        page: &[Delivery],
        subscriptions: &mut HashMap<SubscriptionId, bool>,
        summary: &mut ReplaySummary,
        progress: &mut impl FnMut(&ReplaySummary),
    ) -> Result<()> {
        // The page's subscriptions first: a look-up made while replays are under way would
        // wait for a connection they hold.
        let mut enabled = Vec::with_capacity(page.len());
        for d in page {
            enabled.push(
                self.subscription_enabled(&d.subscription_id, subscriptions)
                    .await?,
            );
        }
        let mut running = FuturesUnordered::new();
        let mut rows = page.iter().zip(enabled);
        loop {
            while running.len() < self.concurrency {
                let Some((d, enabled)) = rows.next() else {
                    break;
                };
                running.push(self.reopen_and_queue(&d.id, enabled));
            }
            let Some(outcome) = running.next().await else {
                return Ok(());
            };
            summary.add(outcome?);
            progress(summary);
        }
    }

    /// The statuses a bulk replay reads.
    fn statuses(&self, query: &DeliveryQuery) -> Vec<DeliveryStatus> {
        match query.status {
            Some(status) => vec![status],
            None if self.resend_delivered => vec![
                DeliveryStatus::Failed,
                DeliveryStatus::Dead,
                DeliveryStatus::Delivered,
            ],
            None => vec![DeliveryStatus::Failed, DeliveryStatus::Dead],
        }
    }

    fn page_query(&self, query: &DeliveryQuery, status: DeliveryStatus) -> DeliveryQuery {
        DeliveryQuery {
            status: Some(status),
            before: None,
            limit: PAGE,
            ..query.clone()
        }
    }

    async fn one(
        &self,
        id: &DeliveryId,
        subscriptions: &mut HashMap<SubscriptionId, bool>,
    ) -> Result<ReplayOutcome> {
        let Some(current) = self.store.get_delivery(id).await? else {
            return Ok(ReplayOutcome::NotFound);
        };
        let enabled = self
            .subscription_enabled(&current.subscription_id, subscriptions)
            .await?;
        if current.status.is_final() {
            return self.reopen_and_queue(id, enabled).await;
        }
        if self.resume(id, subscriptions).await? {
            return Ok(ReplayOutcome::Resumed);
        }
        Ok(ReplayOutcome::AlreadyPending)
    }

    /// Queues the run of an earlier replay that may never have been queued (interrupted between
    /// its two steps): one that is pending, has made no attempt yet, and whose subscription is
    /// enabled. Queuing a run that was queued is a no-op for the backend; the state is read
    /// fresh first, so a run that finished meanwhile is not queued again. (On the outbox, a run
    /// that finishes in the instant between that read and the enqueue can leave one task
    /// behind: the worker finds the delivery final and drops it without sending.)
    async fn resume(
        &self,
        id: &DeliveryId,
        subscriptions: &mut HashMap<SubscriptionId, bool>,
    ) -> Result<bool> {
        let Some(current) = self.store.get_delivery(id).await? else {
            return Ok(false);
        };
        if !unstarted(&current)
            || !self
                .subscription_enabled(&current.subscription_id, subscriptions)
                .await?
            || !self.backend.redeliver(&current).await?
        {
            return Ok(false);
        }
        // Queued again — but the interrupted run's own task may have been attempted, recorded
        // and settled between the read above and the queueing (a task is settled only after
        // its attempt is recorded, so a read now shows it). The task just queued then finds the
        // delivery done and sends nothing: it does not go out again because of this replay.
        Ok(self
            .store
            .get_delivery(id)
            .await?
            .is_some_and(|now| unstarted(&now)))
    }

    async fn reopen_and_queue(&self, id: &DeliveryId, enabled: bool) -> Result<ReplayOutcome> {
        if !enabled {
            return Ok(ReplayOutcome::SubscriptionDisabled);
        }
        Ok(
            match self
                .store
                .replay_delivery(id, self.resend_delivered)
                .await?
            {
                None => ReplayOutcome::NotFound,
                Some(Reopen::Reopened(d)) => {
                    self.backend.redeliver(&d).await?;
                    tracing::info!(delivery = %d.id, run = d.replays, "delivery replayed");
                    ReplayOutcome::Queued
                }
                Some(Reopen::Pending(_)) => ReplayOutcome::AlreadyPending,
                Some(Reopen::Delivered(_)) => ReplayOutcome::Delivered,
            },
        )
    }

    /// Whether a delivery to this subscription would be sent: not when the store has it
    /// disabled. A subscription the store does not know (a subscriber kept in code) counts as
    /// enabled.
    async fn subscription_enabled(
        &self,
        id: &SubscriptionId,
        known: &mut HashMap<SubscriptionId, bool>,
    ) -> Result<bool> {
        if let Some(enabled) = known.get(id) {
            return Ok(*enabled);
        }
        let enabled = self
            .store
            .get_subscription(id)
            .await?
            .is_none_or(|s| s.enabled);
        known.insert(id.clone(), enabled);
        Ok(enabled)
    }
}

/// A delivery whose replay run was started in the store and has had no attempt yet: what an
/// interrupted bulk replay may have left unqueued.
fn unstarted(delivery: &Delivery) -> bool {
    delivery.status == DeliveryStatus::Pending
        && delivery.replays > 0
        && delivery.attempts == delivery.attempts_before_replay
}
