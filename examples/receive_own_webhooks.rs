//! One service receiving another's webhooks — both running this crate. The sender is an
//! ordinary `Emitter` signing with Standard Webhooks; the receiver verifies, stores each
//! webhook once (keyed on `webhook-id`, the sender's delivery id, so a redelivery is
//! acknowledged and not processed again), and processes it through its inbox worker by
//! re-dispatching into its own route.
//!
//! Events about one order may arrive out of order (a retry of version 1 landing after
//! version 2). The receiver reads each event's place — the order id and its `version` — when it
//! stores it, and the processing route asks the inbox whether a newer version of the same order
//! was already processed: a stale event is skipped instead of overwriting newer state.
//!
//! ```sh
//! cargo run --example receive_own_webhooks
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, post_service};
use axum::{Json, Router};
use fastapihooks::advanced::{CancellationToken, Worker, WorkerConfig};
use fastapihooks::inbox::{Inbox, InboxProcessing, OrderingKey, key};
use fastapihooks::receive::{InboxRoute, Redispatch, Redispatched, WebhookVerifier};
use fastapihooks::signing::{SignatureScheme, Verifier};
use fastapihooks::{
    Emitter, HttpConfig, OutboxTable, RetryPolicy, Secret, SqlBackend, SqlStore, Subscription,
};

/// The secret the two services share (Standard Webhooks form: `whsec_` and base64).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the sender sends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderUpdated {
    pub id: u64,
    pub version: i64,
    pub status: String,
}

/// The receiver's state: the orders as it knows them, and the stale events it skipped.
#[derive(Clone, Debug)]
pub struct Orders {
    inbox: Arc<SqlStore>,
    pub known: Arc<Mutex<HashMap<u64, OrderUpdated>>>,
    pub skipped: Arc<Mutex<Vec<OrderUpdated>>>,
}

/// An event's place: the order it is about, and its version.
fn ordering(_headers: &http::HeaderMap, body: &[u8]) -> Option<OrderingKey> {
    let order: OrderUpdated = serde_json::from_slice(body).ok()?;
    Some(OrderingKey::new(
        format!("order:{}", order.id),
        order.version,
    ))
}

/// The processing route: skips an event older than one already processed for the same order.
async fn apply(
    State(orders): State<Orders>,
    hook: Redispatched,
    Json(update): Json<OrderUpdated>,
) -> StatusCode {
    if let Some(place) = &hook.ordering {
        match orders.inbox.newer_processed(&hook.source, place).await {
            Ok(true) => {
                tracing::info!(inbox = %hook.inbox_id, order = update.id, version = update.version, "a newer version was processed already: skipped");
                orders
                    .skipped
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(update);
                return StatusCode::NO_CONTENT;
            }
            Ok(false) => {}
            // Retried later by the inbox worker.
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    orders
        .known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(update.id, update);
    StatusCode::NO_CONTENT
}

/// The receiving service: its router (public and internal routes) and its inbox worker.
#[derive(Debug)]
pub struct Receiver {
    pub app: Router,
    pub worker: Worker<SqlBackend>,
    pub orders: Orders,
    pub inbox: Arc<SqlStore>,
}

/// Builds the receiver on the inbox in `database`.
pub async fn receiver(database: &str) -> anyhow::Result<Receiver> {
    let inbox = Arc::new(SqlStore::connect(database).await?);
    let queue = Arc::new(SqlBackend::for_store(&inbox).on_table(OutboxTable::Inbox));
    let verifier = Verifier::new(SignatureScheme::StandardWebhooks).secret(Secret::new(SECRET)?);
    let public = InboxRoute::new(
        "shop",
        WebhookVerifier::new(verifier),
        key::standard_webhooks(),
        inbox.clone(),
        queue.clone(),
    )
    .ordering(ordering);
    let orders = Orders {
        inbox: inbox.clone(),
        known: Arc::default(),
        skipped: Arc::default(),
    };
    let app = Router::new()
        .route("/webhooks/shop", post_service(public))
        .route("/internal/shop/process", post(apply))
        .with_state(orders.clone());
    let processor = Redispatch::new(app.clone()).route("shop", "/internal/shop/process");
    let processing = InboxProcessing::new(inbox.clone(), Arc::new(processor))
        .retry(RetryPolicy::exponential(5, Duration::from_millis(200)));
    let worker = Worker::for_inbox(queue, processing, WorkerConfig::default())?;
    Ok(Receiver {
        app,
        worker,
        orders,
        inbox,
    })
}

/// The sending service: an `Emitter` delivering `order.updated` to `url`, signed with Standard
/// Webhooks.
pub fn sender(url: &str) -> anyhow::Result<Emitter> {
    let subscription = Subscription::new("order.updated", url)?
        .with_secret(Secret::new(SECRET)?)
        .with_signature_scheme(SignatureScheme::StandardWebhooks);
    Ok(Emitter::builder()
        .subscriber(subscription)
        .secret(Secret::new(SECRET)?)
        // The receiver runs on 127.0.0.1 in this example.
        .http(HttpConfig::default().allow_loopback())
        .retry(RetryPolicy::exponential(3, Duration::from_millis(100)))
        .build()?)
}

/// What [`demo`] saw.
#[derive(Debug)]
pub struct Outcome {
    pub known: HashMap<u64, OrderUpdated>,
    pub skipped: Vec<OrderUpdated>,
}

/// Sends order 7 at version 2, waits until it is processed, then sends version 1 late: the
/// receiver keeps version 2 and skips version 1.
pub async fn demo(database: &str) -> anyhow::Result<Outcome> {
    let Receiver {
        app,
        worker,
        orders,
        ..
    } = receiver(database).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/shop", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let shutdown = CancellationToken::new();
    let processing = tokio::spawn(worker.run(shutdown.clone()));
    let shop = sender(&url)?;
    let update = |version: i64, status: &str| OrderUpdated {
        id: 7,
        version,
        status: status.into(),
    };
    shop.emit("order.updated", &update(2, "shipped")).await?;
    let applied = |orders: &Orders| {
        orders
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&7)
            .map(|o| o.version)
    };
    wait_until(|| applied(&orders) == Some(2)).await?;
    shop.emit("order.updated", &update(1, "paid")).await?;
    wait_until(|| {
        !orders
            .skipped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    })
    .await?;
    shop.shutdown(Duration::from_secs(5)).await?;
    shutdown.cancel();
    processing.await?;
    server.abort();
    let known = orders
        .known
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let skipped = orders
        .skipped
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Outcome { known, skipped })
}

async fn wait_until(done: impl Fn() -> bool) -> anyhow::Result<()> {
    for _ in 0..200 {
        if done() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("not processed within 10 s")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let dir = tempfile::tempdir()?;
    let database = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("receiver.db").display()
    );
    let outcome = demo(&database).await?;
    println!(
        "order 7 as the receiver knows it: {:?}",
        outcome.known.get(&7)
    );
    println!("skipped as stale: {:?}", outcome.skipped);
    Ok(())
}
