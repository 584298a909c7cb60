//! [`BackgroundTaskBackend`]: in-process delivery on tokio tasks, bounded everywhere.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::event_line::{EventLine, Refused};
use super::event_workers::Workers;
use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::engine::{DeliveryEngine, NextStep};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::DeliveryId;
use crate::subscription::Subscription;

/// Limits of the in-process backend.
#[derive(Clone, Debug)]
pub struct BackgroundConfig {
    /// Events waiting for fan-out. Default 10,000.
    pub capacity: usize,
    /// HTTP attempts in flight at once, over all subscribers. Default 100. Also the most event
    /// workers (started as events need them): at most this many events are being fanned out
    /// at once. An event's
    /// deliveries are admitted in groups of up to a tenth of this, each group's permits granted
    /// together and groups served in the order they asked.
    pub concurrency: usize,
    /// Deliveries held in memory at once (in flight, waiting for a permit or for a retry).
    /// When reached, fan-out waits, the channel fills, and `publish` pushes back. Default 100,000.
    pub max_pending_deliveries: usize,
    /// How long `publish` waits for room in a full channel before failing with
    /// [`Error::QueueFull`]. Default 1 s.
    pub publish_timeout: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            concurrency: 100,
            max_pending_deliveries: 100_000,
            publish_timeout: Duration::from_secs(1),
        }
    }
}

impl BackgroundConfig {
    fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("background.capacity", self.capacity),
            ("background.concurrency", self.concurrency),
            (
                "background.max_pending_deliveries",
                self.max_pending_deliveries,
            ),
        ] {
            if value == 0 {
                return Err(Error::InvalidConfig {
                    field,
                    reason: "must be at least 1".into(),
                });
            }
        }
        for (field, value) in [
            ("background.capacity", self.capacity),
            ("background.concurrency", self.concurrency),
            (
                "background.max_pending_deliveries",
                self.max_pending_deliveries,
            ),
        ] {
            if value > Semaphore::MAX_PERMITS {
                return Err(Error::InvalidConfig {
                    field,
                    reason: format!("must be at most {}", Semaphore::MAX_PERMITS),
                });
            }
        }
        Ok(())
    }
}

/// Delivers in the same process, on tokio tasks: fast, and nothing to run beside the service.
///
/// A bounded channel feeds up to `concurrency` event workers, started as events need them (an
/// idle service holds one). A worker fans out the event it takes and makes the first attempt of
/// an event's only delivery itself — the common case costs no task and no hand-off. Every other delivery runs on a task of its own, and so does a retry, so a
/// slow or failing subscriber never delays the others and no worker waits for a retry. At most
/// `concurrency` HTTP attempts run at once; retries wait on timers without holding a permit.
/// Under a backlog, events finish fan-out in the order they came, so `publish` waits in line
/// for room that frees steadily, not in bursts.
///
/// A store outage delays fan-out, it never drops the event: fan-out is tried again, for as long
/// as the outage lasts, on the same schedule as the sidecar worker's.
///
/// **Not durable**: deliveries in memory when the process dies are not sent (with a persistent
/// store they stay `pending` there). Use a durable queue backend when that matters.
///
/// Must be created inside a tokio runtime.
#[derive(Debug)]
pub struct BackgroundTaskBackend {
    events: EventLine,
    publish_timeout: Duration,
    stop_accepting: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
    pending: Arc<Semaphore>,
    max_pending: usize,
    abandoned: Arc<Abandoned>,
    pool: Arc<DeliveryPool>,
}

struct DeliveryPool {
    engine: DeliveryEngine,
    /// The accepted events, waiting for a worker.
    events: EventLine,
    /// The event workers, started as events need them, up to `concurrency`.
    workers: Workers,
    concurrency: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    tracker: TaskTracker,
    abort: CancellationToken,
    abandoned: Arc<Abandoned>,
    /// Deliveries of one event admitted together, at most: a tenth of the attempt permits (and
    /// of the room), at least one. A group waits for all its permits at once, so up to one
    /// group's worth of permits can be idle while it gathers them.
    group_size: u32,
    /// Replayed runs (delivery, run) queued or under way: a run is queued once.
    replaying: Mutex<HashSet<(DeliveryId, u32)>>,
}

