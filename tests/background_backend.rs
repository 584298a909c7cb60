//! The in-process backend: fan-out, isolation of subscribers, bounds, shutdown.

mod common;

use std::time::Duration;

use common::hooks;
use fastapihooks::prelude::*;
use fastapihooks::{DeliveryQuery, Error};
use fastapihooks_testkit::{Receiver, Reply};
use serde_json::json;

#[tokio::test]
async fn a_failing_subscriber_does_not_delay_the_others() {
    let receiver = Receiver::scripted(|path, _| match path {
        "/failing" => Reply::status(500),
        _ => Reply::status(200),
    })
    .await;
    let mut builder = hooks()
        .retry(RetryPolicy::schedule([
            Duration::from_millis(300),
            Duration::from_millis(300),
        ]))
        .subscriber(receiver.subscription("order.created", "/failing"));
    for i in 0..9 {
        builder = builder.subscriber(receiver.subscription("order.created", &format!("/ok{i}")));
    }
    let hooks = builder.build().unwrap();

    hooks
        .emit("order.created", &json!({"id": 7}))
        .await
        .unwrap();
    hooks.shutdown(Duration::from_secs(10)).await.unwrap();

    let got = receiver.received();
    let healthy: Vec<_> = got.iter().filter(|r| r.path != "/failing").collect();
    let failing: Vec<_> = got.iter().filter(|r| r.path == "/failing").collect();
    assert_eq!(healthy.len(), 9, "each healthy subscriber got it once");
    assert!(healthy.iter().all(|r| r.verified()));
    assert_eq!(failing.len(), 3, "first attempt + 2 retries");
    // The nine arrived before the failing one was even retried.
    let last_healthy = healthy.iter().map(|r| r.at).max().unwrap();
    assert!(last_healthy < failing[1].at);
    let dead = hooks
        .store()
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Dead))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let delivered = hooks
        .store()
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Delivered))
        .await
        .unwrap();
    assert_eq!(delivered.len(), 9);
}

#[tokio::test]
async fn concurrency_never_exceeds_the_cap() {
    cap_holds_delivering_to(4, &["/a", "/b"]).await;
}

#[tokio::test]
async fn the_cap_holds_when_each_event_has_one_delivery() {
    // An event's only delivery is attempted by the worker that fanned it out.
    cap_holds_delivering_to(4, &["/only"]).await;
}

#[tokio::test]
async fn the_cap_holds_when_an_event_is_admitted_in_groups() {
    // 20 attempts: an event's deliveries are admitted two at a time (a tenth of the cap), the
    // last group of each event a single one.
    cap_holds_delivering_to(20, &["/a", "/b", "/c", "/d", "/e"]).await;
}

/// 30 events to a subscriber at each of `paths` (a slow receiver), at most `cap` attempts in
/// flight: no more than `cap` requests ever run at once, and more than one does.
async fn cap_holds_delivering_to(cap: usize, paths: &[&str]) {
    let receiver =
        Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_millis(30))).await;
    let mut builder = hooks().background(BackgroundConfig {
        concurrency: cap,
        ..BackgroundConfig::default()
    });
    for path in paths {
        builder = builder.subscriber(receiver.subscription("*", path));
    }
    let hooks = builder.build().unwrap();

    for i in 0..30 {
        hooks.emit("tick", &i).await.unwrap();
    }
    hooks.shutdown(Duration::from_secs(20)).await.unwrap();

    assert_eq!(receiver.received().len(), 30 * paths.len());
    let max = receiver.max_in_flight();
    assert!(max <= cap, "{max} requests were in flight at once");
    assert!(max >= 2, "deliveries did run concurrently ({max})");
}

#[tokio::test]
async fn a_retry_waits_on_its_own_task_not_on_a_worker() {
    // One worker. The first event's only delivery fails and waits a minute for its retry; the
    // next event is delivered meanwhile.
    let receiver = Receiver::scripted(|path, _| match path {
        "/failing" => Reply::status(500),
        _ => Reply::status(200),
    })
    .await;
    let hooks = hooks()
        .retry(RetryPolicy::schedule([Duration::from_secs(60)]))
        .subscriber(receiver.subscription("first", "/failing"))
        .subscriber(receiver.subscription("second", "/ok"))
        .background(BackgroundConfig {
            concurrency: 1,
            ..BackgroundConfig::default()
        })
        .build()
        .unwrap();

    hooks.emit("first", &1).await.unwrap();
    hooks.emit("second", &2).await.unwrap();
    let got = receiver
        .wait_until(|r| r.iter().any(|r| r.path == "/ok"))
        .await;
    assert!(
        got.iter().any(|r| r.path == "/ok"),
        "the second event waited"
    );
    assert_eq!(
        got.iter().filter(|r| r.path == "/failing").count(),
        1,
        "the failing delivery's retry is not due yet"
    );
    let report = hooks.shutdown(Duration::from_millis(200)).await.unwrap();
    assert_eq!(report.abandoned, 1, "the retry still waiting");
}

#[tokio::test]
async fn shutdown_drains_in_flight_deliveries() {
    let receiver =
        Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_millis(200))).await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/slow"))
        .build()
        .unwrap();

    for i in 0..5 {
        hooks.emit("tick", &i).await.unwrap();
    }
    let report = hooks.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(report.abandoned, 0);
    assert_eq!(
        receiver.received().len(),
        5,
        "all delivered before shutdown returned"
    );
}

