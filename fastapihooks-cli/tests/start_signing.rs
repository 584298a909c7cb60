//! `fastapihooks start` signs as its flags say: the real binary draining a SQLite outbox to a
//! real receiver on 127.0.0.1, whose requests are checked with the core's verifier.
#![cfg(feature = "sqlite")]

mod support;

use std::time::Duration;

use fastapihooks_core::signing::{SignatureScheme, Verifier, verify_sha256_hex};
use fastapihooks_core::{Secret, Subscription};
use fastapihooks_testkit::{Received, Receiver, events, eventually};
use support::{Sidecar, SqliteApp};

/// Delivers one event through a sidecar started with `extra` flags (and `--allow-loopback`),
/// stops it, and returns the one request the receiver got.
async fn deliver_one(extra: &[&str]) -> Received {
    let receiver = Receiver::ok().await;
    let app = SqliteApp::new(vec![Subscription::new("*", &receiver.url("a")).unwrap()]).await;
    app.publish(&events(1)).await;
    let mut args = vec!["--allow-loopback"];
    args.extend_from_slice(extra);
    let sidecar = Sidecar::start(&app.args(&args));
    let arrived = eventually(Duration::from_secs(30), || receiver.arrived() >= 1).await;
    sidecar.terminate();
    let (clean_exit, stdout) = sidecar.exit(Duration::from_secs(20)).await;
    assert!(arrived, "nothing was delivered");
    assert!(clean_exit, "{stdout}");
    let requests = receiver.received();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_delivers_without_a_signature_header() {
    let request = deliver_one(&["--unsigned"]).await;
    let h = &request.headers;
    assert!(h.contains_key("x-fastapihooks-id"), "{h:?}");
    assert!(h.contains_key("x-fastapihooks-event"), "{h:?}");
    assert!(!h.contains_key("x-fastapihooks-signature"), "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_webhooks_scheme_delivers_webhook_headers_that_verify() {
    let secret = Secret::generate().unwrap();
    let request = deliver_one(&[
        "--signature-scheme",
        "standard-webhooks",
        "--signing-secret",
        secret.expose(),
    ])
    .await;
    let h = &request.headers;
    assert!(
        h["webhook-id"].to_str().unwrap().starts_with("dlv_"),
        "{h:?}"
    );
    assert!(h.contains_key("webhook-timestamp"), "{h:?}");
    assert!(
        h["webhook-signature"].to_str().unwrap().starts_with("v1,"),
        "{h:?}"
    );
    assert!(!h.contains_key("x-fastapihooks-signature"), "{h:?}");
    Verifier::new(SignatureScheme::StandardWebhooks)
        .secret(secret)
        .verify(h, &request.body)
        .expect("the signature verifies with the secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_signature_header_carries_the_signature() {
    let request = deliver_one(&[
        "--signing-secret",
        "hub-secret",
        "--signature-header",
        "X-Hub-Signature-256",
    ])
    .await;
    let h = &request.headers;
    assert!(!h.contains_key("x-fastapihooks-signature"), "{h:?}");
    let signature = h["x-hub-signature-256"].to_str().unwrap();
    verify_sha256_hex(b"hub-secret", &request.body, signature)
        .expect("the signature verifies with the secret");
    assert!(
        h.contains_key("x-fastapihooks-id"),
        "the other names stay: {h:?}"
    );
}
