//! Endpoint health through the real binary: `subscriptions show|list` say why and when a
//! subscription was disabled and how long it has been failing; `subscriptions enable --replay`
//! enables it and queues the dead letters of its outage, which the real sidecar then delivers to
//! a real receiver on 127.0.0.1, once each. History is written into a SQLite store of the test's
//! own with the library, as the engine would have written it.
#![cfg(feature = "sqlite")]

mod support;

use assert_cmd::Command;
use chrono::{DateTime, Utc};
use fastapihooks_core::health::Disabled;
use fastapihooks_core::{Delivery, DeliveryStatus, Store, Subscription};
use fastapihooks_testkit::fixtures::{delivery, event, now, response};
use fastapihooks_testkit::{Receiver, eventually_async};
use predicates::prelude::*;
use serde_json::Value;
use support::{NOWHERE, Sidecar, SqliteApp, WAIT, json, once_each, record_delivery, reported};

/// What the endpoint health tests write into the app's database (the store and the outbox),
/// as the engine would have, and read back.
impl SqliteApp {
    /// What the engine leaves after `failures` failed attempts a minute apart from `since` on,
    /// then disabling the subscription (five minutes ago) for `reason`.
    async fn disable_after_failures(&self, since: DateTime<Utc>, failures: u32, reason: &str) {
        let id = &self.subscription().id;
        for n in 0..failures {
            let at = since + chrono::Duration::minutes(i64::from(n));
            self.store.record_health(id, false, at).await.unwrap();
        }
        let disabled = Disabled {
            reason: reason.to_owned(),
            at: now() - chrono::Duration::minutes(5),
        };
        assert!(self.store.disable_subscription(id, disabled).await.unwrap());
    }

    /// Records a delivery to `sub` made at `made`, whose one attempt answered `code` and left it
    /// `status` at `changed`.
    async fn record(
        &self,
        sub: &Subscription,
        made: DateTime<Utc>,
        changed: DateTime<Utc>,
        code: u16,
        status: DeliveryStatus,
    ) -> Delivery {
        let mut d = delivery(&event("order.created", None), &sub.id);
        d.created_at = made;
        d.updated_at = made;
        record_delivery(&self.store, d, &[response(code)], status, changed).await
    }

    /// A dead letter of the subscription, just now: its one attempt answered 500.
    async fn dead_now(&self) -> Delivery {
        let sub = self.subscription();
        self.record(sub, now(), now(), 500, DeliveryStatus::Dead)
            .await
    }

    /// The subscription as it is in the store now.
    async fn stored_subscription(&self) -> Subscription {
        self.store
            .get_subscription(&self.subscription().id)
            .await
            .unwrap()
            .unwrap()
    }

    /// `fastapihooks subscriptions enable <id> --replay --queue <this database>`.
    fn enable_with_replay(&self, id: &str) -> Command {
        self.run(&[
            "subscriptions",
            "enable",
            id,
            "--replay",
            "--queue",
            &self.url,
        ])
    }
}

