//! A publish that fails is never silent: a hooked route retries it briefly, then hands the event
//! to `on_publish_error` (and answers 503 with `require_publish`); building hooks that would
//! sign nothing, or drop a setting, is refused.
#![cfg(feature = "redis")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::routing::post;
use axum::{Json, Router};
use fastapihooks::{Backend, Error, Event, Hook, Hooks, RedisBackend};
use fastapihooks_testkit::{TestKeys, client, redis_url, serve};
use serde_json::{Value, json};

async fn create_order() -> (http::StatusCode, Json<Value>) {
    (http::StatusCode::CREATED, Json(json!({"id": 42})))
}

/// A Redis queue that Redis itself refuses: its stream key holds a string, so every `XADD`
/// fails with `WRONGTYPE` — as a full or misconfigured Redis would fail it.
async fn refused_queue(keys: &TestKeys) -> RedisBackend {
    let mut conn = redis::Client::open(keys.config.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(keys.config.tasks_key())
        .arg("not a stream")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    RedisBackend::connect(keys.config.clone()).await.unwrap()
}

/// `POST /orders` once through `hook`, served on 127.0.0.1.
async fn order_through(hook: Hook) -> reqwest::Response {
    let app = Router::new().route("/orders", post(create_order).layer(hook));
    let addr = serve(app).await;
    client()
        .post(format!("http://{addr}/orders"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn on_publish_error_gets_the_event_when_redis_refuses_and_the_client_its_response() {
    let Some(url) = redis_url("on_publish_error").await else {
        return;
    };
    let keys = TestKeys::new(&url, "on-publish-error");
    let lost: Arc<Mutex<Vec<(Event, String)>>> = Arc::default();
    let kept = lost.clone();
    let hooks = Hooks::publisher(refused_queue(&keys).await)
        .on_publish_error(move |event, error| {
            kept.lock()
                .unwrap()
                .push((event.clone(), error.to_string()))
        })
        .build()
        .unwrap();
    let response = order_through(hooks.hook("order.created").unwrap()).await;
    assert_eq!(
        response.status(),
        201,
        "the handler's work happened: its answer stands"
    );
    assert_eq!(response.text().await.unwrap(), r#"{"id":42}"#);
    let lost = lost.lock().unwrap();
    assert_eq!(lost.len(), 1, "called once, after the retries");
    let (event, error) = &lost[0];
    assert_eq!(event.name().as_str(), "order.created");
    assert_eq!(&event.payload()[..], br#"{"id":42}"#);
    assert!(error.contains("WRONGTYPE"), "{error}");
}

#[tokio::test]
async fn require_publish_answers_503_problem_json_when_redis_refuses() {
    let Some(url) = redis_url("require_publish").await else {
        return;
    };
    let keys = TestKeys::new(&url, "require-publish");
    let hooks = Hooks::publisher(refused_queue(&keys).await)
        .build()
        .unwrap();
    let response = order_through(hooks.hook("order.created").unwrap().require_publish()).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "event_not_published");
}

/// A backend that fails its first `failures` publishes the way a store does, then accepts.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
    accepted: Mutex<Vec<Event>>,
}

#[async_trait]
impl Backend for Flaky {
    async fn publish(&self, event: Event) -> Result<(), Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(Error::storage("flaky.publish", "connection reset"));
        }
        self.accepted.lock().unwrap().push(event);
        Ok(())
    }
}

#[tokio::test]
async fn a_publish_that_fails_briefly_is_tried_again_within_the_request() {
    let flaky = Arc::new(Flaky {
        failures: 2,
        calls: AtomicUsize::new(0),
        accepted: Mutex::default(),
    });
    let called = Arc::new(AtomicUsize::new(0));
    let counted = called.clone();
    let hooks = Hooks::shared_publisher(flaky.clone())
        .on_publish_error(move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let response = order_through(hooks.hook("order.created").unwrap().require_publish()).await;
    assert_eq!(response.status(), 201);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
    assert_eq!(flaky.accepted.lock().unwrap().len(), 1);
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "published in the end: nothing lost"
    );
}

#[tokio::test]
async fn in_process_hooks_without_a_secret_are_refused_unless_unsigned_is_asked_for() {
    let err = Hooks::builder().build().unwrap_err();
    assert!(matches!(err, Error::NoSigningSecret), "{err}");
    assert!(
        err.to_string().contains(".secret(") && err.to_string().contains(".unsigned()"),
        "{err}"
    );
    assert!(Hooks::builder().unsigned().build().is_ok());
}
