//! Route cost: requests/s and latency of the same handler unhooked and hooked, the service on
//! core 0, the load generator (and the receiver of the hooked route's deliveries) on core 1.

use std::time::Duration;

use serde::Serialize;

use super::accounting::{Accounting, account_unknown_ids};
use super::part::{LOAD_CORE, Part, Pinning, SERVER_CORE};
use super::receiver::Receiver;
use super::{Sizes, median_by};
use crate::backends::BackendKind;
use crate::wire::{AppDone, Listening, LoadDone};

/// One row of the route-cost table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// `None`: the unhooked route.
    pub backend: Option<BackendKind>,
    /// Subscriptions of the event.
    pub subscribers: usize,
}

impl Row {
    /// Every row: unhooked, then each backend with 1 and 10 subscribers.
    pub fn all() -> Vec<Row> {
        let mut rows = vec![Row {
            backend: None,
            subscribers: 0,
        }];
        for &backend in BackendKind::ALL {
            for subscribers in [1, 10] {
                rows.push(Row {
                    backend: Some(backend),
                    subscribers,
                });
            }
        }
        rows
    }

    /// `unhooked`, `hooked, background, 1 sub`, …
    pub fn label(&self) -> String {
        match self.backend {
            None => "unhooked".to_owned(),
            Some(b) => format!(
                "hooked · {} · {} subscriber{}",
                b.name(),
                self.subscribers,
                if self.subscribers == 1 { "" } else { "s" }
            ),
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
    /// Time from the end of the load to the last delivery (the backlog the load left), in s.
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
/// a change in the machine's load touches every row alike.
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
) -> anyhow::Result<Vec<RowResult>> {
    let rows = Row::all();
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); rows.len()];
    for round in 0..sizes.repeat {
        for (row, runs) in rows.iter().zip(runs.iter_mut()) {
            eprintln!(
                "route cost: {} (run {}/{})",
                row.label(),
                round + 1,
                sizes.repeat
            );
            runs.push(measure_once(receiver, pinning, sizes, row).await?);
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

async fn measure_once(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    row: &Row,
) -> anyhow::Result<Run> {
    receiver.reset().await?;
    let mut args = vec![
        "app".to_owned(),
        "--receiver".to_owned(),
        receiver.hook_url(),
    ];
    match row.backend {
        None => args.extend(["--mode".to_owned(), "unhooked".to_owned()]),
        Some(backend) => args.extend([
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
    let mut load = Part::start("load", pinning, LOAD_CORE, &load_args)?;
    let window = Duration::from_millis(sizes.warmup_ms + sizes.duration_ms);
    let done: LoadDone = load.next(window + Duration::from_secs(60)).await?;
    let load_ended = crate::proc_stats::unix_ns();
    let receiver_cpu = receiver.count().await?.cpu_ms - receiver_cpu_before;
    let expected = done.total_ok * row.subscribers as u64;
    if expected > 0 {
        receiver
            .wait_for(expected, Duration::from_secs(300), Duration::from_secs(15))
            .await?;
    }
    let app_done: AppDone = app.finish(Duration::from_secs(180)).await?;
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
