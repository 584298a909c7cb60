//! [`Store::count_deliveries`] in the contract: the counts of the deliveries a query lists,
//! per bucket of time and per subscription, whatever the store counts them with.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use fastapihooks_core::delivery_counts::{count, count_names};
use fastapihooks_core::{
    CountBy, CountGroup, Delivery, DeliveryCount, DeliveryQuery, DeliveryStatus, EventQuery, Store,
    SubscriptionId,
};

use crate::fixtures::{delivery, event};

const HOUR: Duration = Duration::from_secs(3_600);

/// Deliveries of two owners to two subscriptions, made from 10:00 to 12:30 on a fixed day, in
/// each status.
fn history() -> (Vec<Delivery>, SubscriptionId, SubscriptionId) {
    let (a, b) = (SubscriptionId::new(), SubscriptionId::new());
    let statuses = [
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead,
        DeliveryStatus::Pending,
        DeliveryStatus::Failed,
        DeliveryStatus::Delivered,
    ];
    let made = (0..10)
        .map(|i: u32| {
            let owner = if i.is_multiple_of(3) {
                "acme"
            } else {
                "globex"
            };
            let sub = if i.is_multiple_of(2) { &a } else { &b };
            let mut d = delivery(&event("order.created", Some(owner)), sub);
            d.created_at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
                + chrono::Duration::minutes(i64::from(i) * 15);
            d.status = statuses[i as usize % statuses.len()];
            d
        })
        .collect();
    (made, a, b)
}

/// A behaviour of the contract: counted per hour and per subscription, the deliveries a query
/// lists — every filter applied, the cursor ignored — come to what counting the list gives.
pub async fn deliveries_are_counted_as_listed_per_hour_and_per_subscription(store: &dyn Store) {
    let (made, a, _) = history();
    store.record_deliveries(&made).await.unwrap();
    let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
    let queries = [
        DeliveryQuery::default(),
        DeliveryQuery::default().owner("acme"),
        DeliveryQuery::default().since(at(10, 30)).until(at(12, 0)),
        DeliveryQuery::default().subscription(a.clone()),
        DeliveryQuery::default().before(made[5].id.clone()),
    ];
    for query in queries {
        let mut listed_query = query.clone();
        listed_query.before = None;
        let listed: Vec<Delivery> = made
            .iter()
            .filter(|d| listed_query.matches(d))
            .cloned()
            .collect();
        for by in [CountBy::Time(HOUR), CountBy::Subscription] {
            let counted = store.count_deliveries(&query, by).await.unwrap();
            assert_eq!(counted, count(&listed, by).unwrap(), "{query:?} by {by:?}");
        }
    }
    // And the figures themselves: 10:00–10:45 holds 4 deliveries, one in each status.
    let per_hour = store
        .count_deliveries(&DeliveryQuery::default(), CountBy::Time(HOUR))
        .await
        .unwrap();
    let ten: u64 = per_hour
        .iter()
        .filter(|c| c.group == CountGroup::Bucket(at(10, 0)))
        .map(|c| c.count)
        .sum();
    assert_eq!(ten, 4);
    assert!(per_hour.contains(&DeliveryCount {
        group: CountGroup::Bucket(at(10, 0)),
        status: DeliveryStatus::Delivered,
        count: 1,
    }));
}

/// A behaviour of the contract: a bucket that is not a whole number of seconds is refused.
pub async fn counting_in_buckets_of_a_fraction_of_a_second_is_refused(store: &dyn Store) {
    let refused = store
        .count_deliveries(
            &DeliveryQuery::default(),
            CountBy::Time(Duration::from_millis(500)),
        )
        .await;
    assert!(refused.is_err());
}

/// A behaviour of the contract: the event names counted are those of the events a query lists
/// — an event delivered to two subscriptions once — with when the newest was made.
pub async fn event_names_are_counted_as_listed(store: &dyn Store) {
    let (a, b) = (SubscriptionId::new(), SubscriptionId::new());
    let at = |m| Utc.with_ymd_and_hms(2026, 12, 1, 10, m, 0).unwrap();
    let mut made = Vec::new();
    for (name, owner, minute) in [
        ("order.created", "acme", 0),
        ("order.created", "globex", 5),
        ("invoice.paid", "acme", 10),
        ("order.created", "acme", 20),
    ] {
        let e = fastapihooks_core::Event::restore(
            fastapihooks_core::EventId::new(),
            fastapihooks_core::EventName::new(name).unwrap(),
            Some(owner.to_owned()),
            bytes::Bytes::from_static(b"{}"),
            at(minute),
        );
        for sub in [&a, &b] {
            made.push(delivery(&e, sub));
        }
    }
    store.record_deliveries(&made).await.unwrap();
    let all = store.count_events(&EventQuery::default()).await.unwrap();
    let figures: Vec<(&str, u64, _)> = all
        .iter()
        .map(|c| (c.name.as_str(), c.events, c.last_seen))
        .collect();
    assert_eq!(
        figures,
        [("invoice.paid", 1, at(10)), ("order.created", 3, at(20))]
    );
    for query in [
        EventQuery::default().owner("acme"),
        EventQuery::default().since(at(5)),
        EventQuery::default().name("order.*").unwrap(),
    ] {
        let mut listed_query = query.clone();
        listed_query.limit = 1_000;
        let listed = store.list_events(&listed_query).await.unwrap();
        assert_eq!(
            store.count_events(&query).await.unwrap(),
            count_names(&listed),
            "{query:?}"
        );
    }
}
