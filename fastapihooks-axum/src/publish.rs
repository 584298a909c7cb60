//! Publishing a hooked route's event outside a transaction: brief bounded retries, then the
//! loss is surfaced (metric, error log, `on_publish_error`) — never silent.

use std::time::Duration;

use fastapihooks_core::{Error, Event};

use crate::layer::Hook;

/// Publish tries within one request before the event counts as not published.
pub(crate) const PUBLISH_TRIES: u32 = 3;

/// The pause before the second try; doubled before each later one.
const FIRST_PAUSE: Duration = Duration::from_millis(25);

/// Publishes `event`, retrying a failing store or queue briefly. Returns whether it was
/// published; when not, the loss has been logged, counted and handed to `on_publish_error`.
pub(crate) async fn publish(hook: &Hook, event: Event) -> bool {
    let mut pause = FIRST_PAUSE;
    let mut tries = 0;
    let error = loop {
        tries += 1;
        match hook.emitter.publish(event.clone()).await {
            Ok(()) => return true,
            Err(e) if transient(&e) && tries < PUBLISH_TRIES => {
                tracing::debug!(event = %event.id(), error = %e, tries, "publish failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => break e,
        }
    };
    publish_failed(hook, &event, &error, tries);
    false
}

/// Surfaces an event that was not published: a metric, an error log naming the event, and the
/// application's `on_publish_error` callback (through which it can keep the event itself).
pub(crate) fn publish_failed(hook: &Hook, event: &Event, error: &Error, tries: u32) {
    metrics::counter!(fastapihooks_core::metrics::PUBLISH_FAILED_TOTAL, "event" => event.name().to_string())
        .increment(1);
    tracing::error!(
        event_id = %event.id(),
        event = %event.name(),
        size = event.payload().len(),
        tries,
        error = %error,
        "event not published: it is lost unless on_publish_error keeps it"
    );
    if let Some(callback) = &hook.on_publish_error {
        callback(event, error);
    }
}

/// Whether another try may succeed: a store or queue that failed. A full in-process queue has
/// already waited its bound; an oversized event or a shut-down backend will not change.
fn transient(error: &Error) -> bool {
    matches!(error, Error::Storage { .. })
}
