//! [`DeliveryCount`]: deliveries counted by status, per bucket of time or per subscription —
//! what a dashboard draws — and [`EventNameCount`], the event names seen; computed by the store
//! ([`Store::count_deliveries`], [`Store::count_events`]: one `GROUP BY` on the SQL stores), so a
//! busy history is counted exactly without being read.
//!
//! [`Store::count_deliveries`]: crate::Store::count_deliveries
//! [`Store::count_events`]: crate::Store::count_events

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::event::{Event, EventName};
use crate::id::SubscriptionId;

/// How deliveries are grouped before they are counted by status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountBy {
    /// By the bucket of time they were made in: buckets of this width, aligned to the Unix
    /// epoch (so an hour starts on the hour, a day at midnight UTC). At least a second, a
    /// whole number of seconds.
    Time(Duration),
    /// By subscription.
    Subscription,
}

impl CountBy {
    /// The bucket width in microseconds, checked (for [`CountBy::Time`]).
    pub fn bucket_micros(&self) -> Result<Option<i64>> {
        match self {
            CountBy::Subscription => Ok(None),
            CountBy::Time(width) => {
                if width.as_secs() == 0 || width.subsec_nanos() != 0 {
                    return Err(Error::InvalidConfig {
                        field: "count_by.time",
                        reason: format!(
                            "a bucket of {width:?}: a whole number of seconds, at least one"
                        ),
                    });
                }
                Ok(Some(i64::try_from(width.as_micros()).unwrap_or(i64::MAX)))
            }
        }
    }
}

/// One group's deliveries in one status.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeliveryCount {
    /// The group: where its bucket of time starts, or its subscription.
    pub group: CountGroup,
    /// The status counted.
    pub status: DeliveryStatus,
    /// How many.
    pub count: u64,
}

/// What a [`DeliveryCount`] counts over.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CountGroup {
    /// The deliveries made in the bucket of time starting here.
    Bucket(DateTime<Utc>),
    /// The deliveries to this subscription.
    Subscription(SubscriptionId),
}

/// Counts `deliveries` by `by` and status, sorted by group then status: the one definition,
/// for stores that keep their history in memory (and the default of
/// [`Store::count_deliveries`](crate::Store::count_deliveries)).
pub fn count<'a>(
    deliveries: impl IntoIterator<Item = &'a Delivery>,
    by: CountBy,
) -> Result<Vec<DeliveryCount>> {
    let width = by.bucket_micros()?;
    let mut counts: BTreeMap<(CountGroup, DeliveryStatus), u64> = BTreeMap::new();
    for d in deliveries {
        let group = match width {
            Some(width) => {
                let micros = d.created_at.timestamp_micros();
                CountGroup::Bucket(bucket_start(micros - micros.rem_euclid(width)))
            }
            None => CountGroup::Subscription(d.subscription_id.clone()),
        };
        *counts.entry((group, d.status)).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|((group, status), count)| DeliveryCount {
            group,
            status,
            count,
        })
        .collect())
}

/// The stored events of one name: how many, and when the newest was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNameCount {
    /// The name.
    pub name: EventName,
    /// How many stored events bear it.
    pub events: u64,
    /// When the newest of them was made.
    pub last_seen: DateTime<Utc>,
}

/// Counts `events` by name, sorted by name: the one definition, for stores that keep their
/// history in memory (and the default of [`Store::count_events`](crate::Store::count_events)).
pub fn count_names<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<EventNameCount> {
    let mut names: BTreeMap<&EventName, EventNameCount> = BTreeMap::new();
    for e in events {
        let seen = names.entry(e.name()).or_insert_with(|| EventNameCount {
            name: e.name().clone(),
            events: 0,
            last_seen: e.created_at(),
        });
        seen.events += 1;
        seen.last_seen = seen.last_seen.max(e.created_at());
    }
    names.into_values().collect()
}

/// The time of a bucket start in microseconds since the epoch.
pub(crate) fn bucket_start(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_counted_in_epoch_aligned_buckets_by_status() {
        let sub = SubscriptionId::new();
        let at = |h: u32, m: u32, status| {
            let mut d = Delivery::new(Event::new("order.created", &1).unwrap(), sub.clone());
            d.created_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, h, m, 0).unwrap();
            d.status = status;
            d
        };
        let made = [
            at(10, 5, DeliveryStatus::Delivered),
            at(10, 59, DeliveryStatus::Delivered),
            at(11, 0, DeliveryStatus::Dead),
        ];
        let counts = count(&made, CountBy::Time(Duration::from_secs(3600))).unwrap();
        let hour = |h| {
            CountGroup::Bucket(
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, h, 0, 0).unwrap(),
            )
        };
        assert_eq!(
            counts,
            [
                DeliveryCount {
                    group: hour(10),
                    status: DeliveryStatus::Delivered,
                    count: 2
                },
                DeliveryCount {
                    group: hour(11),
                    status: DeliveryStatus::Dead,
                    count: 1
                },
            ]
        );
        assert!(count(&made, CountBy::Time(Duration::from_millis(1500))).is_err());
    }
}
