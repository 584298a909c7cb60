//! Replay through every backend that delivers: the in-process one, the Redis queue and the SQL
//! outbox (SQLite, PostgreSQL, MariaDB), each drained as in production (a `Worker` for the
//! queues), against a real receiver on 127.0.0.1. Counted at the receiver by delivery id.
#![cfg(all(feature = "redis", feature = "sql"))]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fastapihooks_core::{
    Backend, BackgroundConfig, BackgroundTaskBackend, Delivery, DeliveryQuery, DeliveryStatus,
    Queue, Replay, ReplayOutcome, RetryPolicy, Store, Subscription, Worker, WorkerConfig,
};
use fastapihooks_testkit::{Fix, Receiver, TempSqlite, events, eventually_async, outbox};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const EVENTS: usize = 40;

/// A receiver that answers 503 until it is switched on: an endpoint that is down, then up.
struct Endpoint {
    receiver: Receiver,
    up: Fix,
}

impl Endpoint {
    async fn down() -> Self {
        let (receiver, up) = Receiver::broken(503).await;
        Self { receiver, up }
    }

    /// Down (503) until [`come_up`](Self::come_up), then 200 after `delay`: an attempt is still
    /// in flight for `delay` after the replay queued it.
    async fn down_then_answering_after(delay: Duration) -> Self {
        let repaired = fastapihooks_testkit::Reply::ok().after(delay);
        let (receiver, up) = Receiver::broken_then(503, repaired).await;
        Self { receiver, up }
    }

    fn come_up(&self) {
        self.up.apply();
    }

    /// Requests per delivery id: each id in `ids` exactly `n` times, and no other id.
    fn each_received(&self, ids: &HashSet<String>, n: usize) -> bool {
        let counts = self.receiver.counts();
        counts.len() == ids.len() && ids.iter().all(|id| counts.get(id) == Some(&n))
    }
}

/// The backend under test, delivering from `store` with no retries (so a 503 makes a dead
/// letter at once), and what stops it.
struct Delivering {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    stop: CancellationToken,
    worker: Option<tokio::task::JoinHandle<fastapihooks_core::WorkerReport>>,
}

impl Delivering {
    fn in_process(store: Arc<dyn Store>) -> Self {
        let engine = fastapihooks_testkit::engine(store.clone(), RetryPolicy::none());
        let backend = BackgroundTaskBackend::start(engine, BackgroundConfig::default()).unwrap();
        Self {
            store,
            backend: Arc::new(backend),
            stop: CancellationToken::new(),
            worker: None,
        }
    }

    fn drained<Q: Queue>(store: Arc<dyn Store>, queue: Arc<Q>) -> Self {
        let engine = fastapihooks_testkit::engine(store.clone(), RetryPolicy::none());
        let config = WorkerConfig {
            concurrency: 16,
            lease_batch: 16,
            drain_deadline: Duration::from_secs(10),
            ..WorkerConfig::default()
        };
        let worker = Worker::new(queue.clone(), engine, config).unwrap();
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker.run(stop.clone()));
        Self {
            store,
            backend: queue,
            stop,
            worker: Some(handle),
        }
    }

    fn replay(&self) -> Replay {
        Replay::new(self.store.clone(), self.backend.clone())
    }

    async fn count(&self, status: DeliveryStatus) -> usize {
        let query = DeliveryQuery::status(status).limit(10_000);
        self.store.list_deliveries(&query).await.unwrap().len()
    }

    async fn until_all(&self, status: DeliveryStatus, n: usize) -> bool {
        eventually_async(WAIT, || async { self.count(status).await == n }).await
    }

    /// Publishes `EVENTS` events to a receiver that is down and waits until every delivery is
    /// a dead letter. Returns the delivery ids.
    async fn dead_letters(&self, endpoint: &Endpoint) -> HashSet<String> {
        let subscription = Subscription::new("*", &endpoint.receiver.url("/hook")).unwrap();
        self.store.add_subscription(subscription).await.unwrap();
        for event in events(EVENTS) {
            self.backend.publish(event).await.unwrap();
        }
        assert!(
            self.until_all(DeliveryStatus::Dead, EVENTS).await,
            "every delivery became a dead letter"
        );
        let dead = self
            .store
            .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Dead).limit(10_000))
            .await
            .unwrap();
        dead.iter().map(|d| d.id.as_str().to_owned()).collect()
    }

    async fn finish(self) {
        self.stop.cancel();
        if let Some(worker) = self.worker {
            worker.await.unwrap();
        }
        self.backend.shutdown(Duration::from_secs(5)).await.unwrap();
    }
}

