//! [`Store::record_first_attempts`] in the contract: a delivery attempted before it was
//! recorded is written with its first attempt, in its state after it, and one recorded
//! meanwhile follows the rules of `record_attempts`.

use fastapihooks_core::{Delivery, DeliveryStatus, Store, SubscriptionId};

use crate::fixtures::{attempt, delivery, event, now, response, timed_out};

/// `d` after its `number`th attempt left it `status` (a retry is due in 30 s).
fn after(d: &Delivery, number: u32, status: DeliveryStatus) -> Delivery {
    let mut d = d.clone();
    d.attempts = number;
    d.status = status;
    d.next_attempt_at =
        (status == DeliveryStatus::Pending).then(|| now() + chrono::Duration::seconds(30));
    d.updated_at = now();
    d
}

/// `n` deliveries of one event, to as many subscriptions.
fn deliveries_of_one_event(n: usize) -> Vec<Delivery> {
    let e = event("a", None);
    (0..n)
        .map(|_| delivery(&e, &SubscriptionId::new()))
        .collect()
}

/// A behaviour of the contract: deliveries the store never held — one delivered, one to retry,
/// one failed for good — read back in their state after the attempt, with their event and
/// their one attempt.
pub async fn a_first_attempt_records_its_delivery_in_the_state_after_it(store: &dyn Store) {
    let e = event("order.created", Some("t1"));
    let planned: Vec<Delivery> = (0..3)
        .map(|_| delivery(&e, &SubscriptionId::new()))
        .collect();
    let delivered = after(&planned[0], 1, DeliveryStatus::Delivered);
    let retried = after(&planned[1], 1, DeliveryStatus::Pending);
    let failed = after(&planned[2], 1, DeliveryStatus::Failed);
    let batch = vec![
        (delivered.clone(), attempt(&delivered, 1, response(200))),
        (retried.clone(), attempt(&retried, 1, response(503))),
        (failed.clone(), attempt(&failed, 1, response(400))),
    ];
    store.record_first_attempts(&batch).await.unwrap();
    for (expected, first) in &batch {
        let stored = store.get_delivery(&expected.id).await.unwrap().unwrap();
        assert_eq!(&stored, expected, "{}", expected.id);
        assert_eq!(stored.event.payload(), e.payload());
        let attempts = store.list_attempts(&expected.id).await.unwrap();
        assert_eq!(attempts, std::slice::from_ref(first), "{}", expected.id);
    }
    let stored_event = store.get_event(e.id()).await.unwrap().unwrap();
    assert_eq!(stored_event.payload(), e.payload());
}

/// A behaviour of the contract: what has no value is read back without one, and what is
/// empty is read back empty — an event without an owner beside one whose owner is `""`, an
/// attempt that got no response (no status) beside a response with an empty body, a delivery
/// with no next attempt beside one with.
pub async fn a_first_attempt_keeps_a_missing_value_apart_from_an_empty_one(store: &dyn Store) {
    let unowned = event("a", None);
    let empty_owner = event("a", Some(""));
    let failed = after(
        &delivery(&unowned, &SubscriptionId::new()),
        1,
        DeliveryStatus::Failed,
    );
    let retried = after(
        &delivery(&empty_owner, &SubscriptionId::new()),
        1,
        DeliveryStatus::Pending,
    );
    let empty_body = fastapihooks_core::AttemptOutcome::Response {
        status: 503,
        body_excerpt: String::new(),
    };
    let batch = vec![
        (failed.clone(), attempt(&failed, 1, timed_out())),
        (retried.clone(), attempt(&retried, 1, empty_body)),
    ];
    store.record_first_attempts(&batch).await.unwrap();
    super::assert_each_recorded_with_its_attempt(store, &batch).await;
    let owner = |e: &fastapihooks_core::Event| {
        let id = e.id().clone();
        async move {
            let stored = store.get_event(&id).await.unwrap().unwrap();
            stored.owner().map(str::to_owned)
        }
    };
    assert_eq!(owner(&unowned).await, None);
    assert_eq!(owner(&empty_owner).await, Some(String::new()));
}

