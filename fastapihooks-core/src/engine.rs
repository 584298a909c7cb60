//! [`DeliveryEngine`]: fan-out and attempts with their bookkeeping, shared by the in-process
//! backend and the sidecar worker.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::OwnedSemaphorePermit;
use tracing::Instrument as _;

use crate::delivery::{Attempt, AttemptErrorKind, AttemptOutcome, Delivery, DeliveryStatus};
use crate::dispatch::Dispatcher;
use crate::error::Result;
use crate::event::Event;
use crate::fanout::fan_out;
use crate::health::{Disabled, EndpointHealth, HealthPolicy};
use crate::id::{AttemptId, SubscriptionId};
use crate::metrics::InFlight;
use crate::metrics::delivery::Outcome;
use crate::ops_events::OpsEvents;
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

/// What came of one attempt: the next step, and whether the store recorded it. An attempt
/// that was not recorded must not be settled as done: the sidecar's worker lets its task run
/// again (a rerun sends again under the same delivery id, as at-least-once allows) rather than
/// leave a delivered delivery `pending` in the history for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempted {
    /// What comes next.
    pub next: NextStep,
    /// Whether the attempt and the delivery's new state were written to the store.
    pub recorded: bool,
}

/// An event's deliveries, each with its subscription.
pub(crate) type Planned = Vec<(Delivery, Arc<Subscription>)>;

/// How an attempt reaches the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recording {
    /// The delivery is recorded: the attempt is added and the delivery takes its state
    /// ([`Store::record_attempt`]).
    Existing,
    /// The delivery is not recorded yet: it is written with its first attempt, in its state
    /// after it ([`Store::record_first_attempts`]).
    New,
}

