//! The batch calls of the contract: [`Store::get_deliveries`], [`Store::get_subscriptions`] and
//! [`Store::record_attempts`] answer as the single calls would, one call for many.

use fastapihooks_core::{Delivery, DeliveryId, DeliveryStatus, Store, SubscriptionId};

use crate::fixtures::{attempt, delivery, event, now, response, subscription, timed_out};

fn sorted(mut deliveries: Vec<Delivery>) -> Vec<Delivery> {
    deliveries.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    deliveries
}

/// A behaviour of the contract: a batch read returns the deliveries that exist, as
/// `get_delivery` reads each, and leaves unknown ids out.
pub async fn deliveries_read_in_a_batch_are_those_that_exist(store: &dyn Store) {
    let (a, b) = (event("a", None), event("b", None));
    let sub = SubscriptionId::new();
    let recorded = vec![
        delivery(&a, &sub),
        delivery(&b, &sub),
        delivery(&a, &SubscriptionId::new()),
    ];
    store.record_deliveries(&recorded).await.unwrap();
    let unknown = delivery(&event("c", None), &sub).id;
    let asked: Vec<DeliveryId> = vec![recorded[0].id.clone(), unknown, recorded[2].id.clone()];
    let read = store.get_deliveries(&asked).await.unwrap();
    let expected = vec![recorded[0].clone(), recorded[2].clone()];
    assert_eq!(sorted(read), sorted(expected));
    assert!(store.get_deliveries(&[]).await.unwrap().is_empty());
}

/// A behaviour of the contract: a batch read of more ids than one statement of an `IN` list
/// takes returns every delivery asked for.
pub async fn a_big_batch_read_returns_every_delivery(store: &dyn Store) {
    let sub = SubscriptionId::new();
    let recorded: Vec<Delivery> = (0..250)
        .map(|i| delivery(&event(&format!("e{i}"), None), &sub))
        .collect();
    store.record_deliveries(&recorded).await.unwrap();
    let asked: Vec<DeliveryId> = recorded.iter().map(|d| d.id.clone()).collect();
    let read = store.get_deliveries(&asked).await.unwrap();
    assert_eq!(sorted(read), sorted(recorded));
}

/// A behaviour of the contract: a batch read returns the subscriptions that exist, as
/// `get_subscription` reads each, and leaves unknown ids out.
pub async fn subscriptions_read_in_a_batch_are_those_that_exist(store: &dyn Store) {
    let (one, two) = (subscription("order.*"), subscription("invoice.paid"));
    store.add_subscription(one.clone()).await.unwrap();
    store.add_subscription(two.clone()).await.unwrap();
    let mut read = store
        .get_subscriptions(&[two.id.clone(), SubscriptionId::new(), one.id.clone()])
        .await
        .unwrap();
    read.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut expected = vec![one, two];
    expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(read, expected);
}

/// A behaviour of the contract: an attempt that got no response is kept in a batch as it is —
/// its error's kind and message, and no status — beside one that got a response.
pub async fn a_batch_of_attempts_keeps_an_attempt_without_a_response(store: &dyn Store) {
    let sub = SubscriptionId::new();
    let pending: Vec<Delivery> = (0..2).map(|_| delivery(&event("a", None), &sub)).collect();
    store.record_deliveries(&pending).await.unwrap();
    let batch: Vec<_> = pending
        .iter()
        .zip([timed_out(), response(502)])
        .map(|(d, outcome)| {
            let mut d = d.clone();
            d.attempts = 1;
            d.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
            d.updated_at = now();
            let a = attempt(&d, 1, outcome);
            (d, a)
        })
        .collect();
    store.record_attempts(&batch).await.unwrap();
    super::assert_each_recorded_with_its_attempt(store, &batch).await;
}

/// A behaviour of the contract: a batch of attempts sets each delivery's state and keeps each
/// attempt, as `record_attempt` would one by one — a delivered one, one to retry, a late
/// attempt of a delivery already final (history only), and one of a delivery the store does
/// not hold (dropped, not an error).
pub async fn a_batch_of_attempts_records_each_as_one_attempt_would(store: &dyn Store) {
    let sub = SubscriptionId::new();
    let pending: Vec<Delivery> = (0..3).map(|_| delivery(&event("a", None), &sub)).collect();
    store.record_deliveries(&pending).await.unwrap();
    // The third was delivered before the batch.
    let mut done = pending[2].clone();
    done.attempts = 1;
    done.status = DeliveryStatus::Delivered;
    done.updated_at = now();
    let first = attempt(&done, 1, response(200));
    store.record_attempt(&done, &first).await.unwrap();

    let mut delivered = pending[0].clone();
    delivered.attempts = 1;
    delivered.status = DeliveryStatus::Delivered;
    delivered.updated_at = now();
    let mut retried = pending[1].clone();
    retried.attempts = 1;
    retried.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
    retried.updated_at = now();
    let mut late = pending[2].clone();
    late.attempts = 1;
    late.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
    late.updated_at = now();
    let mut unknown = delivery(&event("a", None), &sub);
    unknown.attempts = 1;
    unknown.status = DeliveryStatus::Delivered;
    let batch = vec![
        (delivered.clone(), attempt(&delivered, 1, response(200))),
        (retried.clone(), attempt(&retried, 1, response(503))),
        (late.clone(), attempt(&late, 1, response(503))),
        (unknown.clone(), attempt(&unknown, 1, response(200))),
    ];
    store.record_attempts(&batch).await.unwrap();

    for expected in [&delivered, &retried, &done] {
        let stored = store.get_delivery(&expected.id).await.unwrap().unwrap();
        assert_eq!(&stored, expected, "{}", expected.id);
    }
    assert_eq!(
        store.list_attempts(&delivered.id).await.unwrap(),
        [batch[0].1.clone()]
    );
    assert_eq!(
        store.list_attempts(&retried.id).await.unwrap(),
        [batch[1].1.clone()]
    );
    let history = store.list_attempts(&done.id).await.unwrap();
    assert!(
        history.contains(&first) && history.contains(&batch[2].1),
        "{history:?}"
    );
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(store.get_delivery(&unknown.id).await.unwrap().is_none());
    assert!(store.list_attempts(&unknown.id).await.unwrap().is_empty());
}

/// A behaviour of the contract: two attempts of one delivery in one batch apply in order.
pub async fn a_batch_may_hold_two_attempts_of_one_delivery(store: &dyn Store) {
    let d = delivery(&event("a", None), &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let mut retried = d.clone();
    retried.attempts = 1;
    retried.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
    retried.updated_at = now();
    let mut delivered = d.clone();
    delivered.attempts = 2;
    delivered.status = DeliveryStatus::Delivered;
    delivered.updated_at = now();
    let batch = vec![
        (retried.clone(), attempt(&retried, 1, response(503))),
        (delivered.clone(), attempt(&delivered, 2, response(200))),
    ];
    store.record_attempts(&batch).await.unwrap();
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), delivered);
    let attempts: Vec<_> = batch.into_iter().map(|(_, a)| a).collect();
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), attempts);
}
