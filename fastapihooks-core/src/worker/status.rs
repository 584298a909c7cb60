//! [`WorkerStatus`]: a running worker seen from outside — what it did so far, and whether its
//! lease loop still makes progress (for a readiness probe and a periodic log line).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::WorkerReport;
use super::report::Stats;

/// A handle on a [`Worker`](super::Worker), taken with [`Worker::status`](super::Worker::status)
/// before it runs; cheap to clone, readable from any task.
///
/// ```no_run
/// # async fn demo<Q: fastapihooks_core::Queue>(worker: fastapihooks_core::Worker<Q>) {
/// use std::time::Duration;
/// let status = worker.status();
/// tokio::spawn(worker.run(Default::default()));
/// let stalled = status.stalled_for(Duration::from_secs(30));
/// println!("delivered {} so far; stalled: {stalled:?}", status.report().delivered);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct WorkerStatus {
    pub(super) stats: Arc<Stats>,
    pub(super) progress: Arc<Progress>,
    pub(super) in_flight: Arc<AtomicUsize>,
}

impl WorkerStatus {
    pub(super) fn new() -> Self {
        Self {
            stats: Arc::default(),
            progress: Arc::new(Progress::new()),
            in_flight: Arc::default(),
        }
    }

    /// What the worker did so far (`abandoned` is 0 until it has stopped).
    pub fn report(&self) -> WorkerReport {
        self.stats.report(0)
    }

    /// Tasks the worker is running now (fan-outs, deliveries, inbox processing): never more
    /// than its `tasks_in_flight`.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How long since the worker last made progress — a lease call returned (with tasks or
    /// empty, or failed: the loop is alive) or a task ended — or `None` before it started.
    pub fn since_progress(&self) -> Option<Duration> {
        self.progress.since()
    }

    /// `Some(how long)` when the worker has made no progress for longer than `limit`: its lease
    /// loop is wedged (a queue call that never returns) or every task it runs hangs. `None`
    /// while it makes progress, and before it starts.
    pub fn stalled_for(&self, limit: Duration) -> Option<Duration> {
        self.since_progress().filter(|since| *since > limit)
    }
}

/// The time of the worker's last progress, in milliseconds since its start (0: not started).
#[derive(Debug)]
pub(super) struct Progress {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records progress now.
    pub(super) fn tick(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms.max(1), Ordering::Relaxed);
    }

    fn since(&self) -> Option<Duration> {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last != 0).then(|| {
            self.origin
                .elapsed()
                .saturating_sub(Duration::from_millis(last))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_not_started_is_not_stalled_and_one_that_ticked_is_fresh() {
        let status = WorkerStatus::new();
        assert_eq!(status.since_progress(), None);
        assert_eq!(status.stalled_for(Duration::ZERO), None);
        status.progress.tick();
        assert!(status.since_progress().unwrap() < Duration::from_secs(5));
        assert_eq!(status.stalled_for(Duration::from_secs(60)), None);
    }
}
