//! A `Backend` of one's own: `AuditedBackend` writes every published event to an append-only
//! audit log (one JSON line per event, flushed before `publish` returns) and then hands it to
//! another backend for delivery. If the audit write fails, the event is refused: nothing is
//! delivered that the audit log does not show. A compliance team's wish, and a replay source.
//!
//! ```sh
//! cargo run --example custom_backend
//! ```
//!
//! Needs no server: it starts a receiver on 127.0.0.1, publishes three events through the
//! audited in-process backend, and prints the audit log and what the receiver got.
//!
//! A backend only moves events; fan-out, signing and retries stay in the engine it forwards to.
//! To make a backend that a sidecar can drain, implement `Queue` as well (see `SqlBackend` and
//! `RedisBackend` in `fastapihooks::backend`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::post;
use fastapihooks::prelude::*;
use fastapihooks::{Backend, Emitter, MemoryStore, ShutdownReport};
use tokio::io::AsyncWriteExt;

/// Writes each event to an audit log, then forwards it to `inner`.
#[derive(Debug)]
pub struct AuditedBackend<B> {
    inner: B,
    log: tokio::sync::Mutex<tokio::fs::File>,
}

impl<B: Backend> AuditedBackend<B> {
    /// Appends to the file at `path` (created if missing).
    pub async fn open(inner: B, path: &Path) -> std::io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            inner,
            log: tokio::sync::Mutex::new(file),
        })
    }
}

/// One line of the audit log.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct AuditLine {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub at: String,
    pub payload: Box<serde_json::value::RawValue>,
}

#[async_trait]
impl<B: Backend> Backend for AuditedBackend<B> {
    async fn publish(&self, event: Event) -> Result<(), Error> {
        // The payload is JSON already (serialized once, when the event was made): embedded raw.
        let payload = serde_json::value::RawValue::from_string(
            String::from_utf8_lossy(event.payload()).into_owned(),
        )
        .map_err(|e| Error::storage("audit.encode", e))?;
        let line = AuditLine {
            id: event.id().to_string(),
            name: event.name().to_string(),
            owner: event.owner().map(str::to_owned),
            at: event.created_at().to_rfc3339(),
            payload,
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|e| Error::storage("audit.encode", e))?;
        bytes.push(b'\n');
        {
            // Held across write and sync: lines never interleave, and the order of the log is
            // the order of publishing.
            let mut log = self.log.lock().await;
            log.write_all(&bytes)
                .await
                .map_err(|e| Error::storage("audit.write", e))?;
            log.sync_data()
                .await
                .map_err(|e| Error::storage("audit.sync", e))?;
        }
        self.inner.publish(event).await
    }

    async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport, Error> {
        self.inner.shutdown(deadline).await
    }
}

/// What the demo saw.
#[derive(Debug)]
pub struct Outcome {
    /// The audit log's lines.
    pub audit: Vec<AuditLine>,
    /// Requests the receiver got.
    pub received: usize,
}

impl std::fmt::Debug for AuditLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.id, self.name, self.payload)
    }
}

/// Runs the demo, auditing into `log_path`.
pub async fn demo(log_path: &Path) -> anyhow::Result<Outcome> {
    let received = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let app = Router::new().route(
        "/hooks",
        post({
            let received = received.clone();
            move || async move {
                received.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The in-process backend and the emitter share one store and one configuration.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let builder = Emitter::builder()
        .shared_store(store.clone())
        .subscriber(Subscription::new("order.*", &url)?)
        .secret(Secret::new("custom-backend-demo")?)
        // The demo's receiver listens on 127.0.0.1, which the SSRF guard refuses by default.
        .http(HttpConfig::default().allow_loopback());
    // The delivery settings start the in-process backend; the emitter in front of the audit log
    // only publishes (it has no delivery settings to ignore).
    let delivering = builder.build_backend()?;
    let audited = AuditedBackend::open(delivering, log_path).await?;
    let emitter = Emitter::publisher(audited).shared_store(store).build()?;

    for (name, id) in [
        ("order.created", 1),
        ("order.paid", 1),
        ("order.created", 2),
    ] {
        emitter
            .emit(name, &serde_json::json!({ "order": id }))
            .await?;
    }
    emitter.shutdown(Duration::from_secs(10)).await?;

    let audit = tokio::fs::read_to_string(log_path)
        .await?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<AuditLine>, _>>()?;
    Ok(Outcome {
        audit,
        received: received.load(Ordering::SeqCst),
    })
}

#[tokio::main]
#[allow(dead_code, reason = "tests include this file and call `demo` instead")]
async fn main() -> anyhow::Result<()> {
    let path = PathBuf::from("fastapihooks-audit.jsonl");
    let outcome = demo(&path).await?;
    println!("audit log {}:", path.display());
    for line in &outcome.audit {
        println!("  {line:?}");
    }
    println!("the receiver got {} deliveries", outcome.received);
    Ok(())
}
