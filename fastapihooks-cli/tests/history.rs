//! `fastapihooks events …` and `fastapihooks deliveries …` through the real binary, against a
//! fresh SQLite file per test whose history is written with the library.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use fastapihooks_core::{
    AttemptErrorKind, AttemptOutcome, Delivery, DeliveryStatus, SubscriptionId,
};
use fastapihooks_testkit::fixtures::{delivery, event, now, response};
use predicates::prelude::*;
use serde_json::Value;
use support::{SqliteApp, record_delivery};

/// A fresh, migrated SQLite database and the store on it, to write history with from a plain
/// (not async) test: it runs [`SqliteApp`]'s `run` and `json` through `Deref`.
struct Db {
    runtime: tokio::runtime::Runtime,
    app: SqliteApp,
}

impl Db {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(SqliteApp::new(Vec::new()));
        Self { runtime, app }
    }

    /// Records a delivery of a new `name` event of `owner` to `sub`, then `outcomes` as its
    /// attempts, ending in `status`.
    fn record(
        &self,
        name: &str,
        owner: Option<&str>,
        sub: &SubscriptionId,
        outcomes: &[AttemptOutcome],
        status: DeliveryStatus,
    ) -> Delivery {
        let d = delivery(&event(name, owner), sub);
        let d = self
            .runtime
            .block_on(record_delivery(&self.store, d, outcomes, status, now()));
        // Ids sort by time: keep each row in its own millisecond.
        std::thread::sleep(Duration::from_millis(2));
        d
    }
}

impl std::ops::Deref for Db {
    type Target = SqliteApp;

    fn deref(&self) -> &SqliteApp {
        &self.app
    }
}

/// The `id` fields of a JSON array.
fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn timeout() -> AttemptOutcome {
    AttemptOutcome::Error {
        kind: AttemptErrorKind::Timeout,
        message: "no answer in 10s".into(),
    }
}

#[test]
fn deliveries_list_filters_by_status() {
    let db = Db::new();
    let sub = SubscriptionId::new();
    let dead = db.record(
        "order.created",
        None,
        &sub,
        &[response(500), timeout()],
        DeliveryStatus::Dead,
    );
    let ok = db.record(
        "order.created",
        None,
        &sub,
        &[response(200)],
        DeliveryStatus::Delivered,
    );
    db.run(&["deliveries", "list", "--status", "dead"])
        .assert()
        .success()
        .stdout(predicate::str::contains("STATUS"))
        .stdout(predicate::str::contains(dead.id.as_str()))
        .stdout(predicate::str::contains(ok.id.as_str()).not())
        // A pipe gets no colour.
        .stdout(predicate::str::contains("\x1b[").not());
    let delivered = db.json(&["deliveries", "list", "--status", "delivered"]);
    assert_eq!(ids(&delivered), [ok.id.to_string()]);
}

#[test]
fn deliveries_list_filters_by_event_wildcard() {
    let db = Db::new();
    let sub = SubscriptionId::new();
    let order = db.record("order.created", None, &sub, &[], DeliveryStatus::Pending);
    let invoice = db.record("invoice.paid", None, &sub, &[], DeliveryStatus::Pending);
    let listed = db.json(&["deliveries", "list", "--event", "order.*"]);
    assert_eq!(ids(&listed), [order.id.to_string()]);
    let events = db.json(&["events", "list", "--event", "invoice.*"]);
    assert_eq!(ids(&events), [invoice.event.id().to_string()]);
}

