//! The measurements, and what they share: the child processes (parts), the receiver, and the
//! accounting of deliveries by id.

pub mod accounting;
pub mod delivery;
pub mod fan_out;
pub mod idle_latency;
pub mod part;
pub mod publish;
pub mod receive;
pub mod receiver;
pub mod route_cost;
pub mod sidecar;
pub mod sidecar_part;

/// The sizes of one run: the full run, or `--quick` (completion and counts only).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sizes {
    /// Runs of each measurement (the median is reported).
    pub repeat: usize,
    /// Route cost: load-generator connections.
    pub connections: usize,
    /// Route cost: warm-up before the measured window.
    pub warmup_ms: u64,
    /// Route cost: the measured window.
    pub duration_ms: u64,
    /// Delivery throughput: deliveries per run (split over the events).
    pub deliveries: usize,
    /// Delivery attempts in flight at once (the background backend's `concurrency`), and the
    /// raw loop's concurrency.
    pub concurrency: usize,
    /// Fan-out: events of 1,000 deliveries each, one after the other.
    pub fan_out_events: usize,
    /// Sidecar throughput: deliveries queued per run (split over the events).
    pub sidecar_deliveries: usize,
    /// Sidecar idle latency: single events published, one at a time.
    pub idle_events: usize,
    /// Sidecar idle latency: the pause after each of them (ms).
    pub idle_pace_ms: u64,
    /// Publishing into Redis alone: events per run.
    pub publish_events: usize,
}

impl Sizes {
    /// The full run.
    pub fn full(repeat: usize) -> Self {
        Self {
            repeat,
            connections: 32,
            warmup_ms: 1_000,
            duration_ms: 10_000,
            deliveries: 50_000,
            concurrency: 100,
            fan_out_events: 4,
            sidecar_deliveries: 10_000,
            idle_events: 50,
            idle_pace_ms: 50,
            publish_events: 20_000,
        }
    }

    /// `--quick`: small counts, one run each.
    pub fn quick() -> Self {
        Self {
            repeat: 1,
            connections: 8,
            warmup_ms: 200,
            duration_ms: 1_000,
            deliveries: 2_000,
            concurrency: 100,
            fan_out_events: 1,
            sidecar_deliveries: 500,
            idle_events: 5,
            idle_pace_ms: 50,
            publish_events: 500,
        }
    }
}

/// The median of `values` by `key` (the lower middle for an even count).
pub fn median_by<T: Clone>(values: &[T], key: impl Fn(&T) -> f64) -> Option<T> {
    let mut sorted: Vec<&T> = values.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .map(|v| (*v).clone())
}
