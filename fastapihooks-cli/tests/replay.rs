//! `fastapihooks deliveries replay` through the real binary: dead letters written into a real
//! store with the library (a SQLite file of the test's own; one test on PostgreSQL in a schema of
//! its own), queued onto a real queue (the SQL outbox, or Redis under a key prefix of the test's
//! own), and, in one test, drained by the real sidecar to a real receiver on 127.0.0.1.
#![cfg(feature = "sqlite")]

mod support;

use assert_cmd::Command;
use fastapihooks_core::{
    AttemptOutcome, Delivery, DeliveryId, DeliveryStatus, Queue as _, SqlBackend, SqlStore, Store,
    Subscription,
};
use fastapihooks_testkit::fixtures::{delivery, event, now, response};
use fastapihooks_testkit::{Receiver, eventually_async};
use predicates::prelude::*;
use serde_json::Value;
use support::{
    NOWHERE, Sidecar, SqliteApp, WAIT, fastapihooks, json, once_each, record_delivery, reported,
};

/// What the replay tests write into the app's database (the store and the outbox), and how
/// they run the replay on it.
impl SqliteApp {
    /// A dead letter: one attempt answered 500, then given up.
    async fn dead(&self) -> Delivery {
        record(
            &self.store,
            self.subscription(),
            response(500),
            DeliveryStatus::Dead,
        )
        .await
    }

    /// `n` dead letters.
    async fn dead_letters(&self, n: usize) -> Vec<Delivery> {
        let mut dead = Vec::new();
        for _ in 0..n {
            dead.push(self.dead().await);
        }
        dead
    }

    /// A delivered delivery: one attempt answered 200.
    async fn delivered(&self) -> Delivery {
        record(
            &self.store,
            self.subscription(),
            response(200),
            DeliveryStatus::Delivered,
        )
        .await
    }

    /// `fastapihooks deliveries replay --database <db> --queue <db> <args>`: the outbox in the
    /// store's database.
    fn replay(&self, args: &[&str]) -> Command {
        replay(&self.url, &self.url, args)
    }
}

/// Records a delivery of a new event to `sub`, then one attempt that came to `outcome`, ending
/// in `status`.
async fn record(
    store: &SqlStore,
    sub: &Subscription,
    outcome: AttemptOutcome,
    status: DeliveryStatus,
) -> Delivery {
    let d = delivery(&event("order.created", None), &sub.id);
    record_delivery(store, d, &[outcome], status, now()).await
}

/// `fastapihooks deliveries replay --database <database> --queue <queue> <args>`.
fn replay(database: &str, queue: &str, args: &[&str]) -> Command {
    let mut cmd = fastapihooks();
    cmd.args([
        "deliveries",
        "replay",
        "--database",
        database,
        "--queue",
        queue,
    ])
    .args(args);
    cmd
}