/// A behaviour of the contract: a delivery recorded before its first attempt is recorded
/// (another sidecar fanned the same event out) takes the attempt's state only as
/// `record_attempt` gives it — a pending one does, a final one keeps its state, a replayed one
/// keeps its run — and each attempt is history all the same.
pub async fn a_first_attempt_of_a_delivery_recorded_meanwhile_follows_the_attempt_rules(
    store: &dyn Store,
) {
    let planned = deliveries_of_one_event(3);
    store.record_deliveries(&planned).await.unwrap();
    let done = after(&planned[1], 1, DeliveryStatus::Delivered);
    let earlier = attempt(&done, 1, response(200));
    store.record_attempt(&done, &earlier).await.unwrap();
    let reopened = after(&planned[2], 1, DeliveryStatus::Dead);
    let dead = attempt(&reopened, 1, response(503));
    store.record_attempt(&reopened, &dead).await.unwrap();
    store
        .replay_delivery(&reopened.id, false)
        .await
        .unwrap()
        .expect("recorded");
    let replayed = store.get_delivery(&reopened.id).await.unwrap().unwrap();

    let taken = after(&planned[0], 1, DeliveryStatus::Delivered);
    let late = after(&planned[1], 1, DeliveryStatus::Pending);
    let stale = after(&planned[2], 1, DeliveryStatus::Failed);
    let batch = vec![
        (taken.clone(), attempt(&taken, 1, response(200))),
        (late.clone(), attempt(&late, 1, response(503))),
        (stale.clone(), attempt(&stale, 1, response(400))),
    ];
    store.record_first_attempts(&batch).await.unwrap();

    assert_eq!(store.get_delivery(&taken.id).await.unwrap().unwrap(), taken);
    assert_eq!(store.get_delivery(&done.id).await.unwrap().unwrap(), done);
    assert_eq!(
        store.get_delivery(&replayed.id).await.unwrap().unwrap(),
        replayed
    );
    assert_eq!(
        store.list_attempts(&taken.id).await.unwrap(),
        [batch[0].1.clone()]
    );
    for (id, kept) in [
        (&done.id, [&earlier, &batch[1].1]),
        (&replayed.id, [&dead, &batch[2].1]),
    ] {
        let history = store.list_attempts(id).await.unwrap();
        assert_eq!(history.len(), 2, "{history:?}");
        assert!(kept.iter().all(|a| history.contains(a)), "{history:?}");
    }
}

/// A behaviour of the contract: a batch of first attempts where one delivery was recorded
/// meanwhile and the others were not records each — the new ones in their state after the
/// attempt, the one recorded meanwhile by the rules of `record_attempts` — and every attempt.
pub async fn a_batch_of_first_attempts_mixing_new_and_recorded_deliveries_records_each(
    store: &dyn Store,
) {
    let planned = deliveries_of_one_event(3);
    store
        .record_deliveries(std::slice::from_ref(&planned[1]))
        .await
        .unwrap();
    let batch: Vec<_> = planned
        .iter()
        .map(|d| {
            let tried = after(d, 1, DeliveryStatus::Delivered);
            let first = attempt(&tried, 1, response(200));
            (tried, first)
        })
        .collect();
    store.record_first_attempts(&batch).await.unwrap();
    for (tried, first) in &batch {
        assert_eq!(
            store.get_delivery(&tried.id).await.unwrap().as_ref(),
            Some(tried)
        );
        assert_eq!(
            store.list_attempts(&tried.id).await.unwrap(),
            std::slice::from_ref(first)
        );
    }
}

/// A behaviour of the contract: one delivery twice in a batch (two fan-outs of one event that
/// both found it unrecorded) is recorded once, its attempts applied in order.
pub async fn a_batch_of_first_attempts_may_hold_one_delivery_twice(store: &dyn Store) {
    let d = delivery(&event("a", None), &SubscriptionId::new());
    let retried = after(&d, 1, DeliveryStatus::Pending);
    let delivered = after(&d, 2, DeliveryStatus::Delivered);
    let batch = vec![
        (retried.clone(), attempt(&retried, 1, response(503))),
        (delivered.clone(), attempt(&delivered, 2, response(200))),
    ];
    store.record_first_attempts(&batch).await.unwrap();
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), delivered);
    let attempts: Vec<_> = batch.into_iter().map(|(_, a)| a).collect();
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: a delivery recorded with its first attempt is pruned with it,
/// and the attempt is counted — alone, and beside a later attempt recorded on its own.
pub async fn pruning_counts_the_first_attempt_recorded_with_its_delivery(store: &dyn Store) {
    let cut = super::cut_off();
    let old = cut - chrono::Duration::days(1);
    let e = event("order.created", None);
    let at_old = |d: Delivery, number, status| {
        let mut d = after(&d, number, status);
        d.updated_at = old;
        d
    };
    let first_try = at_old(
        delivery(&e, &SubscriptionId::new()),
        1,
        DeliveryStatus::Delivered,
    );
    let planned = delivery(&e, &SubscriptionId::new());
    let retried = at_old(planned.clone(), 1, DeliveryStatus::Pending);
    let batch = vec![
        (first_try.clone(), attempt(&first_try, 1, response(200))),
        (retried.clone(), attempt(&retried, 1, response(503))),
    ];
    store.record_first_attempts(&batch).await.unwrap();
    let second_try = at_old(planned, 2, DeliveryStatus::Delivered);
    store
        .record_attempt(&second_try, &attempt(&second_try, 2, response(200)))
        .await
        .unwrap();
    let Some(pruned) = super::prune(store, cut, 100).await else {
        return;
    };
    assert_eq!(pruned, (2, 3, 1), "(deliveries, attempts, events)");
    for d in [&first_try, &second_try] {
        assert_eq!(store.get_delivery(&d.id).await.unwrap(), None);
        assert!(store.list_attempts(&d.id).await.unwrap().is_empty());
    }
}

/// A behaviour of the contract.
pub async fn an_empty_batch_of_first_attempts_is_accepted(store: &dyn Store) {
    store.record_first_attempts(&[]).await.unwrap();
}
