//! `fastapihooks start --queue sqlite://…`: the outbox and the store in one SQLite file, drained
//! by one sidecar (the real binary), fed by `publish_in` inside the application's transactions.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use fastapihooks_core::{Queue as _, SqlBackend, SqlStore, Store, Subscription};
use fastapihooks_testkit::{Receiver, events, eventually, eventually_async, expected_pairs, tally};
use sea_orm::{ConnectionTrait, TransactionTrait};
use support::Sidecar;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_events_of_committed_transactions_are_delivered() {
    let receiver = Receiver::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let subscription = Subscription::new("*", &receiver.url("a")).unwrap();
    store.add_subscription(subscription.clone()).await.unwrap();
    let db = store.connection();
    db.execute_unprepared("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    let outbox = SqlBackend::for_store(&store);

    let events = events(20);
    let (committed, rolled_back) = events.split_at(10);
    for (n, event) in events.iter().enumerate() {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared(&format!("INSERT INTO orders (id) VALUES ({n})"))
            .await
            .unwrap();
        outbox.publish_in(&txn, event).await.unwrap();
        if n < committed.len() {
            txn.commit().await.unwrap();
        } else {
            txn.rollback().await.unwrap();
        }
    }
    let sidecar = Sidecar::start(
        &[
            "--queue",
            &url,
            "--signing-secret",
            "test-secret",
            "--allow-loopback",
            "--http-timeout",
            "1s",
            "--visibility-timeout",
            "3s",
            "--poll-interval",
            "50ms",
        ]
        .map(String::from),
    );
    let expected = expected_pairs(committed, std::slice::from_ref(&subscription));
    let all = eventually(Duration::from_secs(30), || {
        receiver.distinct() >= expected.len()
    })
    .await;
    let drained = eventually_async(Duration::from_secs(10), async || {
        outbox.depth().await.unwrap() == 0
    })
    .await;
    sidecar.terminate();
    let (clean_exit, _) = sidecar.exit(Duration::from_secs(20)).await;

    let t = tally(&receiver, &expected);
    assert!(all && t.lost == 0, "lost {} of {}", t.lost, t.expected);
    assert!(drained, "the outbox still holds tasks");
    assert_eq!(
        t.unexpected,
        0,
        "an event of a rolled-back transaction was delivered ({} rolled back)",
        rolled_back.len()
    );
    assert_eq!(t.extra_requests, 0);
    assert!(clean_exit);
}