/// Turns events into deliveries and deliveries into attempts, recording everything in the store.
#[derive(Clone)]
pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    /// Shared, not copied, by every delivery planned for them.
    subscribers: Arc<[Arc<Subscription>]>,
    dispatcher: Dispatcher,
    retry: RetryPolicy,
    on_failure: Option<OnFailure>,
    health: HealthPolicy,
    /// Subscriptions seen failing by this engine, so the success that ends a streak is
    /// written even when the subscription copy at hand predates the streak.
    failing: Arc<IdSet>,
    /// Subscriptions this engine disabled: attempts already planned for them are not sent.
    disabled: Arc<IdSet>,
    ops: Option<OpsEvents>,
    /// Whether the delivery and attempt metrics carry a `subscription` label.
    metrics_per_subscription: bool,
    trace_context: Option<Arc<dyn crate::trace::TraceContext>>,
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
            subscribers: subscribers.into_iter().map(Arc::new).collect(),
            dispatcher,
            retry,
            on_failure,
            health: HealthPolicy::default(),
            failing: Arc::default(),
            disabled: Arc::default(),
            ops: None,
            metrics_per_subscription: false,
            trace_context: None,
        }
    }

    /// Adds a `subscription` label (the subscription's id) to the delivery and attempt metrics
    /// (`fastapihooks_deliveries_total`, `fastapihooks_retries_total`,
    /// `fastapihooks_attempt_duration_seconds`). Off by default: see
    /// [`EmitterBuilder::metrics_per_subscription`](crate::EmitterBuilder::metrics_per_subscription)
    /// for why.
    pub fn with_metrics_per_subscription(mut self, on: bool) -> Self {
        self.metrics_per_subscription = on;
        self
    }

    /// The `subscription` label of the delivery and attempt metrics, if they carry one.
    fn metric_subscription<'a>(&self, id: &'a SubscriptionId) -> Option<&'a SubscriptionId> {
        self.metrics_per_subscription.then_some(id)
    }

    /// Attaches each attempt span to its event's trace through `context` (OpenTelemetry,
    /// say); without one, spans carry the trace id as a field only.
    pub fn with_trace_context(
        mut self,
        context: Option<Arc<dyn crate::trace::TraceContext>>,
    ) -> Self {
        self.trace_context = context;
        self
    }

    /// Records the event's trace id on `span`, and gives it the event's context as its parent
    /// when a [`TraceContext`](crate::trace::TraceContext) is set — before the span is entered,
    /// as a tracing system needs.
    fn join_trace(&self, span: &tracing::Span, event: &Event) {
        // A span nobody listens to records nothing: no formatting on every attempt.
        if span.is_disabled() {
            return;
        }
        if let Some(trace) = event.trace() {
            span.record("trace_id", tracing::field::display(trace.trace_id_hex()));
            if let Some(context) = &self.trace_context {
                context.attach(span, trace);
            }
        }
    }

    /// Publishes [operational events](crate::ops_events) (`fastapihooks.delivery.dead`,
    /// `fastapihooks.subscription.disabled`) through `sink`: the backend deliveries come from.
    /// The sidecar's [`Worker`](crate::Worker) and the in-process backend set it themselves.
    pub fn with_ops_events(mut self, sink: Arc<dyn crate::Backend>) -> Self {
        self.ops = Some(OpsEvents::new(sink));
        self
    }

    /// When a failing endpoint is disabled (default: [`HealthPolicy::default`]).
    pub fn with_health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// The endpoint health policy.
    pub fn health_policy(&self) -> &HealthPolicy {
        &self.health
    }

    /// The same engine recording through `store` (the worker's `BatchedStore` in front of the
    /// one it was built with).
    pub(crate) fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
    }

    /// The store deliveries are recorded in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// How long work waits after the store failed it `failures` times in a row (fan-out, or the
    /// look-ups before an attempt): see [`outage_delay`]. Both the in-process backend and the
    /// sidecar worker wait this long; neither ever gives the work up.
    pub(crate) fn outage_delay(&self, failures: u32) -> Duration {
        outage_delay(&self.retry, failures)
    }

    /// The longest one attempt can take (the HTTP total timeout).
    pub fn attempt_timeout(&self) -> Duration {
        self.dispatcher.timeout()
    }

    /// The subscription with this id: a subscriber kept in code first, then the store.
    pub async fn subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        if let Some(s) = self.subscribers.iter().find(|s| &s.id == id) {
            return Ok(Some(Subscription::clone(s)));
        }
        self.store.get_subscription(id).await
    }

    /// The deliveries of `event`, recorded in the store before any attempt. A store that fails
    /// here fails the fan-out: nothing is attempted that was not recorded.
    ///
    /// Each delivery comes with its subscription shared (`Arc`): a subscriber kept in code is
    /// never copied per delivery. Runs in a `fastapihooks.fan_out` span joined to the event's
    /// trace.
    pub async fn fan_out(&self, event: &Event) -> Result<Vec<(Delivery, Arc<Subscription>)>> {
        self.fan_out_in_span(event, true).await
    }

    /// The deliveries of `event`, not recorded: each is recorded with its first attempt
    /// ([`Recording::New`]) unless the caller finds it recorded already. What the sidecar does
    /// on an event's lease, where every delivery runs again until its attempt is recorded.
    pub(crate) async fn fan_out_unrecorded(&self, event: &Event) -> Result<Planned> {
        self.fan_out_in_span(event, false).await
    }

    async fn fan_out_in_span(&self, event: &Event, record: bool) -> Result<Planned> {
        let span = tracing::info_span!(
            crate::trace::FAN_OUT_SPAN,
            event = %event.id(),
            name = %event.name(),
            trace_id = tracing::field::Empty,
        );
        self.join_trace(&span, event);
        self.measured_fan_out(event, record).instrument(span).await
    }

    async fn measured_fan_out(&self, event: &Event, record: bool) -> Result<Planned> {
        let started = Instant::now();
        let planned = match self.plan(event, record).await {
            Ok(planned) => planned,
            Err(e) => {
                metrics::counter!(crate::metrics::STORE_ERRORS_TOTAL, "op" => "fan_out")
                    .increment(1);
                return Err(e);
            }
        };
        metrics::histogram!(crate::metrics::FANOUT_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::metrics::FANOUT_SUBSCRIPTIONS).record(planned.len() as f64);
        metrics::counter!(crate::metrics::DELIVERIES_PLANNED_TOTAL).increment(planned.len() as u64);
        Ok(planned)
    }

    /// The deliveries of `event`, recorded when `record` says so: [`fan_out`](Self::fan_out)
    /// without its span and metrics.
    async fn plan(&self, event: &Event, record: bool) -> Result<Planned> {
        let stored = self
            .store
            .matching_shared(event.name(), event.owner())
            .await?;
        let planned: Planned = fan_out(event, self.subscribers.iter().chain(stored.iter()))
            .into_iter()
            .map(|(d, s)| (d, Arc::clone(s)))
            .collect();
        if record && !planned.is_empty() {
            let deliveries: Vec<Delivery> = planned.iter().map(|(d, _)| d.clone()).collect();
            self.store.record_deliveries(&deliveries).await?;
        }
        Ok(planned)
    }

    /// Makes one attempt of `delivery`, updates it, records the attempt, and says what comes
    /// next. Dead letters go to the `on_failure` callback; a 410 disables the subscription.
    /// Runs in a `fastapihooks.attempt` span joined to the event's trace.
    pub async fn attempt(&self, delivery: &mut Delivery, subscription: &Subscription) -> Attempted {
        self.attempt_recording(delivery, subscription, Recording::Existing, None)
            .await
    }

    /// [`attempt`](Self::attempt), recording the attempt as `recording` says: for a delivery
    /// the store does not hold yet, [`Recording::New`] writes it with its first attempt.
    /// `request_slot`, a permit of the caller's bound on requests in flight, is given back as
    /// soon as the response (or the error) is in, before the attempt is recorded.
    pub(crate) async fn attempt_recording(
        &self,
        delivery: &mut Delivery,
        subscription: &Subscription,
        recording: Recording,
        request_slot: Option<OwnedSemaphorePermit>,
    ) -> Attempted {
        let span = tracing::info_span!(
            crate::trace::ATTEMPT_SPAN,
            event = %delivery.event.id(),
            delivery = %delivery.id,
            subscription = %subscription.id,
            attempt = delivery.attempts + 1,
            trace_id = tracing::field::Empty,
        );
        self.join_trace(&span, &delivery.event);
        self.attempt_in_span(delivery, subscription, recording, request_slot)
            .instrument(span)
            .await
    }

    async fn attempt_in_span(
        &self,
        delivery: &mut Delivery,
        subscription: &Subscription,
        recording: Recording,
        request_slot: Option<OwnedSemaphorePermit>,
    ) -> Attempted {
        if !subscription.enabled || !self.still_enabled(&subscription.id).await {
            drop(request_slot);
            return self
                .not_sent_recording(
                    delivery,
                    "not sent: the subscription is disabled",
                    recording,
                )
                .await;
        }
        let (attempt, verdict) = {
            // The sidecar's request slot: held, and counted in flight, for the request only.
            let _in_flight =
                request_slot.map(|slot| (slot, InFlight::new(crate::metrics::ATTEMPTS_IN_FLIGHT)));
            self.dispatcher.attempt(delivery, subscription).await
        };
        self.track_health(
            subscription,
            matches!(verdict, Verdict::Delivered),
            attempt.started_at,
        )
        .await;
        let labelled = self.metric_subscription(&subscription.id);
        crate::metrics::delivery::attempted(attempt.duration.as_secs_f64(), labelled);
        delivery.attempts = attempt.number;
        delivery.updated_at = Utc::now();
        let next = match verdict {
            Verdict::Delivered => NextStep::Done(DeliveryStatus::Delivered),
            Verdict::Reject {
                disable_subscription,
            } => {
                if disable_subscription {
                    let reason = "the endpoint answered 410 Gone".to_owned();
                    // At the attempt's start, so a replay of what changed since then takes it.
                    let at = attempt.started_at;
                    self.disable(subscription, "gone", reason, at, subscription.health)
                        .await;
                }
                NextStep::Done(DeliveryStatus::Failed)
            }
            // A replayed delivery's schedule starts again: it counts the attempts of this run.
            Verdict::Retry { retry_after } => match subscription
                .retry_policy(&self.retry)
                .delay(delivery.attempts_in_run(), retry_after)
            {
                Some(delay) => NextStep::RetryIn(delay),
                None => NextStep::Done(DeliveryStatus::Dead),
            },
        };
        match next {
            NextStep::Done(status) => {
                delivery.status = status;
                delivery.next_attempt_at = None;
                crate::metrics::delivery::finished(Outcome::Final(status), labelled);
            }
            NextStep::RetryIn(delay) => {
                delivery.status = DeliveryStatus::Pending;
                delivery.next_attempt_at =
                    Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default());
                crate::metrics::delivery::retry_scheduled(labelled);
            }
        }
        let recorded = self.record(delivery, &attempt, recording).await;
        log_attempt(delivery, &attempt, next);
        if delivery.status.is_dead_letter() {
            if let Some(cb) = &self.on_failure {
                cb(delivery, &attempt);
            }
            if let Some(ops) = &self.ops {
                ops.delivery_dead(delivery, &attempt).await;
            }
        }
        Attempted { next, recorded }
    }

    /// Records `delivery` as failed without a request — its subscription is disabled or gone —
    /// under an attempt of kind [`NotSent`](crate::AttemptErrorKind::NotSent) saying why, so the
    /// history shows what happened and the delivery can be replayed once the subscription is
    /// enabled again.
    pub async fn not_sent(&self, delivery: &mut Delivery, why: &str) -> Attempted {
        self.not_sent_recording(delivery, why, Recording::Existing)
            .await
    }

    /// [`not_sent`](Self::not_sent), recording as `recording` says.
    pub(crate) async fn not_sent_recording(
        &self,
        delivery: &mut Delivery,
        why: &str,
        recording: Recording,
    ) -> Attempted {
        let now = Utc::now();
        let attempt = Attempt {
            id: AttemptId::new(),
            delivery_id: delivery.id.clone(),
            number: delivery.attempts + 1,
            started_at: now,
            duration: Duration::ZERO,
            outcome: AttemptOutcome::Error {
                kind: AttemptErrorKind::NotSent,
                message: why.to_owned(),
            },
        };
        delivery.attempts = attempt.number;
        delivery.status = DeliveryStatus::Failed;
        delivery.next_attempt_at = None;
        delivery.updated_at = now;
        let labelled = self.metric_subscription(&delivery.subscription_id);
        crate::metrics::delivery::finished(Outcome::NotSent, labelled);
        tracing::warn!(delivery = %delivery.id, event = %delivery.event.id(), subscription = %delivery.subscription_id, why, "delivery kept as failed, not sent; replay it once the subscription is enabled");
        let recorded = self.record(delivery, &attempt, recording).await;
        Attempted {
            next: NextStep::Done(DeliveryStatus::Failed),
            recorded,
        }
    }

    /// Records `attempt` and `delivery`'s state after it; says whether the store took them.
    async fn record(&self, delivery: &Delivery, attempt: &Attempt, recording: Recording) -> bool {
        let written = match recording {
            Recording::Existing => self.store.record_attempt(delivery, attempt).await,
            Recording::New => self.store.record_first_attempt(delivery, attempt).await,
        };
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(delivery = %delivery.id, event = %delivery.event.id(), subscription = %delivery.subscription_id, attempt = attempt.number, error = %e, "could not record attempt");
                metrics::counter!(crate::metrics::STORE_ERRORS_TOTAL, "op" => "record_attempt")
                    .increment(1);
                false
            }
        }
    }

    /// Whether a subscription this engine disabled has been enabled again since (the copy an
    /// in-process delivery holds predates both): asks the store, only for those.
    async fn still_enabled(&self, id: &SubscriptionId) -> bool {
        if !self.disabled.contains(id) {
            return true;
        }
        match self.store.get_subscription(id).await {
            Ok(Some(current)) if current.enabled => {
                self.disabled.remove(id);
                true
            }
            Ok(_) => false,
            // Unknown: keep it disabled; the attempt is kept as failed and can be replayed.
            Err(e) => {
                tracing::warn!(subscription = %id, error = %e, "could not check whether a disabled subscription was enabled again");
                false
            }
        }
    }

    /// Adds the attempt to the subscription's failure streak, and disables it when the streak
    /// is too long for the [`HealthPolicy`]. A success writes only to end a streak.
    async fn track_health(&self, subscription: &Subscription, delivered: bool, at: DateTime<Utc>) {
        if delivered {
            let was_failing =
                self.failing.remove(&subscription.id) || !subscription.health.is_healthy();
            if !was_failing {
                return;
            }
        } else {
            if self.health.disable_after.is_none() {
                return;
            }
            self.failing.insert(&subscription.id);
        }
        match self
            .store
            .record_health(&subscription.id, delivered, at)
            .await
        {
            Ok(health) if !delivered && self.health.disables(&health, Utc::now()) => {
                let since = health.failing_since.unwrap_or(at);
                let reason = format!(
                    "endpoint failing since {}: {} failed attempts and no success",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    health.failures
                );
                self.disable(subscription, "health", reason, Utc::now(), health)
                    .await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(subscription = %subscription.id, error = %e, "could not record endpoint health");
                metrics::counter!(crate::metrics::STORE_ERRORS_TOTAL, "op" => "record_health")
                    .increment(1);
            }
        }
    }

    async fn disable(
        &self,
        subscription: &Subscription,
        cause: &'static str,
        reason: String,
        at: DateTime<Utc>,
        health: EndpointHealth,
    ) {
        let disabled = Disabled { reason, at };
        self.disabled.insert(&subscription.id);
        match self
            .store
            .disable_subscription(&subscription.id, disabled.clone())
            .await
        {
            Ok(true) => {
                metrics::counter!(crate::metrics::SUBSCRIPTIONS_DISABLED_TOTAL, "cause" => cause)
                    .increment(1);
                tracing::warn!(subscription = %subscription.id, url = %subscription.url, reason = %disabled.reason, "subscription disabled; its deliveries are kept as failed and can be replayed once it is enabled again");
                if let Some(ops) = &self.ops {
                    ops.subscription_disabled(subscription, &disabled, health)
                        .await;
                }
            }
            // Disabled already (another sidecar got there first), or a subscriber kept in code,
            // which has nothing stored to disable: this engine stops sending to it all the same.
            Ok(false) => {}
            Err(e) => {
                tracing::error!(subscription = %subscription.id, error = %e, "could not disable subscription")
            }
        }
    }
}

