//! [`WorkerReport`]: what a worker did, counted as it went.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a [`Worker`](super::Worker) did between start and shutdown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Events turned into delivery tasks.
    pub fanned_out: u64,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Received webhooks processed (an inbox worker).
    pub processed: u64,
    /// Attempts (deliveries, or processing received webhooks) that failed and were scheduled
    /// again.
    pub retried: u64,
    /// Deliveries (or received webhooks) moved to the dead letters: refused for good, out of
    /// retries, or a task this worker cannot run.
    pub dead_lettered: u64,
    /// Delivery tasks acked without an attempt: the store already had them final (a redelivered
    /// task), or their subscription was removed or disabled.
    pub skipped: u64,
    /// Settling steps that found the lease taken over by another worker (nothing was changed).
    pub leases_lost: u64,
    /// Tasks that failed on a queue or store error; their leases expire and they run again.
    pub errors: u64,
    /// Tasks still in flight when the drain deadline passed.
    pub abandoned: usize,
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) fanned_out: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) processed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) leases_lost: AtomicU64,
    pub(super) errors: AtomicU64,
}

impl Stats {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn report(&self, abandoned: usize) -> WorkerReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerReport {
            fanned_out: get(&self.fanned_out),
            delivered: get(&self.delivered),
            processed: get(&self.processed),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            skipped: get(&self.skipped),
            leases_lost: get(&self.leases_lost),
            errors: get(&self.errors),
            abandoned,
        }
    }
}