impl DeliveryPool {
    /// Starts an event worker if none is waiting for an event and fewer than `concurrency` run.
    fn start_worker_if_none_waits(self: &Arc<Self>) {
        if self.workers.claim_start() {
            self.tracker.spawn(event_worker(self.clone()));
        }
    }

    fn replaying(&self) -> MutexGuard<'_, HashSet<(DeliveryId, u32)>> {
        // Every update is one insert or remove: a poisoned set is still consistent.
        self.replaying
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for DeliveryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryPool").finish_non_exhaustive()
    }
}

/// What the abort left unfinished, counted where it happens.
#[derive(Debug, Default)]
struct Abandoned {
    deliveries: AtomicUsize,
    events: AtomicUsize,
}

impl Abandoned {
    fn deliveries(&self, n: usize) {
        self.deliveries.fetch_add(n, Ordering::Relaxed);
    }

    fn events(&self, n: usize) {
        self.events.fetch_add(n, Ordering::Relaxed);
    }

    fn report(&self) -> ShutdownReport {
        ShutdownReport {
            abandoned: self.deliveries.load(Ordering::Relaxed),
            abandoned_events: self.events.load(Ordering::Relaxed),
        }
    }
}

impl BackgroundTaskBackend {
    /// Starts the backend on the current tokio runtime: one event worker, more as events need
    /// them (up to `concurrency`).
    pub fn start(engine: DeliveryEngine, config: BackgroundConfig) -> Result<Self> {
        config.validate()?;
        let events = EventLine::new(config.capacity);
        let tracker = TaskTracker::new();
        let stop_accepting = CancellationToken::new();
        let abort = CancellationToken::new();
        let pending = Arc::new(Semaphore::new(config.max_pending_deliveries));
        let abandoned = Arc::new(Abandoned::default());
        // The engine's operational events come back through the pool's line: its sink holds
        // the pool weakly, which holds the engine.
        let pool = Arc::new_cyclic(|pool| DeliveryPool {
            engine: engine.with_ops_events(Arc::new(OpsSink { pool: pool.clone() })),
            events: events.clone(),
            workers: Workers::new(config.concurrency),
            concurrency: Arc::new(Semaphore::new(config.concurrency)),
            pending: pending.clone(),
            tracker: tracker.clone(),
            abort: abort.clone(),
            abandoned: abandoned.clone(),
            group_size: u32::try_from(config.concurrency.min(config.max_pending_deliveries) / 10)
                .unwrap_or(u32::MAX)
                .max(1),
            replaying: Mutex::default(),
        });
        // One from the start: `shutdown` waits for it, so an event pushed just as the line
        // closes is drained, even if the worker started for it comes too late.
        pool.start_worker_if_none_waits();
        Ok(Self {
            abandoned,
            events,
            publish_timeout: config.publish_timeout,
            stop_accepting,
            abort,
            tracker,
            pending,
            max_pending: config.max_pending_deliveries,
            pool,
        })
    }

    /// Deliveries currently held in memory (in flight or waiting for a retry).
    pub fn pending_deliveries(&self) -> usize {
        self.max_pending - self.pending.available_permits()
    }
}

#[async_trait]
impl Backend for BackgroundTaskBackend {
    async fn publish(&self, event: Event) -> Result<()> {
        if self.stop_accepting.is_cancelled() {
            return Err(Error::ShutDown);
        }
        match self.events.push(event, self.publish_timeout).await {
            Ok(()) => {
                self.pool.start_worker_if_none_waits();
                Ok(())
            }
            Err(Refused::Full(event)) => {
                metrics::counter!(crate::metrics::PUBLISH_REJECTED_TOTAL, "reason" => "queue_full")
                    .increment(1);
                tracing::error!(event = %event.id(), name = %event.name(), "queue full: event not accepted");
                Err(Error::QueueFull {
                    waited: self.publish_timeout,
                })
            }
            Err(Refused::ShutDown) => Err(Error::ShutDown),
        }
    }

