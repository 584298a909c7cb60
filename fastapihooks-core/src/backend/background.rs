//! [`BackgroundTaskBackend`]: in-process delivery on tokio tasks, bounded everywhere.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::delivery_pool::DeliveryPool;
use super::event_line::Refused;
use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::engine::DeliveryEngine;
use crate::error::{Error, Result};
use crate::event::Event;

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
/// an event's only delivery itself — the common case costs no task and no hand-off. Every other
/// delivery runs on a task of its own, and so does a retry, so a slow or failing subscriber
/// never delays the others and no worker waits for a retry. At most `concurrency` HTTP attempts
/// run at once; retries wait on timers without holding a permit.
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
    publish_timeout: Duration,
    stop_accepting: CancellationToken,
    max_pending: usize,
    pool: Arc<DeliveryPool>,
}

impl BackgroundTaskBackend {
    /// Starts the backend on the current tokio runtime: one event worker, more as events need
    /// them (up to `concurrency`).
    pub fn start(engine: DeliveryEngine, config: BackgroundConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            publish_timeout: config.publish_timeout,
            stop_accepting: CancellationToken::new(),
            max_pending: config.max_pending_deliveries,
            pool: DeliveryPool::start(engine, &config),
        })
    }

    /// Deliveries currently held in memory (in flight or waiting for a retry).
    pub fn pending_deliveries(&self) -> usize {
        self.max_pending - self.pool.pending.available_permits()
    }
}

#[async_trait]
impl Backend for BackgroundTaskBackend {
    async fn publish(&self, event: Event) -> Result<()> {
        if self.stop_accepting.is_cancelled() {
            return Err(Error::ShutDown);
        }
        match self.pool.push(event, self.publish_timeout).await {
            Ok(()) => Ok(()),
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
        let pending = match tokio::time::timeout(
            self.publish_timeout,
            self.pool.pending.clone().acquire_owned(),
        )
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
        self.pool
            .spawn_replay(delivery.clone(), subscription, pending, run);
        Ok(true)
    }

    async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        self.stop_accepting.cancel();
        // What is queued is still taken by the workers, which end once it is empty.
        self.pool.events.close();
        self.pool.tracker.close();
        if tokio::time::timeout(deadline, self.pool.tracker.wait())
            .await
            .is_ok()
        {
            return Ok(ShutdownReport::default());
        }
        // Every task races its waits and its attempt against the abort, so they all end now and
        // count what they leave unfinished; once they have, no request starts any more.
        self.pool.abort.cancel();
        self.pool.tracker.wait().await;
        // What is still queued was accepted and will never be fanned out.
        self.pool.abandoned.events(self.pool.events.drain());
        let report = self.pool.abandoned.report();
        tracing::error!(
            abandoned = report.abandoned,
            abandoned_events = report.abandoned_events,
            "shutdown deadline passed: unfinished deliveries are abandoned (they stay pending in the store), and events not yet fanned out with them"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::backend::delivery_pool::{IDLE_WORKER_STOPS_AFTER, admit};
    use crate::delivery::Attempt;
    use crate::dispatch::{Dispatcher, HttpConfig};
    use crate::event::EventName;
    use crate::id::{DeliveryId, EventId, SubscriptionId};
    use crate::retry::RetryPolicy;
    use crate::signing::Sha256Hex;
    use crate::store::{DeliveryQuery, EventQuery, MemoryStore, Store, SubscriptionQuery};
    use crate::subscription::Subscription;

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

    /// Publishes one event named `name`, its payload `n`.
    async fn publish(backend: &BackgroundTaskBackend, name: &str, n: usize) {
        backend
            .publish(Event::new(name, &n).unwrap())
            .await
            .unwrap();
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
            publish(&backend, "order.created", i).await;
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

    #[tokio::test(start_paused = true)]
    async fn idle_workers_stop_until_one_is_left() {
        let (store, backend) = backend_over_an_outage();
        for i in 0..3 {
            // Matches no subscription: a worker is free again once its fan-out has run.
            publish(&backend, "user.created", i).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(backend.pool.workers.started(), 3, "each held by the outage");
        store.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(IDLE_WORKER_STOPS_AFTER / 2).await;
        assert_eq!(
            backend.pool.workers.started(),
            3,
            "not idle long enough yet"
        );
        tokio::time::sleep(IDLE_WORKER_STOPS_AFTER).await;
        assert_eq!(backend.pool.workers.started(), 1);
        publish(&backend, "user.created", 4).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            backend.pool.events.is_empty(),
            "the last one still takes events"
        );
        backend.shutdown(Duration::from_secs(1)).await.unwrap();
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
        publish(&backend, "order.created", 1).await;
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
        publish(&backend, "order.created", 1).await;
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
        assert!(backend.pool.tracker.is_closed());
        tokio::time::timeout(Duration::from_secs(5), backend.pool.tracker.wait())
            .await
            .expect("the worker held up by the outage ended on abort");
        assert_eq!(recorded(&store).await, 0);
    }
}
