//! `fastapihooks start` on the SQL outbox in PostgreSQL: the real binary as a child process, the
//! machine's PostgreSQL (`FASTAPIHOOKS_TEST_POSTGRES`, a schema per test holding the outbox and
//! the store), a real receiver on 127.0.0.1.
#![cfg(feature = "postgres")]

mod support;

use std::time::{Duration, Instant};

use fastapihooks_core::{
    DeliveryQuery, Event, Queue as _, SqlBackend, SqlStore, SqlStoreOptions, Store, Subscription,
    WorkerConfig,
};
use fastapihooks_testkit::{
    Receiver, Reply, TempSchema, events, eventually, eventually_async, expected_pairs, tally,
};
use sea_orm::ConnectionTrait;
use support::{Sidecar, reported};

const WAIT: Duration = Duration::from_secs(60);

/// One test's schema with the store's tables and the outbox, and its subscriptions.
struct Setup {
    store: SqlStore,
    outbox: SqlBackend,
    subscriptions: Vec<Subscription>,
    /// Dropped last, with the schema (after the store's connections).
    schema: TempSchema,
}

impl Setup {
    async fn new(schema: TempSchema, subscriber_urls: &[String]) -> Self {
        let store = SqlStoreOptions::new(schema.url())
            .postgres_schema(schema.name())
            .max_connections(4)
            .connect()
            .await
            .unwrap();
        let mut subscriptions = Vec::new();
        for url in subscriber_urls {
            let subscription = Subscription::new("*", url).unwrap();
            store.add_subscription(subscription.clone()).await.unwrap();
            subscriptions.push(subscription);
        }
        let outbox = SqlBackend::for_store(&store);
        Self {
            store,
            outbox,
            subscriptions,
            schema,
        }
    }

    /// `fastapihooks start` arguments for this test's queue and store, then `extra`; a flag in
    /// `extra` replaces its default here.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--queue",
            self.schema.url(),
            "--postgres-schema",
            self.schema.name(),
            "--allow-loopback",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, value) in [
            ("--signing-secret", "test-secret"),
            ("--http-timeout", "1s"),
            ("--visibility-timeout", "3s"),
            ("--retry-schedule", "200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s"),
            ("--poll-interval", "50ms"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    async fn publish(&self, events: &[Event]) {
        for chunk in events.chunks(500) {
            self.outbox.publish_many(chunk).await.unwrap();
        }
    }

    /// From now on, counts every task inserted into the outbox by its type (a row trigger of
    /// the test's own on the test's schema: the outbox deletes settled rows, so their count
    /// alone says nothing of what passed through it).
    async fn count_inserted_tasks(&self) -> InsertedTasks<'_> {
        let sql = r#"
CREATE TABLE fh_test_inserted (kind text NOT NULL);
CREATE FUNCTION fh_test_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO fh_test_inserted VALUES (NEW.task::json->>'type'); RETURN NULL; END $$;
CREATE TRIGGER fh_test_count_inserted AFTER INSERT ON fastapihooks_outbox
    FOR EACH ROW EXECUTE FUNCTION fh_test_count_inserted();
"#;
        self.store
            .connection()
            .execute_unprepared(sql)
            .await
            .unwrap();
        InsertedTasks(&self.store)
    }

    /// From now on, counts the updates of delivery rows (a row trigger of the test's own on the
    /// test's schema); [`Setup::delivery_updates`] reads the count.
    async fn count_delivery_updates(&self) {
        let sql = r#"
CREATE TABLE fh_test_updated (id text NOT NULL);
CREATE FUNCTION fh_test_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO fh_test_updated VALUES (NEW.id); RETURN NULL; END $$;
CREATE TRIGGER fh_test_count_updated AFTER UPDATE ON fastapihooks_deliveries
    FOR EACH ROW EXECUTE FUNCTION fh_test_count_updated();
"#;
        self.store
            .connection()
            .execute_unprepared(sql)
            .await
            .unwrap();
    }

    /// Delivery rows updated since [`Setup::count_delivery_updates`].
    async fn delivery_updates(&self) -> i64 {
        self.count("SELECT COUNT(*) AS n FROM fh_test_updated")
            .await
    }

    /// Outbox rows currently held by a lease.
    async fn leased(&self) -> i64 {
        self.count(
            "SELECT COUNT(*) AS n FROM fastapihooks_outbox WHERE lease IS NOT NULL AND NOT dead",
        )
        .await
    }

    /// The `n` a `SELECT COUNT(*) AS n …` answers.
    async fn count(&self, sql: &str) -> i64 {
        let row = self
            .store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }
}

