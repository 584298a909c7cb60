//! Operational events: what the delivery engine itself has to say — a delivery became a dead
//! letter, a subscription was disabled — published as ordinary events in the reserved
//! `fastapihooks.` namespace, through the same pipeline as the application's (the sidecar's
//! queue, or the in-process backend). The durable counterpart of the in-process `on_failure`
//! callback: an operator, a paging service or the application subscribes to them like to any
//! event.
//!
//! | event | when | payload |
//! |---|---|---|
//! | `fastapihooks.delivery.dead` | a delivery failed for good or ran out of retries | `delivery_id`, `event_id`, `event_name`, `subscription_id`, `status` (`failed`/`dead`), `attempts`, `last_attempt` (`status_code` or `error`, `at`) |
//! | `fastapihooks.subscription.disabled` | the engine disabled a subscription (failure streak, 410 Gone) | `subscription_id`, `url`, `reason`, `at`, `failures`, `failing_since` |
//!
//! Each carries the owner of what it is about (the event's, the subscription's), so a tenant's
//! subscription receives its own. Only subscriptions that name them receive them
//! (`fastapihooks.delivery.dead`, `fastapihooks.*`): a `*` subscription does not. They are never
//! about themselves: a delivery of an operational event that dies emits nothing, so a broken
//! alerting endpoint cannot feed itself.

use std::sync::Arc;

use serde_json::json;

use crate::backend::Backend;
use crate::delivery::{Attempt, AttemptOutcome, Delivery};
use crate::event::Event;
use crate::health::{Disabled, EndpointHealth};
use crate::subscription::Subscription;

/// The reserved namespace (with its dot): event names starting with it are operational.
pub const NAMESPACE: &str = "fastapihooks.";

/// `fastapihooks.delivery.dead`.
pub const DELIVERY_DEAD: &str = "fastapihooks.delivery.dead";

/// `fastapihooks.subscription.disabled`.
pub const SUBSCRIPTION_DISABLED: &str = "fastapihooks.subscription.disabled";

/// Where the engine publishes its operational events: the backend its deliveries come from.
#[derive(Clone)]
pub(crate) struct OpsEvents {
    sink: Arc<dyn Backend>,
}

impl OpsEvents {
    pub(crate) fn new(sink: Arc<dyn Backend>) -> Self {
        Self { sink }
    }

    /// Publishes `fastapihooks.delivery.dead` for a delivery that just became a dead letter —
    /// unless the delivery was itself of an operational event.
    pub(crate) async fn delivery_dead(&self, delivery: &Delivery, last: &Attempt) {
        if delivery.event.name().is_operational() {
            return;
        }
        let last_attempt = match &last.outcome {
            AttemptOutcome::Response { status, .. } => json!({
                "status_code": status,
                "at": last.started_at,
            }),
            AttemptOutcome::Error { kind, message } => json!({
                "error": kind.as_str(),
                "message": message,
                "at": last.started_at,
            }),
        };
        let payload = json!({
            "delivery_id": delivery.id,
            "event_id": delivery.event.id(),
            "event_name": delivery.event.name().as_str(),
            "subscription_id": delivery.subscription_id,
            "status": delivery.status.as_str(),
            "attempts": delivery.attempts,
            "last_attempt": last_attempt,
        });
        self.publish(DELIVERY_DEAD, &payload, delivery.event.owner())
            .await;
    }

    /// Publishes `fastapihooks.subscription.disabled`.
    pub(crate) async fn subscription_disabled(
        &self,
        subscription: &Subscription,
        why: &Disabled,
        health: EndpointHealth,
    ) {
        let payload = json!({
            "subscription_id": subscription.id,
            "url": subscription.url.to_string(),
            "reason": why.reason,
            "at": why.at,
            "failures": health.failures,
            "failing_since": health.failing_since,
        });
        self.publish(
            SUBSCRIPTION_DISABLED,
            &payload,
            subscription.owner.as_deref(),
        )
        .await;
    }

    async fn publish(&self, name: &str, payload: &serde_json::Value, owner: Option<&str>) {
        let event = match Event::new(name, payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(name, error = %e, "operational event could not be made");
                return;
            }
        };
        let event = match owner {
            Some(owner) => event.with_owner(owner),
            None => event,
        };
        let id = event.id().clone();
        match self.sink.publish(event).await {
            Ok(()) => {
                metrics::counter!(crate::metrics::OPS_EVENTS_TOTAL, "event" => name.to_owned())
                    .increment(1);
            }
            // Not silent: logged and counted, and what it reports is in the store regardless.
            Err(e) => {
                metrics::counter!(crate::metrics::OPS_EVENTS_FAILED_TOTAL, "event" => name.to_owned())
                    .increment(1);
                tracing::error!(name, event = %id, error = %e, "operational event not published");
            }
        }
    }
}
