//! The sidecar's operator port (`fastapihooks start --metrics-addr`), while the sidecar runs:
//!
//! - `GET /metrics`: every metric the sidecar records, as Prometheus text — from the recorder
//!   the program installed ([`install_prometheus`], done by `fastapihooks start` only: the
//!   library crates never install one). The queue's depth and the age of its oldest pending
//!   task are sampled every 5 s into `fastapihooks_queue_depth` and
//!   `fastapihooks_queue_oldest_pending_seconds`.
//! - `GET /healthz`: `200 ok` while the process is up (a liveness probe).
//! - `GET /readyz`: `200` when the queue answers, the store answers (each within 2 s) and the
//!   worker's lease loop makes progress; `503` otherwise — also while the sidecar drains after
//!   SIGTERM (`"worker":"draining: …"`). Either way a JSON body names each check and what is
//!   wrong with it:
//!   `{"status":"unready","checks":{"queue":"ok","store":"…error…","worker":"ok"}}`.
//!
//! The port stays open while the sidecar drains (so a last scrape sees the final counts) and
//! closes once the worker has stopped.
//!
//! It serves no secret and changes nothing (no subscription, no payload, no signing secret),
//! so it may listen where a Prometheus on another host scrapes it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fastapihooks_core::metrics as names;
use fastapihooks_core::store::SubscriptionQuery;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{Queue, Store, WorkerStatus};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How long the queue and the store have to answer a readiness check (or a sample).
const CHECK_WITHIN: Duration = Duration::from_secs(2);

/// How often the queue's depth and lag are sampled into their gauges (and the recorder's
/// upkeep runs).
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Installs the global Prometheus recorder — every histogram of fastapihooks' catalogue
/// ([`fastapihooks_core::metrics::ALL`]) with its buckets, so it renders as a histogram, not a
/// summary — registers the catalogue's descriptions with it, and returns the handle `/metrics`
/// renders. For the binary's start path only: a library never installs a global recorder.
pub(crate) fn install_prometheus() -> anyhow::Result<PrometheusHandle> {
    use fastapihooks_core::metrics::{ALL, MetricKind};
    let mut builder = PrometheusBuilder::new();
    for spec in ALL {
        if spec.kind == MetricKind::Histogram && !spec.buckets.is_empty() {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(spec.name.to_owned()), spec.buckets)
                .with_context(|| format!("cannot set the buckets of {}", spec.name))?;
        }
    }
    let handle = builder.install_recorder().context(
        "cannot install the Prometheus recorder (is another metrics recorder installed?)",
    )?;
    fastapihooks_core::metrics::describe();
    Ok(handle)
}

/// What the operator port reads.
pub(crate) struct Operator<Q> {
    pub(crate) queue: Arc<Q>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) worker: WorkerStatus,
    /// The worker counts as wedged past this long without progress.
    pub(crate) stall_limit: Duration,
    /// What `/metrics` renders; `None`: no recorder, `/metrics` says so with a 404.
    pub(crate) prometheus: Option<PrometheusHandle>,
    /// The sidecar's shutdown: once cancelled, the worker drains and `/readyz` says so.
    pub(crate) draining: CancellationToken,
}

/// The longest a working sidecar goes without progress — a lease call returning (it waits
/// about a second for work, or fails and backs off at most 5 s) or a task ending (an attempt
/// ends within the HTTP timeout, which the visibility timeout exceeds) — is about one
/// visibility timeout. Twice that, and at least 30 s, leaves room for a slow store or a long
/// fan-out without calling a busy sidecar wedged; with the default 60 s visibility timeout a
/// wedged one is unready within 2 minutes.
pub(crate) fn stall_limit(visibility_timeout: Duration) -> Duration {
    (visibility_timeout * 2).max(Duration::from_secs(30))
}