/// As the CLI prints times: RFC 3339 in UTC, to the millisecond.
fn printed(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_and_list_say_why_and_when_a_subscription_was_disabled_and_its_streak() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let id = db.subscription().id.to_string();
    // Healthy: neither key.
    let healthy = db.json(&["subscriptions", "show", &id]);
    assert!(healthy.get("disabled").is_none(), "{healthy}");
    assert!(healthy.get("health").is_none(), "{healthy}");

    let since = now() - chrono::Duration::hours(26);
    let reason = "endpoint failing since yesterday: 12 failed attempts and no success";
    db.disable_after_failures(since, 12, reason).await;
    let disabled_at = db.stored_subscription().await.disabled.unwrap().at;

    let shown = db.json(&["subscriptions", "show", &id]);
    assert_eq!(shown["enabled"], false, "{shown}");
    assert_eq!(
        shown["disabled"],
        serde_json::json!({"reason": reason, "at": printed(disabled_at)})
    );
    assert_eq!(
        shown["health"],
        serde_json::json!({"failures": 12, "failing_since": printed(since)})
    );
    let listed = db.json(&["subscriptions", "list"]);
    assert_eq!(listed[0]["disabled"]["reason"], reason, "{listed}");
    assert_eq!(listed[0]["health"]["failures"], 12, "{listed}");

    db.run(&["subscriptions", "show", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "disabled:   {}: {reason}",
            printed(disabled_at)
        )))
        .stdout(predicate::str::contains(format!(
            "health:     12 failed attempt(s) since {}",
            printed(since)
        )));
    db.run(&["subscriptions", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("HEALTH"))
        .stdout(predicate::str::contains(format!(
            "disabled {}: endpoint failing since",
            printed(disabled_at)
        )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_with_replay_queues_the_outages_dead_letters_and_each_arrives_once() {
    let receiver = Receiver::ok().await;
    let db = SqliteApp::with_subscriber(&receiver.url("/hooks")).await;
    let sub = db.subscription().clone();
    let streak_began = now() - chrono::Duration::hours(3);
    let minutes = |n: i64| chrono::Duration::minutes(n);

    // Made just before the streak, whose first failure began it, and dead during it.
    let first = db
        .record(
            &sub,
            streak_began - minutes(1),
            now(),
            503,
            DeliveryStatus::Dead,
        )
        .await;
    // Made during the streak; failed.
    let during = db
        .record(
            &sub,
            streak_began + minutes(30),
            now(),
            500,
            DeliveryStatus::Failed,
        )
        .await;
    // A dead letter of an earlier outage, which a success ended: not this outage's.
    let earlier = db
        .record(
            &sub,
            streak_began - minutes(2 * 24 * 60),
            streak_began - minutes(24 * 60),
            500,
            DeliveryStatus::Dead,
        )
        .await;
    // Delivered before the outage: never resent.
    let delivered = db
        .record(
            &sub,
            streak_began - minutes(10),
            streak_began - minutes(9),
            200,
            DeliveryStatus::Delivered,
        )
        .await;
    // Another subscription's dead letter of the same time: not this subscription's.
    let other = Subscription::new("*", &receiver.url("/other")).unwrap();
    db.store.add_subscription(other.clone()).await.unwrap();
    let others = db
        .record(
            &other,
            streak_began + minutes(5),
            now(),
            500,
            DeliveryStatus::Dead,
        )
        .await;
    db.disable_after_failures(streak_began, 12, "endpoint failing: 12 failed attempts")
        .await;

    let id = sub.id.to_string();
    let report = json(&mut db.enable_with_replay(&id), 0);
    assert_eq!(report["subscription"]["id"], id.as_str(), "{report}");
    assert_eq!(report["subscription"]["enabled"], true, "{report}");
    assert!(report["subscription"].get("disabled").is_none(), "{report}");
    assert!(report["subscription"].get("health").is_none(), "{report}");
    assert_eq!(
        report["replay"]["changed_since"],
        printed(streak_began),
        "{report}"
    );
    assert_eq!(report["replay"]["summary"]["queued"], 2, "{report}");
    assert_eq!(report["replay"]["summary"]["subscription_disabled"], 0);

    // Enabled afresh: no reason, no streak, in the store too.
    let stored = db.stored_subscription().await;
    assert!(stored.enabled && stored.disabled.is_none(), "{stored:?}");
    assert!(stored.health.is_healthy(), "{stored:?}");
    assert_eq!(db.depth().await, 2);
    for d in [&first, &during] {
        assert_eq!(db.status(&d.id).await, DeliveryStatus::Pending);
    }
    assert_eq!(db.status(&earlier.id).await, DeliveryStatus::Dead);
    assert_eq!(db.status(&delivered.id).await, DeliveryStatus::Delivered);
    assert_eq!(db.status(&others.id).await, DeliveryStatus::Dead);

    let sidecar = Sidecar::start(&db.args(&["--unsigned", "--allow-loopback"]));
    let all_delivered = eventually_async(WAIT, async || {
        db.status(&first.id).await == DeliveryStatus::Delivered
            && db.status(&during.id).await == DeliveryStatus::Delivered
    })
    .await;
    assert!(all_delivered, "the replayed deliveries were not delivered");
    let stdout = sidecar.stop(WAIT).await;
    assert_eq!(reported(&stdout, "delivered"), 2, "{stdout}");

    // Each arrived exactly once, under its own id; nothing else was sent.
    assert_eq!(receiver.counts(), once_each([&first.id, &during.id]));
    assert_eq!(db.depth().await, 0);

    // Run again: the subscription is healthy, so every dead letter of it is replayed — the one
    // of the earlier outage — and what was replayed is not sent twice.
    let again = json(&mut db.enable_with_replay(&id), 0);
    assert_eq!(again["replay"]["changed_since"], Value::Null, "{again}");
    assert_eq!(again["replay"]["summary"]["queued"], 1, "{again}");
    assert_eq!(db.status(&earlier.id).await, DeliveryStatus::Pending);
    assert_eq!(db.status(&others.id).await, DeliveryStatus::Dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enable_text_output_names_the_window_replayed() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let sub = db.subscription().clone();
    let d = db.dead_now().await;
    let disabled = Disabled {
        reason: "the endpoint answered 410 Gone".into(),
        at: now() - chrono::Duration::minutes(1),
    };
    assert!(
        db.store
            .disable_subscription(&sub.id, disabled.clone())
            .await
            .unwrap()
    );
    // No streak: the replay starts at the disabling.
    db.enable_with_replay(sub.id.as_str())
        .assert()
        .success()
        .stdout(predicate::str::contains("enabled:    true\n"))
        .stdout(predicate::str::contains("disabled:   -\n"))
        .stdout(predicate::str::contains(format!(
            "replayed the dead letters that failed since {}: replayed 1 (queued 1, resumed 0)",
            printed(disabled.at)
        )))
        .stderr(predicate::str::is_empty());
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_without_a_queue_exits_2_naming_it_and_changes_nothing() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let sub = db.subscription().clone();
    let d = db.dead_now().await;
    db.disable_after_failures(now() - chrono::Duration::hours(30), 12, "failing")
        .await;

    db.run(&["subscriptions", "enable", sub.id.as_str(), "--replay"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--queue"));
    let stored = db.stored_subscription().await;
    assert!(!stored.enabled && stored.disabled.is_some(), "{stored:?}");
    assert_eq!(db.status(&d.id).await, DeliveryStatus::Dead);
    assert_eq!(db.depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_queue_leaves_the_subscription_disabled() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let sub = db.subscription().clone();
    db.disable_after_failures(now() - chrono::Duration::hours(30), 12, "failing")
        .await;
    db.run(&[
        "subscriptions",
        "enable",
        sub.id.as_str(),
        "--replay",
        "--queue",
        "postgres://app:hunter2@127.0.0.1:1/app",
        "--connect-timeout",
        "1",
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains(
        "--queue postgres://app:***@127.0.0.1:1/app",
    ))
    .stderr(predicate::str::contains("hunter2").not());
    let stored = db.stored_subscription().await;
    assert!(!stored.enabled && stored.disabled.is_some(), "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_enable_by_hand_without_replay() {
    let db = SqliteApp::with_subscriber(NOWHERE).await;
    let id = db.subscription().id.to_string();
    let disabled = db.json(&["subscriptions", "disable", &id]);
    assert_eq!(disabled["enabled"], false, "{disabled}");
    // By hand: no reason recorded (that is the engine's).
    assert!(disabled.get("disabled").is_none(), "{disabled}");
    let enabled = db.json(&["subscriptions", "enable", &id]);
    assert_eq!(enabled["enabled"], true, "{enabled}");

    // Disabled by the engine: enabling clears the reason and the streak.
    db.disable_after_failures(now() - chrono::Duration::hours(30), 12, "failing")
        .await;
    let enabled = db.json(&["subscriptions", "enable", &id]);
    assert_eq!(enabled["enabled"], true, "{enabled}");
    assert!(enabled.get("disabled").is_none(), "{enabled}");
    assert!(enabled.get("health").is_none(), "{enabled}");
    let stored = db.stored_subscription().await;
    assert!(stored.enabled && stored.disabled.is_none() && stored.health.is_healthy());

    db.run(&["subscriptions", "enable", "sub_01JE6Y0V3K8Q2M4N6P8R0T2V4W"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not found"));
}
