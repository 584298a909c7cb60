//! `/stats` and `/event-types`: what a dashboard summarizes — deliveries counted by status,
//! over time and by subscription, and the event names seen — counted by the store, exactly
//! (`Store::count_deliveries`, `Store::count_events`).

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
    let total = counts.pending + counts.delivered + counts.failed + counts.dead;
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
        total,
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
    /// How many stored events bear it.
    pub(crate) events: u64,
    /// When the newest of them happened.
    pub(crate) last_seen: DateTime<Utc>,
}

/// The event names of the stored events, each once, counted by the store
/// (`Store::count_events`: one `GROUP BY` on the SQL stores).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "data": [
        {"name": "invoice.paid", "events": 12, "last_seen": "2026-12-01T11:58:02Z"},
        {"name": "order.created", "events": 40, "last_seen": "2026-12-01T12:00:00Z"}
    ]
}))]
pub(crate) struct EventTypes {
    /// The names, sorted.
    pub(crate) data: Vec<EventType>,
}

/// The event names seen, each once, with how many stored events bear it and when the newest
/// happened; counted by the store.
#[utoipa::path(get, path = "/event-types", tag = "stats", params(EventTypesQuery),
    responses((status = 200, body = EventTypes), (status = 400, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn event_types(
    State(state): State<AdminState>,
    scope: Scope,
    Params(q): Params<EventTypesQuery>,
) -> Result<Json<EventTypes>, Problem> {
    let query = EventQuery {
        owner: scope.owner_filter(q.owner),
        ..EventQuery::default()
    };
    let data: Vec<EventType> = state
        .store
        .count_events(&query)
        .await?
        .into_iter()
        .map(|c| EventType {
            name: c.name.as_str().to_owned(),
            events: c.events,
            last_seen: c.last_seen,
        })
        .collect();
    Ok(Json(EventTypes { data }))
}