#[test]
fn json_lists_parse_and_have_the_fields() {
    let db = Db::new();
    let sub = SubscriptionId::new();
    let d = db.record(
        "order.created",
        Some("acme"),
        &sub,
        &[response(503)],
        DeliveryStatus::Failed,
    );
    let deliveries = db.json(&["deliveries", "list", "--owner", "acme"]);
    let row = &deliveries[0];
    assert_eq!(row["id"], d.id.as_str());
    assert_eq!(row["status"], "failed");
    assert_eq!(row["event"], "order.created");
    assert_eq!(row["event_id"], d.event.id().as_str());
    assert_eq!(row["owner"], "acme");
    assert_eq!(row["subscription_id"], sub.as_str());
    assert_eq!(row["attempts"], 1);
    assert!(row["next_attempt_at"].is_null());
    assert!(row["created_at"].is_string() && row["updated_at"].is_string());

    let events = db.json(&["events", "list", "--owner", "acme"]);
    let row = &events[0];
    assert_eq!(row["id"], d.event.id().as_str());
    assert_eq!(row["event"], "order.created");
    assert_eq!(row["owner"], "acme");
    assert_eq!(row["size"], d.event.payload().len());
    let shown = db.json(&["events", "show", d.event.id().as_str()]);
    assert_eq!(shown["payload"]["n"], 42);
}

#[test]
fn show_prints_the_attempts_in_order() {
    let db = Db::new();
    let d = db.record(
        "order.created",
        None,
        &SubscriptionId::new(),
        &[response(500), timeout(), response(200)],
        DeliveryStatus::Delivered,
    );
    let out = db
        .run(&["deliveries", "show", d.id.as_str()])
        .assert()
        .success()
        .stdout(predicate::str::contains("delivered"))
        .stdout(predicate::str::contains("answer 500"))
        .stdout(predicate::str::contains("no answer in 10s"));
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let (first, second, third) = (
        text.find("500").unwrap(),
        text.find("timeout").unwrap(),
        text.find("answer 200").unwrap(),
    );
    assert!(first < second && second < third, "{text}");

    let shown = db.json(&["deliveries", "show", d.id.as_str()]);
    assert_eq!(shown["delivery"]["id"], d.id.as_str());
    let attempts = shown["attempts"].as_array().unwrap();
    let numbers: Vec<_> = attempts.iter().map(|a| a["number"].as_u64()).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)]);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[0]["response_excerpt"], "answer 500");
    assert_eq!(attempts[1]["error_kind"], "timeout");
    assert_eq!(attempts[2]["duration_ms"], 12);
}

#[test]
fn an_unknown_id_fails_naming_it() {
    let db = Db::new();
    let missing = fastapihooks_core::DeliveryId::new();
    db.run(&["deliveries", "show", missing.as_str()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "delivery {missing} not found"
        )));
    let missing = fastapihooks_core::EventId::new();
    db.run(&["events", "show", missing.as_str()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "event {missing} not found"
        )));
}

#[test]
fn a_bad_since_is_refused_naming_the_flag() {
    let db = Db::new();
    for command in ["deliveries", "events"] {
        db.run(&[command, "list", "--since", "last tuesday"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--since"));
    }
    db.run(&["deliveries", "list", "--status", "lost"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--status"));
}

#[test]
fn since_and_until_take_durations_ago_and_rfc3339_times() {
    let db = Db::new();
    let d = db.record(
        "order.created",
        None,
        &SubscriptionId::new(),
        &[],
        DeliveryStatus::Pending,
    );
    assert_eq!(
        ids(&db.json(&["deliveries", "list", "--since", "1h"])),
        [d.id.to_string()]
    );
    assert_eq!(
        ids(&db.json(&["deliveries", "list", "--until", "1h"])),
        Vec::<String>::new()
    );
    let later = (d.created_at + chrono::Duration::seconds(1)).to_rfc3339();
    assert_eq!(
        ids(&db.json(&["events", "list", "--until", &later])),
        [d.event.id().to_string()]
    );
}

#[test]
fn before_gives_the_next_page() {
    let db = Db::new();
    let sub = SubscriptionId::new();
    let mut made: Vec<String> = (0..5)
        .map(|_| {
            db.record("order.created", None, &sub, &[], DeliveryStatus::Pending)
                .id
                .to_string()
        })
        .collect();
    made.reverse(); // newest first
    let first = ids(&db.json(&["deliveries", "list", "--limit", "2"]));
    assert_eq!(first, made[..2]);
    let second = ids(&db.json(&["deliveries", "list", "--limit", "2", "--before", &first[1]]));
    assert_eq!(second, made[2..4]);
    // The table names the cursor of the next page.
    db.run(&["deliveries", "list", "--limit", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "more: --before {}",
            first[1]
        )));
}