#[tokio::test]
async fn shutdown_past_its_deadline_reports_what_it_abandoned() {
    let receiver = Receiver::scripted(|_, _| Reply::status(503)).await;
    let hooks = hooks()
        .retry(RetryPolicy::schedule([Duration::from_secs(60)]))
        .subscriber(receiver.subscription("*", "/down"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();
    receiver.wait_for(1).await;
    let report = hooks.shutdown(Duration::from_millis(200)).await.unwrap();

    assert_eq!(report.abandoned, 1);
    let pending = hooks
        .store()
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Pending))
        .await
        .unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the abandoned delivery stays pending in the store"
    );
}

/// Past its deadline, shutdown accounts for everything it leaves: every delivery fanned out and
/// not delivered is `abandoned` (and pending in the store), every event not fanned out is in
/// `abandoned_events`; and once it returns, no request goes out any more.
#[tokio::test]
async fn shutdown_counts_everything_unfinished_and_sends_nothing_after_it_returns() {
    const EVENTS: usize = 20;
    let receiver = Receiver::replying(Reply::ok().after(Duration::from_millis(300))).await;
    let hooks = hooks()
        .background(BackgroundConfig {
            concurrency: 2,
            ..BackgroundConfig::default()
        })
        .subscriber(receiver.subscription("*", "/a"))
        .subscriber(receiver.subscription("*", "/b"))
        .build()
        .unwrap();
    for n in 0..EVENTS {
        hooks.emit("order.created", &n).await.unwrap();
    }
    receiver.wait_for(1).await;

    let report = hooks.shutdown(Duration::from_millis(100)).await.unwrap();
    let sent = receiver.arrived();

    let count = async |status| {
        hooks
            .store()
            .list_deliveries(&DeliveryQuery::status(status).limit(1000))
            .await
            .unwrap()
            .len()
    };
    let delivered = count(DeliveryStatus::Delivered).await;
    let pending = count(DeliveryStatus::Pending).await;
    assert!(
        report.abandoned > 0 && report.abandoned_events > 0,
        "{report:?}"
    );
    assert_eq!(pending, report.abandoned, "{report:?}");
    assert_eq!(
        delivered + pending + 2 * report.abandoned_events,
        2 * EVENTS,
        "{report:?}, delivered {delivered}"
    );
    // Longer than a reply takes: a request still going out would arrive meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.arrived(),
        sent,
        "a request went out after shutdown returned"
    );
}

#[tokio::test]
async fn publishing_after_shutdown_is_a_typed_error() {
    let hooks = hooks().build().unwrap();
    hooks.shutdown(Duration::from_secs(1)).await.unwrap();
    let err = hooks.emit("a", &1).await.unwrap_err();
    assert!(matches!(err, Error::ShutDown), "{err}");
}

#[tokio::test]
async fn a_full_queue_is_a_typed_error_not_a_silent_drop() {
    let receiver =
        Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_secs(1))).await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/stuck"))
        .background(BackgroundConfig {
            capacity: 1,
            concurrency: 1,
            max_pending_deliveries: 1,
            publish_timeout: Duration::from_millis(20),
        })
        .build()
        .unwrap();

    let mut results = Vec::new();
    for i in 0..10 {
        results.push(hooks.emit("a", &i).await);
    }

    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(Error::QueueFull { .. })))
        .count();
    assert!(full > 0, "the bounded queue pushed back");
    assert_eq!(
        accepted + full,
        10,
        "every emit either was accepted or said why not"
    );
    hooks.shutdown(Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        receiver.received().len(),
        accepted,
        "every accepted event was delivered"
    );
}

#[tokio::test]
async fn emit_from_code_delivers_to_matching_subscribers() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("invoice.paid", "/h"))
        .build()
        .unwrap();

    let event = hooks
        .emit("invoice.paid", &json!({"invoice": "in_1"}))
        .await
        .unwrap();

    let r = &receiver.wait_for(1).await[0];
    assert_eq!(r.json(), json!({"invoice": "in_1"}));
    assert_eq!(&r.body[..], &event.payload()[..]);
    assert!(r.verified());
}

#[tokio::test]
async fn wildcard_and_prefix_filters_select_events() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/all"))
        .subscriber(receiver.subscription("order.*", "/orders"))
        .subscriber(receiver.subscription("order.created", "/created"))
        .build()
        .unwrap();

    for name in [
        "order.created",
        "order.line.added",
        "invoice.paid",
        "orders.x",
    ] {
        hooks.emit(name, &1).await.unwrap();
    }
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    let names = |path: &str| {
        let mut v: Vec<_> = receiver
            .received_at(path)
            .iter()
            .map(|r| r.header("x-fastapihooks-event").to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names("/all"),
        [
            "invoice.paid",
            "order.created",
            "order.line.added",
            "orders.x"
        ]
    );
    assert_eq!(names("/orders"), ["order.created", "order.line.added"]);
    assert_eq!(names("/created"), ["order.created"]);
}

#[tokio::test]
async fn owned_events_reach_their_owner_and_global_subscriptions_only() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/acme").with_owner("acme"))
        .subscriber(receiver.subscription("*", "/globex").with_owner("globex"))
        .subscriber(receiver.subscription("*", "/global"))
        .build()
        .unwrap();

    hooks.emit_owned("a", "acme", &1).await.unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    let mut paths: Vec<_> = receiver.received().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/acme", "/global"]);
}

#[tokio::test]
async fn an_oversized_payload_is_refused_on_emit() {
    let hooks = hooks().max_payload_bytes(100).build().unwrap();
    let err = hooks.emit("a", &"x".repeat(200)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::PayloadTooLarge {
                size: 202,
                limit: 100
            }
        ),
        "{err}"
    );
}