/// A set of subscriptions that is almost always empty, checked on every attempt: while it is
/// empty a check is one atomic load, not a lock.
#[derive(Default)]
struct IdSet {
    ids: Mutex<HashSet<SubscriptionId>>,
    len: AtomicUsize,
}

impl IdSet {
    fn lock(&self) -> MutexGuard<'_, HashSet<SubscriptionId>> {
        // Every update is one insert or remove: a poisoned set is still consistent.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn contains(&self, id: &SubscriptionId) -> bool {
        self.len.load(Ordering::Acquire) > 0 && self.lock().contains(id)
    }

    fn insert(&self, id: &SubscriptionId) {
        let mut ids = self.lock();
        ids.insert(id.clone());
        self.len.store(ids.len(), Ordering::Release);
    }

    fn remove(&self, id: &SubscriptionId) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut ids = self.lock();
        let removed = ids.remove(id);
        self.len.store(ids.len(), Ordering::Release);
        removed
    }
}

/// The longest work waits between tries while the store is unreachable.
const MAX_OUTAGE_DELAY: Duration = Duration::from_secs(60);

/// The store-outage policy, the one for every path that needs the store before it can go on:
/// an outage **delays** work, it never drops it. After `failures` failures in a row the wait is
/// the retry policy's delay for that retry, then its last delay for as long as the outage lasts,
/// never more than a minute (one second if the policy has no retries at all).
///
/// The work is the store's to record, not a receiver's to refuse, so running out of retries
/// never turns it into a dead letter: the event waits until the store is back (the sidecar
/// keeps it in the queue; the in-process backend keeps it in memory until shutdown aborts it).
fn outage_delay(policy: &RetryPolicy, failures: u32) -> Duration {
    let step = failures.clamp(1, policy.max_retries().max(1));
    policy
        .delay(step, None)
        .unwrap_or(Duration::from_secs(1))
        .min(MAX_OUTAGE_DELAY)
}