/// Behaviours, each run on every backend.
mod behaviours {
    use super::*;

    pub(crate) async fn dead_letters_replayed_in_bulk_each_arrive_once_more(
        delivering: Delivering,
    ) {
        let endpoint = Endpoint::down().await;
        let ids = delivering.dead_letters(&endpoint).await;
        assert!(endpoint.each_received(&ids, 1));

        endpoint.come_up();
        let summary = delivering
            .replay()
            .matching(&DeliveryQuery::status(DeliveryStatus::Dead), |_| {})
            .await
            .unwrap();
        assert_eq!(summary.queued, EVENTS as u64, "{summary:?}");
        assert!(
            delivering
                .until_all(DeliveryStatus::Delivered, EVENTS)
                .await
        );
        assert!(
            endpoint.each_received(&ids, 2),
            "each delivery id once down, once on replay: {:?}",
            fastapihooks_testkit::duplicates(&endpoint.receiver.counts())
        );
        // The history keeps both attempts, numbered on.
        for id in ids.iter().take(3) {
            let attempts = delivering
                .store
                .list_attempts(&id.parse().unwrap())
                .await
                .unwrap();
            let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
            assert_eq!(numbers, [1, 2]);
        }
        delivering.finish().await;
    }

    pub(crate) async fn a_replay_run_again_after_an_interruption_skips_nothing_and_queues_nothing_twice(
        delivering: Delivering,
    ) {
        // A resumed run is counted only while it is still unfinished when the replay reads it
        // back; answered at once, a fast worker could finish one in between (it is then
        // counted as not sent again, see `Replay::matching`), and the count would not be exact.
        let endpoint = Endpoint::down_then_answering_after(Duration::from_millis(300)).await;
        let ids = delivering.dead_letters(&endpoint).await;
        let dead: Vec<Delivery> = delivering
            .store
            .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Dead).limit(10_000))
            .await
            .unwrap();
        endpoint.come_up();
        // The interruption: a quarter had their run started in the store and never queued (a
        // crash between the two steps), a quarter were replayed whole.
        let quarter = EVENTS / 4;
        for d in &dead[..quarter] {
            delivering
                .store
                .replay_delivery(&d.id, false)
                .await
                .unwrap();
        }
        let replay = delivering.replay();
        for d in &dead[quarter..2 * quarter] {
            assert_eq!(replay.delivery(&d.id).await.unwrap(), ReplayOutcome::Queued);
        }

        let summary = replay
            .matching(&DeliveryQuery::status(DeliveryStatus::Dead), |_| {})
            .await
            .unwrap();
        assert_eq!(summary.queued, (EVENTS - 2 * quarter) as u64, "{summary:?}");
        assert_eq!(summary.resumed, quarter as u64, "{summary:?}");
        assert!(
            delivering
                .until_all(DeliveryStatus::Delivered, EVENTS)
                .await
        );
        assert!(
            endpoint.each_received(&ids, 2),
            "nothing skipped, nothing sent twice: {:?}",
            fastapihooks_testkit::duplicates(&endpoint.receiver.counts())
        );
        // Once more, now that everything is delivered: nothing to do.
        let again = replay
            .matching(&DeliveryQuery::default(), |_| {})
            .await
            .unwrap();
        assert_eq!(again.sent_again(), 0, "{again:?}");
        delivering.finish().await;
    }

    pub(crate) async fn a_queued_task_of_an_earlier_run_does_not_send(delivering: Delivering) {
        let endpoint = Endpoint::down().await;
        let ids = delivering.dead_letters(&endpoint).await;
        let first: Delivery = delivering
            .store
            .get_delivery(&ids.iter().next().unwrap().parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        endpoint.come_up();
        assert_eq!(
            delivering.replay().delivery(&first.id).await.unwrap(),
            ReplayOutcome::Queued
        );
        // A task of run 0 turns up (a copy an old sidecar left behind).
        let mut stale = first.clone();
        stale.status = DeliveryStatus::Pending;
        assert!(delivering.backend.redeliver(&stale).await.unwrap());
        assert!(delivering.until_all(DeliveryStatus::Delivered, 1).await);
        // Give the stale task time to run; it must not send.
        let settled = eventually_async(Duration::from_secs(3), || async {
            endpoint.receiver.counts().get(first.id.as_str()) > Some(&2)
        })
        .await;
        assert!(!settled, "the stale run sent again");
        assert_eq!(endpoint.receiver.counts().get(first.id.as_str()), Some(&2));
        delivering.finish().await;
    }

    pub(crate) async fn a_delivered_delivery_is_sent_again_only_when_asked_to(
        delivering: Delivering,
    ) {
        let endpoint = Endpoint::down().await;
        endpoint.come_up();
        let subscription = Subscription::new("*", &endpoint.receiver.url("/hook")).unwrap();
        delivering
            .store
            .add_subscription(subscription)
            .await
            .unwrap();
        let event = events(1).remove(0);
        delivering.backend.publish(event).await.unwrap();
        assert!(delivering.until_all(DeliveryStatus::Delivered, 1).await);
        let delivered = delivering
            .store
            .list_deliveries(&DeliveryQuery::default())
            .await
            .unwrap()
            .remove(0);

        let replay = delivering.replay();
        assert_eq!(
            replay.delivery(&delivered.id).await.unwrap(),
            ReplayOutcome::Delivered
        );
        assert_eq!(
            replay
                .resend_delivered(true)
                .delivery(&delivered.id)
                .await
                .unwrap(),
            ReplayOutcome::Queued
        );
        let twice = eventually_async(WAIT, || async {
            endpoint.receiver.counts().get(delivered.id.as_str()) == Some(&2)
        })
        .await;
        assert!(twice, "sent again, under the same delivery id");
        assert!(delivering.until_all(DeliveryStatus::Delivered, 1).await);
        delivering.finish().await;
    }
}

