//! [`EventQuery`] and [`DeliveryQuery`]: what happened, filtered, newest first, one page at a
//! time.
//!
//! Both page by keyset on the id: ids are ULIDs and sort by time, so a page is "the `limit`
//! newest rows older than `before`", and the next page starts before the last id of this one.
//! Rows inserted between two pages are newer than the cursor (or, for a delivery fanned out late
//! from an old event, land among the rows not read yet): a page never skips nor repeats a row.
//!
//! Time ranges are half-open: `since` is included, `until` is not. SQL stores compare at the
//! microsecond, the precision they keep.

use chrono::{DateTime, Utc};

use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::Result;
use crate::event::Event;
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::subscription::EventFilter;

/// The page size of a query made with `default()`.
pub const DEFAULT_LIMIT: usize = 100;

/// Whether `time` lies in the half-open range `[since, until)`.
fn within(time: DateTime<Utc>, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
    since.is_none_or(|s| time >= s) && until.is_none_or(|u| time < u)
}

/// Which events to list, newest first, one page at a time.
///
/// Events are stored with their deliveries: an event no subscription received is not kept.
///
/// ```
/// use fastapihooks_core::{Event, EventQuery};
/// let query = EventQuery::default()
///     .name("order.*")?
///     .owner("acme")
///     .since(chrono::Utc::now() - chrono::Duration::hours(2))
///     .limit(50);
/// let event = Event::new("order.created", &1)?.with_owner("acme");
/// assert!(query.matches(&event));
/// assert!(!query.matches(&Event::new("invoice.paid", &1)?.with_owner("acme")));
/// // The next page: events older than the last one listed.
/// let next = query.before(event.id().clone());
/// assert!(!next.matches(&event));
/// # Ok::<_, fastapihooks_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EventQuery {
    /// Only events whose name passes this filter (`order.created`, `order.*`).
    pub name: Option<EventFilter>,
    /// Only events of this owner (compared exactly: case and trailing spaces count).
    pub owner: Option<String>,
    /// Only events made at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events made before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the event with this id.
    pub id: Option<EventId>,
    /// Keyset pagination: only events older than this one (the last id of the previous page).
    pub before: Option<EventId>,
    /// Page size.
    pub limit: usize,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            name: None,
            owner: None,
            since: None,
            until: None,
            id: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl EventQuery {
    /// Only events whose name passes `filter`: an exact name, `prefix.*` or `*`.
    pub fn name(mut self, filter: &str) -> Result<Self> {
        self.name = Some(filter.parse()?);
        Ok(self)
    }

    /// Only events of `owner`.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only events made at or after `time`.
    pub fn since(mut self, time: DateTime<Utc>) -> Self {
        self.since = Some(time);
        self
    }

    /// Only events made before `time`.
    pub fn until(mut self, time: DateTime<Utc>) -> Self {
        self.until = Some(time);
        self
    }

    /// Only the event with this id.
    pub fn id(mut self, id: EventId) -> Self {
        self.id = Some(id);
        self
    }

    /// The page after the one that ended with `last`: only events older than it.
    pub fn before(mut self, last: EventId) -> Self {
        self.before = Some(last);
        self
    }

    /// At most `limit` events per page.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// This query's page of `events` (in any order, repeats allowed, e.g. one per delivery):
    /// those that match, each once, newest first, at most `limit` — for stores that keep their
    /// history in memory.
    pub fn page<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> Vec<Event> {
        let matching: std::collections::BTreeMap<&EventId, &Event> = events
            .into_iter()
            .filter(|e| self.matches(e))
            .map(|e| (e.id(), e))
            .collect();
        matching
            .into_values()
            .rev()
            .take(self.limit)
            .cloned()
            .collect()
    }

    /// Whether `event` passes every filter and lies before the cursor (the page size aside):
    /// the definition every store agrees with.
    pub fn matches(&self, event: &Event) -> bool {
        self.name.as_ref().is_none_or(|f| f.matches(event.name()))
            && self
                .owner
                .as_deref()
                .is_none_or(|o| event.owner() == Some(o))
            && within(event.created_at(), self.since, self.until)
            && self.id.as_ref().is_none_or(|id| event.id() == id)
            && self.before.as_ref().is_none_or(|b| event.id() < b)
    }
}

