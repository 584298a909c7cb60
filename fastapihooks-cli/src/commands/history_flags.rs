//! The flags of the history commands (`events`, `deliveries`): the filters they share, the
//! paging flags, and the parsers of times, ids and statuses. Each parser rejects bad input with a
//! message clap prints next to the flag it came from (exit code 2).

use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{
    DeliveryId, DeliveryQuery, DeliveryStatus, EventFilter, EventId, SubscriptionId,
};

use crate::commands::subscriptions::fields;

/// The filters every history command takes (`events list`, `deliveries list`, `deliveries
/// replay`): the event's name and owner, and a time range.
#[derive(Debug, Args)]
pub struct HistoryFilters {
    /// Only events (or deliveries of events) whose name passes this filter: `order.created`,
    /// `order.*` or `*`.
    #[arg(long, value_name = "FILTER", value_parser = fields::event_filter)]
    pub event: Option<EventFilter>,
    /// Only this owner's events (or deliveries of them).
    #[arg(long)]
    pub owner: Option<String>,
    /// Only what was made at or after this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub since: Option<DateTime<Utc>>,
    /// Only what was made before this time: a duration ago (`2h`, `30m`) or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub until: Option<DateTime<Utc>>,
}

/// The filters of the delivery commands (`deliveries list`, `deliveries replay`): the history
/// filters and the delivery's own (status, subscription, event id, last change).
#[derive(Debug, Args)]
pub struct DeliveryFilters {
    /// Only deliveries in this status: pending, delivered, failed or dead (dead letters are
    /// failed and dead).
    #[arg(long, value_name = "STATUS", value_parser = status)]
    pub status: Option<DeliveryStatus>,
    /// Only deliveries to this subscription, `sub_…`.
    #[arg(long, value_name = "ID", value_parser = fields::subscription_id)]
    pub subscription: Option<SubscriptionId>,
    /// The event's name and owner, and when the delivery was made.
    #[command(flatten)]
    pub history: HistoryFilters,
    /// Only deliveries of this event, `evt_…`.
    #[arg(long, value_name = "ID", value_parser = event_id)]
    pub event_id: Option<EventId>,
    /// Only deliveries whose state last changed (an attempt, a replay) at or after this time,
    /// whenever they were made (e.g. those that failed during an outage): a duration ago (`2h`)
    /// or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub changed_since: Option<DateTime<Utc>>,
}

/// The ids of [`DeliveryFilters`], for `conflicts_with_all`.
pub const DELIVERY_FILTER_IDS: [&str; 8] = [
    "status",
    "subscription",
    "event",
    "owner",
    "since",
    "until",
    "event_id",
    "changed_since",
];

impl DeliveryFilters {
    /// Whether any filter is given.
    pub fn any(&self) -> bool {
        self.status.is_some()
            || self.subscription.is_some()
            || self.history.event.is_some()
            || self.history.owner.is_some()
            || self.history.since.is_some()
            || self.history.until.is_some()
            || self.event_id.is_some()
            || self.changed_since.is_some()
    }

    /// The query of these filters, its first page of `limit` older than `before`.
    pub fn query(&self, before: Option<DeliveryId>, limit: usize) -> DeliveryQuery {
        DeliveryQuery {
            status: self.status,
            subscription_id: self.subscription.clone(),
            event: self.history.event.clone(),
            event_id: self.event_id.clone(),
            owner: self.history.owner.clone(),
            since: self.history.since,
            until: self.history.until,
            changed_since: self.changed_since,
            before,
            limit,
        }
    }
}

/// The paging flags of a list: its size, and where the previous page ended.
#[derive(Debug, Args)]
pub struct Page<Id>
where
    Id: FromStr<Err = fastapihooks_core::Error> + Clone + Send + Sync + 'static,
{
    /// At most this many.
    #[arg(long, default_value_t = fastapihooks_core::query::DEFAULT_LIMIT)]
    pub limit: usize,
    /// Only what is older than this one (the last id of the previous page).
    #[arg(long, value_name = "ID", value_parser = id::<Id>)]
    pub before: Option<Id>,
}

/// An id of the type asked for (`evt_…`, `dlv_…`).
fn id<Id: FromStr<Err = fastapihooks_core::Error>>(
    s: &str,
) -> Result<Id, fastapihooks_core::Error> {
    s.parse()
}

/// Ends a full page of a table with how to ask for the next one.
pub fn more(
    out: &mut dyn Write,
    listed: usize,
    limit: usize,
    last: Option<&str>,
) -> std::io::Result<()> {
    match last {
        Some(last) if listed == limit => writeln!(out, "more: --before {last}"),
        _ => Ok(()),
    }
}

/// `--since` / `--until`: a duration meaning "that long ago" (`2h`, `30m`, `1day 2h`) or an
/// RFC 3339 time (`2026-12-02T09:00:00Z`).
pub fn time(s: &str) -> Result<DateTime<Utc>, String> {
    time_at(s, Utc::now())
}

/// [`time`], with durations counted back from `now`.
fn time_at(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(s).map_err(|e| {
        format!("expected a duration ago (2h, 30m) or an RFC 3339 time (2026-01-31T09:00:00Z): {e}")
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| now.checked_sub_signed(ago))
        .ok_or_else(|| format!("{s} ago is before any representable time"))
}

/// An event id, `evt_…`.
pub fn event_id(s: &str) -> Result<EventId, fastapihooks_core::Error> {
    s.parse()
}

/// A delivery id, `dlv_…`.
pub fn delivery_id(s: &str) -> Result<DeliveryId, fastapihooks_core::Error> {
    s.parse()
}

/// `--status`: pending, delivered, failed or dead.
pub fn status(s: &str) -> Result<DeliveryStatus, fastapihooks_core::Error> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_ago_or_rfc3339() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            time_at("2h", now).unwrap().to_rfc3339(),
            "2026-12-02T08:00:00+00:00"
        );
        assert_eq!(
            time_at("2026-12-01T09:30:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T08:30:00+00:00"
        );
        let err = time_at("yesterday", now).unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
