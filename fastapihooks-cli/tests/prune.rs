//! Retention through the real binary: `fastapihooks prune` removes the old delivered history
//! (and, with `--queue`, the SQL outbox's old dead rows) of a SQLite store written with the
//! library, and keeps the recent and the dead; `start --retain` does it in the sidecar.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use fastapihooks_core::{
    Delivery, DeliveryId, DeliveryStatus, Event, EventId, Queue as _, Store, SubscriptionId,
};
use fastapihooks_testkit::eventually_async;
use fastapihooks_testkit::fixtures::{delivery, event, now, response};
use predicates::prelude::*;
use sea_orm::ConnectionTrait as _;
use serde_json::Value;
use support::{Sidecar, SqliteApp, WAIT, record_delivery};

/// The history every prune test starts from: old delivered deliveries (one alone with its
/// event, one sharing its event with an old dead letter), the old dead letter, and a recent
/// delivered delivery.
struct History {
    old_alone: Delivery,
    old_shared: Delivery,
    old_dead: Delivery,
    recent: Delivery,
}

/// What the prune tests write into the app's database (the store and the outbox), and read
/// back.
impl SqliteApp {
    /// Records a delivery of `event` made and last changed at `at`, after `attempts` attempts
    /// (answered 500, but a delivered one's last, answered 200) that left it `status`.
    async fn record(
        &self,
        event: &Event,
        status: DeliveryStatus,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Delivery {
        let mut d = delivery(event, &SubscriptionId::new());
        d.created_at = at;
        d.updated_at = at;
        let outcomes: Vec<_> = (1..=attempts)
            .map(|number| {
                let delivered = status == DeliveryStatus::Delivered && number == attempts;
                response(if delivered { 200 } else { 500 })
            })
            .collect();
        record_delivery(&self.store, d, &outcomes, status, at).await
    }

    async fn history(&self) -> History {
        let old = now() - chrono::Duration::days(3);
        let shared = event("order.created", None);
        History {
            old_alone: self
                .record(
                    &event("order.paid", None),
                    DeliveryStatus::Delivered,
                    2,
                    old,
                )
                .await,
            old_shared: self
                .record(&shared, DeliveryStatus::Delivered, 1, old)
                .await,
            old_dead: self.record(&shared, DeliveryStatus::Dead, 3, old).await,
            recent: self
                .record(
                    &event("order.shipped", None),
                    DeliveryStatus::Delivered,
                    1,
                    now() - chrono::Duration::hours(1),
                )
                .await,
        }
    }

    async fn exists(&self, id: &DeliveryId) -> bool {
        self.store.get_delivery(id).await.unwrap().is_some()
    }

    async fn attempts(&self, id: &DeliveryId) -> usize {
        self.store.list_attempts(id).await.unwrap().len()
    }

    async fn event_exists(&self, id: &EventId) -> bool {
        self.store.get_event(id).await.unwrap().is_some()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_the_old_delivered_history() {
    let db = SqliteApp::new(Vec::new()).await;
    let h = db.history().await;

    let report = db.json(&["prune", "--older-than", "1d"]);
    assert_eq!(report["dry_run"], false, "{report}");
    assert_eq!(
        report["pruned"],
        serde_json::json!({"deliveries": 2, "attempts": 3, "events": 1}),
        "{report}"
    );
    assert_eq!(report["dead_letters"], Value::Null, "no --queue: {report}");
    let cut_off: DateTime<Utc> = report["older_than"].as_str().unwrap().parse().unwrap();
    let a_day_ago = now() - chrono::Duration::days(1);
    assert!(
        (a_day_ago - cut_off).abs() < chrono::Duration::minutes(1),
        "{report}"
    );

    for gone in [&h.old_alone, &h.old_shared] {
        assert!(!db.exists(&gone.id).await, "{gone:?}");
        assert_eq!(db.attempts(&gone.id).await, 0);
    }
    assert!(!db.event_exists(h.old_alone.event.id()).await, "orphaned");
    assert!(
        db.event_exists(h.old_shared.event.id()).await,
        "the dead letter still refers to it"
    );
    assert!(db.exists(&h.old_dead.id).await, "dead letters are kept");
    assert_eq!(db.attempts(&h.old_dead.id).await, 3);
    assert!(db.exists(&h.recent.id).await, "recent history is kept");
    assert_eq!(db.attempts(&h.recent.id).await, 1);

    // Nothing old is left; the text says what was done and that dead letters are kept.
    db.run(&["prune", "--older-than", "1d"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "pruned 0 delivered deliveries, 0 attempts, 0 events",
        ))
        .stdout(predicate::str::contains("--queue"))
        .stdout(predicate::str::contains("dead deliveries are kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_and_changes_nothing() {
    let db = SqliteApp::new(Vec::new()).await;
    let h = db.history().await;
    let outbox = &db.outbox;

    let report = db.json(&[
        "prune",
        "--older-than",
        "1d",
        "--dry-run",
        "--queue",
        &db.url,
    ]);
    assert_eq!(report["dry_run"], true, "{report}");
    assert_eq!(
        report["pruned"],
        serde_json::json!({"deliveries": 2, "attempts": null, "events": null}),
        "{report}"
    );
    assert_eq!(report["dead_letters"], Value::Null, "{report}");
    db.run(&["prune", "--older-than", "1d", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "would prune 2 delivered deliveries",
        ))
        .stdout(predicate::str::contains("not counted in a dry run"))
        .stdout(predicate::str::contains("nothing was changed"));

    for kept in [&h.old_alone, &h.old_shared, &h.old_dead, &h.recent] {
        assert!(db.exists(&kept.id).await, "{kept:?}");
        assert_eq!(db.attempts(&kept.id).await, kept.attempts as usize);
        assert!(db.event_exists(kept.event.id()).await);
    }
    assert_eq!(outbox.dead_letters().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_outbox_as_queue_its_old_dead_rows_are_pruned_too() {
    let db = SqliteApp::new(Vec::new()).await;
    let h = db.history().await;
    let outbox = &db.outbox;
    outbox
        .publish_many(&[event("a", None), event("b", None), event("c", None)])
        .await
        .unwrap();
    let leased = outbox.lease(2).await.unwrap();
    assert_eq!(leased.len(), 2);
    for l in &leased {
        assert!(
            outbox
                .dead_letter(&l.receipt, &l.task, "refused for good")
                .await
                .unwrap()
        );
    }
    // One died two days ago (as the core outbox test back-dates rows); one just now.
    let (old_row, _token) = leased[0].receipt.as_str().split_once('/').unwrap();
    let two_days_us = 2 * 86_400_000_000i64;
    db.store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE fastapihooks_outbox SET available_at_us = available_at_us - {two_days_us} \
             WHERE id = '{old_row}'"
        ))
        .await
        .unwrap();

    let report = db.json(&[
        "prune",
        "--older-than",
        "1d",
        "--queue",
        &db.url,
        "--batch",
        "1",
    ]);
    assert_eq!(report["dead_letters"], 1, "{report}");
    assert_eq!(report["pruned"]["deliveries"], 2, "{report}");
    assert_eq!(outbox.dead_letters().await.unwrap(), 1, "the recent one");
    assert_eq!(outbox.depth().await.unwrap(), 1, "the live row");
    assert!(db.exists(&h.old_dead.id).await, "the store's dead letter");
    db.run(&["prune", "--older-than", "1d", "--queue", &db.url])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "pruned 0 dead letters from the SQL outbox",
        ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_queue_has_no_dead_letters_to_prune() {
    let db = SqliteApp::new(Vec::new()).await;
    db.history().await;
    // Never connected to: its dead-letter stream is capped by its own length.
    db.run(&[
        "prune",
        "--older-than",
        "1d",
        "--queue",
        "redis://127.0.0.1:1",
    ])
    .assert()
    .success()
    .stdout(predicate::str::contains(
        "pruned 2 delivered deliveries, 3 attempts, 1 events",
    ))
    .stdout(predicate::str::contains(
        "Redis dead-letter stream is capped",
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_of_zero_is_refused() {
    let db = SqliteApp::new(Vec::new()).await;
    let h = db.history().await;
    db.run(&["prune", "--older-than", "0s"])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("--older-than"))
        .stderr(predicate::str::contains("every delivered delivery"));
    db.run(&["prune", "--older-than", "soon"])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("30d"));
    assert!(db.exists(&h.old_alone.id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_retain_prunes_old_delivered_history_and_still_stops_promptly() {
    let app = SqliteApp::new(Vec::new()).await;
    let old = now() - chrono::Duration::days(3);
    let old_delivered = app
        .record(
            &event("order.paid", None),
            DeliveryStatus::Delivered,
            1,
            old,
        )
        .await;
    let old_dead = app
        .record(&event("order.created", None), DeliveryStatus::Dead, 2, old)
        .await;
    let recent = app
        .record(
            &event("order.shipped", None),
            DeliveryStatus::Delivered,
            1,
            now(),
        )
        .await;

    let sidecar = Sidecar::start(&app.args(&["--unsigned", "--retain", "1d"]));
    let pruned = eventually_async(WAIT, async || {
        app.store
            .get_delivery(&old_delivered.id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    sidecar.terminate();
    let (clean_exit, _) = sidecar.exit(Duration::from_secs(20)).await;

    assert!(pruned, "the old delivered delivery is still there");
    assert!(
        app.store
            .get_delivery(&old_dead.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(app.store.get_delivery(&recent.id).await.unwrap().is_some());
    assert!(clean_exit);
}