/// Which deliveries to list, newest first, one page at a time.
///
/// Dead letters are `failed` and `dead` deliveries: list each status to see them all.
///
/// ```
/// use fastapihooks_core::{Delivery, DeliveryQuery, DeliveryStatus, Event, SubscriptionId};
/// let query = DeliveryQuery::status(DeliveryStatus::Dead)
///     .event("order.*")?
///     .owner("acme")
///     .limit(20);
/// let mut delivery = Delivery::new(
///     Event::new("order.created", &1)?.with_owner("acme"),
///     SubscriptionId::new(),
/// );
/// assert!(!query.matches(&delivery)); // still pending
/// delivery.status = DeliveryStatus::Dead;
/// assert!(query.matches(&delivery));
/// // Every filter is also a builder step on a default query.
/// let pending = DeliveryQuery::default()
///     .with_status(DeliveryStatus::Pending)
///     .subscription(delivery.subscription_id.clone())
///     .event_id(delivery.event.id().clone());
/// assert!(!pending.matches(&delivery));
/// # Ok::<_, fastapihooks_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries to this subscription.
    pub subscription_id: Option<SubscriptionId>,
    /// Only deliveries of events whose name passes this filter (`order.created`, `order.*`).
    pub event: Option<EventFilter>,
    /// Only deliveries of the event with this id.
    pub event_id: Option<EventId>,
    /// Only deliveries of events of this owner (compared exactly).
    pub owner: Option<String>,
    /// Only deliveries made (by fan-out) at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only deliveries made before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only deliveries whose state last changed (an attempt, a replay) at or after this time:
    /// e.g. those that failed during an outage, whenever they were made.
    pub changed_since: Option<DateTime<Utc>>,
    /// Keyset pagination: only deliveries older than this one (the last id of the previous page).
    pub before: Option<DeliveryId>,
    /// Page size.
    pub limit: usize,
}

impl Default for DeliveryQuery {
    fn default() -> Self {
        Self {
            status: None,
            subscription_id: None,
            event: None,
            event_id: None,
            owner: None,
            since: None,
            until: None,
            changed_since: None,
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl DeliveryQuery {
    /// Deliveries in `status`, newest first (a default query with that filter).
    pub fn status(status: DeliveryStatus) -> Self {
        Self::default().with_status(status)
    }

    /// Only deliveries in `status`.
    pub fn with_status(mut self, status: DeliveryStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only deliveries to `subscription`.
    pub fn subscription(mut self, subscription: SubscriptionId) -> Self {
        self.subscription_id = Some(subscription);
        self
    }

    /// Only deliveries of events whose name passes `filter`: an exact name, `prefix.*` or `*`.
    pub fn event(mut self, filter: &str) -> Result<Self> {
        self.event = Some(filter.parse()?);
        Ok(self)
    }

    /// Only deliveries of the event with this id.
    pub fn event_id(mut self, id: EventId) -> Self {
        self.event_id = Some(id);
        self
    }

    /// Only deliveries of events of `owner`.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only deliveries made at or after `time`.
    pub fn since(mut self, time: DateTime<Utc>) -> Self {
        self.since = Some(time);
        self
    }

    /// Only deliveries made before `time`.
    pub fn until(mut self, time: DateTime<Utc>) -> Self {
        self.until = Some(time);
        self
    }

    /// The page after the one that ended with `last`: only deliveries older than it.
    pub fn before(mut self, last: DeliveryId) -> Self {
        self.before = Some(last);
        self
    }

    /// Only deliveries whose state last changed at or after `time`.
    pub fn changed_since(mut self, time: DateTime<Utc>) -> Self {
        self.changed_since = Some(time);
        self
    }

    /// At most `limit` deliveries per page.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `delivery` passes every filter and lies before the cursor (the page size aside):
    /// the definition every store agrees with.
    pub fn matches(&self, delivery: &Delivery) -> bool {
        let event = &delivery.event;
        self.status.is_none_or(|s| delivery.status == s)
            && self
                .subscription_id
                .as_ref()
                .is_none_or(|s| &delivery.subscription_id == s)
            && self.event.as_ref().is_none_or(|f| f.matches(event.name()))
            && self.event_id.as_ref().is_none_or(|id| event.id() == id)
            && self
                .owner
                .as_deref()
                .is_none_or(|o| event.owner() == Some(o))
            && within(delivery.created_at, self.since, self.until)
            && within(delivery.updated_at, self.changed_since, None)
            && self.before.as_ref().is_none_or(|b| &delivery.id < b)
    }
}
