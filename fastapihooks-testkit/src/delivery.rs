//! What delivery tests build (engines, stores, events) and how they account for what a
//! receiver got: nothing lost, nothing sent twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::engine::DeliveryEngine;
use fastapihooks_core::{
    DeliveryId, Emitter, Event, HttpConfig, MemoryStore, RetryPolicy, Store, Subscription,
};

use crate::Receiver;

/// The one place test engines are built: a short HTTP timeout (1 s, 500 ms to connect), the
/// given retry policy, loopback allowed through the SSRF guard (receivers listen on 127.0.0.1),
/// and no default secret (unsigned unless a subscription has a secret of its own).
pub fn engine(store: Arc<dyn Store>, retry: RetryPolicy) -> DeliveryEngine {
    engine_with_timeout(store, retry, Duration::from_secs(1))
}

/// [`engine`] with another HTTP timeout (a queue's visibility timeout must exceed it by more
/// than a second).
pub fn engine_with_timeout(
    store: Arc<dyn Store>,
    retry: RetryPolicy,
    timeout: Duration,
) -> DeliveryEngine {
    let mut http = HttpConfig::default().allow_loopback();
    http.timeout = timeout;
    http.connect_timeout = Duration::from_millis(500);
    Emitter::builder()
        .shared_store(store)
        .retry(retry)
        .http(http)
        .unsigned()
        .build_engine()
        .expect("engine")
}

/// Quick retries without jitter: `n` retries `every` apart.
pub fn quick_retries(n: usize, every: Duration) -> RetryPolicy {
    RetryPolicy::schedule(vec![every; n])
        .jitter(0.0)
        .expect("no jitter is valid")
}

/// A memory store (room for a million deliveries) holding one `*` subscription per URL.
pub async fn store_with_subscribers(urls: &[String]) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::with_max_deliveries(1_000_000));
    for url in urls {
        store
            .add_subscription(Subscription::new("*", url).expect("a valid subscription"))
            .await
            .expect("add the subscription");
    }
    store
}

/// `n` events named `order.created`, payload `{"n": i}`.
pub fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new("order.created", &serde_json::json!({ "n": i })).expect("an event"))
        .collect()
}

/// Every delivery id the events must produce for the subscriptions.
pub fn expected_pairs(events: &[Event], subscriptions: &[Subscription]) -> HashSet<String> {
    events
        .iter()
        .flat_map(|e| {
            subscriptions
                .iter()
                .map(|s| DeliveryId::for_event(e.id(), &s.id).as_str().to_owned())
        })
        .collect()
}

/// Of requests counted by delivery id ([`Receiver::counts`]): how many ids came more than
/// once, and how many requests they made beyond their first.
pub fn duplicates(counts: &HashMap<String, usize>) -> (usize, usize) {
    let ids = counts.values().filter(|&&n| n > 1).count();
    let extra = counts.values().map(|n| n.saturating_sub(1)).sum();
    (ids, extra)
}

/// What a receiver got against what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Delivery ids expected.
    pub expected: usize,
    /// Expected delivery ids that never arrived.
    pub lost: usize,
    /// Delivery ids received more than once.
    pub duplicated_ids: usize,
    /// Requests beyond the first per delivery id.
    pub extra_requests: usize,
    /// Requests for delivery ids nobody expected.
    pub unexpected: usize,
}

/// What `receiver` got (as requests arrived) against the `expected` delivery ids.
pub fn tally(receiver: &Receiver, expected: &HashSet<String>) -> Tally {
    let counts = receiver.counts();
    let (duplicated_ids, extra_requests) = duplicates(&counts);
    Tally {
        expected: expected.len(),
        lost: expected
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .count(),
        duplicated_ids,
        extra_requests,
        unexpected: counts.keys().filter(|id| !expected.contains(*id)).count(),
    }
}
