//! What each receiver answer does to a delivery: retried, delivered, failed for good, disabled.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{final_delivery, hooks};
use fastapihooks::prelude::*;
use fastapihooks::{AttemptErrorKind, AttemptOutcome, DeliveryQuery};
use fastapihooks_testkit::{Receiver, Reply};
use serde_json::json;

#[tokio::test]
async fn a_500_then_200_is_delivered_on_retry_with_the_same_id() {
    let receiver =
        Receiver::scripted(|_, nth| Reply::status(if nth == 0 { 500 } else { 200 })).await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .build()
        .unwrap();

    hooks
        .emit("order.created", &json!({"id": 1}))
        .await
        .unwrap();

    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("x-fastapihooks-id"),
        got[1].header("x-fastapihooks-id")
    );
    assert_eq!(got[0].body, got[1].body);
    assert!(got[1].verified());
    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 2);
    let attempts = hooks.store().list_attempts(&d.id).await.unwrap();
    let codes: Vec<_> = attempts.iter().map(|a| a.status_code()).collect();
    assert_eq!(codes, [Some(500), Some(200)]);
}

#[tokio::test]
async fn a_429_retry_after_is_honoured() {
    let receiver = Receiver::scripted(|_, nth| match nth {
        0 => Reply::status(429).header("retry-after", "1"),
        _ => Reply::status(200),
    })
    .await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let got = receiver.wait_for(2).await;
    assert_eq!(got.len(), 2);
    // The policy alone would retry after 20 ms; the receiver asked for 1 s.
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert_eq!(
        final_delivery(&hooks).await.status,
        DeliveryStatus::Delivered
    );
}

#[tokio::test]
async fn a_410_fails_for_good_and_disables_the_subscription() {
    let receiver = Receiver::scripted(|_, _| Reply::status(410)).await;
    let store = MemoryStore::new();
    let sub = receiver.subscription("*", "/gone");
    store.add_subscription(sub.clone()).await.unwrap();
    let hooks = hooks().store(store).build().unwrap();

    hooks.emit("a", &1).await.unwrap();

    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 1);
    let stored = hooks
        .store()
        .get_subscription(&sub.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.enabled);
    hooks.emit("a", &2).await.unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        receiver.received().len(),
        1,
        "a disabled subscription receives nothing"
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_becomes_a_dead_letter() {
    let receiver = Receiver::scripted(|_, _| Reply::status(400)).await;
    let dead = Arc::new(Mutex::new(Vec::new()));
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .on_failure({
            let dead = dead.clone();
            move |d, a| dead.lock().unwrap().push((d.id.clone(), a.status_code()))
        })
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    assert_eq!(receiver.received().len(), 1);
    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(*dead.lock().unwrap(), [(d.id, Some(400))]);
}

#[tokio::test]
async fn retries_exhausted_make_a_dead_letter_in_the_store() {
    let receiver = Receiver::scripted(|_, _| Reply::status(503)).await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    assert_eq!(
        receiver.received().len(),
        3,
        "first attempt and the policy's 2 retries"
    );
    let dead = hooks
        .store()
        .list_deliveries(&DeliveryQuery::status(DeliveryStatus::Dead))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let receiver = Receiver::scripted(|_, nth| match nth {
        0 => Reply::status(200).after(Duration::from_secs(2)),
        _ => Reply::status(200),
    })
    .await;
    let mut http = HttpConfig::default().allow_loopback();
    http.timeout = Duration::from_millis(300);
    http.connect_timeout = Duration::from_millis(300);
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .http(http)
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = hooks.store().list_attempts(&d.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(
        matches!(
            attempts[0].outcome,
            AttemptOutcome::Error {
                kind: AttemptErrorKind::Timeout,
                ..
            }
        ),
        "{:?}",
        attempts[0].outcome
    );
    assert_eq!(attempts[1].status_code(), Some(200));
}

#[tokio::test]
async fn the_answers_body_is_recorded_with_the_attempt() {
    let receiver = Receiver::replying(Reply::status(200).body("thanks, order 7 noted")).await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let d = final_delivery(&hooks).await;
    let attempts = hooks.store().list_attempts(&d.id).await.unwrap();
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 200,
            body_excerpt: "thanks, order 7 noted".into()
        }
    );
}

#[tokio::test]
async fn a_long_answer_is_cut_at_max_response_bytes_and_its_status_still_counts() {
    let receiver = Receiver::replying(Reply::status(422).body("0123456789abcdef, and more")).await;
    let mut http = HttpConfig::default().allow_loopback();
    http.max_response_bytes = 16;
    let hooks = hooks()
        .http(http)
        .subscriber(receiver.subscription("*", "/h"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    let attempts = hooks.store().list_attempts(&d.id).await.unwrap();
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 422,
            body_excerpt: "0123456789abcdef".into()
        }
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let receiver = Receiver::scripted(|path, _| match path {
        "/moved" => Reply::status(302).header("location", "/elsewhere"),
        _ => Reply::status(200),
    })
    .await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/moved"))
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    assert!(receiver.received_at("/elsewhere").is_empty());
    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.attempts, 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_dead() {
    // A port that was open a moment ago and is closed now: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hooks = hooks()
        .subscriber(Subscription::new("*", &format!("http://{closed}/h")).unwrap())
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Dead);
    let attempts = hooks.store().list_attempts(&d.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| matches!(
        a.outcome,
        AttemptOutcome::Error {
            kind: AttemptErrorKind::Connect,
            ..
        }
    )));
}

#[tokio::test]
async fn subscription_auth_is_sent() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(
            receiver
                .subscription("*", "/bearer")
                .with_auth(Auth::Bearer {
                    token: Secret::new("tok").unwrap(),
                }),
        )
        .subscriber(receiver.subscription("*", "/basic").with_auth(Auth::Basic {
            username: "u".into(),
            password: Secret::new("p").unwrap(),
        }))
        .subscriber(
            receiver
                .subscription("*", "/header")
                .with_auth(Auth::header("X-Api-Key", Secret::new("k").unwrap()).unwrap()),
        )
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();
    receiver.wait_for(3).await;

    assert_eq!(
        receiver.received_at("/bearer")[0].header("authorization"),
        "Bearer tok"
    );
    assert_eq!(
        receiver.received_at("/basic")[0].header("authorization"),
        "Basic dTpw"
    );
    assert_eq!(receiver.received_at("/header")[0].header("x-api-key"), "k");
}

#[tokio::test]
async fn a_subscription_with_its_own_secret_is_signed_with_it() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(
            receiver
                .subscription("*", "/own")
                .with_secret(Secret::new("own-secret").unwrap()),
        )
        .build()
        .unwrap();

    hooks.emit("a", &1).await.unwrap();

    let r = &receiver.wait_for(1).await[0];
    assert!(!r.verified(), "not the default secret");
    fastapihooks::signing::verify_sha256_hex(
        b"own-secret",
        &r.body,
        r.header("x-fastapihooks-signature"),
    )
    .unwrap();
}

#[tokio::test]
async fn a_subscriptions_own_retry_policy_replaces_the_default() {
    let receiver = Receiver::replying(Reply::status(503)).await;
    // The hooks retry twice by default; this subscription asks for four retries.
    let own = RetryPolicy::schedule([Duration::from_millis(10); 4]);
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/h").with_retry(own))
        .build()
        .unwrap();

    hooks
        .emit("order.created", &json!({"id": 1}))
        .await
        .unwrap();

    let d = final_delivery(&hooks).await;
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert_eq!(
        d.attempts, 5,
        "the first attempt and the subscription's 4 retries"
    );
    assert_eq!(receiver.received().len(), 5);
}
