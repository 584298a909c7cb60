//! The hook layer on real axum routes, delivering to a real receiver.

mod common;

use std::time::Duration;

use axum::extract::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Router};
use common::hooks;
use fastapihooks::prelude::*;
use fastapihooks_testkit::{Receiver, client, post as post_to, serve};
use serde::Deserialize;
use serde_json::{Value, json};

async fn create_order(Json(order): Json<Value>) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({"id": 42, "order": order})))
}

async fn app_with(hook: fastapihooks::Hook) -> String {
    let app = Router::new().route("/orders", post(create_order).layer(hook));
    format!("http://{}/orders", serve(app).await)
}

#[tokio::test]
async fn a_hooked_route_delivers_the_response_signed() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .build()
        .unwrap();
    let url = app_with(hooks.hook("order.created").unwrap()).await;

    client()
        .post(&url)
        .json(&json!({"sku": "A1"}))
        .send()
        .await
        .unwrap();

    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(r.verified(), "signature must verify");
    assert_eq!(r.json(), json!({"id": 42, "order": {"sku": "A1"}}));
    assert_eq!(r.header("x-fastapihooks-event"), "order.created");
    assert!(r.header("x-fastapihooks-id").starts_with("dlv_"));
    assert!(r.header("x-fastapihooks-timestamp").parse::<i64>().is_ok());
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("user-agent").starts_with("fastapihooks/"));
}

#[tokio::test]
async fn the_client_gets_the_handlers_response_byte_for_byte() {
    async fn odd_response() -> impl IntoResponse {
        (
            StatusCode::ACCEPTED,
            [("x-custom", "kept"), ("content-type", "application/json")],
            "{ \"spaced\" :  [1, 2.50, \"é\"] }",
        )
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .build()
        .unwrap();
    let hooked = Router::new().route(
        "/x",
        post(odd_response).layer(hooks.hook("x.done").unwrap()),
    );
    let plain = Router::new().route("/x", post(odd_response));
    let (hooked, plain) = (serve(hooked).await, serve(plain).await);

    let a = client()
        .post(format!("http://{hooked}/x"))
        .send()
        .await
        .unwrap();
    let b = client()
        .post(format!("http://{plain}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), b.status());
    assert_eq!(a.headers()["x-custom"], "kept");
    assert_eq!(a.headers()["content-length"], b.headers()["content-length"]);
    assert_eq!(a.bytes().await.unwrap(), b.bytes().await.unwrap());
    // The payload is the response bytes themselves, not a re-encoding.
    let got = receiver.wait_for(1).await;
    assert_eq!(
        &got[0].body[..],
        "{ \"spaced\" :  [1, 2.50, \"é\"] }".as_bytes()
    );
}

#[tokio::test]
async fn a_transform_shapes_the_payload() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .build()
        .unwrap();
    let hook = hooks.hook("order.created").unwrap().transform(|ctx| {
        json!({"order_id": ctx.response.as_ref().unwrap()["id"], "status": ctx.status.as_u16()})
    });
    let url = app_with(hook).await;

    client().post(&url).json(&json!({})).send().await.unwrap();

    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json(), json!({"order_id": 42, "status": 201}));
    assert!(got[0].verified());
}

#[tokio::test]
async fn include_headers_adds_request_headers_with_credentials_redacted() {
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .build()
        .unwrap();
    let url = app_with(hooks.hook("order.created").unwrap().include_headers()).await;

    client()
        .post(&url)
        .header("x-request-id", "req-7")
        .header("authorization", "Bearer top-secret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();

    let payload = receiver.wait_for(1).await[0].json();
    assert_eq!(payload["headers"]["x-request-id"], "req-7");
    assert_eq!(payload["headers"]["authorization"], "[redacted]");
    assert_eq!(payload["response"]["id"], 42);
}

#[tokio::test]
async fn include_request_works_with_a_json_extractor() {
    #[derive(Deserialize)]
    struct NewOrder {
        sku: String,
        qty: u32,
    }
    async fn typed(Json(o): Json<NewOrder>) -> Json<Value> {
        Json(json!({"sku": o.sku, "qty": o.qty, "id": 1}))
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("order.created", "/hook"))
        .build()
        .unwrap();
    let app = Router::new().route(
        "/orders",
        post(typed).layer(hooks.hook("order.created").unwrap().include_request()),
    );
    let addr = serve(app).await;

    let response = client()
        .post(format!("http://{addr}/orders"))
        .json(&json!({"sku": "B2", "qty": 3}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200, "the extractor got the whole body");
    assert_eq!(response.json::<Value>().await.unwrap()["qty"], 3);
    let payload = receiver.wait_for(1).await[0].json();
    assert_eq!(payload["request"], json!({"sku": "B2", "qty": 3}));
    assert_eq!(payload["response"]["sku"], "B2");
}

#[tokio::test]
async fn a_non_2xx_response_emits_nothing() {
    async fn fails() -> (StatusCode, Json<Value>) {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "bad"})),
        )
    }
    async fn ok() -> Json<Value> {
        Json(json!({"ok": true}))
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/fails", post(fails).layer(hooks.hook("a.failed").unwrap()))
        .route("/ok", post(ok).layer(hooks.hook("a.ok").unwrap()));
    let addr = serve(app).await;

    let status = post_to(addr, "/fails").await.status();
    assert_eq!(status, 422);
    // Shutdown drains every accepted event: after it, what the receiver has is all there is.
    post_to(addr, "/ok").await;
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-fastapihooks-event"), "a.ok");
}

