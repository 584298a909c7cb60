//! One event to 1,000 subscribers: the time from `emit` until the receiver has all 1,000
//! deliveries. Events go one after the other, far enough apart not to overlap; the first finds
//! no open connection (cold), the others reuse the pool (warm).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::Sizes;
use super::accounting::Accounting;
use super::delivery::emit;
use super::part::Pinning;
use super::receiver::Receiver;
use crate::backends::BackendKind;

/// Subscribers of the fan-out measurement.
pub const SUBSCRIBERS: usize = 1_000;

/// The fan-out result.
#[derive(Clone, Debug, Serialize)]
pub struct FanOut {
    /// The backend.
    pub backend: BackendKind,
    /// Per event, in order: ms from emit to the last of its 1,000 deliveries.
    pub all_delivered_ms: Vec<f64>,
    /// The first event (no open connection yet).
    pub cold_ms: f64,
    /// Median of the others (`None` with a single event).
    pub warm_median_ms: Option<f64>,
    /// Every delivery, by id.
    pub accounting: Accounting,
}

/// Measures the fan-out of `sizes.fan_out_events` events, for each backend.
pub async fn measure(
    receiver: &Receiver,
    pinning: Pinning,
    sizes: &Sizes,
    scratch: &Path,
) -> anyhow::Result<Vec<FanOut>> {
    let mut results = Vec::new();
    for &backend in BackendKind::ALL {
        eprintln!(
            "fan-out: {} · 1 event → {SUBSCRIBERS} subscribers × {}",
            backend.name(),
            sizes.fan_out_events
        );
        let ids = scratch.join("ids-fan-out.tsv");
        let (run, expected, arrivals) = emit(
            receiver,
            pinning,
            sizes,
            backend,
            SUBSCRIBERS,
            sizes.fan_out_events,
            1_500,
            &ids,
        )
        .await?;
        // Per event (its emit time), the last arrival of its deliveries.
        let emitted: HashMap<&str, u64> =
            expected.iter().map(|(id, at)| (id.as_str(), *at)).collect();
        let mut last: HashMap<u64, u64> = HashMap::new();
        for arrival in &arrivals {
            if let Some(&at) = emitted.get(arrival.id.as_str()) {
                let slot = last.entry(at).or_default();
                *slot = (*slot).max(arrival.at_ns);
            }
        }
        let mut events: Vec<(u64, u64)> = last.into_iter().collect();
        events.sort_unstable();
        let all_delivered_ms: Vec<f64> = events
            .iter()
            .map(|(emitted, last)| last.saturating_sub(*emitted) as f64 / 1e6)
            .collect();
        let cold_ms = all_delivered_ms.first().copied().unwrap_or(f64::NAN);
        let mut warm: Vec<f64> = all_delivered_ms.iter().skip(1).copied().collect();
        warm.sort_by(f64::total_cmp);
        results.push(FanOut {
            backend,
            cold_ms,
            warm_median_ms: warm.get(warm.len().saturating_sub(1) / 2).copied(),
            all_delivered_ms,
            accounting: run.accounting,
        });
    }
    Ok(results)
}
