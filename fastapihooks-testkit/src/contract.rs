//! The `Store` contract: what every [`Store`] must do, each behaviour written once and run
//! against any store — the memory and SQL stores of fastapihooks, and yours.
//!
//! [`store_contract!`](crate::store_contract) turns every behaviour below into a `#[test]`, run
//! through a *harness*: an async function handing the behaviour a fresh, isolated store (its own
//! memory, file, schema or database), so the tests run in parallel. A harness may return
//! without calling the behaviour (a service that is not there: a skip).
//!
//! ```
//! use fastapihooks_core::{MemoryStore, Store};
//!
//! /// Hands each behaviour a store of its own.
//! async fn with_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
//!     behaviour(&MemoryStore::new()).await;
//! }
//!
//! // One #[test] per behaviour, named after it (`cargo test` runs them).
//! fastapihooks_testkit::store_contract!(with_store);
//! # fn main() {
//! #     use fastapihooks_testkit::contract;
//! #     // What one of those tests does.
//! #     contract::run(with_store(contract::matching_agrees_with_receives_for_every_filter_and_owner));
//! # }
//! ```
//!
//! Values are made with [`fixtures`](crate::fixtures), times at microsecond precision (what a
//! SQL store keeps), so a value read back compares equal to the value written.
//!
//! [`Store::prune`] is optional: a store that does not override it refuses with
//! [`Error::Unsupported`] (the trait's default), and the `pruning_…` behaviours then have
//! nothing to check. A store that prunes must pass them.

use std::future::Future;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use fastapihooks_core::{
    Attempt, AttemptErrorKind, AttemptOutcome, Auth, Delivery, DeliveryId, DeliveryQuery,
    DeliveryStatus, Error, Event, EventId, EventName, EventQuery, Secret, Store, SubscriptionId,
    SubscriptionQuery, health::Disabled, health::EndpointHealth, replay::Reopen,
    signing::SignatureScheme,
};
use serde_json::json;

use crate::fixtures::{attempt, delivery, event, now, response, subscription};

mod batch;
mod counts;
mod first_attempts;
mod inbox;
pub use batch::*;
pub use counts::*;
pub use first_attempts::*;
pub use inbox::*;

/// One `#[test]` per behaviour of the [`contract`](crate::contract), each run through
/// `$harness` on a multi-thread runtime of its own (two workers).
///
/// `$harness` is an async function taking the behaviour, `impl AsyncFnOnce(&dyn Store)`, and
/// calling it with a fresh store of its own. The tests need no `#[tokio::test]` of yours: each
/// builds its runtime. See the [`contract`](crate::contract) module.
///
/// ```
/// # mod my_store { pub type MyStore = fastapihooks_core::MemoryStore; }
/// use fastapihooks_core::Store;
/// use my_store::MyStore;
///
/// async fn with_my_store(behaviour: impl AsyncFnOnce(&dyn Store)) {
///     let store = MyStore::new(); // a fresh, isolated store per behaviour
///     behaviour(&store).await;
///     // clean up here (or with a guard: `TempSchema`, `TempDatabase`, ...)
/// }
///
/// fastapihooks_testkit::store_contract!(with_my_store);
/// # fn main() {
/// #     use fastapihooks_testkit::contract;
/// #     contract::run(with_my_store(contract::recording_a_delivery_again_keeps_its_state));
/// # }
/// ```
#[macro_export]
macro_rules! store_contract {
    ($harness:path) => {
        $crate::store_contract!(@each $harness;
            a_subscription_reads_back_as_it_was_added,
            every_kind_of_auth_keeps_its_credentials,
            a_rotated_secret_and_a_signature_scheme_persist,
            a_subscriptions_own_retry_policy_persists,
            adding_a_subscription_id_twice_is_rejected,
            an_unknown_subscription_reads_as_none,
            updating_a_subscription_replaces_every_field,
            updating_an_unknown_subscription_is_not_found,
            an_update_that_changes_nothing_succeeds,
            removing_a_subscription_forgets_it,
            removing_an_unknown_subscription_is_not_found,
            disabling_a_subscription_stops_its_matching,
            enabling_an_unknown_subscription_is_not_found,
            disabling_a_subscription_records_why_and_when,
            a_subscription_is_disabled_once,
            enabling_clears_the_reason_and_the_failure_streak,
            failures_count_up_from_the_first_and_a_success_ends_the_streak,
            concurrent_failures_all_count,
            the_health_of_a_subscription_the_store_does_not_hold_is_healthy,
            a_disabled_subscription_and_its_streak_persist,
            an_update_keeps_the_failure_streak,
            subscriptions_list_oldest_first_in_keyset_pages,
            subscriptions_list_only_the_owner_asked_for,
            the_largest_page_size_lists_everything,
            matching_agrees_with_receives_for_every_filter_and_owner,
            a_recorded_delivery_reads_back_with_its_event,
            recording_a_delivery_again_keeps_its_state,
            a_store_that_tells_which_deliveries_are_new_tells_exactly,
            an_empty_batch_of_deliveries_is_accepted,
            an_attempt_updates_its_delivery_and_is_listed_in_order,
            a_final_status_never_goes_back,
            an_unknown_delivery_reads_as_none_with_no_attempts,
            deliveries_list_newest_first_in_keyset_pages,
            deliveries_list_only_the_status_asked_for,
            deliveries_list_only_the_subscription_asked_for,
            deliveries_of_one_event_all_carry_its_payload,
            replaying_a_dead_letter_starts_a_new_run,
            replaying_a_failed_delivery_starts_a_new_run,
            a_reopened_delivery_is_returned_as_it_is_stored,
            replaying_a_pending_delivery_changes_nothing,
            a_delivered_delivery_is_replayed_only_when_asked_to_resend,
            replaying_an_unknown_delivery_finds_nothing,
            a_replayed_delivery_is_listed_as_pending,
            recording_a_delivery_again_after_a_replay_keeps_its_run,
            a_late_attempt_of_an_earlier_run_is_history_not_state,
            an_attempt_of_the_current_run_after_a_replay_sets_the_state,
            an_attempt_never_changes_the_attempts_before_the_replay,
            two_replays_racing_start_one_run,
            replaying_twice_counts_runs,
            an_event_is_found_by_its_id,
            an_event_received_by_many_subscriptions_is_listed_once,
            events_list_only_the_exact_name_asked_for,
            events_list_every_name_under_a_wildcard,
            events_list_only_the_owner_asked_for,
            events_list_only_those_made_in_the_time_range,
            events_listed_agree_with_event_query_matches,
            events_list_newest_first_in_pages_that_neither_skip_nor_repeat_while_rows_are_inserted,
            deliveries_list_only_the_event_name_asked_for,
            deliveries_list_every_event_name_under_a_wildcard,
            deliveries_list_only_the_owner_asked_for,
            deliveries_list_only_those_made_in_the_time_range,
            deliveries_list_only_the_event_asked_for,
            deliveries_listed_agree_with_delivery_query_matches,
            deliveries_list_in_pages_that_neither_skip_nor_repeat_while_rows_are_inserted,
            pruning_removes_old_delivered_deliveries_with_their_attempts,
            pruning_keeps_failed_dead_and_pending_deliveries,
            pruning_keeps_recent_deliveries,
            pruning_keeps_an_event_while_one_of_its_deliveries_remains,
            pruning_removes_at_most_the_limit_per_call,
            deliveries_read_in_a_batch_are_those_that_exist,
            a_big_batch_read_returns_every_delivery,
            subscriptions_read_in_a_batch_are_those_that_exist,
            a_batch_of_attempts_records_each_as_one_attempt_would,
            a_batch_may_hold_two_attempts_of_one_delivery,
            a_batch_of_attempts_keeps_an_attempt_without_a_response,
            a_first_attempt_records_its_delivery_in_the_state_after_it,
            a_first_attempt_keeps_a_missing_value_apart_from_an_empty_one,
            a_first_attempt_of_a_delivery_recorded_meanwhile_follows_the_attempt_rules,
            a_batch_of_first_attempts_may_hold_one_delivery_twice,
            a_batch_of_first_attempts_mixing_new_and_recorded_deliveries_records_each,
            pruning_counts_the_first_attempt_recorded_with_its_delivery,
            an_empty_batch_of_first_attempts_is_accepted,
            deliveries_are_counted_as_listed_per_hour_and_per_subscription,
            counting_in_buckets_of_a_fraction_of_a_second_is_refused,
            event_names_are_counted_as_listed,
        );
    };
    (@each $harness:path; $($behaviour:ident),* $(,)?) => {
        $(
            #[test]
            fn $behaviour() {
                $crate::contract::run($harness($crate::contract::$behaviour));
            }
        )*
    };
}

/// Checks that each delivery of `batch` reads back as given, with its one attempt.
async fn assert_each_recorded_with_its_attempt(store: &dyn Store, batch: &[(Delivery, Attempt)]) {
    for (expected, tried) in batch {
        let stored = store.get_delivery(&expected.id).await.unwrap().unwrap();
        assert_eq!(&stored, expected, "{}", expected.id);
        let attempts = store.list_attempts(&expected.id).await.unwrap();
        assert_eq!(attempts, std::slice::from_ref(tried), "{}", expected.id);
    }
}

