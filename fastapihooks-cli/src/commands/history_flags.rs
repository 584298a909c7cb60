//! Parsers for the flags of the history commands (`events`, `deliveries`): times, ids and
//! statuses. Each rejects bad input with a message clap prints next to the flag it came from
//! (exit code 2).

use std::io::Write;

use chrono::{DateTime, Utc};
use clap::Args;
use fastapihooks_core::{DeliveryId, DeliveryStatus, EventFilter, EventId};

use crate::commands::subscriptions::fields;

/// The filters `events list` and `deliveries list` share: the event's name and owner, a time
/// range and the page size.
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
    /// At most this many.
    #[arg(long, default_value_t = fastapihooks_core::query::DEFAULT_LIMIT)]
    pub limit: usize,
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
