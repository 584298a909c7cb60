//! `/stats` and `/event-types`: what a dashboard summarizes — deliveries counted by status,
//! over time and by subscription (counted by the store, exactly), and the event names seen
//! (read from the newest events, bounded: the answer says how many it read, `examined`, and
//! whether it stopped at the bound, `truncated`).

use std::collections::BTreeMap;

use crate::admin::extract::Params;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use fastapihooks_core::{
    CountBy, CountGroup, DeliveryQuery, DeliveryStatus, EventQuery, SubscriptionId,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::admin::AdminState;
use crate::admin::problems::invalid;
use crate::admin::scope::Scope;

/// The page size both read the store with.
const PAGE: usize = 500;
/// The most events `GET /event-types` reads.
const MAX_EVENTS: usize = 10_000;
/// The longest range `GET /stats` counts in hourly buckets.
const MAX_HOURLY_DAYS: i64 = 31;
/// The longest range `GET /stats` counts.
const MAX_DAYS: i64 = 366;

/// The width of the buckets of `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Bucket {
    /// An hour (ranges of up to 31 days).
    #[default]
    Hour,
    /// A day, UTC (ranges of up to 366 days).
    Day,
}

impl Bucket {
    fn seconds(self) -> i64 {
        match self {
            Bucket::Hour => 3_600,
            Bucket::Day => 86_400,
        }
    }
}

/// The query of `GET /stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// Count deliveries made at or after this time (RFC 3339; default: 24 hours before
    /// `until`).
    since: Option<DateTime<Utc>>,
    /// Count deliveries made before this time (RFC 3339; default: now).
    until: Option<DateTime<Utc>>,
    /// The width of a bucket: `hour` (default; ranges of up to 31 days) or `day` (up to 366).
    #[param(inline)]
    bucket: Option<Bucket>,
    /// Only deliveries to this subscription (`sub_…`).
    subscription: Option<String>,
    /// Only this owner's (an operator's API; an owner-scoped one counts its own).
    owner: Option<String>,
}

/// Deliveries counted by status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct StatusCounts {
    /// Waiting for their first or next attempt.
    pub(crate) pending: u64,
    /// Delivered (a 2xx was received).
    pub(crate) delivered: u64,
    /// Refused for good.
    pub(crate) failed: u64,
    /// Out of retries.
    pub(crate) dead: u64,
}

impl StatusCounts {
    fn add(&mut self, status: DeliveryStatus, n: u64) {
        match status {
            DeliveryStatus::Pending => self.pending += n,
            DeliveryStatus::Delivered => self.delivered += n,
            DeliveryStatus::Failed => self.failed += n,
            DeliveryStatus::Dead => self.dead += n,
        }
    }
}

/// The deliveries made in one bucket of time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct StatsBucket {
    /// Where the bucket starts (it ends where the next starts, `bucket_seconds` later).
    pub(crate) start: DateTime<Utc>,
    /// Delivered.
    pub(crate) delivered: u64,
    /// Dead letters: failed or dead.
    pub(crate) failed: u64,
    /// Still pending.
    pub(crate) pending: u64,
}

/// The deliveries to one subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct SubscriptionStats {
    /// `sub_…`.
    pub(crate) subscription_id: String,
    /// Delivered.
    pub(crate) delivered: u64,
    /// Dead letters: failed or dead.
    pub(crate) failed: u64,
    /// Still pending.
    pub(crate) pending: u64,
    /// `delivered / (delivered + failed)`, from 0 to 1; `null` when none is final yet.
    #[schema(required = true)]
    pub(crate) success_rate: Option<f64>,
}

