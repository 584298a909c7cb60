//! Deliveries to `https` subscribers: TLS verified against the roots the client trusts, HTTP/2
//! where the server offers it.

mod common;

use std::time::Duration;

use common::{final_delivery, hooks};
use fastapihooks::prelude::*;
use fastapihooks::{AttemptErrorKind, AttemptOutcome};
use fastapihooks_testkit::{Receiver, Reply};
use serde_json::json;

#[tokio::test]
async fn an_https_subscriber_whose_ca_is_trusted_gets_a_signed_delivery_over_http2() {
    let receiver = Receiver::over_tls(|_, _| Reply::ok()).await;
    let ca = receiver.ca_pem().expect("a TLS receiver has a CA");
    let http = HttpConfig::default()
        .allow_loopback()
        .add_root_certificates_pem(ca.as_bytes())
        .unwrap();
    let hooks = hooks()
        .http(http)
        .subscriber(receiver.subscription("*", "/secure"))
        .build()
        .unwrap();

    hooks
        .emit("order.created", &json!({"id": 7}))
        .await
        .unwrap();

    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].path, "/secure");
    assert!(got[0].verified(), "the signature does not verify");
    assert_eq!(
        got[0].version,
        http::Version::HTTP_2,
        "ALPN did not agree on h2"
    );
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_https_subscriber_with_a_certificate_from_an_unknown_ca_is_never_sent_the_payload() {
    let receiver = Receiver::over_tls(|_, _| Reply::ok()).await;
    // Mozilla's roots only: the receiver's own CA is not among them.
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/secure"))
        .build()
        .unwrap();

    hooks
        .emit("order.created", &json!({"id": 7}))
        .await
        .unwrap();

    let dead = final_delivery(&hooks).await;
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(receiver.arrived(), 0, "a request got through");
    let attempts = hooks.store().list_attempts(&dead.id).await.unwrap();
    let AttemptOutcome::Error { kind, message } = &attempts[0].outcome else {
        panic!("an answer came back: {:?}", attempts[0].outcome);
    };
    assert_eq!(*kind, AttemptErrorKind::Connect);
    assert!(message.contains("certificate"), "{message}");
}

#[test]
fn a_pem_without_a_certificate_is_refused_with_the_setting_named() {
    let err = HttpConfig::default()
        .add_root_certificates_pem(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
    assert!(err.to_string().contains("http.root_certificates"), "{err}");
}
