//! Exporting fastapihooks' metrics from an axum app: a Prometheus recorder installed in `main`,
//! the catalogue's descriptions registered with it, and `GET /metrics` beside a hooked route.
//!
//! ```sh
//! cargo run --example metrics
//! curl -s -X POST 127.0.0.1:3000/orders -H 'content-type: application/json' -d '{"sku":"A1"}'
//! curl -s 127.0.0.1:3000/metrics | grep fastapihooks_
//! ```
//!
//! The library records through the `metrics` facade and never installs a recorder: the
//! application picks the exporter (here `metrics-exporter-prometheus`) and installs it once.
//! Every metric, its labels and meaning: `fastapihooks::metrics::ALL` (the README's table).

use std::time::{Duration, Instant};

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use fastapihooks::metrics;
use fastapihooks::prelude::*;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};

const APP: &str = "127.0.0.1:3000";
const RECEIVER: &str = "127.0.0.1:3001";

/// The exporter, with the buckets the catalogue gives each histogram: without them the
/// exporter renders histograms as summaries.
pub fn prometheus() -> anyhow::Result<PrometheusBuilder> {
    let mut builder = PrometheusBuilder::new();
    for spec in metrics::ALL.iter().filter(|s| !s.buckets.is_empty()) {
        builder = builder.set_buckets_for_metric(Matcher::Full(spec.name.into()), spec.buckets)?;
    }
    Ok(builder)
}

/// The application's handler: knows nothing about webhooks or metrics.
async fn create_order(Json(order): Json<Value>) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({"id": 1, "order": order})))
}

/// A hooked `POST /orders`, and `GET /metrics` rendering what `handle`'s recorder holds.
pub fn app(hooks: &Hooks, handle: PrometheusHandle) -> anyhow::Result<Router> {
    Ok(Router::new()
        .route(
            "/orders",
            post(create_order).layer(hooks.hook("order.created")?),
        )
        .route("/metrics", get(move || async move { handle.render() })))
}

/// A subscriber's endpoint on `listener` that accepts every delivery.
async fn receiver(listener: tokio::net::TcpListener) -> anyhow::Result<String> {
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    let router = Router::new().route("/webhooks", post(|| async { StatusCode::NO_CONTENT }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// Hooks delivering in-process to `url`.
fn hooks(url: &str) -> anyhow::Result<Hooks> {
    Ok(Hooks::builder()
        // The SSRF guard refuses loopback by default; this demo delivers to 127.0.0.1.
        .http(HttpConfig::default().allow_loopback())
        .subscriber(Subscription::new("order.created", url)?)
        .secret(Secret::new("metrics-demo-secret")?)
        .build()?)
}

/// The whole exchange on ports of its own: one hooked `POST /orders`, then `GET /metrics` until
/// it shows the delivery. Returns that scrape. Records through the recorder `handle` renders,
/// which must be installed (globally, or as the thread's on a current-thread runtime).
pub async fn demo(handle: PrometheusHandle) -> anyhow::Result<String> {
    metrics::describe();
    let url = receiver(tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
    let hooks = hooks(&url)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_url = format!("http://{}", listener.local_addr()?);
    let router = app(&hooks, handle)?;
    tokio::spawn(async move { axum::serve(listener, router).await });

    let client = reqwest::Client::new();
    let created = client
        .post(format!("{app_url}/orders"))
        .json(&json!({"sku": "A1"}))
        .send()
        .await?;
    anyhow::ensure!(created.status() == StatusCode::CREATED, "{created:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let scrape = client
            .get(format!("{app_url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        if scrape.contains(r#"fastapihooks_deliveries_total{outcome="delivered"} 1"#) {
            break scrape;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no delivery after 10 s:\n{scrape}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    hooks.shutdown(Duration::from_secs(5)).await?;
    Ok(scrape)
}

#[tokio::main]
#[allow(dead_code, reason = "tests include this file and call `demo` instead")]
async fn main() -> anyhow::Result<()> {
    // The global recorder: installed once, by the application, before anything records.
    let handle = prometheus()?.install_recorder()?;
    metrics::describe();
    // Upkeep drains histogram samples between scrapes, so they do not pile up in memory.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let receiver_listener = tokio::net::TcpListener::bind(RECEIVER)
        .await
        .with_context(|| format!("cannot listen on {RECEIVER}"))?;
    let hooks = hooks(&receiver(receiver_listener).await?)?;
    let listener = tokio::net::TcpListener::bind(APP)
        .await
        .with_context(|| format!("cannot listen on {APP}"))?;
    println!("app on http://{APP}: POST /orders, GET /metrics");
    axum::serve(listener, app(&hooks, handle)?)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    hooks.shutdown(Duration::from_secs(10)).await?;
    Ok(())
}