#[tokio::test]
async fn a_non_json_response_is_not_emitted_unless_a_transform_handles_it() {
    async fn text() -> &'static str {
        "plain text"
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/raw", post(text).layer(hooks.hook("text.raw").unwrap()))
        .route(
            "/transformed",
            post(text).layer(hooks.hook("text.transformed").unwrap().transform(|ctx| {
                json!({"text": String::from_utf8_lossy(ctx.response_bytes.as_deref().unwrap_or_default())})
            })),
        );
    let addr = serve(app).await;

    let raw = post_to(addr, "/raw").await;
    assert_eq!(
        raw.text().await.unwrap(),
        "plain text",
        "the response itself is intact"
    );
    post_to(addr, "/transformed").await;
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-fastapihooks-event"), "text.transformed");
    assert_eq!(got[0].json(), json!({"text": "plain text"}));
}

#[tokio::test]
async fn a_response_larger_than_the_cap_is_served_whole_and_not_emitted() {
    async fn big() -> Json<Value> {
        Json(json!({"blob": "x".repeat(10_000)}))
    }
    async fn small() -> Json<Value> {
        Json(json!({"small": true}))
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .max_payload_bytes(1_000)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/big", get(big).layer(hooks.hook("blob.big").unwrap()))
        .route(
            "/small",
            get(small).layer(hooks.hook("blob.small").unwrap()),
        );
    let addr = serve(app).await;

    let body = client()
        .get(format!("http://{addr}/big"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), r#"{"blob":""}"#.len() + 10_000);
    client()
        .get(format!("http://{addr}/small"))
        .send()
        .await
        .unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-fastapihooks-event"), "blob.small");
}

#[tokio::test]
async fn when_decides_whether_to_emit() {
    async fn echo(Json(v): Json<Value>) -> Json<Value> {
        Json(v)
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .build()
        .unwrap();
    let hook = hooks.hook("order.big").unwrap().when(|ctx| {
        ctx.response
            .as_ref()
            .is_some_and(|r| r["total"].as_u64() > Some(100))
    });
    let addr = serve(Router::new().route("/o", post(echo).layer(hook))).await;

    for total in [5, 500, 50] {
        client()
            .post(format!("http://{addr}/o"))
            .json(&json!({"total": total}))
            .send()
            .await
            .unwrap();
    }
    // The three requests completed in order, and each emission happens before its response.
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json(), json!({"total": 500}));
}

#[tokio::test]
async fn the_layer_works_on_route_layer_and_on_a_whole_router() {
    async fn ok() -> Json<Value> {
        Json(json!({"ok": 1}))
    }
    let receiver = Receiver::ok().await;
    let hooks = hooks()
        .subscriber(receiver.subscription("*", "/hook"))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/a", post(ok))
        .route_layer(hooks.hook("via.route_layer").unwrap())
        .merge(
            Router::new()
                .route("/b", post(ok))
                .layer(hooks.hook("via.layer").unwrap()),
        );
    let addr = serve(app).await;

    post_to(addr, "/a").await;
    post_to(addr, "/b").await;

    let got = receiver.wait_for(2).await;
    let mut names: Vec<_> = got
        .iter()
        .map(|r| r.header("x-fastapihooks-event").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["via.layer", "via.route_layer"]);
}

#[tokio::test]
async fn the_owner_resolver_scopes_events_to_that_owners_subscriptions() {
    #[derive(Clone)]
    struct Tenant(String);
    let receiver = Receiver::ok().await;
    let store = MemoryStore::new();
    for (tenant, path) in [("acme", "/acme"), ("globex", "/globex")] {
        store
            .add_subscription(
                Subscription::new("order.created", &receiver.url(path))
                    .unwrap()
                    .with_owner(tenant),
            )
            .await
            .unwrap();
    }
    let hooks = hooks().store(store).build().unwrap();
    let hook = hooks
        .hook("order.created")
        .unwrap()
        .owner(|req| req.extensions.get::<Tenant>().map(|t| t.0.clone()));
    let app = Router::new()
        .route("/orders", post(create_order).layer(hook))
        .layer(Extension(Tenant("acme".into())));
    let addr = serve(app).await;

    client()
        .post(format!("http://{addr}/orders"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    hooks.shutdown(Duration::from_secs(5)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/acme");
}

#[tokio::test]
async fn an_invalid_event_name_is_an_error_at_startup() {
    let hooks = hooks().build().unwrap();
    let err = hooks.hook("order created").unwrap_err();
    assert!(matches!(err, Error::InvalidEventName { .. }), "{err}");
}
