//! The sidecar as a library: [`run_sidecar`] drains any [`Queue`] into any [`Store`] exactly as
//! `fastapihooks start` does, so a queue or store of one's own gets the same sidecar in a
//! five-line `main`:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn my_queue() -> Arc<fastapihooks_core::MemoryStore> { unimplemented!() }
//! # async fn demo<Q: fastapihooks_core::Queue>(queue: Arc<Q>) -> anyhow::Result<()> {
//! use fastapihooks_cli::sidecar::{SidecarConfig, run_sidecar};
//! use fastapihooks_core::{MemoryStore, Secret};
//!
//! let store = Arc::new(MemoryStore::new()); // or your own `Store`
//! let config = SidecarConfig::default().secret(Secret::new("change-me")?);
//! let report = run_sidecar(queue, store, config).await?; // until SIGTERM / Ctrl-C
//! println!("delivered {}", report.delivered);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use anyhow::Context as _;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{
    Emitter, HttpConfig, Queue, RetryPolicy, Secret, Store, Worker, WorkerConfig, WorkerReport,
};

/// How the sidecar signs, sends, retries and paces deliveries.
#[derive(Clone, Debug, Default)]
pub struct SidecarConfig {
    /// The secret that signs deliveries to subscriptions without a secret of their own.
    pub secret: Option<Secret>,
    /// The HTTP client's timeouts and SSRF guard.
    pub http: HttpConfig,
    /// When failed deliveries are tried again.
    pub retry: RetryPolicy,
    /// Concurrency, lease batch size and drain deadline.
    pub worker: WorkerConfig,
}

impl SidecarConfig {
    /// Sets the default signing secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }
}

/// Drains `queue` until SIGTERM or SIGINT (Ctrl-C), then stops leasing and finishes in-flight
/// deliveries within the drain deadline. Returns what the worker did.
///
/// A second signal while draining exits the process at once (status 130): what was in flight
/// is abandoned, and comes back to a sidecar when its lease expires.
///
/// Fails before delivering anything when the configuration is inconsistent (e.g. a visibility
/// timeout that does not exceed the HTTP timeout) or the signal handlers cannot be installed.
pub async fn run_sidecar<Q: Queue>(
    queue: Arc<Q>,
    store: Arc<dyn Store>,
    config: SidecarConfig,
) -> anyhow::Result<WorkerReport> {
    let shutdown = CancellationToken::new();
    let signals = shutdown_on_signal(shutdown.clone())?;
    let report = run_sidecar_until(queue, store, config, shutdown).await;
    signals.abort();
    report
}

/// Like [`run_sidecar`], stopped by cancelling `shutdown` instead of by a signal (to embed the
/// sidecar in a larger program, or in tests).
pub async fn run_sidecar_until<Q: Queue>(
    queue: Arc<Q>,
    store: Arc<dyn Store>,
    config: SidecarConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<WorkerReport> {
    let mut builder = Emitter::builder()
        .shared_store(store)
        .http(config.http)
        .retry(config.retry);
    if let Some(secret) = config.secret {
        builder = builder.secret(secret);
    }
    let engine = builder
        .build_engine()
        .context("cannot build the delivery engine")?;
    let worker =
        Worker::new(queue, engine, config.worker).context("cannot start the sidecar worker")?;
    tracing::info!("sidecar started");
    Ok(worker.run(shutdown).await)
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; exits on the second.
fn shutdown_on_signal(shutdown: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(
                signal = name,
                "stopping: no new leases, draining in-flight deliveries"
            );
            shutdown.cancel();
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::warn!(
                signal = name,
                "second signal: exiting without finishing the drain; in-flight deliveries come back when their leases expire"
            );
            std::process::exit(130);
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("stopping: no new leases, draining in-flight deliveries");
                shutdown.cancel();
            }
        }))
    }
}
