//! Micro-benchmarks of the hot pieces: signing (both schemes), the hook layer's response
//! capture, event serialization, and fan-out of one event to 1,000 subscriptions.
//!
//! ```sh
//! cargo bench -p fastapihooks-bench --bench hot_paths
//! ```

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::post;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fastapihooks::advanced::fan_out;
use fastapihooks::signing::{Sha256Hex, SignInput, Signer, StandardWebhooks};
use fastapihooks::{Backend, Emitter, Event, Hooks, MemoryStore, Secret, Subscription};
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use serde::Serialize;
use tower::ServiceExt;

/// The quickstart's order, as the handler answers it (about 80 bytes).
fn order_json() -> serde_json::Value {
    serde_json::json!({"id": 42, "order": {"sku": "A1", "qty": 2, "customer": "cus_8f3a2b"}})
}

#[derive(Serialize)]
struct Order<'a> {
    id: u64,
    order: Line<'a>,
}

#[derive(Serialize)]
struct Line<'a> {
    sku: &'a str,
    qty: u32,
    customer: &'a str,
}

fn signing(c: &mut Criterion) {
    let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let small = serde_json::to_vec(&order_json()).unwrap();
    let large = vec![b'x'; 16 * 1024];
    let mut group = c.benchmark_group("sign");
    for (size, body) in [("80B", &small), ("16KiB", &large)] {
        let input = SignInput {
            delivery_id: "dlv_01HZY2Q4Z8N3V5W7X9Y1Z3A5B7",
            event_name: "order.created",
            timestamp: 1_700_000_000,
            body,
        };
        group.throughput(Throughput::Bytes(body.len() as u64));
        let schemes: [(&str, Box<dyn Signer>); 2] = [
            ("sha256_hex", Box::new(Sha256Hex::new())),
            ("standard_webhooks", Box::new(StandardWebhooks)),
        ];
        for (name, scheme) in schemes {
            group.bench_function(format!("{name}/{size}"), |b| {
                b.iter(|| {
                    let mut headers = HeaderMap::with_capacity(8);
                    scheme.sign(black_box(&input), &[&secret], &mut headers);
                    headers
                })
            });
        }
    }
    group.finish();
}

/// A backend that takes every event and drops it: isolates the layer from delivery.
struct Discard;

#[async_trait]
impl Backend for Discard {
    async fn publish(&self, event: Event) -> fastapihooks::Result<()> {
        black_box(event);
        Ok(())
    }
}

async fn create_order() -> axum::Json<serde_json::Value> {
    axum::Json(order_json())
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hooks = rt.block_on(async { Hooks::from(Emitter::publisher(Discard).build().unwrap()) });
    let plain = Router::new().route("/orders", post(create_order));
    let hooked = Router::new().route(
        "/orders",
        post(create_order).layer(hooks.hook("order.created").unwrap()),
    );
    let mut group = c.benchmark_group("layer");
    for (name, router) in [("unhooked", plain), ("hooked_capture_and_publish", hooked)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let request = Request::post("/orders").body(Body::empty()).unwrap();
                    let response = router.clone().oneshot(request).await.unwrap();
                    response.into_body().collect().await.unwrap().to_bytes()
                })
            })
        });
    }
    group.finish();
}

fn event_serialization(c: &mut Criterion) {
    let value = order_json();
    let bytes = bytes::Bytes::from(serde_json::to_vec(&value).unwrap());
    let typed = Order {
        id: 42,
        order: Line {
            sku: "A1",
            qty: 2,
            customer: "cus_8f3a2b",
        },
    };
    let mut group = c.benchmark_group("event");
    group.bench_function("new_from_json_value", |b| {
        b.iter(|| Event::new("order.created", black_box(&value)).unwrap())
    });
    group.bench_function("new_from_struct", |b| {
        b.iter(|| Event::new("order.created", black_box(&typed)).unwrap())
    });
    group.bench_function("from_response_bytes", |b| {
        b.iter(|| Event::from_json_bytes("order.created", black_box(bytes.clone())).unwrap())
    });
    group.finish();
}

fn fan_out_1000(c: &mut Criterion) {
    let subscriptions: Vec<Subscription> = (0..1000)
        .map(|_| Subscription::new("order.created", "http://127.0.0.1:9/hook").unwrap())
        .collect();
    let event = Event::new("order.created", &order_json()).unwrap();
    let mut group = c.benchmark_group("fan_out_1000");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("pure", |b| {
        b.iter(|| fan_out(black_box(&event), &subscriptions))
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(async {
        let mut builder = Emitter::builder().store(MemoryStore::new()).unsigned();
        for s in &subscriptions {
            builder = builder.subscriber(s.clone());
        }
        Arc::new(builder.build_engine().unwrap())
    });
    // With the store: matching, one delivery per subscription, recorded in a MemoryStore.
    group.bench_function("engine_with_memory_store", |b| {
        b.iter_batched(
            || Event::new("order.created", &order_json()).unwrap(),
            |event| rt.block_on(engine.fan_out(&event)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, signing, layer, event_serialization, fan_out_1000);
criterion_main!(benches);
