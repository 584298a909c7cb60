//! Delivery throughput: deliveries/s end to end (emitted → received with a valid signature)
//! with 1, 10 and 1,000 subscribers, and in the same run the physical limit: a plain
//! keep-alive POST loop to the same receiver at the same concurrency, through reqwest (the
//! issue's reference) and through hyper's pooled client alone (the client deliveries go
//! through). All on core 0, the receiver on core 1.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::accounting::{Accounting, account, read_expected};
use super::part::{Part, Pinning, SERVER_CORE};
use super::receiver::Receiver;
use super::{Sizes, median_by};
use crate::backends::BackendKind;
use crate::roles::raw_loop::RawClient;
use crate::wire::{EmitDone, RawLoopDone};

/// One side of a comparison: ours or the raw loop.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Delivered / (last arrival − first send), per second.
    pub deliveries_per_s: f64,
    /// CPU time of the sending process per delivery (µs).
    pub cpu_us_per_delivery: f64,
    /// Peak RSS of the sending process (KiB).
    pub peak_rss_kib: u64,
    /// Every delivery, by id.
    pub accounting: Accounting,
    /// Events refused by the backend, deliveries abandoned at shutdown (both must be 0).
    pub refused_or_abandoned: usize,
}

/// One row: a subscriber count, ours against the limit.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    /// The backend.
    pub backend: BackendKind,
    /// Subscriptions of the event.
    pub subscribers: usize,
    /// Events emitted per run.
    pub events: usize,
    /// The median run of ours (by deliveries/s).
    pub ours: Run,
    /// The median run of the raw reqwest loop.
    pub raw: Run,
    /// The median run of the raw hyper loop.
    pub raw_hyper: Run,
    /// ours / raw: the median of the ratios of each round (ours and the raw loop run back to
    /// back, so each ratio compares the same moment of a machine whose load drifts).
    pub ratio: f64,
    /// The ratio of each round.
    pub round_ratios: Vec<f64>,
    /// ours / raw hyper loop, the median of the rounds' ratios.
    pub hyper_ratio: f64,
    /// Every run of ours.
    pub ours_runs: Vec<Run>,
    /// Every run of the raw reqwest loop.
    pub raw_runs: Vec<Run>,
    /// Every run of the raw hyper loop.
    pub raw_hyper_runs: Vec<Run>,
}

/// Measures every subscriber count, `sizes.repeat` times each, the raw loops and ours back to
/// back.
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    scratch: &Path,
) -> anyhow::Result<Vec<RowResult>> {
    let mut results = Vec::new();
    for &backend in BackendKind::ALL {
        for subscribers in [1usize, 10, 1000] {
            let events = (sizes.deliveries / subscribers).max(1);
            let (mut ours, mut raw, mut hyper) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..sizes.repeat {
                eprintln!(
                    "delivery: {} · {subscribers} subscribers · {events} events (run {}/{})",
                    backend.name(),
                    round + 1,
                    sizes.repeat
                );
                let deliveries = (events * subscribers) as u64;
                raw.push(raw_loop(receiver, pinning, sizes, RawClient::Reqwest, deliveries).await?);
                hyper.push(raw_loop(receiver, pinning, sizes, RawClient::Hyper, deliveries).await?);
                let ids = scratch.join(format!("ids-{subscribers}-{round}.tsv"));
                ours.push(
                    emit(
                        receiver,
                        pinning,
                        sizes,
                        backend,
                        subscribers,
                        events,
                        0,
                        &ids,
                    )
                    .await?
                    .0,
                );
            }
            let ratios = |limit: &[Run]| -> Vec<f64> {
                ours.iter()
                    .zip(limit)
                    .map(|(o, r)| o.deliveries_per_s / r.deliveries_per_s)
                    .collect()
            };
            let round_ratios = ratios(&raw);
            let hyper_ratio = median_by(&ratios(&hyper), |r| *r).unwrap_or(f64::NAN);
            let (Some(o), Some(r), Some(h)) = (
                median_by(&ours, |r| r.deliveries_per_s),
                median_by(&raw, |r| r.deliveries_per_s),
                median_by(&hyper, |r| r.deliveries_per_s),
            ) else {
                continue;
            };
            results.push(RowResult {
                backend,
                subscribers,
                events,
                ratio: median_by(&round_ratios, |r| *r).unwrap_or(f64::NAN),
                round_ratios,
                hyper_ratio,
                ours: o,
                raw: r,
                raw_hyper: h,
                ours_runs: ours,
                raw_runs: raw,
                raw_hyper_runs: hyper,
            });
        }
    }
    Ok(results)
}