    /// Runs the replayed run in this process, as fan-out would have: it waits for room among the
    /// pending deliveries (up to the publish timeout) and for an attempt permit. Not durable,
    /// like everything this backend holds: a run still in memory at a crash stays `pending` in
    /// the store, and replaying it again queues it again.
    async fn redeliver(&self, delivery: &Delivery) -> Result<bool> {
        if self.stop_accepting.is_cancelled() {
            return Err(Error::ShutDown);
        }
        let run = (delivery.id.clone(), delivery.replays);
        if !self.pool.replaying().insert(run.clone()) {
            return Ok(false);
        }
        let forget = |e: Error| {
            self.pool.replaying().remove(&run);
            Err(e)
        };
        let subscription = match self
            .pool
            .engine
            .subscription(&delivery.subscription_id)
            .await
        {
            Ok(Some(s)) => Arc::new(s),
            Ok(None) => {
                return forget(Error::SubscriptionNotFound {
                    id: delivery.subscription_id.to_string(),
                });
            }
            Err(e) => return forget(e),
        };
        let pending =
            match tokio::time::timeout(self.publish_timeout, self.pending.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return forget(Error::ShutDown),
                Err(_) => {
                    return forget(Error::QueueFull {
                        waited: self.publish_timeout,
                    });
                }
            };
        let pool = self.pool.clone();
        let delivery = delivery.clone();
        self.tracker.spawn(async move {
            let first = tokio::select! {
                p = pool.concurrency.clone().acquire_owned() => p.ok(),
                _ = pool.abort.cancelled() => None,
            };
            match first {
                Some(first) => deliver(&pool, delivery, subscription, Some(first)).await,
                None => pool.abandoned.deliveries(1),
            }
            pool.replaying().remove(&run);
            drop(pending);
        });
        Ok(true)
    }

    async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.stop_accepting.cancel();
        // What is queued is still taken by the workers, which end once it is empty.
        self.events.close();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            return Ok(ShutdownReport::default());
        }
        // Every task races its waits and its attempt against the abort, so they all end now and
        // count what they leave unfinished; once they have, no request starts any more.
        self.abort.cancel();
        self.tracker.wait().await;
        // What is still queued was accepted and will never be fanned out.
        self.abandoned.events(self.events.drain());
        let report = self.abandoned.report();
        tracing::error!(
            abandoned = report.abandoned,
            abandoned_events = report.abandoned_events,
            "shutdown deadline passed: unfinished deliveries are abandoned (they stay pending in the store), and events not yet fanned out with them"
        );
        Ok(report)
    }
}

/// Where the engine's [operational events](crate::ops_events) enter this backend: the same
/// channel as published events. It never waits (a delivery task publishes through it): a full
/// channel fails the publish, which the engine logs and counts.
struct OpsSink {
    pool: Weak<DeliveryPool>,
}

#[async_trait]
impl Backend for OpsSink {
    async fn publish(&self, event: Event) -> Result<()> {
        let pool = self.pool.upgrade().ok_or(Error::ShutDown)?;
        pool.events
            .push(event, Duration::ZERO)
            .await
            .map_err(|refused| match refused {
                Refused::Full(_) => Error::QueueFull {
                    waited: Duration::ZERO,
                },
                Refused::ShutDown => Error::ShutDown,
            })?;
        pool.start_worker_if_none_waits();
        Ok(())
    }
}

