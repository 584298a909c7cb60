//! Trace context: an event carries the trace of the request that emitted it — through the
//! durable queue, into another process's attempt spans — and, when asked, to the receiver as a
//! `traceparent` header. Spans are captured by a subscriber of this test binary's own.
#![cfg(feature = "sqlite")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use fastapihooks::advanced::{CancellationToken, Worker, WorkerConfig};
use fastapihooks::prelude::*;
use fastapihooks::{Emitter, SqlBackend, SqlStore};
use fastapihooks_testkit::{Receiver, SECRET, eventually};
use tower::ServiceExt;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span seen: its name and the fields recorded on it.
type Seen = (String, HashMap<String, String>);

/// The spans seen, by span id.
#[derive(Default)]
struct Spans(Mutex<HashMap<u64, Seen>>);

impl Spans {
    fn with_field(&self, name: &str, field: &str, value: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|(n, f)| n == name && f.get(field).map(String::as_str) == Some(value))
            .count()
    }

    fn field_of(&self, name: &str, field: &str, key: (&str, &str)) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|(n, f)| n == name && f.get(key.0).map(String::as_str) == Some(key.1))
            .filter_map(|(_, f)| f.get(field).cloned())
            .collect()
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.0
            .insert(field.name().to_owned(), text.trim_matches('"').to_owned());
    }
}

struct Capture(&'static Spans);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0
            .0
            .lock()
            .unwrap()
            .insert(id.into_u64(), (name, fields));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: Context<'_, S>,
    ) {
        if let Some((_, fields)) = self.0.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

/// The spans of this test binary (one global subscriber for every thread of every test).
fn spans() -> &'static Spans {
    static SPANS: OnceLock<&'static Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans: &'static Spans = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry().with(Capture(spans));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        spans
    })
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecars_attempt_span_carries_the_trace_id_of_the_apps_publish_span() {
    let spans = spans();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    let receiver = Receiver::ok().await;
    store
        .add_subscription(receiver.subscription("order.created", "/hook"))
        .await
        .unwrap();
    // The app only publishes, into the outbox.
    let app = Emitter::publisher(SqlBackend::for_store(&store))
        .build()
        .unwrap();
    let event = app
        .emit("order.created", &serde_json::json!({"id": 1}))
        .await
        .unwrap();
    let published = spans.field_of(
        "fastapihooks.publish",
        "trace_id",
        ("event", event.id().as_str()),
    );
    assert_eq!(published.len(), 1, "one publish span with a trace id");
    // The sidecar — a worker with its own store connection and queue — delivers it.
    let sidecar_store = SqlStore::connect(&url).await.unwrap();
    let queue = Arc::new(SqlBackend::for_store(&sidecar_store));
    let engine = Emitter::builder()
        .store(sidecar_store)
        .secret(Secret::new(SECRET).unwrap())
        .http(HttpConfig::default().allow_loopback())
        .build_engine()
        .unwrap();
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(queue, engine, WorkerConfig::default())
            .unwrap()
            .run(stop.clone()),
    );
    receiver.wait_for(1).await;
    let attempts = eventually(WAIT, || {
        spans.with_field("fastapihooks.attempt", "trace_id", &published[0]) == 1
    })
    .await;
    assert!(
        attempts,
        "the attempt span carries the publish span's trace id"
    );
    assert_eq!(
        spans.with_field("fastapihooks.fan_out", "trace_id", &published[0]),
        1
    );
    stop.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hooked_request_s_traceparent_is_continued_by_its_deliveries_and_sent_when_asked() {
    let spans = spans();
    let receiver = Receiver::ok().await;
    let mut http = HttpConfig::default().allow_loopback();
    http.send_traceparent = true;
    let hooks = Hooks::builder()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .secret(Secret::new(SECRET).unwrap())
        .http(http)
        .build()
        .unwrap();
    let app = Router::new().route(
        "/orders",
        post(|| async { axum::Json(serde_json::json!({"id": 7})) })
            .layer(hooks.hook("order.created").unwrap()),
    );
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = http::Request::post("/orders")
        .header("traceparent", caller)
        .body(Body::empty())
        .unwrap();
    assert!(app.oneshot(request).await.unwrap().status().is_success());
    let received = receiver.wait_for(1).await;
    let sent = received[0].header("traceparent");
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent != caller,
        "the caller's trace, a span of the sender's own: {sent}"
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let joined = eventually(WAIT, || {
        spans.with_field("fastapihooks.attempt", "trace_id", trace_id) == 1
    })
    .await;
    assert!(joined, "the attempt span continues the caller's trace");
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traceparent_is_sent_unless_asked() {
    let _ = spans();
    let receiver = Receiver::ok().await;
    let hooks = Hooks::builder()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .secret(Secret::new(SECRET).unwrap())
        .http(HttpConfig::default().allow_loopback())
        .build()
        .unwrap();
    hooks.emitter().emit("order.created", &1).await.unwrap();
    let received = receiver.wait_for(1).await;
    assert!(received[0].headers.get("traceparent").is_none());
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
}
