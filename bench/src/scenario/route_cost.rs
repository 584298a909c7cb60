//! Route cost: requests/s and latency of the same handler unhooked and hooked, the service on
//! core 0, the load generator (and the receiver of the hooked route's deliveries) on core 1.
//!
//! With the services of the durable path, three more rows, each handler writing its order as a
//! row in PostgreSQL (a schema of the run's own): unhooked, hooked to Redis, hooked to the
//! outbox (the order and the event's row in one transaction). The app only publishes; the
//! sidecar drains the queue after the window, and every delivery is counted as for the others.
//! The outbox has a second row: the same with its wake gate held through the load, as a sidecar
//! waiting for work holds it, so that every commit notifies — the outbox route's cost on a
//! system whose sidecar is idle, against the first row's system whose sidecar is busy or absent.

use std::time::Duration;

use serde::Serialize;

use super::accounting::{Accounting, account_unknown_ids};
use super::part::{LOAD_CORE, Part, Pinning, SERVER_CORE};
use super::receiver::Receiver;
use super::sidecar_part::Sidecar;
use super::{Sizes, median_by};
use crate::backends::BackendKind;
use crate::durable::env::DurableEnv;
use crate::durable::{QueueKind, Services};
use crate::wire::{AppDone, Listening, LoadDone};

/// One row of the route-cost table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// Hooked through this in-process backend (`None`: unhooked, or hooked to `queue`).
    pub backend: Option<BackendKind>,
    /// Hooked to this durable queue: the app publishes, a sidecar drains after the window.
    pub queue: Option<QueueKind>,
    /// Subscriptions of the event.
    pub subscribers: usize,
    /// The handler writes each order as a row in PostgreSQL.
    pub orders_in_postgres: bool,
    /// The outbox's wake gate is held through the load, as a sidecar waiting for work holds it.
    pub sidecar_waiting: bool,
}

impl Row {
    /// Every row: unhooked, then each in-process backend with 1 and 10 subscribers; with
    /// `durable`, then the PostgreSQL rows: unhooked, and hooked to each durable queue with 1
    /// subscriber (the app's work does not depend on the subscriber count: the sidecar fans
    /// out), the outbox a second time with a sidecar waiting.
    pub fn all(durable: bool) -> Vec<Row> {
        let row = |backend, queue, subscribers, orders_in_postgres| Row {
            backend,
            queue,
            subscribers,
            orders_in_postgres,
            sidecar_waiting: false,
        };
        let mut rows = vec![row(None, None, 0, false)];
        for &backend in BackendKind::ALL {
            for subscribers in [1, 10] {
                rows.push(row(Some(backend), None, subscribers, false));
            }
        }
        if durable {
            rows.push(row(None, None, 0, true));
            for &queue in QueueKind::ALL {
                rows.push(row(None, Some(queue), 1, true));
            }
            rows.push(Row {
                sidecar_waiting: true,
                ..row(None, Some(QueueKind::Outbox), 1, true)
            });
        }
        rows
    }

    /// Whether the route is unhooked.
    pub fn is_unhooked(&self) -> bool {
        self.backend.is_none() && self.queue.is_none()
    }

    /// `unhooked`, `hooked · background · 1 subscriber`, `hooked · redis → sidecar · 1
    /// subscriber · order in PostgreSQL`, …
    pub fn label(&self) -> String {
        let subscribers = format!(
            "{} subscriber{}",
            self.subscribers,
            if self.subscribers == 1 { "" } else { "s" }
        );
        let route = match (self.backend, self.queue) {
            (Some(b), _) => format!("hooked · {} · {subscribers}", b.name()),
            (None, Some(QueueKind::Redis)) => format!("hooked · redis → sidecar · {subscribers}"),
            (None, Some(QueueKind::Outbox)) => {
                format!("hooked · outbox, same transaction → sidecar · {subscribers}")
            }
            (None, None) => "unhooked".to_owned(),
        };
        let route = if self.orders_in_postgres {
            format!("{route} · order in PostgreSQL")
        } else {
            route
        };
        if self.sidecar_waiting {
            format!("{route} · a sidecar waiting (every commit notifies)")
        } else {
            route
        }
    }
}

/// One run of one row.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Requests/s in the measured window.
    pub requests_per_s: f64,
    /// Latency percentiles (µs) in the measured window.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Failed requests (must be 0).
    pub failed: u64,
    /// Service CPU per answered request, its deliveries included (µs).
    pub server_cpu_us_per_request: f64,
    /// Peak RSS of the service (KiB).
    pub server_peak_rss_kib: u64,
    /// How busy the load core was during the window (load generator + receiver), 0–1: near 1
    /// means the load side, not the service, may have been the limit.
    pub load_core_busy: f64,
    /// The deliveries of the events, counted at the receiver.
    pub deliveries: Accounting,
    /// Time from the end of the load to the last delivery (the backlog the load left; for a
    /// durable queue, drained by a sidecar started once the app has stopped), in s.
    pub drain_secs: f64,
}

/// The runs of a row and their median (by requests/s).
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The row.
    pub row: Row,
    /// Its label.
    pub label: String,
    /// The median run.
    pub median: Run,
    /// Every run.
    pub runs: Vec<Run>,
}