/// Takes events until the channel is closed and empty (shutdown) or the abort, and fans each
/// one out. While every worker is busy, events wait in the channel and `publish` pushes back.
async fn event_worker(pool: Arc<DeliveryPool>) {
    let mut first = Some(pool.workers.first_wait());
    loop {
        let waiting = first.take().unwrap_or_else(|| pool.workers.waiting());
        let event = tokio::select! {
            biased;
            // What is still queued is counted by `shutdown`, once every worker has ended.
            _ = pool.abort.cancelled() => return,
            event = pool.events.take() => match event {
                Some(event) => event,
                None => return, // closed and empty
            },
        };
        drop(waiting);
        if !pool.events.is_empty() {
            pool.start_worker_if_none_waits();
        }
        process_event(&pool, event).await;
    }
}

async fn process_event(pool: &Arc<DeliveryPool>, event: Event) {
    let Some(planned) = fan_out_through_outages(pool, &event).await else {
        pool.abandoned.events(1);
        return;
    };
    let total = planned.len();
    let mut planned = planned.into_iter();
    let mut started = 0;
    while planned.len() > 0 {
        let Some(group) = admit(
            pool,
            pool.group_size
                .min(u32::try_from(planned.len()).unwrap_or(u32::MAX)),
        )
        .await
        else {
            return pool.abandoned.deliveries(total - started);
        };
        // The group first: it ends the turn without taking a delivery it has no permits for.
        for ((pending, first_attempt), (delivery, subscription)) in group.zip(planned.by_ref()) {
            started += 1;
            if total == 1 {
                return attempt_only_delivery(pool, delivery, subscription, first_attempt, pending)
                    .await;
            }
            let task_pool = pool.clone();
            pool.tracker.spawn(async move {
                deliver(&task_pool, delivery, subscription, Some(first_attempt)).await;
                drop(pending);
            });
        }
    }
}

/// Room in memory and a first-attempt permit for each delivery of a group, granted together;
/// yields one delivery's pair at a time.
struct Admitted {
    pending: OwnedSemaphorePermit,
    attempts: OwnedSemaphorePermit,
}

impl Iterator for Admitted {
    type Item = (OwnedSemaphorePermit, OwnedSemaphorePermit);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.pending.split(1)?, self.attempts.split(1)?))
    }
}

/// Waits for room and first-attempt permits for `size` deliveries of one event (`size` at most
/// the pool's group size), all at once; `None` on abort. A delivery task is spawned only once
/// its first attempt may start: a backlog waits as plain data, not as thousands of parked tasks,
/// each the size of a whole HTTP attempt's future.
///
/// A group's permits are granted in one turn: waiters are served in order, so the events being
/// fanned out take their groups one after the other. Granted one by one instead, the permits
/// freed by finished attempts went round every worker in turn, each event advanced a step per
/// round, and the events of a backlog all finished fan-out in the same few milliseconds: the
/// channel made room in bursts, and `publish` waited for the next one (a hooked route's p99
/// doubled under load).
async fn admit(pool: &DeliveryPool, size: u32) -> Option<Admitted> {
    tokio::select! {
        admitted = async {
            let pending = pool.pending.clone().acquire_many_owned(size).await.ok()?;
            let attempts = pool.concurrency.clone().acquire_many_owned(size).await.ok()?;
            Some(Admitted { pending, attempts })
        } => admitted,
        _ = pool.abort.cancelled() => None,
    }
}

/// An event's only delivery makes its first attempt on the worker that fanned it out; a retry
/// waits on a task of its own, and the worker goes on to the next event.
async fn attempt_only_delivery(
    pool: &Arc<DeliveryPool>,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    permit: OwnedSemaphorePermit,
    pending: OwnedSemaphorePermit,
) {
    let step = attempt_once(pool, &mut delivery, &subscription, Some(permit)).await;
    if matches!(step, Some(NextStep::RetryIn(_))) {
        let task_pool = pool.clone();
        pool.tracker.spawn(async move {
            follow(&task_pool, delivery, subscription, step).await;
            drop(pending);
        });
    } else {
        follow(pool, delivery, subscription, step).await;
    }
}

