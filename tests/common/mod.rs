//! What only the facade's tests share: hooks set up for a receiver of the test kit. The
//! receiver, `serve`, `client` and `eventually` come from `fastapihooks_testkit`.

use std::time::Duration;

use fastapihooks::prelude::*;
use fastapihooks::{Delivery, DeliveryQuery, HooksBuilder};
use fastapihooks_testkit::eventually_async;

/// Hooks for tests: fast retries, the kit's test secret (`fastapihooks_testkit::SECRET`, what
/// `Received::verified` checks), and loopback allowed through the SSRF guard (every receiver
/// here is on 127.0.0.1).
pub(crate) fn hooks() -> HooksBuilder {
    Hooks::builder()
        .http(HttpConfig::default().allow_loopback())
        .secret(Secret::new(fastapihooks_testkit::SECRET).unwrap())
        .retry(RetryPolicy::schedule([
            Duration::from_millis(20),
            Duration::from_millis(40),
        ]))
}

/// The first delivery in the store to reach a final status, waiting up to 10 s for one.
#[allow(dead_code)] // not every test binary that shares this module asks for it
pub(crate) async fn final_delivery(hooks: &Hooks) -> Delivery {
    let store = hooks.store().clone();
    eventually_async(Duration::from_secs(10), async || {
        let all = store
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap();
        all.into_iter().find(|d| d.status.is_final())
    })
    .await
    .expect("no delivery reached a final status")
}
