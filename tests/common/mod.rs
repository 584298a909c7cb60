//! What only the facade's tests share: hooks set up for a receiver of the test kit. The
//! receiver, `serve`, `client` and `eventually` come from `fastapihooks_testkit`.

use std::time::Duration;

use fastapihooks::HooksBuilder;
use fastapihooks::prelude::*;

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