/// Fan-out needs the store. A store that is down delays the event, it never drops it: fan-out
/// is tried again after [`DeliveryEngine::outage_delay`] — the policy the sidecar worker follows
/// too — for as long as the outage lasts. The event keeps its fan-out permit meanwhile, so a
/// long outage fills the channel and `publish` pushes back instead of piling events up in
/// memory. Only shutdown ends the wait: past its deadline the event is abandoned, loudly
/// (this backend is not durable).
async fn fan_out_through_outages(
    pool: &DeliveryPool,
    event: &Event,
) -> Option<Vec<(Delivery, Arc<Subscription>)>> {
    let mut failures = 0u32;
    loop {
        match pool.engine.fan_out(event).await {
            Ok(planned) => return Some(planned),
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = pool.engine.outage_delay(failures);
                tracing::warn!(event = %event.id(), error = %e, failures, ?delay, "fan-out failed (store unreachable?); the event will be fanned out later");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => {
                        metrics::counter!(crate::metrics::FANOUT_ABANDONED_TOTAL).increment(1);
                        tracing::error!(event = %event.id(), name = %event.name(), failures, "shutdown deadline passed while the store was unreachable: event abandoned before fan-out");
                        return None;
                    }
                }
            }
        }
    }
}

/// Attempts `delivery` until it is done; `first_attempt` is the permit its first attempt runs
/// under (if it has one already), retries wait for one of their own.
async fn deliver(
    pool: &DeliveryPool,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    first_attempt: Option<OwnedSemaphorePermit>,
) {
    let step = attempt_once(pool, &mut delivery, &subscription, first_attempt).await;
    follow(pool, delivery, subscription, step).await;
}

/// Goes on from `step`, what the delivery's last attempt came to (`None`: the abort came
/// first), until the delivery is done: each retry waits for its delay, then for a permit.
async fn follow(
    pool: &DeliveryPool,
    mut delivery: Delivery,
    subscription: Arc<Subscription>,
    mut step: Option<NextStep>,
) {
    loop {
        match step {
            Some(NextStep::Done(_)) => return,
            None => return pool.abandoned.deliveries(1),
            Some(NextStep::RetryIn(delay)) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = pool.abort.cancelled() => return pool.abandoned.deliveries(1),
                }
                step = attempt_once(pool, &mut delivery, &subscription, None).await;
            }
        }
    }
}