/// Runs one contract test to its end on a multi-thread runtime of its own (two workers).
#[doc(hidden)]
pub fn run(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test);
}

fn name(s: &str) -> EventName {
    EventName::new(s).unwrap()
}

// ---- subscriptions ----

/// A behaviour of the contract.
pub async fn a_subscription_reads_back_as_it_was_added(store: &dyn Store) {
    let sub = subscription("order.*")
        .with_secret(Secret::new("whsec_c2VjcmV0").unwrap())
        .with_auth(Auth::Bearer {
            token: Secret::new("tok-123").unwrap(),
        })
        .with_owner("tenant-1")
        .with_metadata(json!({"description": "orders", "tags": ["a", 1, null], "pi": 3.25}));
    store.add_subscription(sub.clone()).await.unwrap();
    let back = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(back, sub);
    assert_eq!(back.secret.unwrap().expose(), "whsec_c2VjcmV0");
}

/// A behaviour of the contract.
pub async fn a_rotated_secret_and_a_signature_scheme_persist(store: &dyn Store) {
    let mut sub = subscription("order.*")
        .with_secret(Secret::new("whsec_b2xkLXNlY3JldA==").unwrap())
        .with_signature_scheme(SignatureScheme::StandardWebhooks);
    sub.rotate_secret(
        Secret::new("whsec_bmV3LXNlY3JldA==").unwrap(),
        std::time::Duration::from_secs(3600),
    );
    store.add_subscription(sub.clone()).await.unwrap();
    let back = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(back.previous_secrets.len(), 1);
    assert_eq!(
        back.previous_secrets[0].secret.expose(),
        "whsec_b2xkLXNlY3JldA=="
    );
    assert_eq!(
        back.signature_scheme,
        Some(SignatureScheme::StandardWebhooks)
    );
    assert_eq!(back, sub);
}

/// A behaviour of the contract.
pub async fn a_subscriptions_own_retry_policy_persists(store: &dyn Store) {
    let policy = fastapihooks_core::RetryPolicy::standard_webhooks();
    let sub = subscription("order.*").with_retry(policy.clone());
    store.add_subscription(sub.clone()).await.unwrap();
    let back = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(back.retry.as_deref(), Some(&policy));
    let mut changed = back.clone();
    changed.retry = Some(Box::new("1s,2s ±10%".parse().unwrap()));
    store.update_subscription(changed.clone()).await.unwrap();
    let back = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(back, changed);
    let mut cleared = back;
    cleared.retry = None;
    store.update_subscription(cleared.clone()).await.unwrap();
    assert_eq!(
        store.get_subscription(&sub.id).await.unwrap(),
        Some(cleared)
    );
}

/// A behaviour of the contract.
pub async fn every_kind_of_auth_keeps_its_credentials(store: &dyn Store) {
    let auths = [
        Auth::None,
        Auth::Bearer {
            token: Secret::new("bearer-token").unwrap(),
        },
        Auth::Basic {
            username: "user".into(),
            password: Secret::new("p@ss word").unwrap(),
        },
        Auth::header("X-Api-Key", Secret::new("key-1").unwrap()).unwrap(),
    ];
    for auth in auths {
        let sub = subscription("a").with_auth(auth.clone());
        store.add_subscription(sub.clone()).await.unwrap();
        let back = store.get_subscription(&sub.id).await.unwrap().unwrap();
        assert_eq!(back.auth, auth);
    }
}

/// A behaviour of the contract.
pub async fn adding_a_subscription_id_twice_is_rejected(store: &dyn Store) {
    let sub = subscription("a");
    store.add_subscription(sub.clone()).await.unwrap();
    let mut other = subscription("b");
    other.id = sub.id.clone();
    let err = store.add_subscription(other).await.unwrap_err();
    assert!(
        matches!(&err, Error::SubscriptionExists { id } if *id == sub.id.to_string()),
        "{err:?}"
    );
    let kept = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(kept.filter.to_string(), "a");
}

/// A behaviour of the contract.
pub async fn an_unknown_subscription_reads_as_none(store: &dyn Store) {
    assert!(
        store
            .get_subscription(&SubscriptionId::new())
            .await
            .unwrap()
            .is_none()
    );
}

/// A behaviour of the contract.
pub async fn updating_a_subscription_replaces_every_field(store: &dyn Store) {
    let sub = subscription("order.created").with_owner("t1");
    store.add_subscription(sub.clone()).await.unwrap();
    let mut changed = subscription("invoice.*")
        .with_secret(Secret::new("new-secret").unwrap())
        .with_auth(Auth::Basic {
            username: "u".into(),
            password: Secret::new("pw").unwrap(),
        })
        .with_metadata(json!({"v": 2}));
    changed.id = sub.id.clone();
    changed.url = "http://127.0.0.1:9/elsewhere?x=1".parse().unwrap();
    changed.enabled = false;
    changed.owner = None;
    store.update_subscription(changed.clone()).await.unwrap();
    assert_eq!(
        store.get_subscription(&sub.id).await.unwrap().unwrap(),
        changed
    );
}

/// A behaviour of the contract.
pub async fn updating_an_unknown_subscription_is_not_found(store: &dyn Store) {
    let sub = subscription("a");
    let err = store.update_subscription(sub.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::SubscriptionNotFound { id } if *id == sub.id.to_string()),
        "{err:?}"
    );
    assert!(store.get_subscription(&sub.id).await.unwrap().is_none());
}

/// A behaviour of the contract.
pub async fn an_update_that_changes_nothing_succeeds(store: &dyn Store) {
    let sub = subscription("a");
    store.add_subscription(sub.clone()).await.unwrap();
    store.update_subscription(sub.clone()).await.unwrap();
    store.set_enabled(&sub.id, true).await.unwrap();
    assert_eq!(store.get_subscription(&sub.id).await.unwrap(), Some(sub));
}

/// A behaviour of the contract.
pub async fn removing_a_subscription_forgets_it(store: &dyn Store) {
    let (gone, kept) = (subscription("a"), subscription("a"));
    store.add_subscription(gone.clone()).await.unwrap();
    store.add_subscription(kept.clone()).await.unwrap();
    store.remove_subscription(&gone.id).await.unwrap();
    assert!(store.get_subscription(&gone.id).await.unwrap().is_none());
    let matched = store.matching(&name("a"), None).await.unwrap();
    assert_eq!(matched, [kept]);
}

/// A behaviour of the contract.
pub async fn removing_an_unknown_subscription_is_not_found(store: &dyn Store) {
    let err = store
        .remove_subscription(&SubscriptionId::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SubscriptionNotFound { .. }), "{err:?}");
}

