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
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::signing::Signer;
use fastapihooks_core::trace::TraceContext;

use crate::admin::AdminPort;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{
    Emitter, HttpConfig, Queue, RetryPolicy, Secret, Store, Worker, WorkerConfig, WorkerReport,
    WorkerStatus,
};
pub use metrics_exporter_prometheus::PrometheusHandle;

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
    /// The operator port: `/metrics`, `/healthz` and `/readyz` on this address while the
    /// sidecar runs (`fastapihooks start --metrics-addr`); port 0 picks a free port, logged as
    /// `operator port listening on http://ADDR`. `None` (the default): no port.
    pub metrics_addr: Option<SocketAddr>,
    /// What `/metrics` renders: the handle of the Prometheus recorder the program installed
    /// (`fastapihooks start --metrics-addr` installs one). `None`: `/metrics` answers 404 —
    /// this library never installs a global recorder —, `/healthz` and `/readyz` still answer.
    pub prometheus: Option<PrometheusHandle>,
    /// How often a progress line is logged while the sidecar works (what it delivered,
    /// retried and dead-lettered since the last line, per second, and the queue depth);
    /// nothing while it is idle but one `idle` line. `None` (the default) or zero: never
    /// (`fastapihooks start --progress-every`, 60 s there).
    pub progress_every: Option<Duration>,
    /// Adds a `subscription` label to the delivery and attempt metrics (`fastapihooks start
    /// --metrics-per-subscription`); off by default for cardinality, see
    /// [`EmitterBuilder::metrics_per_subscription`](fastapihooks_core::EmitterBuilder::metrics_per_subscription).
    pub metrics_per_subscription: bool,
    /// Joins each attempt span to its event's trace in a tracing system (`fastapihooks start
    /// --otlp-endpoint` sets OpenTelemetry's). `None` (the default): spans carry the trace id as
    /// a field only.
    pub trace_context: Option<Arc<dyn TraceContext>>,
    /// The management API ([`AdminPort`]: subscriptions, deliveries, replay) on its own
    /// address while the sidecar runs (`fastapihooks start --admin-addr --admin-token`).
    /// `None` (the default): not served.
    pub admin: Option<AdminPort>,
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

    /// Serves the operator port on `addr` ([`metrics_addr`](Self::metrics_addr)), rendering
    /// `/metrics` from `prometheus` when given.
    pub fn operator_port(mut self, addr: SocketAddr, prometheus: Option<PrometheusHandle>) -> Self {
        self.metrics_addr = Some(addr);
        self.prometheus = prometheus;
        self
    }

    /// Logs a progress line every `every` while the sidecar works
    /// ([`progress_every`](Self::progress_every)).
    pub fn progress_every(mut self, every: Duration) -> Self {
        self.progress_every = Some(every);
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
        .endpoint_health(config.health)
        .metrics_per_subscription(config.metrics_per_subscription);
    if let Some(context) = config.trace_context {
        builder = builder.trace_context(context);
    }
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
    let worker = Worker::new(Arc::clone(&queue), engine, config.worker)
        .context("cannot start the sidecar worker")?;
    let status = worker.status();
    // Before the worker runs, so a probe answers from the start; closed after the drain, so
    // a probe reads `draining` and a last scrape sees the final counts.
    let port_closed = CancellationToken::new();
    let operator = match config.metrics_addr {
        Some(addr) => {
            let operator = crate::http::Operator {
                stall_limit: crate::http::stall_limit(queue.visibility_timeout()),
                queue: Arc::clone(&queue),
                store: Arc::clone(&retention_store),
                worker: status.clone(),
                prometheus: config.prometheus,
                draining: shutdown.clone(),
            };
            Some(crate::http::serve(addr, operator, port_closed.clone()).await?)
        }
        None => None,
    };
    let admin = match config.admin {
        Some(port) => {
            let backend: Arc<dyn fastapihooks_core::Backend> = queue.clone();
            let store = Arc::clone(&retention_store);
            Some(crate::admin::serve(port, store, backend, port_closed.clone()).await?)
        }
        None => None,
    };
    let progress = config
        .progress_every
        .filter(|every| !every.is_zero())
        .map(|every| tokio::spawn(log_progress(queue, status, every, shutdown.clone())));
    tracing::info!("sidecar started");
    let retention = config
        .retention
        .map(|r| crate::retention::spawn(r, retention_store, shutdown.clone()));
    let report = worker.run(shutdown).await;
    port_closed.cancel();
    for port in [operator, admin].into_iter().flatten() {
        // Gracefully, within a second (a client's keep-alive connection may linger).
        let _ = tokio::time::timeout(Duration::from_secs(1), port).await;
    }
    // Each stops at the shutdown by itself; never waited for.
    for task in [retention, progress].into_iter().flatten() {
        task.abort();
    }
    Ok(report)
}