macro_rules! replay_behaviours {
    ($with:ident) => {
        replay_behaviours!(@each $with:
            dead_letters_replayed_in_bulk_each_arrive_once_more,
            a_replay_run_again_after_an_interruption_skips_nothing_and_queues_nothing_twice,
            a_queued_task_of_an_earlier_run_does_not_send,
            a_delivered_delivery_is_sent_again_only_when_asked_to,
        );
    };
    (@each $with:ident: $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $with(crate::behaviours::$name).await;
            }
        )*
    };
}

mod in_process {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(Delivering) -> F) {
        let store = Arc::new(fastapihooks_core::MemoryStore::new());
        behaviour(Delivering::in_process(store)).await;
    }

    // Not `a_queued_task_of_an_earlier_run_does_not_send`: nothing is queued in memory that
    // outlives its run (a pending delivery is not replayed), so no earlier run can turn up.
    replay_behaviours!(@each with:
        dead_letters_replayed_in_bulk_each_arrive_once_more,
        a_replay_run_again_after_an_interruption_skips_nothing_and_queues_nothing_twice,
        a_delivered_delivery_is_sent_again_only_when_asked_to,
    );
}

mod redis_queue {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(Delivering) -> F) {
        let Some(url) = fastapihooks_testkit::redis_url("replay through Redis").await else {
            return;
        };
        let keys = fastapihooks_testkit::TestKeys::new(&url, "replay");
        let (_db, store) = TempSqlite::store().await;
        behaviour(Delivering::drained(Arc::new(store), keys.backend().await)).await;
    }

    replay_behaviours!(with);
}

mod sqlite_outbox {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(Delivering) -> F) {
        let (_db, store) = TempSqlite::store().await;
        let queue = outbox(&store);
        behaviour(Delivering::drained(Arc::new(store), queue)).await;
    }

    replay_behaviours!(with);
}

mod postgres_outbox {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(Delivering) -> F) {
        let Some(schema) = fastapihooks_testkit::TempSchema::create("replay on PostgreSQL").await
        else {
            return;
        };
        let store = fastapihooks_core::SqlStoreOptions::new(schema.url())
            .postgres_schema(schema.name())
            .max_connections(8)
            .connect()
            .await
            .unwrap();
        let connection = store.connection().clone();
        let queue = outbox(&store);
        behaviour(Delivering::drained(Arc::new(store), queue)).await;
        connection.close().await.unwrap();
    }

    replay_behaviours!(with);
}

mod mariadb_outbox {
    use super::*;

    async fn with<F: Future<Output = ()>>(behaviour: impl FnOnce(Delivering) -> F) {
        let Some(database) = fastapihooks_testkit::TempDatabase::mysql("replay on MariaDB").await
        else {
            return;
        };
        let store = fastapihooks_core::SqlStoreOptions::new(database.url())
            .max_connections(8)
            .connect()
            .await
            .unwrap();
        let connection = store.connection().clone();
        let queue = outbox(&store);
        behaviour(Delivering::drained(Arc::new(store), queue)).await;
        connection.close().await.unwrap();
    }

    replay_behaviours!(with);
}