/// The outcome of each id in a JSON report, in order.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_replayed_in_bulk_reach_the_receiver_once_each() {
    let receiver = Receiver::ok().await;
    let db = SqliteApp::with_subscriber(&receiver.url("/hooks")).await;
    let dead = db.dead_letters(5).await;
    let delivered = db.delivered().await;

    let report = json(&mut db.replay(&["--status", "dead"]), 0);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["summary"]["queued"], 5, "{report}");
    assert_eq!(report["summary"]["not_found"], 0, "{report}");
    assert_eq!(db.depth().await, 5);
    for d in &dead {
        assert_eq!(db.status(&d.id).await, DeliveryStatus::Pending);
    }

    let sidecar = Sidecar::start(&db.args(&["--unsigned", "--allow-loopback"]));
    let all_delivered = eventually_async(WAIT, async || {
        for d in &dead {
            if db.status(&d.id).await != DeliveryStatus::Delivered {
                return false;
            }
        }
        true
    })
    .await;
    assert!(all_delivered, "the replayed deliveries were not delivered");
    let stdout = sidecar.stop(WAIT).await;
    assert_eq!(reported(&stdout, "delivered"), 5, "{stdout}");

    // Each replayed delivery arrived exactly once, under its own id; the delivered one was not
    // sent again.
    assert_eq!(receiver.counts(), once_each(dead.iter().map(|d| &d.id)));
    assert!(!receiver.counts().contains_key(delivered.id.as_str()));
    // The new attempt is appended to the history of the same delivery.
    let after = db.store.get_delivery(&dead[0].id).await.unwrap().unwrap();
    assert_eq!((after.attempts, after.replays), (2, 1));
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_a_bulk_replay_again_queues_nothing_twice() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let ids: Vec<String> = db
        .dead_letters(3)
        .await
        .iter()
        .map(|d| d.id.to_string())
        .collect();
    let first = json(&mut db.replay(&["--status", "dead"]), 0);
    assert_eq!(first["summary"]["queued"], 3, "{first}");
    assert_eq!(db.depth().await, 3);

    // Again with the same filter: they are pending now, and their runs are queued already.
    let again = json(&mut db.replay(&["--status", "dead"]), 0);
    assert_eq!(again["summary"]["queued"], 0, "{again}");
    assert_eq!(again["summary"]["resumed"], 0, "{again}");
    assert_eq!(db.depth().await, 3);

    // Named: each is reported already pending, and still nothing is queued twice.
    let args: Vec<&str> = ids.iter().map(String::as_str).collect();
    let named = json(&mut db.replay(&args), 0);
    let expected: Vec<_> = ids
        .iter()
        .map(|id| (id.clone(), "already_pending".to_owned()))
        .collect();
    assert_eq!(outcomes(&named), expected);
    assert_eq!(named["summary"]["already_pending"], 3, "{named}");
    assert_eq!(db.depth().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_replay_is_resumed_by_running_it_again() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    // The first step of a replay that was interrupted before queuing: a new run in the store,
    // nothing in the queue.
    db.store.replay_delivery(&d.id, false).await.unwrap();
    assert_eq!(db.depth().await, 0);

    let report = json(&mut db.replay(&["--status", "dead"]), 0);
    assert_eq!(report["summary"]["resumed"], 1, "{report}");
    assert_eq!(report["summary"]["queued"], 0, "{report}");
    assert_eq!(db.depth().await, 1);

    let again = json(&mut db.replay(&["--status", "dead"]), 0);
    assert_eq!(again["summary"]["resumed"], 0, "{again}");
    assert_eq!(db.depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_over_many_subscriptions_replays_every_one() {
    // Each delivery to a subscription of its own: the replay looks each subscription up while
    // others are being replayed, which must not starve it of database connections.
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    for n in 0..40 {
        let sub = Subscription::new("*", &format!("https://receiver.example/hooks/{n}")).unwrap();
        db.store.add_subscription(sub.clone()).await.unwrap();
        record(&db.store, &sub, response(500), DeliveryStatus::Dead).await;
    }
    let report = json(
        &mut db.replay(&["--status", "dead", "--connect-timeout", "3"]),
        0,
    );
    assert_eq!(report["summary"]["queued"], 40, "{report}");
    assert_eq!(db.depth().await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_count_and_changes_nothing() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let dead = db.dead_letters(3).await;
    let delivered = db.delivered().await;

    let plan = json(&mut db.replay(&["--status", "dead", "--dry-run"]), 0);
    assert_eq!(
        plan,
        serde_json::json!({"dry_run": true, "would_replay": 3})
    );
    db.replay(&["--all", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "would replay 3 (dry run: nothing changed)",
        ));

    // Named: each one's status now and whether it would be replayed.
    let plan = json(
        &mut db.replay(&[dead[0].id.as_str(), delivered.id.as_str(), "--dry-run"]),
        0,
    );
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["would_replay"], 1);
    let rows = plan["deliveries"].as_array().unwrap();
    assert_eq!(rows[0]["id"], dead[0].id.as_str());
    assert_eq!(rows[0]["status"], "dead");
    assert_eq!(rows[0]["would_replay"], true);
    assert_eq!(rows[1]["status"], "delivered");
    assert_eq!(rows[1]["would_replay"], false);
    assert_eq!(rows[1]["expected"], "delivered");

    for d in &dead {
        assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
    }
    assert_eq!(db.status(&delivered.id).await, DeliveryStatus::Delivered);
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_delivery_is_resent_only_with_force() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.delivered().await;

    let report = json(&mut db.replay(&[d.id.as_str()]), 0);
    assert_eq!(
        outcomes(&report),
        [(d.id.to_string(), "delivered".to_owned())]
    );
    assert_eq!(report["summary"]["delivered"], 1, "{report}");
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Delivered);
    assert_eq!(db.depth().await, 0);

    let forced = json(&mut db.replay(&[d.id.as_str(), "--force"]), 0);
    assert_eq!(outcomes(&forced), [(d.id.to_string(), "queued".to_owned())]);
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Pending);
    assert_eq!(db.depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ids_or_filters_replay_refuses_unless_all_is_given() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;

    db.replay(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--all"));
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
    assert_eq!(db.depth().await, 0);

    let report = json(&mut db.replay(&["--all"]), 0);
    assert_eq!(report["summary"]["queued"], 1, "{report}");
    assert_eq!(db.depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_id_exits_3_and_is_reported_not_found() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    let missing = DeliveryId::new();

    let out = db
        .replay(&[d.id.as_str(), missing.as_str(), "--json"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("named no delivery"));
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        outcomes(&report),
        [
            (d.id.to_string(), "queued".to_owned()),
            (missing.to_string(), "not_found".to_owned()),
        ]
    );
    assert_eq!(report["summary"]["not_found"], 1, "{report}");
    // The id that was found is replayed all the same.
    assert_eq!(db.depth().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_of_a_disabled_subscription_are_left_and_the_exit_code_is_3() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    let mut sub = db.subscription().clone();
    sub.enabled = false;
    db.store.update_subscription(sub).await.unwrap();

    let report = json(&mut db.replay(&["--status", "dead"]), 3);
    assert_eq!(report["summary"]["subscription_disabled"], 1, "{report}");
    assert_eq!(report["summary"]["queued"], 0, "{report}");
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_names_each_id_and_sums_up_without_a_progress_bar_off_a_terminal() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    db.replay(&[d.id.as_str()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{}  queued\n", d.id)))
        .stdout(predicate::str::contains(
            "replayed 1 (queued 1, resumed 0); already pending 0; delivered, not resent 0; \
             subscription disabled 0; not found 0",
        ))
        // A pipe gets no colour, and stderr (not a terminal) no progress bar.
        .stdout(predicate::str::contains("\x1b[").not())
        .stderr(predicate::str::is_empty());

    let d = db.dead().await;
    db.replay(&["--status", "dead"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "replayed 1 (queued 1, resumed 0)",
        ))
        .stderr(predicate::str::is_empty());
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_may_be_another_database_than_the_store() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_url = format!(
        "sqlite://{}?mode=rwc",
        other_dir.path().join("outbox.db").display()
    );
    let other = SqlStore::connect(&other_url).await.unwrap();

    let report = json(&mut replay(&db.url, &other_url, &[d.id.as_str()]), 0);
    assert_eq!(outcomes(&report), [(d.id.to_string(), "queued".to_owned())]);
    assert_eq!(SqlBackend::for_store(&other).depth().await.unwrap(), 1);
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_queue_fails_with_exit_code_1_naming_it() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("missing").join("outbox.db").display()
    );
    replay(&db.url, &nowhere, &[d.id.as_str()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "--queue {nowhere}: cannot connect"
        )));
    // Nothing listens on port 1; the password is not printed.
    replay(
        &db.url,
        "postgres://app:hunter2@127.0.0.1:1/app",
        &[d.id.as_str(), "--connect-timeout", "1"],
    )
    .assert()
    .code(1)
    .stderr(predicate::str::contains(
        "--queue postgres://app:***@127.0.0.1:1/app",
    ))
    .stderr(predicate::str::contains("hunter2").not());
    replay(&db.url, "amqp://127.0.0.1", &[d.id.as_str()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unsupported scheme"));
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_with_filters_are_a_usage_error() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let d = db.dead().await;
    db.replay(&[d.id.as_str(), "--status", "dead"])
        .assert()
        .code(2);
    db.replay(&["not-an-id"]).assert().code(2);
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_queue_gets_each_run_once() {
    use fastapihooks_testkit::{TestKeys, redis_url};
    let Some(redis) = redis_url("a_redis_queue_gets_each_run_once").await else {
        return;
    };
    let keys = TestKeys::new(&redis, "cli-replay");
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    db.dead_letters(2).await;
    let args = ["--status", "dead", "--key-prefix", keys.prefix()];

    let report = json(&mut replay(&db.url, &redis, &args), 0);
    assert_eq!(report["summary"]["queued"], 2, "{report}");
    let queue = keys.backend().await;
    assert_eq!(queue.depth().await.unwrap(), 2);

    let again = json(&mut replay(&db.url, &redis, &args), 0);
    assert_eq!(again["summary"]["queued"], 0, "{again}");
    assert_eq!(queue.depth().await.unwrap(), 2);
    // Nothing went to the SQL outbox.
    assert_eq!(db.depth().await, 0);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_on_postgres_uses_the_schema_given() {
    use fastapihooks_core::SqlStoreOptions;
    use fastapihooks_testkit::TempSchema;
    let Some(schema) = TempSchema::create("replay_on_postgres_uses_the_schema_given").await else {
        return;
    };
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .max_connections(2)
        .connect()
        .await
        .unwrap();
    let sub = Subscription::new("*", NOWHERE).unwrap();
    store.add_subscription(sub.clone()).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(
            record(&store, &sub, response(500), DeliveryStatus::Dead)
                .await
                .id,
        );
    }

    let args = ["--status", "dead", "--postgres-schema", schema.name()];
    let report = json(&mut replay(schema.url(), schema.url(), &args), 0);
    assert_eq!(report["summary"]["queued"], 2, "{report}");
    let outbox = SqlBackend::for_store(&store);
    assert_eq!(outbox.depth().await.unwrap(), 2);
    let again = json(&mut replay(schema.url(), schema.url(), &args), 0);
    assert_eq!(again["summary"]["queued"], 0, "{again}");
    assert_eq!(outbox.depth().await.unwrap(), 2);
    for id in &ids {
        let d = store.get_delivery(id).await.unwrap().unwrap();
        assert_eq!((d.status, d.replays), (DeliveryStatus::Pending, 1));
    }
    store.connection().clone().close().await.unwrap();
    schema.remove().await;
}