/// Every `every` until `shutdown`, one info line of what the worker did since the last one
/// ([`Progress`]) — only when it did something; the first time it did nothing, one `idle` line.
async fn log_progress<Q: Queue>(
    queue: Arc<Q>,
    status: WorkerStatus,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (status.report(), tokio::time::Instant::now());
    let mut idle = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = (status.report(), tokio::time::Instant::now());
        let progress = Progress::between(&last.0, &now.0, now.1 - last.1);
        last = now;
        let in_flight = status.in_flight();
        // Tasks still running (slow receivers) are work, not idleness.
        if progress.is_idle() && in_flight == 0 {
            if !idle {
                tracing::info!(
                    "idle: nothing delivered, retried or dead-lettered since the last line"
                );
                idle = true;
            }
            continue;
        }
        idle = false;
        let depth = tokio::time::timeout(Duration::from_secs(2), queue.depth())
            .await
            .ok()
            .and_then(Result::ok);
        progress.log(depth, in_flight);
    }
}

/// What the worker did between two of its reports, `over` apart.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Progress {
    delivered: u64,
    retried: u64,
    dead_lettered: u64,
    fanned_out: u64,
    skipped: u64,
    errors: u64,
    over: Duration,
}

impl Progress {
    fn between(before: &WorkerReport, after: &WorkerReport, over: Duration) -> Self {
        Self {
            delivered: after.delivered.saturating_sub(before.delivered),
            retried: after.retried.saturating_sub(before.retried),
            dead_lettered: after.dead_lettered.saturating_sub(before.dead_lettered),
            fanned_out: after.fanned_out.saturating_sub(before.fanned_out),
            skipped: after.skipped.saturating_sub(before.skipped),
            errors: after.errors.saturating_sub(before.errors),
            over,
        }
    }

    fn is_idle(&self) -> bool {
        self.delivered == 0
            && self.retried == 0
            && self.dead_lettered == 0
            && self.fanned_out == 0
            && self.skipped == 0
            && self.errors == 0
    }

    /// `n` per second over the interval, to two decimals.
    fn per_second(&self, n: u64) -> f64 {
        let seconds = self.over.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        (n as f64 / seconds * 100.0).round() / 100.0
    }

    /// The line itself: the counts as fields too (`fields.delivered`, … in JSON logs).
    fn log(&self, queue_depth: Option<u64>, in_flight: usize) {
        let depth = queue_depth.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        tracing::info!(
            delivered = self.delivered,
            delivered_per_second = self.per_second(self.delivered),
            retried = self.retried,
            retried_per_second = self.per_second(self.retried),
            dead_lettered = self.dead_lettered,
            dead_lettered_per_second = self.per_second(self.dead_lettered),
            fanned_out = self.fanned_out,
            skipped = self.skipped,
            errors = self.errors,
            queue_depth,
            in_flight,
            interval_seconds = self.over.as_secs_f64().round(),
            "progress: delivered {} ({}/s), retried {} ({}/s), dead-lettered {} ({}/s), fanned out {}, skipped {}, errors {}, in flight {in_flight}, queue depth {depth} in the last {}",
            self.delivered,
            self.per_second(self.delivered),
            self.retried,
            self.per_second(self.retried),
            self.dead_lettered,
            self.per_second(self.dead_lettered),
            self.fanned_out,
            self.skipped,
            self.errors,
            humantime::format_duration(Duration::from_secs(self.over.as_secs_f64().round() as u64)),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_what_happened_between_two_reports_and_per_second() {
        let before = WorkerReport {
            delivered: 10,
            retried: 1,
            ..WorkerReport::default()
        };
        let after = WorkerReport {
            delivered: 130,
            retried: 4,
            dead_lettered: 1,
            ..WorkerReport::default()
        };
        let progress = Progress::between(&before, &after, Duration::from_secs(60));
        assert_eq!(progress.delivered, 120);
        assert_eq!(progress.retried, 3);
        assert_eq!(progress.dead_lettered, 1);
        assert_eq!(progress.per_second(progress.delivered), 2.0);
        assert_eq!(progress.per_second(progress.retried), 0.05);
        assert!(!progress.is_idle());
        assert!(Progress::between(&after, &after, Duration::from_secs(60)).is_idle());
    }
}
