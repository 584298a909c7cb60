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
//! let config = SidecarConfig::default().secret(Secret::new("change-me")?); // or `.unsigned()`
//! let report = run_sidecar(queue, store, config).await?; // until SIGTERM / Ctrl-C
//! println!("delivered {}", report.delivered);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use anyhow::Context as _;
use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::signing::Signer;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{
    Emitter, HttpConfig, Queue, RetryPolicy, Secret, Store, Worker, WorkerConfig, WorkerReport,
};

pub use crate::retention::Retention;

/// How the sidecar signs, sends, retries and paces deliveries.
///
/// Deliveries are signed unless asked otherwise: without a [`secret`](Self::secret) the sidecar
/// refuses to start, unless [`unsigned`](Self::unsigned) says that deliveries to subscriptions
/// without a secret of their own go out unsigned on purpose.
#[derive(Clone, Debug, Default)]
pub struct SidecarConfig {
    /// The secret that signs deliveries to subscriptions without a secret of their own.
    pub secret: Option<Secret>,
    /// Deliver to subscriptions without a secret of their own unsigned, when `secret` is `None`.
    pub unsigned: bool,
    /// The signature scheme. `None`: [`Sha256Hex`](fastapihooks_core::signing::Sha256Hex) with
    /// its `X-Fastapihooks-*` headers.
    pub signer: Option<Arc<dyn Signer>>,
    /// The HTTP client's timeouts and SSRF guard.
    pub http: HttpConfig,
    /// When failed deliveries are tried again.
    pub retry: RetryPolicy,
    /// Concurrency, lease batch size and drain deadline.
    pub worker: WorkerConfig,
    /// When a subscription whose endpoint keeps failing is disabled (default: after a day of
    /// failures and at least 10 failed attempts; [`HealthPolicy::never`] never).
    pub health: HealthPolicy,
    /// How long delivered history is kept: pruned in the background while the sidecar runs
    /// (`fastapihooks start --retain`). `None` (the default): kept for ever.
    pub retention: Option<Retention>,
}

impl SidecarConfig {
    /// Sets the default signing secret.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Delivers to subscriptions without a secret of their own unsigned (when no
    /// [`secret`](Self::secret) is set). Without this or a secret, the sidecar refuses to start.
    pub fn unsigned(mut self) -> Self {
        self.unsigned = true;
        self
    }

    /// Prunes delivered history older than `retention.retain` in the background while the
    /// sidecar runs ([`Retention`]).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Sets the signature scheme, e.g. [`StandardWebhooks`](fastapihooks_core::signing::StandardWebhooks)
    /// or a [`Sha256Hex`](fastapihooks_core::signing::Sha256Hex) with other header names.
    pub fn signer(mut self, signer: impl Signer + 'static) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }
}

/// What [`run_sidecar`] fails with when a second SIGTERM or SIGINT ended the drain early: the
/// deliveries in flight were abandoned (their leases expire and another sidecar takes them
/// over). A program that gets it should exit at once; `fastapihooks start` exits with status
/// 130.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainAborted {
    /// The second signal, e.g. `SIGTERM`.
    pub signal: &'static str,
}

impl fmt::Display for DrainAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drain aborted by a second {}: in-flight deliveries were abandoned and come back when their leases expire",
            self.signal
        )
    }
}

impl std::error::Error for DrainAborted {}

/// Drains `queue` until SIGTERM or SIGINT (Ctrl-C), then stops leasing and finishes in-flight
/// deliveries within the drain deadline. Returns what the worker did.
///
/// A second signal while draining stops waiting at once: the call fails with [`DrainAborted`]
/// (find it with `error.downcast_ref::<DrainAborted>()`), and what was in flight is abandoned
/// and comes back to a sidecar when its lease expires. This function never exits the process;
/// deciding to (status 130, as `fastapihooks start` does) is the caller's.
///
/// Fails before delivering anything when the configuration is inconsistent (no secret and not
/// `unsigned`, a visibility timeout that does not exceed the HTTP timeout) or the signal
/// handlers cannot be installed.
pub async fn run_sidecar<Q: Queue>(
    queue: Arc<Q>,
    store: Arc<dyn Store>,
    config: SidecarConfig,
) -> anyhow::Result<WorkerReport> {
    let shutdown = CancellationToken::new();
    let (signals, aborted) = shutdown_on_signal(shutdown.clone())?;
    let result = tokio::select! {
        report = run_sidecar_until(queue, store, config, shutdown) => report,
        Ok(signal) = aborted => Err(DrainAborted { signal }.into()),
    };
    signals.abort();
    result
}

/// Like [`run_sidecar`], stopped by cancelling `shutdown` instead of by a signal (to embed the
/// sidecar in a larger program, or in tests).
pub async fn run_sidecar_until<Q: Queue>(
    queue: Arc<Q>,
    store: Arc<dyn Store>,
    config: SidecarConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<WorkerReport> {
    if config.secret.is_none() && !config.unsigned {
        anyhow::bail!(
            "no signing secret: deliveries to subscriptions without a secret of their own would \
             go out unsigned; set `SidecarConfig::secret`, or set `SidecarConfig::unsigned` to \
             deliver them unsigned on purpose"
        );
    }
    let retention_store = Arc::clone(&store);
    let mut builder = Emitter::builder()
        .shared_store(store)
        .http(config.http)
        .retry(config.retry)
        .endpoint_health(config.health);
    if let Some(secret) = config.secret {
        builder = builder.secret(secret);
    }
    if config.unsigned {
        builder = builder.unsigned();
    }
    if let Some(signer) = config.signer {
        builder = builder.signer(signer);
    }
    let engine = builder
        .build_engine()
        .context("cannot build the delivery engine")?;
    let worker =
        Worker::new(queue, engine, config.worker).context("cannot start the sidecar worker")?;
    tracing::info!("sidecar started");
    let retention = config
        .retention
        .map(|r| crate::retention::spawn(r, retention_store, shutdown.clone()));
    let report = worker.run(shutdown).await;
    if let Some(retention) = retention {
        // It stops at the shutdown by itself; never waited for.
        retention.abort();
    }
    Ok(report)
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT; on the second, sends its name through the
/// returned receiver.
fn shutdown_on_signal(
    shutdown: CancellationToken,
) -> anyhow::Result<(
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<&'static str>,
)> {
    let (abort, aborted) = tokio::sync::oneshot::channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let task = tokio::spawn(async move {
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
                "second signal: stopping without finishing the drain; in-flight deliveries come back when their leases expire"
            );
            let _ = abort.send(name);
        });
        Ok((task, aborted))
    }
    #[cfg(not(unix))]
    {
        let task = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            tracing::info!("stopping: no new leases, draining in-flight deliveries");
            shutdown.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::warn!(
                    "second Ctrl-C: stopping without finishing the drain; in-flight deliveries come back when their leases expire"
                );
                let _ = abort.send("SIGINT");
            }
        });
        Ok((task, aborted))
    }
}