/// The tasks inserted into the outbox since [`Setup::count_inserted_tasks`].
struct InsertedTasks<'a>(&'a SqlStore);

impl InsertedTasks<'_> {
    /// (task type, how many) pairs, by type.
    async fn kinds(&self) -> Vec<(String, i64)> {
        let rows = self
            .0
            .connection()
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT kind, COUNT(*) AS n FROM fh_test_inserted GROUP BY kind ORDER BY kind",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                (
                    row.try_get("", "kind").unwrap(),
                    row.try_get("", "n").unwrap(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_killed_mid_delivery_loses_nothing_and_repeats_at_most_what_was_in_flight() {
    let Some(schema) = TempSchema::create("postgres crash test").await else {
        return;
    };
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(2))).await;
    let setup = Setup::new(schema, &[receiver.url("a"), receiver.url("b")]).await;
    let events = events(2_000);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;
    let (concurrency, tasks_in_flight) = (16, 32);
    let args = setup.args(&[
        "--concurrency",
        &concurrency.to_string(),
        "--tasks-in-flight",
        &tasks_in_flight.to_string(),
    ]);

    let started = Instant::now();
    let mut first = Sidecar::start(&args);
    let mut most_leased = 0;
    while receiver.distinct() < expected.len() / 4 && started.elapsed() < WAIT {
        most_leased = most_leased.max(setup.leased().await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let at_kill = receiver.distinct();
    let killed_after = started.elapsed();

    let restarted = Instant::now();
    let second = Sidecar::start(&args);
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    let mut drained = false;
    for _ in 0..250 {
        if setup.outbox.depth().await.unwrap() == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_time = restarted.elapsed();
    second.terminate();
    let (clean_exit, stdout) = second.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    eprintln!(
        "POSTGRES CRASH: {} events, {} (event, subscription) pairs expected, {} received before the SIGKILL at {killed_after:?}, lost {}, duplicated ids {} ({} extra requests), unexpected {}, drained {drain_time:?} after the restart; max in flight {}, most rows leased at once {most_leased} (concurrency {concurrency}); second sidecar: {}",
        events.len(),
        t.expected,
        at_kill,
        t.lost,
        t.duplicated_ids,
        t.extra_requests,
        t.unexpected,
        receiver.max_in_flight(),
        stdout.trim()
    );
    assert!(
        at_kill < expected.len(),
        "the kill came after the work was done"
    );
    assert!(all && t.lost == 0, "lost {} deliveries", t.lost);
    assert!(drained, "the outbox still holds tasks");
    assert_eq!(t.unexpected, 0);
    // A delivery may repeat only if its task was running at the kill: sent, or waiting to
    // send, and not yet recorded and settled.
    assert!(
        t.extra_requests <= tasks_in_flight,
        "only deliveries whose task ran at the kill may repeat: {} extra requests, --tasks-in-flight {tasks_in_flight}",
        t.extra_requests
    );
    // What runs never exceeds --tasks-in-flight; what is leased is that plus at most one
    // lease batch waiting for a task slot: leased ahead, never started before a slot is free.
    let waiting = tasks_in_flight.min(WorkerConfig::default().lease_batch);
    assert!(
        most_leased <= (tasks_in_flight + waiting) as i64,
        "{most_leased} leased at once, above --tasks-in-flight {tasks_in_flight} plus a lease batch waiting ({waiting})"
    );
    assert!(
        receiver.max_in_flight() <= concurrency,
        "{} requests in flight at once, above --concurrency {concurrency}",
        receiver.max_in_flight()
    );
    assert!(clean_exit, "the restarted sidecar exited with an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_on_one_outbox_share_the_work_without_sending_anything_twice() {
    let Some(schema) = TempSchema::create("postgres two sidecars").await else {
        return;
    };
    // Slow enough that neither sidecar can take everything before the other starts.
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(20))).await;
    let setup = Setup::new(schema, &[receiver.url("a")]).await;
    let events = events(300);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;
    let args = setup.args(&["--concurrency", "8"]);

    let one = Sidecar::start(&args);
    let two = Sidecar::start(&args);
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    one.terminate();
    two.terminate();
    let (one_ok, one_out) = one.exit(Duration::from_secs(20)).await;
    let (two_ok, two_out) = two.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    assert!(all && t.lost == 0, "lost {} of {}", t.lost, t.expected);
    assert_eq!(t.extra_requests, 0, "a delivery was sent twice");
    let (a, b) = (
        reported(&one_out, "delivered"),
        reported(&two_out, "delivered"),
    );
    eprintln!("two sidecars: {a} + {b} deliveries");
    assert_eq!(a + b, expected.len() as u64);
    assert!(a > 0 && b > 0, "one sidecar did all the work: {a} and {b}");
    assert_eq!(reported(&one_out, "leases lost"), 0);
    assert_eq!(reported(&two_out, "leases lost"), 0);
    assert!(one_ok && two_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_once_it_is_up() {
    let Some(schema) = TempSchema::create("postgres receiver down").await else {
        return;
    };
    let addr = Receiver::reserve_port().await;
    let setup = Setup::new(schema, &[format!("http://{addr}/down")]).await;
    let events = events(50);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;
    let sidecar = Sidecar::start(&setup.args(&["--concurrency", "8"]));

    // The receiver comes up only once every delivery has failed at least once.
    let store = &setup.store;
    let all_failed_once = eventually_async(WAIT, async || {
        let deliveries = store
            .list_deliveries(&DeliveryQuery {
                limit: 1000,
                ..DeliveryQuery::default()
            })
            .await
            .unwrap();
        deliveries.len() == expected.len() && deliveries.iter().all(|d| d.attempts >= 1)
    })
    .await;
    assert!(all_failed_once, "the sidecar never tried every delivery");
    let receiver = Receiver::replying_on(addr, Reply::ok()).await;
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    sidecar.terminate();
    let (clean_exit, stdout) = sidecar.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    assert!(all && t.lost == 0, "lost {} of {}", t.lost, t.expected);
    assert_eq!(t.extra_requests, 0, "a delivery was sent twice");
    assert!(
        reported(&stdout, "retried") >= expected.len() as u64,
        "every delivery failed while the receiver was down: {stdout}"
    );
    assert_eq!(reported(&stdout, "dead-lettered"), 0, "{stdout}");
    assert!(clean_exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_one_subscriber_is_delivered_on_its_own_lease_without_a_delivery_task() {
    let Some(schema) = TempSchema::create("postgres one subscriber").await else {
        return;
    };
    let receiver = Receiver::ok().await;
    let setup = Setup::new(schema, &[receiver.url("only")]).await;
    let inserted = setup.count_inserted_tasks().await;
    let events = events(20);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;

    let sidecar = Sidecar::start(&setup.args(&[]));
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    let drained =
        eventually_async(WAIT, || async { setup.outbox.depth().await.unwrap() == 0 }).await;
    let stdout = sidecar.stop(Duration::from_secs(20)).await;

    assert!(all && drained, "{stdout}");
    assert_eq!(tally(&receiver, &expected).lost, 0);
    assert_eq!(reported(&stdout, "delivered"), 20, "{stdout}");
    assert_eq!(
        inserted.kinds().await,
        [("fanout".to_owned(), 20)],
        "only the events' tasks were ever inserted into the outbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_deliveries_to_several_subscribers_are_made_on_its_own_lease_without_delivery_tasks()
 {
    let Some(schema) = TempSchema::create("postgres several subscribers").await else {
        return;
    };
    let (a, b) = (Receiver::ok().await, Receiver::ok().await);
    let setup = Setup::new(schema, &[a.url("a"), a.url("a2"), b.url("b")]).await;
    let inserted = setup.count_inserted_tasks().await;
    let events = events(20);
    setup.publish(&events).await;

    let sidecar = Sidecar::start(&setup.args(&[]));
    let all = eventually(WAIT, || a.distinct() >= 40 && b.distinct() >= 20).await;
    let drained =
        eventually_async(WAIT, || async { setup.outbox.depth().await.unwrap() == 0 }).await;
    let stdout = sidecar.stop(Duration::from_secs(20)).await;

    assert!(all && drained, "{stdout}");
    let a_pairs = expected_pairs(&events, &setup.subscriptions[..2]);
    let b_pairs = expected_pairs(&events, &setup.subscriptions[2..]);
    for (receiver, expected) in [(&a, &a_pairs), (&b, &b_pairs)] {
        let t = tally(receiver, expected);
        assert_eq!((t.lost, t.extra_requests), (0, 0));
    }
    assert_eq!(reported(&stdout, "delivered"), 60, "{stdout}");
    assert_eq!(
        inserted.kinds().await,
        [("fanout".to_owned(), 20)],
        "only the events' tasks were ever inserted into the outbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_delivered_at_its_first_attempt_is_written_once_in_its_final_state() {
    let Some(schema) = TempSchema::create("postgres written once").await else {
        return;
    };
    let receiver = Receiver::ok().await;
    let setup = Setup::new(schema, &[receiver.url("a"), receiver.url("b")]).await;
    setup.count_delivery_updates().await;
    let events = events(20);
    let expected = expected_pairs(&events, &setup.subscriptions);
    setup.publish(&events).await;

    let sidecar = Sidecar::start(&setup.args(&[]));
    let all = eventually(WAIT, || receiver.distinct() >= expected.len()).await;
    let drained =
        eventually_async(WAIT, || async { setup.outbox.depth().await.unwrap() == 0 }).await;
    let stdout = sidecar.stop(Duration::from_secs(20)).await;

    assert!(all && drained, "{stdout}");
    let deliveries = setup
        .store
        .list_deliveries(&DeliveryQuery {
            limit: 100,
            ..DeliveryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 40);
    for delivery in &deliveries {
        assert_eq!(
            delivery.status,
            fastapihooks_core::DeliveryStatus::Delivered
        );
        assert_eq!(delivery.attempts, 1);
        let attempts = setup.store.list_attempts(&delivery.id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{}", delivery.id);
    }
    assert_eq!(
        setup.delivery_updates().await,
        0,
        "a delivery was inserted, then updated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_leasing_and_drains_the_deliveries_in_flight() {
    let Some(schema) = TempSchema::create("postgres sigterm").await else {
        return;
    };
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(700))).await;
    let setup = Setup::new(schema, &[receiver.url("slow")]).await;
    setup.publish(&events(40)).await;
    let sidecar = Sidecar::start(&setup.args(&["--concurrency", "4", "--drain-deadline", "20s"]));

    assert!(eventually(WAIT, || receiver.in_flight() >= 2).await);
    sidecar.terminate();
    let (clean_exit, stdout) = sidecar.exit(Duration::from_secs(20)).await;

    assert!(clean_exit, "{stdout}");
    assert_eq!(reported(&stdout, "abandoned"), 0, "{stdout}");
    assert_eq!(
        receiver.answered(),
        receiver.arrived(),
        "every request sent before the stop was answered before the sidecar exited"
    );
    assert_eq!(reported(&stdout, "delivered"), receiver.answered() as u64);
    // Nothing is left leased: what the sidecar took it settled; the rest waits for the next one.
    assert_eq!(setup.leased().await, 0);
    assert!(setup.outbox.depth().await.unwrap() > 0);
}

/// Starting on a migrated store says nothing of the migrations' `CREATE … IF NOT EXISTS`: the
/// server's notices ("relation … already exists, skipping", three on every start) are not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_on_a_migrated_store_logs_no_server_notice() {
    let Some(schema) = TempSchema::create("postgres quiet start").await else {
        return;
    };
    let receiver = Receiver::ok().await;
    let setup = Setup::new(schema, &[receiver.url("only")]).await;
    setup.publish(&events(1)).await;

    let sidecar = Sidecar::start_capturing(&setup.args(&["--log-level", "info"]));
    let delivered = eventually(WAIT, || receiver.distinct() >= 1).await;
    sidecar.terminate();
    let (status, stdout, stderr) = sidecar.exit_capturing(Duration::from_secs(20)).await;
    let logs = String::from_utf8_lossy(&stderr);

    assert!(delivered && status.success(), "{status:?} {stdout} {logs}");
    assert!(logs.contains("sidecar started"), "{logs}");
    assert!(
        !logs.contains("notice") && !logs.contains("already exists"),
        "{logs}"
    );
}