/// Deliveries made in a range of time, counted by status, by bucket of time and by
/// subscription.
///
/// Counted by the store (`Store::count_deliveries`: one `GROUP BY` per grouping on the SQL
/// stores), exact however many deliveries the range holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "since": "2026-12-01T10:00:00Z", "until": "2026-12-01T12:00:00Z", "bucket_seconds": 3600,
    "counts": {"pending": 1, "delivered": 6, "failed": 1, "dead": 1},
    "success_rate": 0.75,
    "buckets": [
        {"start": "2026-12-01T10:00:00Z", "delivered": 4, "failed": 0, "pending": 0},
        {"start": "2026-12-01T11:00:00Z", "delivered": 2, "failed": 2, "pending": 1}
    ],
    "subscriptions": [
        {"subscription_id": "sub_01JE6Y0V3K8Q2M4N6P8R0T2V4W", "delivered": 6, "failed": 2,
         "pending": 1, "success_rate": 0.75}
    ],
    "total": 9
}))]
pub(crate) struct Stats {
    /// The start of the range, included.
    pub(crate) since: DateTime<Utc>,
    /// The end of the range, excluded.
    pub(crate) until: DateTime<Utc>,
    /// The width of a bucket, in seconds: 3,600 (`hour`) or 86,400 (`day`).
    pub(crate) bucket_seconds: u32,
    /// The deliveries made in the range, by status.
    pub(crate) counts: StatusCounts,
    /// `delivered / (delivered + failed + dead)`, from 0 to 1; `null` when none is final yet.
    #[schema(required = true)]
    pub(crate) success_rate: Option<f64>,
    /// One per bucket from `since` (truncated to the bucket width, UTC) to `until`, empty ones
    /// included, oldest first.
    pub(crate) buckets: Vec<StatsBucket>,
    /// One per subscription with deliveries in the range, by subscription id.
    pub(crate) subscriptions: Vec<SubscriptionStats>,
    /// The deliveries counted: every one made in the range (of the subscription, if asked).
    pub(crate) total: u64,
}

/// `part / whole`, or `None` when `whole` is 0.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The range and bucket width of a stats query, checked.
fn range(
    q: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, Bucket), Problem> {
    let bucket = q.bucket.unwrap_or_default();
    let until = q.until.unwrap_or(now);
    let since = q.since.unwrap_or(until - TimeDelta::hours(24));
    if since >= until {
        return Err(invalid(format!(
            "`since` ({}) is not before `until` ({}): the range is empty",
            since.to_rfc3339(),
            until.to_rfc3339()
        )));
    }
    let span = until - since;
    if bucket == Bucket::Hour && span > TimeDelta::days(MAX_HOURLY_DAYS) {
        return Err(invalid(format!(
            "the range spans more than {MAX_HOURLY_DAYS} days: too many `hour` buckets; \
             ask for `bucket=day` or a shorter range"
        )));
    }
    if span > TimeDelta::days(MAX_DAYS) {
        return Err(invalid(format!(
            "the range spans more than {MAX_DAYS} days: ask for a shorter one"
        )));
    }
    Ok((since, until, bucket))
}

/// `time` truncated to a multiple of `seconds` since the Unix epoch (UTC).
fn truncate(time: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let ts = time.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(seconds), 0).unwrap_or(time)
}

/// Delivery statistics over a range of time: counts by status, by bucket and by
/// subscription, and the success rate.
///
/// Counted by the store, exactly: two aggregate queries (per bucket, per subscription).
#[utoipa::path(get, path = "/stats", tag = "stats", params(StatsQuery),
    responses((status = 200, body = Stats), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn summary(
    State(state): State<AdminState>,
    scope: Scope,
    Params(q): Params<StatsQuery>,
) -> Result<Json<Stats>, Problem> {
    let (since, until, bucket) = range(&q, Utc::now())?;
    let mut query = DeliveryQuery::default().since(since).until(until);
    if let Some(sub) = &q.subscription {
        query.subscription_id =
            Some(sub.parse::<SubscriptionId>().map_err(|_| {
                invalid(format!("`subscription` is `{sub}`: not a subscription id"))
            })?);
    }
    query.owner = scope.owner_filter(q.owner);

    let width = bucket.seconds();
    let first = truncate(since, width);
    let mut buckets: Vec<StatsBucket> = std::iter::successors(Some(first), |start| {
        Some(*start + TimeDelta::seconds(width)).filter(|next| *next < until)
    })
    .map(|start| StatsBucket {
        start,
        delivered: 0,
        failed: 0,
        pending: 0,
    })
    .collect();
    // Counted by the store: one aggregate per grouping, however many deliveries there are.
    let width_std = std::time::Duration::from_secs(width.unsigned_abs());
    let mut counts = StatusCounts::default();
    for c in state
        .store
        .count_deliveries(&query, CountBy::Time(width_std))
        .await?
    {
        counts.add(c.status, c.count);
        let CountGroup::Bucket(start) = c.group else {
            continue;
        };
        let index = (start - first).num_seconds().div_euclid(width);
        if let Some(b) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
            match c.status {
                DeliveryStatus::Pending => b.pending += c.count,
                DeliveryStatus::Delivered => b.delivered += c.count,
                DeliveryStatus::Failed | DeliveryStatus::Dead => b.failed += c.count,
            }
        }
    }
    let mut per_subscription: BTreeMap<String, StatusCounts> = BTreeMap::new();
    for c in state
        .store
        .count_deliveries(&query, CountBy::Subscription)
        .await?
    {
        if let CountGroup::Subscription(id) = c.group {
            per_subscription
                .entry(id.to_string())
                .or_default()
                .add(c.status, c.count);
        }
    }
    let examined = counts.pending + counts.delivered + counts.failed + counts.dead;
    let subscriptions = per_subscription
        .into_iter()
        .map(|(subscription_id, c)| {
            let failed = c.failed + c.dead;
            SubscriptionStats {
                subscription_id,
                delivered: c.delivered,
                failed,
                pending: c.pending,
                success_rate: rate(c.delivered, c.delivered + failed),
            }
        })
        .collect();
    Ok(Json(Stats {
        since,
        until,
        bucket_seconds: u32::try_from(width).unwrap_or(u32::MAX),
        success_rate: rate(
            counts.delivered,
            counts.delivered + counts.failed + counts.dead,
        ),
        counts,
        buckets,
        subscriptions,
        total: examined,
    }))
}