/// Binds `addr`, logs the address bound (`operator port listening on http://ADDR`, the real
/// port when `addr` asked for port 0), and serves until `shutdown`; samples the queue's gauges
/// meanwhile. Fails only when `addr` cannot be bound.
pub(crate) async fn serve<Q: Queue>(
    addr: SocketAddr,
    operator: Operator<Q>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on the operator port {addr} (--metrics-addr)"))?;
    let local = listener
        .local_addr()
        .context("the operator port's address")?;
    let operator = Arc::new(operator);
    tokio::spawn(sample(Arc::clone(&operator), shutdown.clone()));
    let app = Router::new()
        .route("/metrics", get(render_metrics::<Q>))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz::<Q>))
        .with_state(operator);
    tracing::info!(addr = %local, "operator port listening on http://{local}");
    Ok(tokio::spawn(async move {
        let stopped = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = stopped {
            tracing::error!(error = %e, "the operator port failed");
        }
    }))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn render_metrics<Q: Queue>(State(operator): State<Arc<Operator<Q>>>) -> Response {
    match &operator.prometheus {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no Prometheus recorder is installed (SidecarConfig::prometheus)\n",
        )
            .into_response(),
    }
}

async fn readyz<Q: Queue>(State(operator): State<Arc<Operator<Q>>>) -> Response {
    let store_probe = SubscriptionQuery {
        limit: 1,
        ..SubscriptionQuery::default()
    };
    let (queue, store) = tokio::join!(
        answers(operator.queue.depth()),
        answers(operator.store.list_subscriptions(&store_probe)),
    );
    let worker = if operator.draining.is_cancelled() {
        Err("draining: finishing the tasks in flight, leasing no more".to_owned())
    } else {
        progressing(&operator.worker, operator.stall_limit)
    };
    let checks = [
        ("queue", queue.map(drop)),
        ("store", store.map(drop)),
        ("worker", worker),
    ];
    let ready = checks.iter().all(|(_, check)| check.is_ok());
    let body = Readiness {
        status: if ready { "ready" } else { "unready" },
        checks: checks
            .into_iter()
            .map(|(name, check)| (name, check.err().unwrap_or_else(|| "ok".to_owned())))
            .collect(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// The body of `/readyz`: `ready` or `unready`, and each check's `ok` or what is wrong.
#[derive(serde::Serialize)]
struct Readiness {
    status: &'static str,
    checks: BTreeMap<&'static str, String>,
}

/// Whether `call` answers without an error within [`CHECK_WITHIN`]; otherwise why not.
async fn answers<T>(call: impl Future<Output = fastapihooks_core::Result<T>>) -> Result<T, String> {
    match tokio::time::timeout(CHECK_WITHIN, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", CHECK_WITHIN.as_secs())),
    }
}

/// Whether the worker has started and made progress within `limit`; otherwise why not.
fn progressing(worker: &WorkerStatus, limit: Duration) -> Result<(), String> {
    if worker.since_progress().is_none() {
        return Err("not started".to_owned());
    }
    match worker.stalled_for(limit) {
        Some(stalled) => Err(format!(
            "no progress for {}s (limit {}s)",
            stalled.as_secs(),
            limit.as_secs()
        )),
        None => Ok(()),
    }
}

/// Every [`SAMPLE_EVERY`] until `shutdown`: the queue's depth and the age of its oldest pending
/// task into their gauges (0 when nothing waits, or the queue cannot tell), and the recorder's
/// upkeep. A queue that does not answer leaves the gauges as they were.
async fn sample<Q: Queue>(operator: Arc<Operator<Q>>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match answers(operator.queue.depth()).await {
            Ok(depth) => metrics::gauge!(names::QUEUE_DEPTH).set(depth as f64),
            Err(e) => tracing::debug!(error = %e, "could not sample the queue depth"),
        }
        match answers(operator.queue.oldest_pending_age()).await {
            Ok(age) => metrics::gauge!(names::QUEUE_OLDEST_PENDING_SECONDS)
                .set(age.unwrap_or_default().as_secs_f64()),
            Err(e) => {
                tracing::debug!(error = %e, "could not sample the queue's oldest pending task")
            }
        }
        if let Some(handle) = &operator.prometheus {
            handle.run_upkeep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stall_limit_is_twice_the_visibility_timeout_and_at_least_30_s() {
        assert_eq!(
            stall_limit(Duration::from_secs(60)),
            Duration::from_secs(120)
        );
        assert_eq!(stall_limit(Duration::from_secs(3)), Duration::from_secs(30));
    }
}