/// A behaviour of the contract.
pub async fn disabling_a_subscription_stops_its_matching(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let order = name("order.created");
    store.set_enabled(&sub.id, false).await.unwrap();
    assert!(store.matching(&order, None).await.unwrap().is_empty());
    assert!(
        !store
            .get_subscription(&sub.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    store.set_enabled(&sub.id, true).await.unwrap();
    assert_eq!(store.matching(&order, None).await.unwrap(), [sub]);
}

/// A behaviour of the contract.
pub async fn enabling_an_unknown_subscription_is_not_found(store: &dyn Store) {
    let err = store
        .set_enabled(&SubscriptionId::new(), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SubscriptionNotFound { .. }), "{err:?}");
}

/// A behaviour of the contract.
pub async fn subscriptions_list_oldest_first_in_keyset_pages(store: &dyn Store) {
    let mut subs = Vec::new();
    for i in 0..5 {
        let sub = subscription(&format!("e{i}"));
        store.add_subscription(sub.clone()).await.unwrap();
        subs.push(sub);
    }
    subs.sort_by(|a, b| a.id.cmp(&b.id));
    let mut pages = Vec::new();
    let mut query = SubscriptionQuery {
        limit: 2,
        ..SubscriptionQuery::default()
    };
    loop {
        let page = store.list_subscriptions(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.after = Some(last.id.clone());
        pages.push(page);
        assert!(pages.len() <= 5, "pagination does not end");
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 1],
        "page sizes"
    );
    assert_eq!(pages.concat(), subs);
}

/// A behaviour of the contract.
pub async fn subscriptions_list_only_the_owner_asked_for(store: &dyn Store) {
    let mine = subscription("a").with_owner("t1");
    for sub in [
        mine.clone(),
        subscription("a").with_owner("t2"),
        subscription("a").with_owner("T1"),
        subscription("a"),
    ] {
        store.add_subscription(sub).await.unwrap();
    }
    let query = SubscriptionQuery {
        owner: Some("t1".into()),
        ..SubscriptionQuery::default()
    };
    assert_eq!(store.list_subscriptions(&query).await.unwrap(), [mine]);
}

/// A behaviour of the contract.
pub async fn the_largest_page_size_lists_everything(store: &dyn Store) {
    let sub = subscription("a");
    store.add_subscription(sub.clone()).await.unwrap();
    let d = delivery(&event("a", None), &sub.id);
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let subs = SubscriptionQuery {
        limit: usize::MAX,
        ..SubscriptionQuery::default()
    };
    assert_eq!(store.list_subscriptions(&subs).await.unwrap(), [sub]);
    let deliveries = DeliveryQuery::default().limit(usize::MAX);
    assert_eq!(store.list_deliveries(&deliveries).await.unwrap(), [d]);
}

/// A behaviour of the contract.
pub async fn matching_agrees_with_receives_for_every_filter_and_owner(store: &dyn Store) {
    let filters = [
        "order.created",
        "order.*",
        "order.line.*",
        "orders.*",
        "invoice.paid",
        "*",
    ];
    let owners = [None, Some("t1"), Some("t2")];
    let mut subs = Vec::new();
    for filter in filters {
        for owner in owners {
            for enabled in [true, false] {
                let mut sub = subscription(filter);
                sub.owner = owner.map(str::to_owned);
                sub.enabled = enabled;
                store.add_subscription(sub.clone()).await.unwrap();
                subs.push(sub);
            }
        }
    }
    let names = [
        "order.created",
        "order.line.added",
        "order",
        "orders.created",
        "order.created.late",
        "invoice.paid",
        "other",
    ];
    // `T1` and `t1 ` differ from `t1`: databases that fold case or pad must not match them.
    let event_owners = [None, Some("t1"), Some("t2"), Some("T1"), Some("t1 ")];
    for event_name in names {
        let event_name = name(event_name);
        for owner in event_owners {
            let mut expected: Vec<_> = subs
                .iter()
                .filter(|s| s.receives(&event_name, owner))
                .map(|s| s.id.clone())
                .collect();
            expected.sort();
            let mut got: Vec<_> = store
                .matching(&event_name, owner)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            got.sort();
            assert_eq!(got, expected, "event {event_name} of owner {owner:?}");
        }
    }
}

// ---- deliveries and attempts ----

/// A behaviour of the contract.
pub async fn a_recorded_delivery_reads_back_with_its_event(store: &dyn Store) {
    let e = event("order.created", Some("t1"));
    let d = delivery(&e, &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let back = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(back, d);
    assert_eq!(back.event.payload(), e.payload());
    assert_eq!(back.event.owner(), Some("t1"));
}

/// A behaviour of the contract.
pub async fn recording_a_delivery_again_keeps_its_state(store: &dyn Store) {
    let e = event("a", None);
    let mut d = delivery(&e, &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    d.attempts = 1;
    d.status = DeliveryStatus::Delivered;
    d.next_attempt_at = None;
    d.updated_at = now();
    let first = attempt(&d, 1, response(200));
    store.record_attempt(&d, &first).await.unwrap();
    // Fan-out runs again for the same event (a redelivered queue message).
    let again = delivery(&e, &d.subscription_id);
    assert_eq!(again.id, d.id);
    store.record_deliveries(&[again]).await.unwrap();
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), d);
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), [first]);
}

/// A behaviour of the contract: recorded before, recorded by this call, and given twice (new
/// once). A store that cannot tell says `None`, and records them all the same.
pub async fn a_store_that_tells_which_deliveries_are_new_tells_exactly(store: &dyn Store) {
    let e = event("a", None);
    let before = delivery(&e, &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&before))
        .await
        .unwrap();
    let fresh = delivery(&e, &SubscriptionId::new());
    let told = store
        .record_new_deliveries(&[before.clone(), fresh.clone(), fresh.clone()])
        .await
        .unwrap();
    if let Some(new) = told {
        assert_eq!(new, [false, true, false]);
    }
    assert_eq!(store.get_delivery(&fresh.id).await.unwrap().unwrap(), fresh);
    assert_eq!(
        store.get_delivery(&before.id).await.unwrap().unwrap(),
        before
    );
}

/// A behaviour of the contract.
pub async fn an_empty_batch_of_deliveries_is_accepted(store: &dyn Store) {
    store.record_deliveries(&[]).await.unwrap();
    let all = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    assert!(all.is_empty());
}

/// A behaviour of the contract.
pub async fn an_attempt_updates_its_delivery_and_is_listed_in_order(store: &dyn Store) {
    let mut d = delivery(&event("a", None), &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    d.attempts = 1;
    d.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
    d.updated_at = now();
    let failed = attempt(
        &d,
        1,
        AttemptOutcome::Error {
            kind: AttemptErrorKind::Timeout,
            message: "timed out after 10s".into(),
        },
    );
    store.record_attempt(&d, &failed).await.unwrap();
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), d);

    d.attempts = 2;
    d.status = DeliveryStatus::Dead;
    d.next_attempt_at = None;
    d.updated_at = now();
    let refused = attempt(&d, 2, response(503));
    store.record_attempt(&d, &refused).await.unwrap();
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), d);
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), [failed, refused]);
}

/// A behaviour of the contract: a delivery's status is monotonic. An attempt recorded after the
/// delivery reached a final status (an overtaken run's 5xx, say) is kept in the history, but the
/// delivery stays as it was — `delivered` never turns back into `pending`, so nothing retries it.
pub async fn a_final_status_never_goes_back(store: &dyn Store) {
    let pending = delivery(&event("a", None), &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&pending))
        .await
        .unwrap();
    let mut delivered = pending.clone();
    delivered.attempts = 1;
    delivered.status = DeliveryStatus::Delivered;
    delivered.updated_at = now();
    let ok = attempt(&delivered, 1, response(200));
    store.record_attempt(&delivered, &ok).await.unwrap();

    let mut overtaken = pending.clone();
    overtaken.attempts = 1;
    overtaken.status = DeliveryStatus::Pending;
    overtaken.next_attempt_at = Some(now() + chrono::Duration::seconds(30));
    overtaken.updated_at = now();
    let late = attempt(&overtaken, 1, response(503));
    store.record_attempt(&overtaken, &late).await.unwrap();

    assert_eq!(
        store.get_delivery(&pending.id).await.unwrap().unwrap(),
        delivered,
        "a final status went back"
    );
    // Both were sent, so both are history (same number: their order is the store's).
    let attempts = store.list_attempts(&pending.id).await.unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(
        attempts.contains(&ok) && attempts.contains(&late),
        "{attempts:?}"
    );
}

/// A behaviour of the contract.
pub async fn an_unknown_delivery_reads_as_none_with_no_attempts(store: &dyn Store) {
    let d = delivery(&event("a", None), &SubscriptionId::new());
    assert!(store.get_delivery(&d.id).await.unwrap().is_none());
    assert!(store.list_attempts(&d.id).await.unwrap().is_empty());
}