fn log_attempt(delivery: &Delivery, attempt: &Attempt, next: NextStep) {
    let status = attempt.status_code();
    match next {
        NextStep::Done(DeliveryStatus::Delivered) => {
            tracing::debug!(delivery = %delivery.id, ?status, "delivered")
        }
        NextStep::RetryIn(delay) => {
            tracing::info!(delivery = %delivery.id, event = %delivery.event.id(), subscription = %delivery.subscription_id, attempt = attempt.number, ?status, outcome = ?attempt.outcome, ?delay, "attempt failed; will retry")
        }
        NextStep::Done(final_status) => {
            tracing::warn!(delivery = %delivery.id, event = %delivery.event.id(), subscription = %delivery.subscription_id, attempt = attempt.number, ?status, outcome = ?attempt.outcome, %final_status, "delivery is a dead letter")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_outage_follows_the_retry_schedule_then_keeps_its_last_delay() {
        let policy = RetryPolicy::schedule([10 * MS, 20 * MS, 40 * MS]);
        let delays: Vec<Duration> = (1..=6).map(|n| outage_delay(&policy, n)).collect();
        assert_eq!(
            delays,
            [10 * MS, 20 * MS, 40 * MS, 40 * MS, 40 * MS, 40 * MS]
        );
        assert_eq!(outage_delay(&policy, u32::MAX), 40 * MS, "never gives up");
        assert_eq!(
            outage_delay(&policy, 0),
            10 * MS,
            "0 counts as the first failure"
        );
    }

    #[test]
    fn an_outage_waits_even_when_the_policy_allows_no_retry() {
        assert_eq!(
            outage_delay(&RetryPolicy::none(), 1),
            Duration::from_secs(1)
        );
        assert_eq!(
            outage_delay(&RetryPolicy::none(), 1000),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn an_outage_delay_is_at_most_a_minute() {
        let slow = RetryPolicy::schedule([Duration::from_secs(3600)]);
        assert_eq!(outage_delay(&slow, 1), MAX_OUTAGE_DELAY);
        let default = RetryPolicy::default();
        for failures in [1, 3, 10, u32::MAX] {
            let delay = outage_delay(&default, failures);
            assert!(
                delay > Duration::ZERO && delay <= MAX_OUTAGE_DELAY,
                "{delay:?}"
            );
        }
    }
}
