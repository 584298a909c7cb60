//! The quickstart: a hooked `POST /orders` on 127.0.0.1:3000 and a receiver on 127.0.0.1:3001
//! that verifies every delivery it gets.
//!
//! ```sh
//! cargo run --example quickstart
//! curl -s -X POST 127.0.0.1:3000/orders -H 'content-type: application/json' -d '{"sku":"A1","qty":2}'
//! ```
//!
//! The receiver prints one line per delivery: `verified <delivery id> <event> <payload>` when the
//! `X-Fastapihooks-Signature` checks, `REJECTED …` otherwise. Ctrl-C stops both, draining
//! in-flight deliveries first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use fastapihooks::prelude::*;
use fastapihooks::signing::verify_sha256_hex;
use serde_json::{Value, json};

/// Demo only: real secrets come from configuration, never from source code.
const SECRET: &str = "quickstart-secret";
const APP: &str = "127.0.0.1:3000";
const RECEIVER: &str = "127.0.0.1:3001";

static NEXT_ORDER: AtomicU64 = AtomicU64::new(1);

/// The application's handler: knows nothing about webhooks.
async fn create_order(Json(order): Json<Value>) -> (StatusCode, Json<Value>) {
    let id = NEXT_ORDER.fetch_add(1, Ordering::Relaxed);
    (StatusCode::CREATED, Json(json!({"id": id, "order": order})))
}

/// The subscriber's side: verify, then print.
async fn receive(headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let verdict =
        match verify_sha256_hex(SECRET.as_bytes(), &body, header("x-fastapihooks-signature")) {
            Ok(()) => "verified",
            Err(_) => "REJECTED",
        };
    println!(
        "{verdict} {} {} {}",
        header("x-fastapihooks-id"),
        header("x-fastapihooks-event"),
        String::from_utf8_lossy(&body)
    );
    if verdict == "verified" {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,fastapihooks_core=info".into()),
        )
        .init();

    let receiver = tokio::net::TcpListener::bind(RECEIVER)
        .await
        .with_context(|| format!("cannot listen on {RECEIVER} (is another quickstart running?)"))?;
    tokio::spawn(async move {
        axum::serve(receiver, Router::new().route("/webhooks", post(receive))).await
    });

    let hooks = Hooks::builder()
        // The SSRF guard refuses loopback by default; this demo delivers to 127.0.0.1.
        .http(HttpConfig::default().allow_loopback())
        .subscriber(Subscription::new(
            "order.created",
            &format!("http://{RECEIVER}/webhooks"),
        )?)
        .secret(Secret::new(SECRET)?)
        .build()?;

    let app = Router::new().route(
        "/orders",
        post(create_order).layer(hooks.hook("order.created")?),
    );
    let listener = tokio::net::TcpListener::bind(APP)
        .await
        .with_context(|| format!("cannot listen on {APP} (is another quickstart running?)"))?;
    println!("app on http://{APP}, receiver on http://{RECEIVER}/webhooks");
    println!(
        "try: curl -s -X POST {APP}/orders -H 'content-type: application/json' -d '{{\"sku\":\"A1\",\"qty\":2}}'"
    );

    // Send one order ourselves so the first delivery shows up right away.
    tokio::spawn(async {
        let sent = reqwest::Client::new()
            .post(format!("http://{APP}/orders"))
            .json(&json!({"sku": "QUICKSTART", "qty": 1}))
            .send()
            .await;
        if let Err(e) = sent {
            eprintln!("could not send the first order: {e}");
        }
    });

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let report = hooks.shutdown(Duration::from_secs(10)).await?;
    if report.abandoned > 0 {
        eprintln!("{} deliveries were still pending at exit", report.abandoned);
    }
    Ok(())
}
