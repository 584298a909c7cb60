//! Secrets never leave through Debug output, error messages or logs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastapihooks_core::dispatch::Dispatcher;
use fastapihooks_core::engine::DeliveryEngine;
use fastapihooks_core::signing::{Sha256Hex, SignatureScheme, Verifier};
use fastapihooks_core::{
    Auth, Delivery, Emitter, Event, HttpConfig, MemoryStore, RetryPolicy, Secret, Subscription,
};
use fastapihooks_testkit::{Receiver, Reply};
use http::HeaderMap;

const SECRETS: [&str; 6] = [
    "sub-secret-CURRENT-0001",
    "sub-secret-PREVIOUS-0002",
    "basic-password-0003",
    "bearer-token-0004",
    "api-key-value-0005",
    "emitter-default-0006",
];

fn secret(i: usize) -> Secret {
    Secret::new(SECRETS[i]).unwrap()
}

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows {s}: {text}");
    }
}

/// Subscriptions holding every kind of secret: its own (rotated), basic, bearer and header auth.
fn secretive_subscriptions(url: &str) -> Vec<Subscription> {
    let mut rotated = Subscription::new("*", url)
        .unwrap()
        .with_secret(secret(1))
        .with_auth(Auth::Basic {
            username: "user".into(),
            password: secret(2),
        });
    rotated.rotate_secret(secret(0), Duration::from_secs(3600));
    vec![
        rotated,
        Subscription::new("*", url)
            .unwrap()
            .with_auth(Auth::Bearer { token: secret(3) }),
        Subscription::new("*", url)
            .unwrap()
            .with_auth(Auth::header("X-Api-Key", secret(4)).unwrap())
            .with_signature_scheme(SignatureScheme::StandardWebhooks),
    ]
}

fn dispatcher(http: &HttpConfig) -> Dispatcher {
    Dispatcher::new(http, Arc::new(Sha256Hex::new()), Some(secret(5))).unwrap()
}

#[tokio::test]
async fn debug_output_never_shows_a_secret() {
    for sub in secretive_subscriptions("https://example.com/h") {
        assert_no_secret("Subscription debug", &format!("{sub:?} {sub:#?}"));
    }
    let http = HttpConfig::default();
    assert_no_secret("Dispatcher debug", &format!("{:?}", dispatcher(&http)));
    let verifier = Verifier::new(SignatureScheme::Sha256Hex).secrets([secret(0), secret(1)]);
    assert_no_secret("Verifier debug", &format!("{verifier:?}"));
    let emitter = Emitter::builder().secret(secret(5)).build().unwrap();
    assert_no_secret("Emitter debug", &format!("{emitter:?}"));
}

#[test]
fn error_messages_never_show_a_secret() {
    let mut messages = Vec::new();
    // A secret refused for its content.
    messages.push(
        Secret::new(format!("{}\n", SECRETS[0]))
            .unwrap_err()
            .to_string(),
    );
    // A custom header refused for its name: the value is not repeated.
    messages.push(
        Auth::header("Content-Type", secret(4))
            .unwrap_err()
            .to_string(),
    );
    // A stored subscription whose secret does not read.
    let json = format!(
        r#"{{"id":"sub_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7","filter":"*","url":"https://e.com/","secret":"{}\u0001","enabled":true,"created_at":"2026-01-01T00:00:00Z"}}"#,
        SECRETS[0]
    );
    messages.push(
        serde_json::from_str::<Subscription>(&json)
            .unwrap_err()
            .to_string(),
    );
    // Every verification failure.
    let verifier = Verifier::new(SignatureScheme::StandardWebhooks).secret(secret(0));
    let mut headers = HeaderMap::new();
    messages.push(verifier.verify(&headers, b"{}").unwrap_err().to_string());
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert(
        "webhook-timestamp",
        chrono::Utc::now().timestamp().to_string().parse().unwrap(),
    );
    headers.insert("webhook-signature", "v1,AAAA".parse().unwrap());
    messages.push(verifier.verify(&headers, b"{}").unwrap_err().to_string());
    headers.insert("webhook-signature", "nonsense".parse().unwrap());
    messages.push(verifier.verify(&headers, b"{}").unwrap_err().to_string());
    for message in &messages {
        assert_no_secret("error message", message);
    }
    assert_eq!(messages.len(), 6);
}

/// Collects everything a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_at_trace_level_never_show_a_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Answers the status its path names: `/500` answers 500.
    let receiver = Receiver::scripted(|path, _| {
        Reply::status(path.trim_start_matches('/').parse().unwrap_or(200))
    })
    .await;
    let port = receiver.addr().port();

    let run = |http: HttpConfig, url: String| async move {
        let engine = DeliveryEngine::new(
            Arc::new(MemoryStore::new()),
            Vec::new(),
            dispatcher(&http),
            RetryPolicy::schedule([Duration::from_millis(1)]),
            None,
        );
        for sub in secretive_subscriptions(&url) {
            let event = Event::new("order.created", &serde_json::json!({"n": 1})).unwrap();
            let mut delivery = Delivery::new(event, sub.id.clone());
            engine.attempt(&mut delivery, &sub).await;
        }
    };
    let loopback = HttpConfig::default().allow_loopback();
    for status in [200, 500, 410, 400] {
        run(
            loopback.clone(),
            format!("http://127.0.0.1:{port}/{status}"),
        )
        .await;
    }
    // Refused by the guard, through the resolver and as a literal address.
    run(
        HttpConfig::default(),
        format!("http://localhost:{port}/200"),
    )
    .await;
    run(
        HttpConfig::default(),
        format!("http://127.0.0.1:{port}/200"),
    )
    .await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("will retry"),
        "the 500s were not logged: {logs}"
    );
    assert!(
        logs.contains("dead letter"),
        "the 400s were not logged: {logs}"
    );
    assert!(
        logs.contains("SSRF guard"),
        "the refusals were not logged: {logs}"
    );
    assert_no_secret("logs", &logs);
}
