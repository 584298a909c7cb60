//! Signing through real deliveries: the scheme a subscription picks, the secrets a rotation keeps
//! signing, checked on a real receiver by the same [`Verifier`] receivers use.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fastapihooks_core::dispatch::Dispatcher;
use fastapihooks_core::signing::{Sha256Hex, SignatureScheme, Verifier};
use fastapihooks_core::{Delivery, Event, HttpConfig, Secret, Subscription};
use fastapihooks_testkit::Receiver;
use http::HeaderMap;

fn secret(s: &str) -> Secret {
    Secret::new(s).unwrap()
}

/// A dispatcher whose emitter-wide choice is `Sha256Hex` with a default secret.
fn dispatcher() -> Dispatcher {
    Dispatcher::new(
        &HttpConfig::default().allow_loopback(),
        Arc::new(Sha256Hex::new()),
        Some(secret("emitter-default-secret")),
    )
    .unwrap()
}

/// One attempt of a delivery to `sub` on `receiver`: the headers and body the receiver got.
async fn deliver(sub: &Subscription, receiver: &Receiver) -> (HeaderMap, Bytes) {
    let event = Event::new("order.created", &serde_json::json!({"id": 7})).unwrap();
    let (attempt, _) = dispatcher()
        .attempt(&Delivery::new(event, sub.id.clone()), sub)
        .await;
    assert_eq!(attempt.status_code(), Some(200), "{:?}", attempt.outcome);
    let got = receiver.received().pop().expect("the receiver answered it");
    (got.headers, got.body)
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn a_subscription_can_override_the_emitters_scheme() {
    let receiver = Receiver::ok().await;
    let url = receiver.url("/hook");
    let sub = Subscription::new("*", &url)
        .unwrap()
        .with_secret(secret("whsec_c3Vic2NyaXB0aW9uc2VjcmV0"))
        .with_signature_scheme(SignatureScheme::StandardWebhooks);
    let (headers, body) = deliver(&sub, &receiver).await;
    assert!(headers.contains_key("webhook-signature"));
    assert!(!headers.contains_key("x-fastapihooks-signature"));
    Verifier::new(SignatureScheme::StandardWebhooks)
        .secret(secret("whsec_c3Vic2NyaXB0aW9uc2VjcmV0"))
        .verify(&headers, &body)
        .unwrap();
}

#[tokio::test]
async fn without_an_override_the_emitters_scheme_and_secret_sign() {
    let receiver = Receiver::ok().await;
    let url = receiver.url("/hook");
    let sub = Subscription::new("*", &url).unwrap();
    let (headers, body) = deliver(&sub, &receiver).await;
    assert!(headers.contains_key("x-fastapihooks-signature"));
    Verifier::new(SignatureScheme::Sha256Hex)
        .secret(secret("emitter-default-secret"))
        .verify(&headers, &body)
        .unwrap();
}

#[tokio::test]
async fn standard_webhooks_signs_with_old_and_new_secret_during_a_rotation() {
    let receiver = Receiver::ok().await;
    let url = receiver.url("/hook");
    let mut sub = Subscription::new("*", &url)
        .unwrap()
        .with_secret(secret("whsec_b2xkLXNlY3JldC1vbGQ="))
        .with_signature_scheme(SignatureScheme::StandardWebhooks);
    sub.rotate_secret(secret("whsec_bmV3LXNlY3JldC1uZXc="), DAY);
    let (headers, body) = deliver(&sub, &receiver).await;
    let signatures = headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    for s in ["whsec_b2xkLXNlY3JldC1vbGQ=", "whsec_bmV3LXNlY3JldC1uZXc="] {
        Verifier::new(SignatureScheme::StandardWebhooks)
            .secret(secret(s))
            .verify(&headers, &body)
            .unwrap();
    }
}

#[tokio::test]
async fn sha256_hex_signs_with_the_new_secret_only_during_a_rotation() {
    let receiver = Receiver::ok().await;
    let url = receiver.url("/hook");
    let mut sub = Subscription::new("*", &url)
        .unwrap()
        .with_secret(secret("old-secret"));
    sub.rotate_secret(secret("new-secret"), DAY);
    let (headers, body) = deliver(&sub, &receiver).await;
    Verifier::new(SignatureScheme::Sha256Hex)
        .secret(secret("new-secret"))
        .verify(&headers, &body)
        .unwrap();
    let old = Verifier::new(SignatureScheme::Sha256Hex)
        .secret(secret("old-secret"))
        .verify(&headers, &body);
    assert!(matches!(
        old,
        Err(fastapihooks_core::signing::VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn after_the_grace_period_the_old_secret_no_longer_signs() {
    let receiver = Receiver::ok().await;
    let url = receiver.url("/hook");
    let mut sub = Subscription::new("*", &url)
        .unwrap()
        .with_secret(secret("whsec_b2xkLXNlY3JldC1vbGQ="))
        .with_signature_scheme(SignatureScheme::StandardWebhooks);
    let two_days_ago = chrono::Utc::now() - chrono::Duration::days(2);
    sub.rotate_secret_at(secret("whsec_bmV3LXNlY3JldC1uZXc="), DAY, two_days_ago);
    let (headers, body) = deliver(&sub, &receiver).await;
    assert_eq!(
        headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        1
    );
    let old = Verifier::new(SignatureScheme::StandardWebhooks)
        .secret(secret("whsec_b2xkLXNlY3JldC1vbGQ="))
        .verify(&headers, &body);
    assert!(matches!(
        old,
        Err(fastapihooks_core::signing::VerifyError::BadSignature)
    ));
}

/// The engine's own headers cannot be overridden: a custom header credential is validated by its
/// only constructor, `Auth::header`, and by deserialization (a store read back), so no
/// subscription can carry one that would replace `Content-Type` or a signature header.
#[test]
fn a_custom_header_that_would_override_the_engines_cannot_be_made() {
    for name in [
        "Content-Type",
        "X-Fastapihooks-Signature",
        "webhook-signature",
    ] {
        assert!(
            fastapihooks_core::Auth::header(name, secret("x")).is_err(),
            "{name}"
        );
        let stored = format!(r#"{{"type":"header","name":"{name}","value":"x"}}"#);
        assert!(
            serde_json::from_str::<fastapihooks_core::Auth>(&stored).is_err(),
            "{name}"
        );
    }
    let ok = fastapihooks_core::Auth::header("X-Api-Key", secret("k")).unwrap();
    let json = serde_json::to_string(&ok).unwrap();
    assert_eq!(json, r#"{"type":"header","name":"X-Api-Key","value":"k"}"#);
    assert_eq!(
        serde_json::from_str::<fastapihooks_core::Auth>(&json).unwrap(),
        ok
    );
}
