//! [`DeliveryEngine`]: fan-out and attempts with their bookkeeping, shared by the in-process
//! backend and the sidecar worker.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::dispatch::Dispatcher;
use crate::error::Result;
use crate::event::Event;
use crate::fanout::fan_out;
use crate::id::SubscriptionId;
use crate::retry::{RetryPolicy, Verdict};
use crate::store::Store;
use crate::subscription::Subscription;

/// Called with every dead letter (a delivery failed for good or out of retries) and its last
/// attempt. Keep it quick: it runs on the delivery task.
pub type OnFailure = Arc<dyn Fn(&Delivery, &Attempt) + Send + Sync>;

/// What comes after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// Nothing: the delivery reached a final status.
    Done(DeliveryStatus),
    /// Try again after this long.
    RetryIn(Duration),
}

/// Turns events into deliveries and deliveries into attempts, recording everything in the store.
#[derive(Clone)]
pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    subscribers: Arc<[Subscription]>,
    dispatcher: Dispatcher,
    retry: RetryPolicy,
    on_failure: Option<OnFailure>,
}

impl std::fmt::Debug for DeliveryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryEngine")
            .field("subscribers", &self.subscribers.len())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl DeliveryEngine {
    /// An engine over `store` plus `subscribers` kept in code (like fastapihooks'
    /// `subscribers=`).
    pub fn new(
        store: Arc<dyn Store>,
        subscribers: Vec<Subscription>,
        dispatcher: Dispatcher,
        retry: RetryPolicy,
        on_failure: Option<OnFailure>,
    ) -> Self {
        Self {
            store,
            subscribers: subscribers.into(),
            dispatcher,
            retry,
            on_failure,
        }
    }

    /// The store deliveries are recorded in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The longest one attempt can take (the HTTP total timeout).
    pub fn attempt_timeout(&self) -> Duration {
        self.dispatcher.timeout()
    }

    /// The subscription with this id: a subscriber kept in code first, then the store.
    pub async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        if let Some(s) = self.subscribers.iter().find(|s| &s.id == id) {
            return Ok(Some(s.clone()));
        }
        self.store.get_subscription(id).await
    }

    /// The deliveries of `event`, recorded in the store before any attempt. A store that fails
    /// here fails the fan-out: nothing is attempted that was not recorded.
    #[tracing::instrument(level = "debug", skip_all, fields(event = %event.id(), name = %event.name()))]
    pub async fn fan_out(&self, event: &Event) -> Result<Vec<(Delivery, Subscription)>> {
        let stored = self.store.matching(event.name(), event.owner()).await?;
        let planned: Vec<(Delivery, Subscription)> =
            fan_out(event, self.subscribers.iter().chain(stored.iter()))
                .into_iter()
                .map(|(d, s)| (d, s.clone()))
                .collect();
        if !planned.is_empty() {
            let deliveries: Vec<Delivery> = planned.iter().map(|(d, _)| d.clone()).collect();
            self.store.record_deliveries(&deliveries).await?;
        }
        metrics::counter!("fastapihooks_deliveries_planned_total").increment(planned.len() as u64);
        Ok(planned)
    }

    /// Makes one attempt of `delivery`, updates it, records the attempt, and says what comes
    /// next. Dead letters go to the `on_failure` callback; a 410 disables the subscription.
    #[tracing::instrument(level = "debug", skip_all, fields(delivery = %delivery.id, attempt = delivery.attempts + 1))]
    pub async fn attempt(&self, delivery: &mut Delivery, subscription: &Subscription) -> NextStep {
        let (attempt, verdict) = self.dispatcher.attempt(delivery, subscription).await;
        metrics::histogram!("fastapihooks_attempt_duration_seconds")
            .record(attempt.duration.as_secs_f64());
        delivery.attempts = attempt.number;
        delivery.updated_at = Utc::now();
        let next = match verdict {
            Verdict::Delivered => NextStep::Done(DeliveryStatus::Delivered),
            Verdict::Reject {
                disable_subscription,
            } => {
                if disable_subscription {
                    self.disable(subscription).await;
                }
                NextStep::Done(DeliveryStatus::Failed)
            }
            Verdict::Retry { retry_after } => match self.retry.delay(attempt.number, retry_after) {
                Some(delay) => NextStep::RetryIn(delay),
                None => NextStep::Done(DeliveryStatus::Dead),
            },
        };
        match next {
            NextStep::Done(status) => {
                delivery.status = status;
                delivery.next_attempt_at = None;
                metrics::counter!("fastapihooks_deliveries_total", "outcome" => status.as_str())
                    .increment(1);
            }
            NextStep::RetryIn(delay) => {
                delivery.status = DeliveryStatus::Pending;
                delivery.next_attempt_at =
                    Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default());
                metrics::counter!("fastapihooks_retries_total").increment(1);
            }
        }
        if let Err(e) = self.store.record_attempt(delivery, &attempt).await {
            // The delivery itself goes on; only its history entry is missing.
            tracing::error!(delivery = %delivery.id, error = %e, "could not record attempt");
            metrics::counter!("fastapihooks_store_errors_total").increment(1);
        }
        log_attempt(delivery, &attempt, next);
        if let Some(cb) = self
            .on_failure
            .as_ref()
            .filter(|_| delivery.status.is_dead_letter())
        {
            cb(delivery, &attempt);
        }
        next
    }

    async fn disable(&self, subscription: &Subscription) {
        tracing::warn!(subscription = %subscription.id, url = %subscription.url, "receiver answered 410 Gone: disabling the subscription");
        match self.store.set_enabled(&subscription.id, false).await {
            Ok(()) => {}
            Err(crate::Error::SubscriptionNotFound { .. }) => {
                // A static subscriber lives in code, not in the store: nothing to disable there.
            }
            Err(e) => {
                tracing::error!(subscription = %subscription.id, error = %e, "could not disable subscription")
            }
        }
    }
}

fn log_attempt(delivery: &Delivery, attempt: &Attempt, next: NextStep) {
    let status = attempt.status_code();
    match next {
        NextStep::Done(DeliveryStatus::Delivered) => {
            tracing::debug!(delivery = %delivery.id, ?status, "delivered")
        }
        NextStep::RetryIn(delay) => {
            tracing::info!(delivery = %delivery.id, ?status, outcome = ?attempt.outcome, ?delay, "attempt failed; will retry")
        }
        NextStep::Done(final_status) => {
            tracing::warn!(delivery = %delivery.id, ?status, outcome = ?attempt.outcome, %final_status, "delivery is a dead letter")
        }
    }
}