/// A behaviour of the contract.
pub async fn deliveries_list_newest_first_in_keyset_pages(store: &dyn Store) {
    let sub = SubscriptionId::new();
    let mut all = Vec::new();
    for i in 0..5 {
        all.push(delivery(&event(&format!("e{i}"), None), &sub));
    }
    store.record_deliveries(&all).await.unwrap();
    all.sort_by(|a, b| b.id.cmp(&a.id));
    let mut query = DeliveryQuery::default().limit(2);
    let mut pages = Vec::new();
    loop {
        let page = store.list_deliveries(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.before = Some(last.id.clone());
        pages.push(page);
        assert!(pages.len() <= 5, "pagination does not end");
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), all);
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_the_status_asked_for(store: &dyn Store) {
    let sub = SubscriptionId::new();
    let mut dead = delivery(&event("a", None), &sub);
    let pending = delivery(&event("b", None), &sub);
    let mut failed = delivery(&event("c", None), &sub);
    let mut delivered = delivery(&event("d", None), &sub);
    store
        .record_deliveries(&[
            dead.clone(),
            pending.clone(),
            failed.clone(),
            delivered.clone(),
        ])
        .await
        .unwrap();
    for (d, status, code) in [
        (&mut dead, DeliveryStatus::Dead, 500),
        (&mut failed, DeliveryStatus::Failed, 400),
        (&mut delivered, DeliveryStatus::Delivered, 200),
    ] {
        d.attempts = 1;
        d.status = status;
        d.next_attempt_at = None;
        store
            .record_attempt(d, &attempt(d, 1, response(code)))
            .await
            .unwrap();
    }
    let listed = async |status| {
        store
            .list_deliveries(&DeliveryQuery::status(status))
            .await
            .unwrap()
    };
    assert_eq!(listed(DeliveryStatus::Dead).await, [dead.clone()]);
    assert_eq!(listed(DeliveryStatus::Pending).await, [pending]);
    assert_eq!(listed(DeliveryStatus::Failed).await, [failed]);
    assert_eq!(listed(DeliveryStatus::Delivered).await, [delivered]);
    // The builder form of the same filter, combined with another.
    let query = DeliveryQuery::default()
        .with_status(DeliveryStatus::Dead)
        .event("a")
        .unwrap();
    assert_eq!(store.list_deliveries(&query).await.unwrap(), [dead]);
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_the_subscription_asked_for(store: &dyn Store) {
    let e = event("a", None);
    let (mine, theirs) = (SubscriptionId::new(), SubscriptionId::new());
    let d = delivery(&e, &mine);
    store
        .record_deliveries(&[d.clone(), delivery(&e, &theirs)])
        .await
        .unwrap();
    let query = DeliveryQuery {
        subscription_id: Some(mine),
        ..DeliveryQuery::default()
    };
    assert_eq!(store.list_deliveries(&query).await.unwrap(), [d]);
}

/// A behaviour of the contract.
pub async fn deliveries_of_one_event_all_carry_its_payload(store: &dyn Store) {
    let e = event("order.created", None);
    let batch: Vec<_> = (0..20)
        .map(|_| delivery(&e, &SubscriptionId::new()))
        .collect();
    store.record_deliveries(&batch).await.unwrap();
    let listed = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 20);
    assert!(listed.iter().all(|d| d.event == e));
}

// ---- replays: a new run of a delivery, under the same id ----

/// A behaviour of the contract: a dead letter that ran out of retries is pending again, in run
/// 1, due now, counting the attempts made before; nothing else changes, and its attempts stay.
pub async fn replaying_a_dead_letter_starts_a_new_run(store: &dyn Store) {
    let (dead, attempts) =
        recorded_then(store, &[DeliveryStatus::Pending, DeliveryStatus::Dead]).await;
    let reopened = match replay(store, &dead.id, false).await {
        Reopen::Reopened(d) => d,
        other => panic!("a dead letter was not reopened: {other:?}"),
    };
    let run = |d: &Delivery| (d.status, d.replays, d.attempts_before_replay, d.attempts);
    assert_eq!(
        run(&reopened),
        (DeliveryStatus::Pending, 1, 2, 2),
        "{reopened:?}"
    );
    let back = store.get_delivery(&dead.id).await.unwrap().unwrap();
    assert_eq!(run(&back), (DeliveryStatus::Pending, 1, 2, 2), "{back:?}");
    assert!(
        back.next_attempt_at.is_some_and(|t| t <= now()),
        "a new run is due at once: {back:?}"
    );
    assert_eq!(
        back,
        Delivery {
            status: DeliveryStatus::Pending,
            replays: 1,
            attempts_before_replay: 2,
            next_attempt_at: back.next_attempt_at,
            updated_at: back.updated_at,
            ..dead.clone()
        },
        "a replay changes the run, nothing else"
    );
    // A replay appends to the history, never erases it.
    assert_eq!(store.list_attempts(&dead.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: a delivery refused for good is a dead letter too.
pub async fn replaying_a_failed_delivery_starts_a_new_run(store: &dyn Store) {
    let (failed, attempts) = recorded_then(store, &[DeliveryStatus::Failed]).await;
    let reopened = match replay(store, &failed.id, false).await {
        Reopen::Reopened(d) => d,
        other => panic!("a failed delivery was not reopened: {other:?}"),
    };
    let run = |d: &Delivery| (d.status, d.replays, d.attempts_before_replay, d.attempts);
    assert_eq!(
        run(&reopened),
        (DeliveryStatus::Pending, 1, 1, 1),
        "{reopened:?}"
    );
    let back = store.get_delivery(&failed.id).await.unwrap().unwrap();
    assert_eq!(run(&back), (DeliveryStatus::Pending, 1, 1, 1), "{back:?}");
    assert_eq!(store.list_attempts(&failed.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: the delivery a replay returns is the one the store now keeps
/// (the replay queues it), read back equal.
pub async fn a_reopened_delivery_is_returned_as_it_is_stored(store: &dyn Store) {
    let (dead, _) = recorded_then(store, &[DeliveryStatus::Dead]).await;
    let reopened = replay(store, &dead.id, false).await;
    assert!(matches!(reopened, Reopen::Reopened(_)), "{reopened:?}");
    assert_eq!(
        store.get_delivery(&dead.id).await.unwrap().as_ref(),
        Some(reopened.delivery())
    );
}

/// A behaviour of the contract: a pending delivery's run is under way; replaying it, even with
/// `resend_delivered`, starts no other.
pub async fn replaying_a_pending_delivery_changes_nothing(store: &dyn Store) {
    let (pending, attempts) = recorded_then(store, &[DeliveryStatus::Pending]).await;
    for resend_delivered in [false, true] {
        assert_eq!(
            replay(store, &pending.id, resend_delivered).await,
            Reopen::Pending(pending.clone()),
            "resend_delivered: {resend_delivered}"
        );
        assert_eq!(
            store.get_delivery(&pending.id).await.unwrap().unwrap(),
            pending
        );
    }
    assert_eq!(store.list_attempts(&pending.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: a delivered delivery is sent again only with
/// `resend_delivered`.
pub async fn a_delivered_delivery_is_replayed_only_when_asked_to_resend(store: &dyn Store) {
    let (delivered, attempts) = recorded_then(store, &[DeliveryStatus::Delivered]).await;
    assert_eq!(
        replay(store, &delivered.id, false).await,
        Reopen::Delivered(delivered.clone())
    );
    assert_eq!(
        store.get_delivery(&delivered.id).await.unwrap().unwrap(),
        delivered,
        "replayed without being asked to resend"
    );
    let reopened = match replay(store, &delivered.id, true).await {
        Reopen::Reopened(d) => d,
        other => panic!("not resent when asked to: {other:?}"),
    };
    let run = |d: &Delivery| (d.status, d.replays, d.attempts_before_replay, d.attempts);
    assert_eq!(
        run(&reopened),
        (DeliveryStatus::Pending, 1, 1, 1),
        "{reopened:?}"
    );
    let back = store.get_delivery(&delivered.id).await.unwrap().unwrap();
    assert_eq!(run(&back), (DeliveryStatus::Pending, 1, 1, 1), "{back:?}");
    assert_eq!(store.list_attempts(&delivered.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: replaying an id no delivery has finds nothing, and records
/// nothing.
pub async fn replaying_an_unknown_delivery_finds_nothing(store: &dyn Store) {
    let d = delivery(&event("a", None), &SubscriptionId::new());
    for resend_delivered in [false, true] {
        assert_eq!(
            store
                .replay_delivery(&d.id, resend_delivered)
                .await
                .unwrap(),
            None,
            "resend_delivered: {resend_delivered}"
        );
    }
    assert!(store.get_delivery(&d.id).await.unwrap().is_none());
}

/// A behaviour of the contract: a replayed delivery is listed as pending, with its run (what
/// an interrupted bulk replay reads to resume), and no longer as a dead letter.
pub async fn a_replayed_delivery_is_listed_as_pending(store: &dyn Store) {
    let (dead, _) = recorded_then(store, &[DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let back = store.get_delivery(&dead.id).await.unwrap().unwrap();
    let listed = async |status| {
        store
            .list_deliveries(&DeliveryQuery::status(status))
            .await
            .unwrap()
    };
    assert_eq!(listed(DeliveryStatus::Pending).await, [back]);
    assert!(listed(DeliveryStatus::Dead).await.is_empty());
}

/// A behaviour of the contract: fan-out run again for the event (a redelivered queue message)
/// does not reset a replayed delivery to its first run.
pub async fn recording_a_delivery_again_after_a_replay_keeps_its_run(store: &dyn Store) {
    let (dead, _) = recorded_then(store, &[DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let run = store.get_delivery(&dead.id).await.unwrap().unwrap();
    let again = delivery(&dead.event, &dead.subscription_id);
    assert_eq!(again.id, dead.id);
    store.record_deliveries(&[again]).await.unwrap();
    assert_eq!(store.get_delivery(&dead.id).await.unwrap().unwrap(), run);
}

/// A behaviour of the contract: an attempt of a run overtaken by a replay (a task queued
/// before it, still sending) is history, whatever it came to; the new run keeps its state.
pub async fn a_late_attempt_of_an_earlier_run_is_history_not_state(store: &dyn Store) {
    let (dead, mut attempts) =
        recorded_then(store, &[DeliveryStatus::Pending, DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let run = store.get_delivery(&dead.id).await.unwrap().unwrap();
    let mut late = dead.clone();
    assert_eq!(late.replays, 0);
    for status in [
        DeliveryStatus::Delivered,
        DeliveryStatus::Pending,
        DeliveryStatus::Dead,
    ] {
        attempts.push(next_attempt(store, &mut late, status).await);
        assert_eq!(
            store.get_delivery(&dead.id).await.unwrap().unwrap(),
            run,
            "a late attempt of run 0 that came to {status} set the state of run 1"
        );
    }
    assert_eq!(store.list_attempts(&dead.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: once replayed, the attempts of the new run set the state.
pub async fn an_attempt_of_the_current_run_after_a_replay_sets_the_state(store: &dyn Store) {
    let (dead, mut attempts) =
        recorded_then(store, &[DeliveryStatus::Pending, DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let mut d = store.get_delivery(&dead.id).await.unwrap().unwrap();
    attempts.push(next_attempt(store, &mut d, DeliveryStatus::Pending).await);
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), d);
    attempts.push(next_attempt(store, &mut d, DeliveryStatus::Delivered).await);
    let back = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(back, d);
    assert_eq!(
        (back.status, back.replays, back.attempts),
        (DeliveryStatus::Delivered, 1, 4)
    );
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), attempts);
}

/// A behaviour of the contract: a replay sets `attempts_before_replay`, an attempt never does,
/// whatever the delivery it carries says.
pub async fn an_attempt_never_changes_the_attempts_before_the_replay(store: &dyn Store) {
    let (dead, _) = recorded_then(store, &[DeliveryStatus::Pending, DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let mut d = store.get_delivery(&dead.id).await.unwrap().unwrap();
    assert_eq!(d.attempts_before_replay, 2);
    d.attempts_before_replay = 0;
    next_attempt(store, &mut d, DeliveryStatus::Pending).await;
    d.attempts_before_replay = 7;
    next_attempt(store, &mut d, DeliveryStatus::Delivered).await;
    assert_eq!(
        store.get_delivery(&d.id).await.unwrap().unwrap(),
        Delivery {
            attempts_before_replay: 2,
            ..d
        }
    );
}

/// A behaviour of the contract: of two replays of a dead letter at once, one starts a run and
/// the other finds it pending — never two runs.
pub async fn two_replays_racing_start_one_run(store: &dyn Store) {
    // A few races, for the replays to interleave on a store that can.
    for _ in 0..5 {
        let (dead, _) = recorded_then(store, &[DeliveryStatus::Dead]).await;
        let (a, b) = tokio::join!(
            store.replay_delivery(&dead.id, false),
            store.replay_delivery(&dead.id, false),
        );
        let outcomes = [a.unwrap().unwrap(), b.unwrap().unwrap()];
        let reopened = outcomes
            .iter()
            .filter(|r| matches!(r, Reopen::Reopened(_)))
            .count();
        let pending = outcomes
            .iter()
            .filter(|r| matches!(r, Reopen::Pending(_)))
            .count();
        assert_eq!((reopened, pending), (1, 1), "{outcomes:?}");
        assert!(
            outcomes.iter().all(|r| r.delivery().replays == 1),
            "{outcomes:?}"
        );
        let back = store.get_delivery(&dead.id).await.unwrap().unwrap();
        assert_eq!((back.status, back.replays), (DeliveryStatus::Pending, 1));
    }
}

/// A behaviour of the contract: each replay starts the next run, counting every attempt made
/// before it, of every run.
pub async fn replaying_twice_counts_runs(store: &dyn Store) {
    let (dead, mut attempts) =
        recorded_then(store, &[DeliveryStatus::Pending, DeliveryStatus::Dead]).await;
    replay(store, &dead.id, false).await;
    let mut d = store.get_delivery(&dead.id).await.unwrap().unwrap();
    attempts.push(next_attempt(store, &mut d, DeliveryStatus::Dead).await);
    assert_eq!(store.get_delivery(&d.id).await.unwrap().unwrap(), d);
    let reopened = match replay(store, &d.id, false).await {
        Reopen::Reopened(r) => r,
        other => panic!("run 1's dead letter was not reopened: {other:?}"),
    };
    let run = |d: &Delivery| (d.status, d.replays, d.attempts_before_replay, d.attempts);
    assert_eq!(
        run(&reopened),
        (DeliveryStatus::Pending, 2, 3, 3),
        "{reopened:?}"
    );
    let back = store.get_delivery(&d.id).await.unwrap().unwrap();
    assert_eq!(run(&back), (DeliveryStatus::Pending, 2, 3, 3), "{back:?}");
    assert_eq!(back.attempts_in_run(), 0);
    assert_eq!(store.list_attempts(&d.id).await.unwrap(), attempts);
}

/// Replays `id`, which is recorded.
async fn replay(store: &dyn Store, id: &DeliveryId, resend_delivered: bool) -> Reopen {
    store
        .replay_delivery(id, resend_delivered)
        .await
        .unwrap()
        .expect("the delivery is recorded")
}

/// A delivery of a new event, recorded, then one attempt for each of `statuses`, each leaving
/// it in that status: the delivery as it is stored now, and its attempts in order.
async fn recorded_then(store: &dyn Store, statuses: &[DeliveryStatus]) -> (Delivery, Vec<Attempt>) {
    let mut d = delivery(&event("a", None), &SubscriptionId::new());
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let mut attempts = Vec::new();
    for &status in statuses {
        attempts.push(next_attempt(store, &mut d, status).await);
    }
    (d, attempts)
}

/// Records the next attempt of `d` (in `d`'s run), which left it `status`: a 200 delivered it,
/// a 400 failed it, a 503 is retried later (pending) or was the last retry (dead).
async fn next_attempt(store: &dyn Store, d: &mut Delivery, status: DeliveryStatus) -> Attempt {
    d.attempts += 1;
    d.status = status;
    d.next_attempt_at = match status {
        DeliveryStatus::Pending => Some(now() + chrono::Duration::seconds(30)),
        _ => None,
    };
    d.updated_at = now();
    let code = match status {
        DeliveryStatus::Delivered => 200,
        DeliveryStatus::Failed => 400,
        DeliveryStatus::Pending | DeliveryStatus::Dead => 503,
    };
    let a = attempt(d, d.attempts, response(code));
    store.record_attempt(d, &a).await.unwrap();
    a
}

// ---- finding what happened: events and deliveries by filter, in stable pages ----

/// An event of `name` and `owner` made at `at`.
fn event_at(name: &str, owner: Option<&str>, at: DateTime<Utc>) -> Event {
    Event::restore(
        EventId::new(),
        EventName::new(name).unwrap(),
        owner.map(str::to_owned),
        Bytes::from(format!(r#"{{"name":"{name}"}}"#)),
        at,
    )
}

/// Records one delivery of each event, to a new subscription each.
async fn record_one_delivery_each(store: &dyn Store, events: &[Event]) -> Vec<Delivery> {
    let deliveries: Vec<_> = events
        .iter()
        .map(|e| delivery(e, &SubscriptionId::new()))
        .collect();
    store.record_deliveries(&deliveries).await.unwrap();
    deliveries
}

/// Every event `query` lists, page after page of three.
async fn every_event(store: &dyn Store, query: &EventQuery) -> Vec<Event> {
    let mut query = query.clone().limit(3);
    let mut all = Vec::new();
    loop {
        let page = store.list_events(&query).await.unwrap();
        assert!(page.len() <= 3, "a page is at most `limit` long");
        let Some(last) = page.last() else { break };
        query.before = Some(last.id().clone());
        all.extend(page);
        assert!(all.len() <= 10_000, "pagination does not end");
    }
    all
}

/// Every delivery `query` lists, page after page of three.
async fn every_delivery(store: &dyn Store, query: &DeliveryQuery) -> Vec<Delivery> {
    let mut query = query.clone().limit(3);
    let mut all = Vec::new();
    loop {
        let page = store.list_deliveries(&query).await.unwrap();
        assert!(page.len() <= 3, "a page is at most `limit` long");
        let Some(last) = page.last() else { break };
        query.before = Some(last.id.clone());
        all.extend(page);
        assert!(all.len() <= 10_000, "pagination does not end");
    }
    all
}

fn event_ids(events: &[Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id().clone()).collect()
}

fn delivery_ids(deliveries: &[Delivery]) -> Vec<DeliveryId> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

/// The ids of `events` that `query` accepts, newest first.
fn expected_events(events: &[Event], query: &EventQuery) -> Vec<EventId> {
    let mut ids: Vec<_> = events
        .iter()
        .filter(|e| query.matches(e))
        .map(|e| e.id().clone())
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

/// The ids of `deliveries` that `query` accepts, newest first.
fn expected_deliveries(deliveries: &[Delivery], query: &DeliveryQuery) -> Vec<DeliveryId> {
    let mut ids: Vec<_> = deliveries
        .iter()
        .filter(|d| query.matches(d))
        .map(|d| d.id.clone())
        .collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids
}

/// Names a wildcard must tell apart: under `order.` or not, case, `_` (a `LIKE` wildcard).
const NAMES: [&str; 8] = [
    "order.created",
    "order.line.added",
    "order",
    "orders.created",
    "Order.created",
    "a_b.c",
    "aXb.c",
    "invoice.paid",
];

/// Owners an exact comparison must tell apart: case, trailing space, a long one.
fn owners() -> Vec<Option<String>> {
    vec![
        None,
        Some("t1".into()),
        Some("T1".into()),
        Some("t1 ".into()),
        Some("t2".into()),
        Some("x".repeat(300)),
        Some(format!("{}y", "x".repeat(300))),
    ]
}

/// A behaviour of the contract.
pub async fn an_event_is_found_by_its_id(store: &dyn Store) {
    let (e, other) = (
        event("order.created", Some("t1")),
        event("order.created", None),
    );
    record_one_delivery_each(store, &[e.clone(), other]).await;
    assert_eq!(store.get_event(e.id()).await.unwrap(), Some(e.clone()));
    assert_eq!(store.get_event(&EventId::new()).await.unwrap(), None);
    let query = EventQuery::default().id(e.id().clone());
    assert_eq!(store.list_events(&query).await.unwrap(), [e]);
    let unknown = EventQuery::default().id(EventId::new());
    assert!(store.list_events(&unknown).await.unwrap().is_empty());
}

/// A behaviour of the contract.
pub async fn an_event_received_by_many_subscriptions_is_listed_once(store: &dyn Store) {
    let e = event("order.created", None);
    let batch: Vec<_> = (0..5)
        .map(|_| delivery(&e, &SubscriptionId::new()))
        .collect();
    store.record_deliveries(&batch).await.unwrap();
    assert_eq!(
        store.list_events(&EventQuery::default()).await.unwrap(),
        [e]
    );
}

/// A behaviour of the contract.
pub async fn events_list_only_the_exact_name_asked_for(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = NAMES.iter().map(|n| event_at(n, None, t)).collect();
    record_one_delivery_each(store, &events).await;
    for name in NAMES {
        let query = EventQuery::default().name(name).unwrap();
        let listed = every_event(store, &query).await;
        assert_eq!(
            event_ids(&listed),
            expected_events(&events, &query),
            "{name}"
        );
        assert_eq!(listed.len(), 1, "{name}");
        assert_eq!(listed[0].name().as_str(), name);
    }
}

/// A behaviour of the contract.
pub async fn events_list_every_name_under_a_wildcard(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = NAMES.iter().map(|n| event_at(n, None, t)).collect();
    record_one_delivery_each(store, &events).await;
    for (filter, count) in [
        ("order.*", 2),
        ("order.line.*", 1),
        ("orders.*", 1),
        ("Order.*", 1),
        ("a_b.*", 1),
        ("ORDER.*", 0),
        ("*", NAMES.len()),
    ] {
        let query = EventQuery::default().name(filter).unwrap();
        let listed = every_event(store, &query).await;
        assert_eq!(
            event_ids(&listed),
            expected_events(&events, &query),
            "{filter}"
        );
        assert_eq!(listed.len(), count, "{filter}");
    }
}

/// A behaviour of the contract.
pub async fn events_list_only_the_owner_asked_for(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = owners()
        .iter()
        .map(|o| event_at("order.created", o.as_deref(), t))
        .collect();
    record_one_delivery_each(store, &events).await;
    for owner in owners().into_iter().flatten() {
        let query = EventQuery::default().owner(owner.clone());
        let listed = every_event(store, &query).await;
        assert_eq!(listed.len(), 1, "owner {owner:?}");
        assert_eq!(listed[0].owner(), Some(owner.as_str()));
    }
}

/// A behaviour of the contract.
pub async fn events_list_only_those_made_in_the_time_range(store: &dyn Store) {
    let t = now();
    let at = |s: i64| t + chrono::Duration::seconds(s);
    let events: Vec<_> = (0..5).map(|s| event_at("a", None, at(s))).collect();
    record_one_delivery_each(store, &events).await;
    // `since` is included, `until` is not.
    let query = EventQuery::default().since(at(1)).until(at(3));
    let listed = every_event(store, &query).await;
    assert_eq!(event_ids(&listed), expected_events(&events, &query));
    assert_eq!(event_ids(&listed).len(), 2);
    let since = EventQuery::default().since(at(3));
    assert_eq!(every_event(store, &since).await.len(), 2);
    let until = EventQuery::default().until(at(1));
    assert_eq!(every_event(store, &until).await, [events[0].clone()]);
    // A microsecond counts.
    let just_after = EventQuery::default().since(at(4) + chrono::Duration::microseconds(1));
    assert!(every_event(store, &just_after).await.is_empty());
}

/// A behaviour of the contract.
pub async fn events_listed_agree_with_event_query_matches(store: &dyn Store) {
    let t = now();
    let mut events = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        for (j, owner) in owners().iter().enumerate() {
            let at = t + chrono::Duration::seconds(i64::try_from(i + j).unwrap());
            events.push(event_at(name, owner.as_deref(), at));
        }
    }
    record_one_delivery_each(store, &events).await;
    let mut queries = Vec::new();
    for filter in [None, Some("order.*"), Some("order.created"), Some("a_b.*")] {
        for owner in [None, Some("t1"), Some("T1")] {
            for (since, until) in [(None, None), (Some(2), Some(6)), (Some(5), None)] {
                let mut q = EventQuery::default();
                if let Some(f) = filter {
                    q = q.name(f).unwrap();
                }
                if let Some(o) = owner {
                    q = q.owner(o);
                }
                q.since = since.map(|s| t + chrono::Duration::seconds(s));
                q.until = until.map(|s| t + chrono::Duration::seconds(s));
                queries.push(q);
            }
        }
    }
    for query in queries {
        let listed = every_event(store, &query).await;
        assert_eq!(
            event_ids(&listed),
            expected_events(&events, &query),
            "{query:?}"
        );
        assert!(
            listed.iter().all(|e| events.contains(e)),
            "read back as written"
        );
    }
}

/// A behaviour of the contract.
pub async fn events_list_newest_first_in_pages_that_neither_skip_nor_repeat_while_rows_are_inserted(
    store: &dyn Store,
) {
    let first: Vec<_> = (0..7).map(|_| event("a", None)).collect();
    record_one_delivery_each(store, &first).await;
    let mut query = EventQuery::default().limit(3);
    let mut listed = Vec::new();
    loop {
        let page = store.list_events(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.before = Some(last.id().clone());
        listed.extend(page);
        // New events arrive between pages: newer than every cursor.
        std::thread::sleep(std::time::Duration::from_millis(2));
        record_one_delivery_each(store, &[event("a", None)]).await;
        assert!(listed.len() <= 7, "pagination repeats");
    }
    let mut expected = event_ids(&first);
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(event_ids(&listed), expected);
    let fresh = store.list_events(&EventQuery::default()).await.unwrap();
    assert_eq!(
        fresh.len(),
        7 + 3,
        "the new events are on a fresh first page"
    );
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_the_event_name_asked_for(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = NAMES.iter().map(|n| event_at(n, None, t)).collect();
    let deliveries = record_one_delivery_each(store, &events).await;
    for name in NAMES {
        let query = DeliveryQuery::default().event(name).unwrap();
        let listed = every_delivery(store, &query).await;
        assert_eq!(
            delivery_ids(&listed),
            expected_deliveries(&deliveries, &query),
            "{name}"
        );
        assert_eq!(listed.len(), 1, "{name}");
        assert_eq!(listed[0].event.name().as_str(), name);
    }
}

/// A behaviour of the contract.
pub async fn deliveries_list_every_event_name_under_a_wildcard(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = NAMES.iter().map(|n| event_at(n, None, t)).collect();
    let deliveries = record_one_delivery_each(store, &events).await;
    for (filter, count) in [
        ("order.*", 2),
        ("order.line.*", 1),
        ("Order.*", 1),
        ("a_b.*", 1),
        ("ORDER.*", 0),
        ("*", NAMES.len()),
    ] {
        let query = DeliveryQuery::default().event(filter).unwrap();
        let listed = every_delivery(store, &query).await;
        assert_eq!(
            delivery_ids(&listed),
            expected_deliveries(&deliveries, &query),
            "{filter}"
        );
        assert_eq!(listed.len(), count, "{filter}");
    }
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_the_owner_asked_for(store: &dyn Store) {
    let t = now();
    let events: Vec<_> = owners()
        .iter()
        .map(|o| event_at("order.created", o.as_deref(), t))
        .collect();
    record_one_delivery_each(store, &events).await;
    for owner in owners().into_iter().flatten() {
        let query = DeliveryQuery::default().owner(owner.clone());
        let listed = every_delivery(store, &query).await;
        assert_eq!(listed.len(), 1, "owner {owner:?}");
        assert_eq!(listed[0].event.owner(), Some(owner.as_str()));
    }
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_those_made_in_the_time_range(store: &dyn Store) {
    let t = now();
    let at = |s: i64| t + chrono::Duration::seconds(s);
    let sub = SubscriptionId::new();
    let deliveries: Vec<_> = (0..5)
        .map(|s| {
            // The delivery's own time counts, not its event's.
            let mut d = delivery(&event_at("a", None, at(10 - s)), &sub);
            d.created_at = at(s);
            d
        })
        .collect();
    store.record_deliveries(&deliveries).await.unwrap();
    let query = DeliveryQuery::default().since(at(1)).until(at(3));
    let listed = every_delivery(store, &query).await;
    assert_eq!(
        delivery_ids(&listed),
        expected_deliveries(&deliveries, &query)
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(
        every_delivery(store, &DeliveryQuery::default().until(at(1))).await,
        [deliveries[0].clone()]
    );
    let just_after = DeliveryQuery::default().since(at(4) + chrono::Duration::microseconds(1));
    assert!(every_delivery(store, &just_after).await.is_empty());
}

/// A behaviour of the contract.
pub async fn deliveries_list_only_the_event_asked_for(store: &dyn Store) {
    let (e, other) = (event("a", None), event("a", None));
    let mine: Vec<_> = (0..3)
        .map(|_| delivery(&e, &SubscriptionId::new()))
        .collect();
    store.record_deliveries(&mine).await.unwrap();
    record_one_delivery_each(store, &[other]).await;
    let query = DeliveryQuery::default().event_id(e.id().clone());
    let listed = every_delivery(store, &query).await;
    let mut expected = delivery_ids(&mine);
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(delivery_ids(&listed), expected);
    let unknown = DeliveryQuery::default().event_id(EventId::new());
    assert!(every_delivery(store, &unknown).await.is_empty());
}

/// A behaviour of the contract.
pub async fn deliveries_listed_agree_with_delivery_query_matches(store: &dyn Store) {
    let t = now();
    let subs = [SubscriptionId::new(), SubscriptionId::new()];
    let statuses = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
    ];
    let mut deliveries = Vec::new();
    let mut n = 0_i64;
    for name in [
        "order.created",
        "order.line.added",
        "orders.created",
        "Order.x",
    ] {
        for owner in [None, Some("t1"), Some("T1"), Some("t1 ")] {
            let e = event_at(name, owner, t + chrono::Duration::seconds(n));
            for sub in &subs {
                let mut d = delivery(&e, sub);
                d.created_at = t + chrono::Duration::seconds(n);
                deliveries.push(d);
                n += 1;
            }
        }
    }
    store.record_deliveries(&deliveries).await.unwrap();
    for (i, d) in deliveries.iter_mut().enumerate() {
        let status = statuses[i % statuses.len()];
        if status != DeliveryStatus::Pending {
            d.attempts = 1;
            d.status = status;
            d.next_attempt_at = None;
            store
                .record_attempt(d, &attempt(d, 1, response(200)))
                .await
                .unwrap();
        }
    }
    let mut queries = Vec::new();
    for status in [
        None,
        Some(DeliveryStatus::Dead),
        Some(DeliveryStatus::Failed),
    ] {
        for sub in [None, Some(subs[0].clone())] {
            for filter in [None, Some("order.*"), Some("orders.created")] {
                for owner in [None, Some("t1")] {
                    for (since, until) in [(None, None), (Some(5), Some(20))] {
                        let mut q = DeliveryQuery {
                            status,
                            subscription_id: sub.clone(),
                            ..DeliveryQuery::default()
                        };
                        if let Some(f) = filter {
                            q = q.event(f).unwrap();
                        }
                        q.owner = owner.map(str::to_owned);
                        q.since = since.map(|s| t + chrono::Duration::seconds(s));
                        q.until = until.map(|s| t + chrono::Duration::seconds(s));
                        queries.push(q);
                    }
                }
            }
        }
    }
    for query in queries {
        let listed = every_delivery(store, &query).await;
        assert_eq!(
            delivery_ids(&listed),
            expected_deliveries(&deliveries, &query),
            "{query:?}"
        );
        for d in &listed {
            assert_eq!(deliveries.iter().find(|x| x.id == d.id), Some(d));
        }
    }
}

/// A behaviour of the contract.
pub async fn deliveries_list_in_pages_that_neither_skip_nor_repeat_while_rows_are_inserted(
    store: &dyn Store,
) {
    let sub = SubscriptionId::new();
    let first: Vec<_> = (0..7).map(|_| delivery(&event("a", None), &sub)).collect();
    store.record_deliveries(&first).await.unwrap();
    let mut query = DeliveryQuery::default().subscription(sub.clone()).limit(3);
    let mut listed = Vec::new();
    loop {
        let page = store.list_deliveries(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        query.before = Some(last.id.clone());
        listed.extend(page);
        // New deliveries arrive between pages: newer than every cursor.
        std::thread::sleep(std::time::Duration::from_millis(2));
        let new = delivery(&event("a", None), &sub);
        store.record_deliveries(&[new]).await.unwrap();
        assert!(listed.len() <= 7, "pagination repeats");
    }
    let mut expected = delivery_ids(&first);
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(delivery_ids(&listed), expected);
    let fresh = DeliveryQuery::default().subscription(sub);
    assert_eq!(store.list_deliveries(&fresh).await.unwrap().len(), 7 + 3);
}

// ---------------------------------------------------------------------------------------------
// endpoint health: failure streaks, and why and when a subscription was disabled

fn disabled_for(reason: &str) -> Disabled {
    Disabled {
        reason: reason.to_owned(),
        at: now(),
    }
}

/// Disabling through `disable_subscription` turns matching off and keeps the reason and time.
pub async fn disabling_a_subscription_records_why_and_when(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let why = disabled_for("endpoint failing since yesterday: 12 failed attempts");
    assert!(
        store
            .disable_subscription(&sub.id, why.clone())
            .await
            .unwrap()
    );
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert!(!stored.enabled);
    assert_eq!(stored.disabled.as_deref(), Some(&why));
    let name = EventName::new("order.created").unwrap();
    assert!(store.matching(&name, None).await.unwrap().is_empty());
}

/// A second disabling (another sidecar saw the same failures) reports that it changed nothing
/// and keeps the first reason; an unknown subscription is not disabled.
pub async fn a_subscription_is_disabled_once(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let first = disabled_for("410 Gone");
    assert!(
        store
            .disable_subscription(&sub.id, first.clone())
            .await
            .unwrap()
    );
    assert!(
        !store
            .disable_subscription(&sub.id, disabled_for("again"))
            .await
            .unwrap()
    );
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.disabled.as_deref(), Some(&first));
    assert!(
        !store
            .disable_subscription(&SubscriptionId::new(), disabled_for("x"))
            .await
            .unwrap()
    );
}

/// Enabling starts afresh: no reason, no streak, matching again.
pub async fn enabling_clears_the_reason_and_the_failure_streak(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    store.record_health(&sub.id, false, now()).await.unwrap();
    store
        .disable_subscription(&sub.id, disabled_for("failing"))
        .await
        .unwrap();
    store.set_enabled(&sub.id, true).await.unwrap();
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert!(stored.enabled);
    assert_eq!(stored.disabled, None);
    assert!(stored.health.is_healthy(), "{:?}", stored.health);
    let name = EventName::new("order.created").unwrap();
    assert_eq!(store.matching(&name, None).await.unwrap().len(), 1);
}

/// The streak starts at its first failure, counts every failure, and ends at a success.
pub async fn failures_count_up_from_the_first_and_a_success_ends_the_streak(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let first = now() - chrono::Duration::hours(3);
    let later = now();
    let after_one = store.record_health(&sub.id, false, first).await.unwrap();
    assert_eq!(
        after_one,
        EndpointHealth {
            failing_since: Some(first),
            failures: 1
        }
    );
    let after_two = store.record_health(&sub.id, false, later).await.unwrap();
    assert_eq!(
        after_two.failing_since,
        Some(first),
        "the streak keeps its start"
    );
    assert_eq!(after_two.failures, 2);
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health, after_two);

    assert!(
        store
            .record_health(&sub.id, true, later)
            .await
            .unwrap()
            .is_healthy()
    );
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert!(stored.health.is_healthy(), "{:?}", stored.health);
}

/// Failures recorded at once (several sidecars) are all counted.
pub async fn concurrent_failures_all_count(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let at = now();
    let (a, b, c, d) = tokio::join!(
        store.record_health(&sub.id, false, at),
        store.record_health(&sub.id, false, at),
        store.record_health(&sub.id, false, at),
        store.record_health(&sub.id, false, at),
    );
    for r in [a, b, c, d] {
        r.unwrap();
    }
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.health.failures, 4);
}

/// A subscriber kept in code is not in the store: its health reads as healthy, and nothing is
/// added to the store.
pub async fn the_health_of_a_subscription_the_store_does_not_hold_is_healthy(store: &dyn Store) {
    let unknown = SubscriptionId::new();
    assert!(
        store
            .record_health(&unknown, false, now())
            .await
            .unwrap()
            .is_healthy()
    );
    assert_eq!(store.get_subscription(&unknown).await.unwrap(), None);
}

/// What the engine wrote reads back whole, through `list_subscriptions` too.
pub async fn a_disabled_subscription_and_its_streak_persist(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let since = now() - chrono::Duration::days(2);
    store.record_health(&sub.id, false, since).await.unwrap();
    let why = disabled_for("endpoint failing");
    store
        .disable_subscription(&sub.id, why.clone())
        .await
        .unwrap();
    let listed = store
        .list_subscriptions(&SubscriptionQuery::default())
        .await
        .unwrap();
    let stored = listed.iter().find(|s| s.id == sub.id).unwrap();
    assert_eq!(stored.disabled.as_deref(), Some(&why));
    assert_eq!(stored.health.failing_since, Some(since));
    assert_eq!(stored.health.failures, 1);
}

// ---------------------------------------------------------------------------------------------
// retention: pruning old delivered history, never a dead letter nor a pending delivery

/// The cut-off the pruning behaviours prune before: a month ago.
fn cut_off() -> DateTime<Utc> {
    now() - chrono::Duration::days(30)
}

/// A delivery of `event` to a new subscription, made at `made`, then attempted `attempts` times
/// at `changed` until the last attempt left it `status` (0 attempts: pending as made): the
/// delivery as stored.
async fn stored(
    store: &dyn Store,
    event: &Event,
    status: DeliveryStatus,
    attempts: u32,
    made: DateTime<Utc>,
    changed: DateTime<Utc>,
) -> Delivery {
    let mut d = delivery(event, &SubscriptionId::new());
    d.created_at = made;
    d.updated_at = made;
    d.next_attempt_at = Some(made);
    store
        .record_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    for number in 1..=attempts {
        d.attempts = number;
        d.status = if number == attempts {
            status
        } else {
            DeliveryStatus::Pending
        };
        d.next_attempt_at =
            (d.status == DeliveryStatus::Pending).then(|| changed + chrono::Duration::seconds(30));
        d.updated_at = changed;
        let code = match d.status {
            DeliveryStatus::Delivered => 200,
            DeliveryStatus::Failed => 400,
            DeliveryStatus::Pending | DeliveryStatus::Dead => 503,
        };
        store
            .record_attempt(&d, &attempt(&d, number, response(code)))
            .await
            .unwrap();
    }
    assert_eq!(d.status, status, "a delivery never attempted is pending");
    d
}

/// A delivery of `event`, made and attempted `attempts` times at `at`, ending `status`.
async fn stored_at(
    store: &dyn Store,
    event: &Event,
    status: DeliveryStatus,
    attempts: u32,
    at: DateTime<Utc>,
) -> Delivery {
    stored(store, event, status, attempts, at, at).await
}

/// Prunes; `None` when the store does not prune — it refuses with `Error::Unsupported`, the
/// trait's default — and the behaviour has nothing to check.
async fn prune(
    store: &dyn Store,
    older_than: DateTime<Utc>,
    limit: usize,
) -> Option<(u64, u64, u64)> {
    match store.prune(older_than, limit).await {
        Ok(p) => Some((p.deliveries, p.attempts, p.events)),
        Err(Error::Unsupported {
            what: "store.prune",
        }) => {
            eprintln!("the store does not prune (Error::Unsupported): nothing to check");
            None
        }
        Err(e) => panic!("prune failed: {e}"),
    }
}

/// Delivered deliveries last changed before the cut-off go, with their attempts and their
/// event; a second call finds nothing left.
pub async fn pruning_removes_old_delivered_deliveries_with_their_attempts(store: &dyn Store) {
    let cut = cut_off();
    let old = cut - chrono::Duration::days(1);
    let e = event("order.created", Some("t1"));
    let retried = stored_at(store, &e, DeliveryStatus::Delivered, 2, old).await;
    let first_try = stored_at(store, &e, DeliveryStatus::Delivered, 1, old).await;
    let Some(pruned) = prune(store, cut, 100).await else {
        return;
    };
    assert_eq!(pruned, (2, 3, 1), "(deliveries, attempts, events)");
    for d in [&retried, &first_try] {
        assert_eq!(store.get_delivery(&d.id).await.unwrap(), None);
        assert!(store.list_attempts(&d.id).await.unwrap().is_empty());
    }
    assert_eq!(store.get_event(e.id()).await.unwrap(), None);
    let events = store.list_events(&EventQuery::default()).await.unwrap();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(prune(store, cut, 100).await, Some((0, 0, 0)));
}

/// Dead letters (failed, dead) and pending deliveries stay however old: they are kept until
/// replayed or removed by hand.
pub async fn pruning_keeps_failed_dead_and_pending_deliveries(store: &dyn Store) {
    let cut = cut_off();
    let old = cut - chrono::Duration::days(1);
    let kept = [
        stored_at(store, &event("a", None), DeliveryStatus::Failed, 1, old).await,
        stored_at(store, &event("b", None), DeliveryStatus::Dead, 3, old).await,
        stored_at(store, &event("c", None), DeliveryStatus::Pending, 1, old).await,
        stored_at(store, &event("d", None), DeliveryStatus::Pending, 0, old).await,
    ];
    let Some(pruned) = prune(store, cut, 100).await else {
        return;
    };
    assert_eq!(pruned, (0, 0, 0));
    for d in &kept {
        assert_eq!(store.get_delivery(&d.id).await.unwrap().as_ref(), Some(d));
        let attempts = store.list_attempts(&d.id).await.unwrap();
        assert_eq!(attempts.len(), d.attempts as usize, "{d:?}");
        assert!(store.get_event(d.event.id()).await.unwrap().is_some());
    }
}

/// Only what last changed before the cut-off goes: a delivery changed at the cut-off or after
/// it stays, one made long ago but delivered recently (after retries, or a replay) too.
pub async fn pruning_keeps_recent_deliveries(store: &dyn Store) {
    let cut = cut_off();
    let long_ago = cut - chrono::Duration::days(300);
    let just_before = cut - chrono::Duration::microseconds(1);
    let e = event("order.created", None);
    let gone = stored_at(store, &e, DeliveryStatus::Delivered, 1, just_before).await;
    let kept = [
        stored_at(store, &e, DeliveryStatus::Delivered, 1, cut).await,
        stored_at(store, &e, DeliveryStatus::Delivered, 1, now()).await,
        stored(store, &e, DeliveryStatus::Delivered, 2, long_ago, now()).await,
    ];
    let Some(pruned) = prune(store, cut, 100).await else {
        return;
    };
    assert_eq!(pruned, (1, 1, 0), "(deliveries, attempts, events)");
    assert_eq!(store.get_delivery(&gone.id).await.unwrap(), None);
    for d in &kept {
        assert_eq!(store.get_delivery(&d.id).await.unwrap().as_ref(), Some(d));
        let attempts = store.list_attempts(&d.id).await.unwrap();
        assert_eq!(attempts.len(), d.attempts as usize, "{d:?}");
    }
}

/// An event is stored with its deliveries: pruning one of them keeps the event (and its
/// payload) for the others; it goes with the last.
pub async fn pruning_keeps_an_event_while_one_of_its_deliveries_remains(store: &dyn Store) {
    let cut = cut_off();
    let old = cut - chrono::Duration::days(1);
    let e = event("order.created", Some("t1"));
    let delivered = stored_at(store, &e, DeliveryStatus::Delivered, 1, old).await;
    let mut dead = stored_at(store, &e, DeliveryStatus::Dead, 2, old).await;
    let Some(pruned) = prune(store, cut, 100).await else {
        return;
    };
    assert_eq!(pruned, (1, 1, 0), "(deliveries, attempts, events)");
    assert_eq!(store.get_delivery(&delivered.id).await.unwrap(), None);
    assert_eq!(store.get_event(e.id()).await.unwrap().as_ref(), Some(&e));
    let back = store.get_delivery(&dead.id).await.unwrap().unwrap();
    assert_eq!(back, dead);
    assert_eq!(back.event.payload(), e.payload());
    let events = store.list_events(&EventQuery::default()).await.unwrap();
    assert_eq!(events, std::slice::from_ref(&e));

    // Replayed and delivered at last, long ago: now the event goes with it.
    replay(store, &dead.id, false).await;
    dead = store.get_delivery(&dead.id).await.unwrap().unwrap();
    dead.attempts += 1;
    dead.status = DeliveryStatus::Delivered;
    dead.next_attempt_at = None;
    dead.updated_at = old;
    let ok = attempt(&dead, dead.attempts, response(200));
    store.record_attempt(&dead, &ok).await.unwrap();
    assert_eq!(prune(store, cut, 100).await, Some((1, 3, 1)));
    assert_eq!(store.get_event(e.id()).await.unwrap(), None);
}

/// One call removes at most `limit` deliveries: calling again until a call removes nothing
/// prunes everything old.
pub async fn pruning_removes_at_most_the_limit_per_call(store: &dyn Store) {
    let cut = cut_off();
    let old = cut - chrono::Duration::days(1);
    for i in 0..5 {
        let e = event(&format!("e{i}"), None);
        stored_at(store, &e, DeliveryStatus::Delivered, 1, old).await;
    }
    let Some(first) = prune(store, cut, 2).await else {
        return;
    };
    assert_eq!(first, (2, 2, 2), "(deliveries, attempts, events)");
    assert_eq!(prune(store, cut, 2).await, Some((2, 2, 2)));
    assert_eq!(prune(store, cut, 2).await, Some((1, 1, 1)));
    assert_eq!(prune(store, cut, 2).await, Some((0, 0, 0)));
    assert_eq!(prune(store, cut, 0).await, Some((0, 0, 0)));
    let left = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// An update made from a copy read before a failure was counted (the CLI, an admin API) keeps
/// the streak: it is the engine's to write.
pub async fn an_update_keeps_the_failure_streak(store: &dyn Store) {
    let sub = subscription("order.*");
    store.add_subscription(sub.clone()).await.unwrap();
    let read_before = store.get_subscription(&sub.id).await.unwrap().unwrap();
    store.record_health(&sub.id, false, now()).await.unwrap();
    let mut renamed = read_before;
    renamed.metadata = json!({"name": "renamed"});
    store.update_subscription(renamed).await.unwrap();
    let stored = store.get_subscription(&sub.id).await.unwrap().unwrap();
    assert_eq!(stored.metadata, json!({"name": "renamed"}));
    assert_eq!(
        stored.health.failures, 1,
        "the update undid a counted failure"
    );
}
