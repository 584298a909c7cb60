//! Receiving GitHub webhooks the way they should be received: **verify** the signature over the
//! raw body, **store once** in the inbox (keyed on `X-GitHub-Delivery`, so a redelivery is
//! acknowledged and not processed again), **acknowledge at once**, and **process** later,
//! through a queue with retries, by re-dispatching a fresh internal request into this app's
//! own route `/internal/github/process` — which answers 404 to anyone calling it from outside.
//!
//! ```sh
//! cargo run --example receive_github      # listens on 127.0.0.1:3000, inbox in receive_github.db
//! body='{"ref":"refs/heads/main","pusher":{"name":"octocat"}}'
//! sig="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "It's a Secret to Everybody" -hex | cut -d' ' -f2)"
//! curl -i 127.0.0.1:3000/webhooks/github -H "X-Hub-Signature-256: $sig" \
//!      -H 'X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958' -H 'X-GitHub-Event: push' \
//!      -H 'content-type: application/json' -d "$body"
//! cargo run -p fastapihooks-cli -- inbox list --database 'sqlite://receive_github.db?mode=rwc'
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{post, post_service};
use axum::{Json, Router};
use fastapihooks::advanced::{CancellationToken, Worker, WorkerConfig};
use fastapihooks::inbox::{InboxProcessing, key};
use fastapihooks::receive::{InboxRoute, Redispatch, Redispatched, WebhookVerifier};
use fastapihooks::signing::{Sha256Hex, Verifier};
use fastapihooks::{OutboxTable, RetryPolicy, Secret, SqlBackend, SqlStore};

/// GitHub's example secret (from its documentation): use your webhook's own.
pub const SECRET: &str = "It's a Secret to Everybody";

/// The part of a push event this app uses.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Push {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub pusher: Pusher,
}

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct Pusher {
    pub name: String,
}

/// The app's state: here, the pushes it processed.
#[derive(Clone, Debug, Default)]
pub struct AppState {
    pub pushes: Arc<Mutex<Vec<(String, Push)>>>,
}

/// The processing: an ordinary route of the app, with its state and extractors. `Redispatched`
/// makes it internal (404 from the network) and says which webhook this is.
async fn process_push(
    State(state): State<AppState>,
    hook: Redispatched,
    Json(push): Json<Push>,
) -> StatusCode {
    tracing::info!(inbox = %hook.inbox_id, delivery = %hook.external_id, "{} pushed to {}", push.pusher.name, push.git_ref);
    state
        .pushes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((hook.external_id, push));
    StatusCode::NO_CONTENT
}

/// The receiving app and the worker that processes what it received.
#[derive(Debug)]
pub struct Receiving {
    pub app: Router,
    pub worker: Worker<SqlBackend>,
    pub state: AppState,
    pub inbox: Arc<SqlStore>,
}

/// Opens the inbox in `database` (migrated) and builds the app: the public route, the internal
/// route, and the worker that re-dispatches into the app. The inbox's queue is the SQL outbox's
/// `OutboxTable::Inbox` in the same database — not the table `fastapihooks start` drains.
pub async fn receiving(database: &str, retry: RetryPolicy) -> anyhow::Result<Receiving> {
    let inbox = Arc::new(SqlStore::connect(database).await?);
    let queue = Arc::new(SqlBackend::for_store(&inbox).on_table(OutboxTable::Inbox));
    let github = Verifier::with_signer(Arc::new(
        Sha256Hex::new().signature_header("X-Hub-Signature-256")?,
    ))
    .secret(Secret::new(SECRET)?);
    let public = InboxRoute::new(
        "github",
        WebhookVerifier::new(github),
        key::github(),
        inbox.clone(),
        queue.clone(),
    );
    let state = AppState::default();
    let app = Router::new()
        .route("/webhooks/github", post_service(public))
        .route("/internal/github/process", post(process_push))
        .with_state(state.clone());
    let processor = Redispatch::new(app.clone()).route("github", "/internal/github/process");
    let processing = InboxProcessing::new(inbox.clone(), Arc::new(processor)).retry(retry);
    let worker = Worker::for_inbox(queue, processing, WorkerConfig::default())?;
    Ok(Receiving {
        app,
        worker,
        state,
        inbox,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let retry = RetryPolicy::exponential(8, Duration::from_secs(2));
    let Receiving { app, worker, .. } =
        receiving("sqlite://receive_github.db?mode=rwc", retry).await?;
    let shutdown = CancellationToken::new();
    let processing = tokio::spawn(worker.run(shutdown.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("receiving GitHub webhooks on http://127.0.0.1:3000/webhooks/github");
    axum::serve(listener, app)
        .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
        .await?;
    shutdown.cancel();
    let report = processing.await?;
    println!("processed {} webhooks", report.processed);
    Ok(())
}
