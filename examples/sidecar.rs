//! An application that only **publishes** — into the transactional outbox of its own database —
//! and the `fastapihooks start` sidecar that **delivers**. The hooked route runs in a
//! transaction (`hook(..).in_transaction(&outbox)`): the order and its `order.created` event
//! are committed together, so the event exists if and only if the order does, and the app's
//! response never waits for a subscriber.
//!
//! Two terminals, from the repository root:
//!
//! ```sh
//! # 1. the app on 127.0.0.1:3000 (it also runs a demo receiver on 127.0.0.1:3001)
//! cargo run --example sidecar
//! # 2. the sidecar, draining the outbox in the same SQLite file
//! cargo run -p fastapihooks-cli -- start --queue 'sqlite://sidecar.db?mode=rwc' \
//!     --signing-secret sidecar-secret --allow-loopback
//! # then
//! curl -s -X POST 127.0.0.1:3000/orders -H 'content-type: application/json' -d '{"sku":"A1","qty":2}'
//! curl -s -X POST 127.0.0.1:3000/orders -H 'content-type: application/json' -d '{"sku":"","qty":2}'   # refused: no event
//! ```
//!
//! Kill the sidecar with `kill -9` mid-way and start it again: nothing is lost. Run it twice on
//! PostgreSQL (`postgres://…` for both URLs) and the two share the work (`FOR UPDATE SKIP
//! LOCKED`). The same app can publish through Redis instead — `RedisBackend::publish` (cargo
//! feature `redis`) with `fastapihooks start --queue redis://127.0.0.1:6379 --store <SQL URL>` —
//! but then the event is not part of the order's transaction.

use std::sync::Arc;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use fastapihooks::prelude::*;
use fastapihooks::{Hook, HookTransaction, SqlBackend, SqlStore, SubscriptionQuery};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

const DATABASE: &str = "sqlite://sidecar.db?mode=rwc";
const APP: &str = "127.0.0.1:3000";
const RECEIVER: &str = "127.0.0.1:3001";

/// What the app's routes need: the transactional `order.created` hook.
#[derive(Clone, Debug)]
pub struct AppState {
    order_created: Hook,
}

#[derive(Debug, serde::Deserialize)]
pub struct NewOrder {
    sku: String,
    qty: u32,
}

/// Opens the app's database: the store's tables and the outbox (migrated by `SqlStore::connect`)
/// beside the app's own `orders` table; and the hooks, which only publish (into the outbox).
pub async fn open(url: &str) -> anyhow::Result<(SqlStore, AppState)> {
    let store = SqlStore::connect(url).await?;
    store
        .connection()
        .execute_unprepared(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL, qty INTEGER NOT NULL)",
        )
        .await?;
    let outbox = Arc::new(SqlBackend::for_store(&store));
    let hooks = Hooks::shared_publisher(outbox.clone())
        .store(store.clone())
        .build()?;
    // The route runs in a transaction of the outbox's database; the event is written into the
    // outbox in that same transaction, committed only with a 2xx response.
    let order_created = hooks.hook("order.created")?.in_transaction(&outbox);
    Ok((store, AppState { order_created }))
}

/// `POST /orders`: the order, written through the hook's transaction. The hook adds the event to
/// the same transaction and commits both — or, on an error or a 4xx, neither.
pub async fn create_order(
    tx: HookTransaction,
    Json(order): Json<NewOrder>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let inserted = tx
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO orders (sku, qty) VALUES (?, ?)",
            [order.sku.clone().into(), order.qty.into()],
        ))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // A business rule that fails after the write: the 422 rolls the order back, and no event
    // is written.
    if order.sku.is_empty() {
        return Err((StatusCode::UNPROCESSABLE_ENTITY, "sku is empty".to_owned()));
    }
    let id = inserted.last_insert_id();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "sku": order.sku, "qty": order.qty})),
    ))
}

/// The app's routes.
pub fn app(state: AppState) -> Router {
    Router::new().route("/orders", post(create_order).layer(state.order_created))
}

/// Subscribes `url` to `order.*` unless it already is.
pub async fn subscribe_once(store: &SqlStore, url: &str) -> anyhow::Result<()> {
    let existing = store
        .list_subscriptions(&SubscriptionQuery::default())
        .await?;
    if !existing.iter().any(|s| s.url.as_str() == url) {
        store
            .add_subscription(Subscription::new("order.*", url)?)
            .await?;
    }
    Ok(())
}

#[tokio::main]
#[allow(
    dead_code,
    reason = "tests include this file and call its functions instead"
)]
async fn main() -> anyhow::Result<()> {
    let receiver = tokio::net::TcpListener::bind(RECEIVER)
        .await
        .with_context(|| format!("cannot listen on {RECEIVER}"))?;
    let print = post(|headers: axum::http::HeaderMap, body: String| async move {
        let id = headers
            .get("x-fastapihooks-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        println!("received {id} {body}");
        StatusCode::NO_CONTENT
    });
    tokio::spawn(async move { axum::serve(receiver, Router::new().route("/hooks", print)).await });

    let (store, state) = open(DATABASE).await?;
    subscribe_once(&store, &format!("http://{RECEIVER}/hooks")).await?;
    let listener = tokio::net::TcpListener::bind(APP)
        .await
        .with_context(|| format!("cannot listen on {APP}"))?;
    println!("app on http://{APP}; outbox in {DATABASE}");
    println!(
        "deliver with: cargo run -p fastapihooks-cli -- start --queue '{DATABASE}' --signing-secret sidecar-secret --allow-loopback"
    );
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
