//! `Verified<T>`: a webhook is parsed only once its signature over the raw body verifies.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::post;
use axum::{Extension, Router};
use fastapihooks::Secret;
use fastapihooks::receive::{Verified, WebhookVerifier};
use fastapihooks::signing::{SignInput, SignatureScheme, Verifier};
use http::{HeaderMap, Request, StatusCode};
use tower::ServiceExt;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Seen = Arc<Mutex<Vec<serde_json::Value>>>;

fn app(seen: Seen, verifier: Option<WebhookVerifier>) -> Router {
    let handler = move |Verified(payload): Verified<serde_json::Value>| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(payload);
            StatusCode::NO_CONTENT
        }
    };
    let router = Router::new().route("/hook", post(handler));
    match verifier {
        Some(verifier) => router.layer(Extension(verifier)),
        None => router,
    }
}

fn standard_webhooks() -> WebhookVerifier {
    WebhookVerifier::new(
        Verifier::new(SignatureScheme::StandardWebhooks).secret(Secret::new(SECRET).unwrap()),
    )
}

/// Headers of `body` signed now with `secret`, as this crate's sender signs.
fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    SignatureScheme::StandardWebhooks.signer().sign(
        &SignInput {
            delivery_id: "dlv_1",
            event_name: "order.created",
            timestamp: chrono::Utc::now().timestamp(),
            body,
        },
        &[&Secret::new(secret).unwrap()],
        &mut headers,
    );
    headers
}

async fn post_to(app: Router, headers: HeaderMap, body: &'static [u8]) -> StatusCode {
    let mut request = Request::post("/hook").body(Body::from(body)).unwrap();
    *request.headers_mut() = headers;
    app.oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn a_signed_webhook_reaches_the_handler_parsed() {
    let seen = Seen::default();
    let body = br#"{"id":7}"#;
    let status = post_to(
        app(seen.clone(), Some(standard_webhooks())),
        signed(SECRET, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(*seen.lock().unwrap(), [serde_json::json!({"id": 7})]);
}

#[tokio::test]
async fn a_tampered_body_is_refused_with_401_and_never_parsed() {
    let seen = Seen::default();
    let headers = signed(SECRET, br#"{"id":7}"#);
    let status = post_to(
        app(seen.clone(), Some(standard_webhooks())),
        headers,
        br#"{"id":8}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn another_secret_or_no_signature_is_refused_with_401() {
    let body = br#"{"id":7}"#;
    let other = signed("whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ==", body);
    for headers in [other, HeaderMap::new()] {
        let status = post_to(
            app(Seen::default(), Some(standard_webhooks())),
            headers,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_refused_with_400() {
    let body = b"not json";
    let status = post_to(
        app(Seen::default(), Some(standard_webhooks())),
        signed(SECRET, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let body = br#"{"padding":"0123456789012345678901234567890123456789"}"#;
    let verifier = standard_webhooks().limit(16);
    let status = post_to(
        app(Seen::default(), Some(verifier)),
        signed(SECRET, body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_route_without_a_verifier_answers_500_not_the_payload() {
    let seen = Seen::default();
    let body = br#"{"id":7}"#;
    let status = post_to(app(seen.clone(), None), signed(SECRET, body), body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(seen.lock().unwrap().is_empty());
}

/// GitHub's published example (docs: "Validating webhook deliveries"): its signature verifies
/// under `X-Hub-Signature-256` — the body is then refused only for not being JSON — and a
/// changed body does not.
#[tokio::test]
async fn githubs_published_vector_verifies_and_a_changed_body_does_not() {
    let github = fastapihooks::signing::Sha256Hex::new()
        .signature_header("X-Hub-Signature-256")
        .unwrap();
    let verifier = WebhookVerifier::new(
        Verifier::with_signer(Arc::new(github))
            .secret(Secret::new("It's a Secret to Everybody").unwrap()),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
            .parse()
            .unwrap(),
    );
    let verified = post_to(
        app(Seen::default(), Some(verifier.clone())),
        headers.clone(),
        b"Hello, World!",
    )
    .await;
    assert_eq!(verified, StatusCode::BAD_REQUEST, "verified, then not JSON");
    let changed = post_to(
        app(Seen::default(), Some(verifier)),
        headers,
        b"Hello, World?",
    )
    .await;
    assert_eq!(changed, StatusCode::UNAUTHORIZED);
}

/// A router behind `VerifyLayer`: only verified requests reach any route, whatever it extracts.
#[tokio::test]
async fn a_verify_layer_lets_only_signed_requests_reach_any_route() {
    use fastapihooks::receive::VerifyLayer;
    let seen = Seen::default();
    let (typed, raw) = (seen.clone(), seen.clone());
    let router = Router::new()
        .route(
            "/hook",
            post(move |Verified(payload): Verified<serde_json::Value>| {
                let typed = typed.clone();
                async move {
                    typed.lock().unwrap().push(payload);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/raw",
            post(move |body: bytes::Bytes| {
                let raw = raw.clone();
                async move {
                    raw.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .layer(VerifyLayer::new(standard_webhooks().limit(64)));
    let call = |path: &'static str, headers: HeaderMap, body: &'static [u8]| {
        let router = router.clone();
        async move {
            let mut request = Request::post(path).body(Body::from(body)).unwrap();
            *request.headers_mut() = headers;
            router.oneshot(request).await.unwrap().status()
        }
    };
    let body: &'static [u8] = br#"{"id":7}"#;
    assert_eq!(
        call("/hook", signed(SECRET, body), body).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call("/raw", signed(SECRET, body), body).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call("/raw", HeaderMap::new(), body).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call("/raw", signed(SECRET, body), br#"{"id":8}"#).await,
        StatusCode::UNAUTHORIZED
    );
    let big: &'static [u8] = &[b' '; 100];
    assert_eq!(
        call("/raw", signed(SECRET, big), big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "only the two signed requests got through"
    );
}
