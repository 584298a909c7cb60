//! Fan-out: one [`Event`] becomes one [`Delivery`] per subscription that receives it.

use std::borrow::Borrow;
use std::collections::HashSet;

use crate::delivery::Delivery;
use crate::event::Event;
use crate::subscription::Subscription;

/// The deliveries of `event` to the `candidates` that receive it ([`Subscription::receives`]),
/// one per subscription even if a subscription is listed twice (static and stored).
///
/// Pure: no I/O. The caller records the deliveries: before any attempt starts (the in-process
/// backend), or each with its first attempt (the sidecar's worker). The candidates
/// are subscriptions or anything that borrows as one (`Arc<Subscription>`), handed back as given.
pub fn fan_out<'a, S: Borrow<Subscription> + 'a>(
    event: &Event,
    candidates: impl IntoIterator<Item = &'a S>,
) -> Vec<(Delivery, &'a S)> {
    let mut planned: Vec<(Delivery, &'a S)> = candidates
        .into_iter()
        .filter(|s| sub(*s).receives(event.name(), event.owner()))
        .map(|s| (Delivery::new(event.clone(), sub(s).id.clone()), s))
        .collect();
    // A set only where there can be a duplicate: one subscriber is the common case.
    if planned.len() > 1 {
        let mut seen: HashSet<&'a crate::id::SubscriptionId> =
            HashSet::with_capacity(planned.len());
        planned.retain(|(_, s)| seen.insert(&sub(*s).id));
    }
    planned
}

fn sub<S: Borrow<Subscription>>(s: &S) -> &Subscription {
    s.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(filter: &str) -> Subscription {
        Subscription::new(filter, "http://h.example/x").unwrap()
    }

    #[test]
    fn one_delivery_per_receiving_subscription() {
        let subs = [
            sub("order.created"),
            sub("order.*"),
            sub("invoice.paid"),
            sub("*"),
        ];
        let event = Event::new("order.created", &1).unwrap();
        let deliveries = fan_out(&event, &subs);
        assert_eq!(deliveries.len(), 3);
        assert!(deliveries.iter().all(|(d, _)| d.event.id() == event.id()));
        let ids: HashSet<_> = deliveries.iter().map(|(d, _)| d.id.clone()).collect();
        assert_eq!(ids.len(), 3, "each delivery has its own id");
    }

    #[test]
    fn a_subscription_listed_twice_gets_one_delivery() {
        let s = sub("*");
        let event = Event::new("a", &1).unwrap();
        assert_eq!(fan_out(&event, [&s, &s]).len(), 1);
    }

    #[test]
    fn deliveries_share_the_payload_bytes() {
        let subs: Vec<_> = (0..1000).map(|_| sub("*")).collect();
        let event = Event::new("a", &serde_json::json!({"big": "x".repeat(1000)})).unwrap();
        let deliveries = fan_out(&event, &subs);
        assert_eq!(deliveries.len(), 1000);
        let first = deliveries[0].0.event.payload().as_ptr();
        assert!(
            deliveries
                .iter()
                .all(|(d, _)| d.event.payload().as_ptr() == first)
        );
    }
}