/// The physical limit: `requests` plain POSTs through `client` at the same concurrency.
pub async fn raw_loop(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    client: RawClient,
    requests: u64,
) -> anyhow::Result<Run> {
    receiver.reset().await?;
    let client = match client {
        RawClient::Reqwest => "reqwest",
        RawClient::Hyper => "hyper",
    };
    let args = [
        "raw-loop".to_owned(),
        "--client".to_owned(),
        client.to_owned(),
        "--url".to_owned(),
        receiver.hook_url(),
        "--concurrency".to_owned(),
        sizes.concurrency.to_string(),
        "--requests".to_owned(),
        requests.to_string(),
    ];
    let mut part = Part::start("raw-loop", pinning, SERVER_CORE, &args)?;
    let done: RawLoopDone = part.next(Duration::from_secs(180)).await?;
    part.stop().await;
    let expected: Vec<(String, u64)> = (0..requests)
        .map(|i| (format!("raw_{i}"), done.started_ns))
        .collect();
    let accounting = account(&expected, &receiver.arrivals().await?, false);
    Ok(Run {
        deliveries_per_s: per_second(
            accounting.delivered,
            done.started_ns,
            accounting.last_arrival_ns,
        ),
        cpu_us_per_delivery: done.cpu_ms * 1e3 / accounting.delivered.max(1) as f64,
        peak_rss_kib: done.peak_rss_kib,
        refused_or_abandoned: done.failed as usize,
        accounting,
    })
}

/// Ours: `events` events to `subscribers` subscriptions, `pace_ms` apart; returns the run and
/// the expected ids with their emit times.
#[allow(clippy::too_many_arguments)]
pub async fn emit(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    backend: BackendKind,
    subscribers: usize,
    events: usize,
    pace_ms: u64,
    ids: &Path,
) -> anyhow::Result<(Run, Vec<(String, u64)>, Vec<super::receiver::Arrival>)> {
    receiver.reset().await?;
    let args = [
        "emit".to_owned(),
        "--backend".to_owned(),
        backend.name().to_owned(),
        "--subscribers".to_owned(),
        subscribers.to_string(),
        "--events".to_owned(),
        events.to_string(),
        "--pace-ms".to_owned(),
        pace_ms.to_string(),
        "--receiver".to_owned(),
        receiver.hook_url(),
        "--concurrency".to_owned(),
        sizes.concurrency.to_string(),
        "--ids-out".to_owned(),
        ids.display().to_string(),
    ];
    let mut part = Part::start("emit", pinning, SERVER_CORE, &args)?;
    let done: EmitDone = part.next(Duration::from_secs(300)).await?;
    part.stop().await;
    let expected = read_expected(ids)?;
    // The emitter has drained: every attempt is over, so what has not arrived will not.
    let arrivals = receiver.arrivals().await?;
    let accounting = account(&expected, &arrivals, true);
    let run = Run {
        deliveries_per_s: per_second(
            accounting.delivered,
            done.started_ns,
            accounting.last_arrival_ns,
        ),
        cpu_us_per_delivery: done.cpu_ms * 1e3 / accounting.delivered.max(1) as f64,
        peak_rss_kib: done.peak_rss_kib,
        refused_or_abandoned: done.publish_failures + done.abandoned,
        accounting,
    };
    Ok((run, expected, arrivals))
}

/// `count` over the span `from_ns..to_ns`, per second (0 for an empty span).
pub fn per_second(count: u64, from_ns: u64, to_ns: u64) -> f64 {
    if to_ns <= from_ns {
        return 0.0;
    }
    count as f64 / ((to_ns - from_ns) as f64 / 1e9)
}