/// One attempt under `permit`, or under one it waits for; `None` when the abort came first
/// (the delivery is abandoned).
async fn attempt_once(
    pool: &DeliveryPool,
    delivery: &mut Delivery,
    subscription: &Subscription,
    permit: Option<OwnedSemaphorePermit>,
) -> Option<NextStep> {
    let _permit = match permit {
        Some(p) => p,
        None => tokio::select! {
            p = pool.concurrency.clone().acquire_owned() => p.ok()?,
            _ = pool.abort.cancelled() => return None,
        },
    };
    if pool.abort.is_cancelled() {
        return None;
    }
    let _counted = crate::metrics::InFlight::new(crate::metrics::ATTEMPTS_IN_FLIGHT);
    // Raced against the abort: past the shutdown deadline an attempt in flight is dropped (its
    // request with it) rather than outliving `shutdown`. In memory there is nothing to settle:
    // an unrecorded attempt (logged and counted by the engine) only misses its history entry.
    tokio::select! {
        step = pool.engine.attempt(delivery, subscription) => Some(step.next),
        _ = pool.abort.cancelled() => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::delivery::Attempt;
    use crate::dispatch::{Dispatcher, HttpConfig};
    use crate::event::EventName;
    use crate::id::{DeliveryId, EventId, SubscriptionId};
    use crate::retry::RetryPolicy;
    use crate::signing::Sha256Hex;
    use crate::store::{DeliveryQuery, EventQuery, MemoryStore, Store, SubscriptionQuery};

    /// A `MemoryStore` whose `matching` fails while `down`, as a database outage would.
    #[derive(Default)]
    struct Outage {
        inner: MemoryStore,
        down: AtomicBool,
    }

    #[async_trait]
    impl Store for Outage {
        async fn add_subscription(&self, s: Subscription) -> Result<()> {
            self.inner.add_subscription(s).await
        }
        async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
            self.inner.get_subscription(id).await
        }
        async fn update_subscription(&self, s: Subscription) -> Result<()> {
            self.inner.update_subscription(s).await
        }
        async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
            self.inner.remove_subscription(id).await
        }
        async fn list_subscriptions(&self, q: &SubscriptionQuery) -> Result<Vec<Subscription>> {
            self.inner.list_subscriptions(q).await
        }
        async fn matching(
            &self,
            name: &EventName,
            owner: Option<&str>,
        ) -> Result<Vec<Subscription>> {
            if self.down.load(Ordering::SeqCst) {
                return Err(Error::storage(
                    "test.outage",
                    std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                ));
            }
            self.inner.matching(name, owner).await
        }
        async fn record_deliveries(&self, d: &[Delivery]) -> Result<()> {
            self.inner.record_deliveries(d).await
        }
        async fn record_attempt(&self, d: &Delivery, a: &Attempt) -> Result<()> {
            self.inner.record_attempt(d, a).await
        }
        async fn replay_delivery(
            &self,
            id: &DeliveryId,
            resend_delivered: bool,
        ) -> Result<Option<crate::replay::Reopen>> {
            self.inner.replay_delivery(id, resend_delivered).await
        }
        async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
            self.inner.get_delivery(id).await
        }
        async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
            self.inner.list_deliveries(q).await
        }
        async fn list_attempts(&self, d: &DeliveryId) -> Result<Vec<Attempt>> {
            self.inner.list_attempts(d).await
        }
        async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
            self.inner.get_event(id).await
        }
        async fn list_events(&self, q: &EventQuery) -> Result<Vec<Event>> {
            self.inner.list_events(q).await
        }
    }

    /// A backend over a store that is down, with a retry policy that allows one retry: the
    /// policy that used to decide when fan-out gave up.
    fn backend_over_an_outage() -> (Arc<Outage>, BackgroundTaskBackend) {
        backend_over_an_outage_with(BackgroundConfig::default())
    }

    fn backend_over_an_outage_with(
        config: BackgroundConfig,
    ) -> (Arc<Outage>, BackgroundTaskBackend) {
        let store = Arc::new(Outage::default());
        store.down.store(true, Ordering::SeqCst);
        let subscriber = Subscription::new("order.*", "https://receiver.example/hooks").unwrap();
        let dispatcher =
            Dispatcher::new(&HttpConfig::default(), Arc::new(Sha256Hex::default()), None).unwrap();
        let engine = DeliveryEngine::new(
            store.clone(),
            vec![subscriber],
            dispatcher,
            RetryPolicy::schedule([Duration::from_millis(20)]),
            None,
        );
        let backend = BackgroundTaskBackend::start(engine, config).unwrap();
        (store, backend)
    }

    async fn recorded(store: &Outage) -> usize {
        store
            .inner
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap()
            .len()
    }

    #[test]
    fn a_bound_past_what_a_semaphore_counts_is_a_typed_error_naming_it() {
        for (config, named) in [
            (
                BackgroundConfig {
                    capacity: usize::MAX,
                    ..BackgroundConfig::default()
                },
                "background.capacity",
            ),
            (
                BackgroundConfig {
                    concurrency: usize::MAX,
                    ..BackgroundConfig::default()
                },
                "background.concurrency",
            ),
            (
                BackgroundConfig {
                    max_pending_deliveries: usize::MAX,
                    ..BackgroundConfig::default()
                },
                "background.max_pending_deliveries",
            ),
        ] {
            let err = config.validate().unwrap_err();
            assert!(
                matches!(err, Error::InvalidConfig { field, .. } if field == named),
                "{err}"
            );
        }
    }

    /// Publishes `events` events, each of which a worker then holds (fan-out waits out the
    /// outage), and says how many workers were started.
    async fn workers_started_for(events: usize, concurrency: usize) -> usize {
        let (_store, backend) = backend_over_an_outage_with(BackgroundConfig {
            concurrency,
            ..BackgroundConfig::default()
        });
        for i in 0..events {
            backend
                .publish(Event::new("order.created", &i).unwrap())
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = backend.pool.workers.started();
        backend.shutdown(Duration::from_millis(10)).await.unwrap();
        started
    }

    #[tokio::test]
    async fn an_idle_backend_holds_one_event_worker() {
        assert_eq!(workers_started_for(0, 100).await, 1);
    }

    #[tokio::test]
    async fn a_worker_is_started_for_each_event_while_the_others_are_busy() {
        assert_eq!(workers_started_for(3, 100).await, 3);
    }

    #[tokio::test]
    async fn no_more_workers_than_attempt_permits_are_started() {
        assert_eq!(workers_started_for(5, 2).await, 2);
    }

    #[tokio::test]
    async fn a_group_of_permits_is_granted_whole_and_in_turn() {
        let (_store, backend) = backend_over_an_outage(); // no event is fanned out meanwhile
        let pool = backend.pool.clone();
        assert_eq!(pool.group_size, 10, "a tenth of the default 100 attempts");
        let mut busy = pool
            .concurrency
            .clone()
            .acquire_many_owned(100)
            .await
            .unwrap();
        let waiting = |pool: Arc<DeliveryPool>| tokio::spawn(async move { admit(&pool, 10).await });
        let first = waiting(pool.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = waiting(pool.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;

        // Attempts finish one by one: the first group gets none until it can have all ten.
        for _ in 0..9 {
            drop(busy.split(1).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!first.is_finished() && !second.is_finished());
        drop(busy.split(1).unwrap());
        let first = tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .expect("the first group is granted")
            .unwrap()
            .expect("no abort");
        assert_eq!(first.count(), 10, "a pair of permits per delivery");

        // Its ten permits, dropped with it, go to the group next in line.
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second group is granted")
            .unwrap()
            .expect("no abort");
        assert_eq!(pool.concurrency.available_permits(), 0);
        drop(second);
        drop(busy);
        assert_eq!(pool.concurrency.available_permits(), 100);
        backend.shutdown(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn a_store_outage_delays_fan_out_past_the_retry_policy_and_loses_no_event() {
        let (store, backend) = backend_over_an_outage();
        backend
            .publish(Event::new("order.created", &1).unwrap())
            .await
            .unwrap();
        // Far longer than the retry policy (one retry after 20 ms) would have waited.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            recorded(&store).await,
            0,
            "nothing recorded during the outage"
        );
        store.down.store(false, Ordering::SeqCst);
        let started = Instant::now();
        while recorded(&store).await == 0 && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            recorded(&store).await,
            1,
            "fanned out once the store was back"
        );
        backend.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_of_an_event_held_up_by_an_outage() {
        let (store, backend) = backend_over_an_outage();
        backend
            .publish(Event::new("order.created", &1).unwrap())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = tokio::time::timeout(
            Duration::from_secs(5),
            backend.shutdown(Duration::from_millis(100)),
        )
        .await
        .expect("shutdown returns past its deadline")
        .unwrap();
        assert_eq!(
            report.abandoned, 0,
            "no delivery was held: the event never fanned out"
        );
        assert!(backend.tracker.is_closed());
        tokio::time::timeout(Duration::from_secs(5), backend.tracker.wait())
            .await
            .expect("the worker held up by the outage ended on abort");
        assert_eq!(recorded(&store).await, 0);
    }
}
