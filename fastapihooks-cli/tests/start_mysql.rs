//! `fastapihooks start` on the SQL outbox in MariaDB/MySQL (`FASTAPIHOOKS_TEST_MYSQL`, a
//! database per test): two sidecars, the real binary, share one outbox through `FOR UPDATE SKIP
//! LOCKED` without sending anything twice.
#![cfg(feature = "mysql")]

mod support;

use std::time::Duration;

use fastapihooks_core::{SqlBackend, SqlStoreOptions, Store, Subscription};
use fastapihooks_testkit::{
    Receiver, Reply, TempDatabase, events, eventually, expected_pairs, tally,
};
use support::{Sidecar, reported};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_on_one_mariadb_outbox_share_the_work_without_sending_anything_twice() {
    // A database of the test's own, dropped with the guard.
    let Some(database) = TempDatabase::mysql("mariadb two sidecars").await else {
        return;
    };
    let own = database.url().to_owned();

    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(20))).await;
    let store = SqlStoreOptions::new(&own)
        .max_connections(2)
        .connect()
        .await
        .unwrap();
    let subscription = Subscription::new("*", &receiver.url("a")).unwrap();
    store.add_subscription(subscription.clone()).await.unwrap();
    let events = events(200);
    SqlBackend::for_store(&store)
        .publish_many(&events)
        .await
        .unwrap();
    let expected = expected_pairs(&events, std::slice::from_ref(&subscription));
    let args = [
        "--queue",
        &own,
        "--signing-secret",
        "test-secret",
        "--allow-loopback",
        "--http-timeout",
        "1s",
        "--visibility-timeout",
        "3s",
        "--poll-interval",
        "50ms",
        "--concurrency",
        "8",
    ]
    .map(String::from);

    let one = Sidecar::start(&args);
    let two = Sidecar::start(&args);
    let all = eventually(Duration::from_secs(60), || {
        receiver.distinct() >= expected.len()
    })
    .await;
    one.terminate();
    two.terminate();
    let (one_ok, one_out) = one.exit(Duration::from_secs(20)).await;
    let (two_ok, two_out) = two.exit(Duration::from_secs(20)).await;
    store.connection().clone().close().await.unwrap();

    let t = tally(&receiver, &expected);
    assert!(all && t.lost == 0, "lost {} of {}", t.lost, t.expected);
    assert_eq!(t.extra_requests, 0, "a delivery was sent twice");
    let (a, b) = (
        reported(&one_out, "delivered"),
        reported(&two_out, "delivered"),
    );
    assert_eq!(a + b, expected.len() as u64);
    assert!(a > 0 && b > 0, "one sidecar did all the work: {a} and {b}");
    assert_eq!(
        reported(&one_out, "errors") + reported(&two_out, "errors"),
        0
    );
    assert!(one_ok && two_ok);
}
