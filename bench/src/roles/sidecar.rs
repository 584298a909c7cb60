//! The sidecar: the core's `Worker` draining the Redis queue or the PostgreSQL outbox into the
//! receiver, the history in a `SqlStore` on PostgreSQL — configured as `fastapihooks start`
//! configures it with its default flags (`--signing-secret` the benchmark's, `--allow-loopback`,
//! `--allow-volatile-redis`, 10 store connections, the outbox in the store's database, its
//! logger at `info` on stderr).
//!
//! Prints [`SidecarReady`] once connected, runs until the conductor closes its stdin, then
//! stops leasing, drains what is in flight and prints [`SidecarDone`].

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use fastapihooks_core::health::HealthPolicy;
use fastapihooks_core::signing::Sha256Hex;
use fastapihooks_core::worker::CancellationToken;
use fastapihooks_core::{
    Emitter, HttpConfig, Queue, RetryPolicy, Secret, SqlBackend, SqlOutboxConfig, SqlStore, Worker,
    WorkerConfig,
};

use crate::durable::QueueKind;
use crate::durable::place::Place;
use crate::proc_stats::{own_cpu_ms, own_peak_rss_kib, unix_ns};
use crate::wire::{SECRET, SidecarDone, SidecarReady};

/// Arguments of the `sidecar` part.
#[derive(Debug, Args)]
pub struct SidecarArgs {
    /// The queue to drain.
    #[arg(long, value_enum)]
    queue: QueueKind,
    /// The run's store (required) and Redis queue (with `--queue redis`).
    #[command(flatten)]
    place: Place,
    /// Requests in flight at once (`fastapihooks start --concurrency`).
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Tasks in flight at once (`fastapihooks start --tasks-in-flight`; default 4 ×
    /// `--concurrency`).
    #[arg(long, env = "FASTAPIHOOKS_TASKS_IN_FLIGHT")]
    tasks_in_flight: Option<usize>,
}

/// Drains until stdin closes, then reports.
pub fn run(args: SidecarArgs) -> anyhow::Result<()> {
    // As `fastapihooks start`: the default multi-thread runtime (one worker under taskset).
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: SidecarArgs) -> anyhow::Result<()> {
    let store = args
        .place
        .store()
        .await?
        .context("the sidecar needs --postgres and --schema")?;
    // Logs as `fastapihooks start` does with its default flags: its logger, at `info` unless
    // `RUST_LOG` says otherwise — what it costs per delivery is part of the rows. Installed
    // once the run's schema is migrated: the migration's notices are the run's set-up.
    fastapihooks_cli::logging::init(None, fastapihooks_cli::logging::LogFormat::Text, None);
    let config = WorkerConfig {
        concurrency: args.concurrency,
        tasks_in_flight: args.tasks_in_flight,
        ..WorkerConfig::default()
    };
    match args.queue {
        QueueKind::Redis => {
            let queue = args.place.redis_queue().await?;
            // `--allow-volatile-redis`: said, not refused.
            let persistence = queue.persistence().await?.to_string();
            drain(Arc::new(queue), &store, config, Some(persistence)).await
        }
        QueueKind::Outbox => {
            // `start --queue postgres://…` without `--store`: the outbox shares the store's pool.
            let queue =
                SqlBackend::with_config(store.connection().clone(), SqlOutboxConfig::default())?;
            drain(Arc::new(queue), &store, config, None).await
        }
    }
}

/// The engine of `fastapihooks start` with its default flags: `sha256=` signatures with the
/// benchmark's secret, the standard-webhooks retry schedule, the default endpoint health
/// policy, a 10 s HTTP timeout, loopback allowed.
fn engine(store: &SqlStore) -> anyhow::Result<fastapihooks_core::engine::DeliveryEngine> {
    Ok(Emitter::builder()
        .shared_store(Arc::new(store.clone()))
        .http(HttpConfig::default().allow_loopback())
        .retry(RetryPolicy::standard_webhooks())
        .endpoint_health(HealthPolicy::default())
        .secret(Secret::new(SECRET)?)
        .signer(Sha256Hex::new())
        .build_engine()?)
}

async fn drain<Q: Queue>(
    queue: Arc<Q>,
    store: &SqlStore,
    config: WorkerConfig,
    redis_persistence: Option<String>,
) -> anyhow::Result<()> {
    let worker = Worker::new(queue, engine(store)?, config)?;
    let shutdown = CancellationToken::new();
    let cpu_before = own_cpu_ms();
    let allocations_before = crate::allocator::allocations();
    super::report(&SidecarReady {
        ready_ns: unix_ns(),
        redis_persistence,
    })?;
    let running = tokio::spawn(worker.run(shutdown.clone()));
    super::stdin_closed().await;
    shutdown.cancel();
    let report = running.await.context("the worker task")?;
    let cpu_ms = own_cpu_ms() - cpu_before;
    let allocations = crate::allocator::allocations()
        .zip(allocations_before)
        .map(|(after, before)| after - before);
    super::report(&SidecarDone {
        cpu_ms,
        peak_rss_kib: own_peak_rss_kib(),
        worker: report.into(),
        allocations,
    })
}