/// The query of `GET /event-types`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventTypesQuery {
    /// Only this owner's (an operator's API; an owner-scoped one lists its own).
    owner: Option<String>,
}

/// One event name seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct EventType {
    /// The event name, e.g. `order.created`.
    pub(crate) name: String,
    /// How many of the events read bear it.
    pub(crate) events: u64,
    /// When the newest of them happened.
    pub(crate) last_seen: DateTime<Utc>,
}

/// The event names seen in the newest stored events, each once.
///
/// Computed from the event history by paging the store, newest first, and bounded: at most
/// 10,000 events are read (`examined`); `truncated` is `true` when older ones were left
/// unread, so a name only they bear is missing and the counts are of the newest 10,000.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "data": [
        {"name": "invoice.paid", "events": 12, "last_seen": "2026-12-01T11:58:02Z"},
        {"name": "order.created", "events": 40, "last_seen": "2026-12-01T12:00:00Z"}
    ],
    "examined": 52, "truncated": false
}))]
pub(crate) struct EventTypes {
    /// The names, sorted.
    pub(crate) data: Vec<EventType>,
    /// How many events were read.
    pub(crate) examined: u64,
    /// Whether reading stopped at the bound (10,000) with older events left unread.
    pub(crate) truncated: bool,
}

/// The event names seen, each once, with how many events bear it and when the newest
/// happened.
///
/// Computed from the newest stored events by paging the store (500 at a time), bounded at
/// 10,000 events; `truncated` says when the bound was hit.
#[utoipa::path(get, path = "/event-types", tag = "stats", params(EventTypesQuery),
    responses((status = 200, body = EventTypes), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn event_types(
    State(state): State<AdminState>,
    scope: Scope,
    Params(q): Params<EventTypesQuery>,
) -> Result<Json<EventTypes>, Problem> {
    let mut query = EventQuery {
        owner: scope.owner_filter(q.owner),
        ..EventQuery::default()
    };
    let mut names: BTreeMap<String, EventType> = BTreeMap::new();
    let mut examined = 0usize;
    let mut truncated = false;
    loop {
        let room = MAX_EVENTS - examined;
        if room == 0 {
            truncated = !state
                .store
                .list_events(&query.clone().limit(1))
                .await?
                .is_empty();
            break;
        }
        let asked = room.min(PAGE);
        let page = state.store.list_events(&query.clone().limit(asked)).await?;
        examined += page.len();
        for e in &page {
            let seen = names
                .entry(e.name().as_str().to_owned())
                .or_insert_with(|| EventType {
                    name: e.name().as_str().to_owned(),
                    events: 0,
                    last_seen: e.created_at(),
                });
            seen.events += 1;
            seen.last_seen = seen.last_seen.max(e.created_at());
        }
        match page.last() {
            Some(last) if page.len() == asked => query.before = Some(last.id().clone()),
            _ => break,
        }
    }
    Ok(Json(EventTypes {
        data: names.into_values().collect(),
        examined: examined as u64,
        truncated,
    }))
}