/// Measures every row `sizes.repeat` times, interleaved (row by row within each round) so that
/// a change in the machine's load touches every row alike. Without `services`, only the rows
/// that need neither PostgreSQL nor Redis.
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    services: Option<&Services>,
) -> anyhow::Result<Vec<RowResult>> {
    let rows = Row::all(services.is_some());
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); rows.len()];
    for round in 0..sizes.repeat {
        for (row, runs) in rows.iter().zip(runs.iter_mut()) {
            eprintln!(
                "route cost: {} (run {}/{})",
                row.label(),
                round + 1,
                sizes.repeat
            );
            runs.push(measure_once(receiver, pinning, sizes, services, row).await?);
        }
    }
    Ok(rows
        .into_iter()
        .zip(runs)
        .filter_map(|(row, runs)| {
            let median = median_by(&runs, |r| r.requests_per_s)?;
            Some(RowResult {
                label: row.label(),
                row,
                median,
                runs,
            })
        })
        .collect())
}

/// One run of `row`; a PostgreSQL row in a schema of its own (with its orders table, and the
/// subscriptions the sidecar reads), removed afterwards.
async fn measure_once(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    services: Option<&Services>,
    row: &Row,
) -> anyhow::Result<Run> {
    let Some(services) = services.filter(|_| row.orders_in_postgres) else {
        return measure_in(receiver, pinning, sizes, row, None).await;
    };
    // The unhooked row leaves the queue alone: an outbox environment touches no Redis key.
    let env = DurableEnv::create(row.queue.unwrap_or(QueueKind::Outbox), services).await?;
    let run = async {
        env.create_orders_table().await?;
        if row.queue.is_some() {
            env.subscribe(row.subscribers, &receiver.hook_url()).await?;
        }
        measure_in(receiver, pinning, sizes, row, Some(&env)).await
    }
    .await;
    env.remove().await;
    run
}

async fn measure_in(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    row: &Row,
    env: Option<&DurableEnv>,
) -> anyhow::Result<Run> {
    receiver.reset().await?;
    let mut args = vec![
        "app".to_owned(),
        "--receiver".to_owned(),
        receiver.hook_url(),
    ];
    if let Some(env) = env {
        args.extend(env.place().to_args());
    }
    match (row.backend, row.queue) {
        (None, None) => args.extend(["--mode".to_owned(), "unhooked".to_owned()]),
        (None, Some(queue)) => args.extend([
            "--mode".to_owned(),
            "hooked".to_owned(),
            "--queue".to_owned(),
            queue.name().to_owned(),
        ]),
        (Some(backend), _) => args.extend([
            "--mode".to_owned(),
            "hooked".to_owned(),
            "--backend".to_owned(),
            backend.name().to_owned(),
            "--subscribers".to_owned(),
            row.subscribers.to_string(),
            "--concurrency".to_owned(),
            sizes.concurrency.to_string(),
        ]),
    }
    let mut app = Part::start("app", pinning, SERVER_CORE, &args)?;
    let listening: Listening = app.next(Duration::from_secs(30)).await?;
    let receiver_cpu_before = receiver.count().await?.cpu_ms;
    let load_args = [
        "load".to_owned(),
        "--addr".to_owned(),
        listening.addr,
        "--connections".to_owned(),
        sizes.connections.to_string(),
        "--warmup-ms".to_owned(),
        sizes.warmup_ms.to_string(),
        "--duration-ms".to_owned(),
        sizes.duration_ms.to_string(),
    ];
    let gate = match env.filter(|_| row.sidecar_waiting) {
        Some(env) => Some(env.hold_wake_gate().await?),
        None => None,
    };
    let mut load = Part::start("load", pinning, LOAD_CORE, &load_args)?;
    let window = Duration::from_millis(sizes.warmup_ms + sizes.duration_ms);
    let done = load
        .next::<LoadDone>(window + Duration::from_secs(60))
        .await;
    // Let go before the draining sidecar starts: it would wait for the gate, and poll meanwhile.
    if let Some(gate) = gate {
        gate.release().await;
    }
    let done = done?;
    let load_ended = crate::proc_stats::unix_ns();
    let receiver_cpu = receiver.count().await?.cpu_ms - receiver_cpu_before;
    let expected = done.total_ok * row.subscribers as u64;
    let app_done: AppDone = match (env, row.queue) {
        // Durable: the app has published everything; the sidecar drains it now.
        (Some(env), Some(_)) => {
            let app_done = app.finish(Duration::from_secs(180)).await?;
            if expected > 0 {
                let sidecar = Sidecar::start(env, pinning, sizes.concurrency).await?;
                receiver
                    .wait_for(expected, Duration::from_secs(600), Duration::from_secs(15))
                    .await?;
                sidecar.stop().await?;
            }
            app_done
        }
        _ => {
            if expected > 0 {
                receiver
                    .wait_for(expected, Duration::from_secs(300), Duration::from_secs(15))
                    .await?;
            }
            app.finish(Duration::from_secs(180)).await?
        }
    };
    load.stop().await;
    let deliveries = account_unknown_ids(expected, &receiver.arrivals().await?);
    let drain_secs = if deliveries.last_arrival_ns > load_ended {
        (deliveries.last_arrival_ns - load_ended) as f64 / 1e9
    } else {
        0.0
    };
    Ok(Run {
        requests_per_s: done.measured_ok as f64 / done.measured_secs,
        p50_us: done.p50_us,
        p99_us: done.p99_us,
        failed: done.failed,
        server_cpu_us_per_request: app_done.cpu_ms * 1e3 / done.total_ok.max(1) as f64,
        server_peak_rss_kib: app_done.peak_rss_kib,
        load_core_busy: (done.cpu_ms + receiver_cpu) / window.as_secs_f64() / 1e3,
        deliveries,
        drain_secs,
    })
}
