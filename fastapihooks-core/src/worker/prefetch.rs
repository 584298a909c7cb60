//! Leasing ahead: while every permit is busy, the worker's leaser keeps a small buffer of leased
//! tasks filled, a batch per queue call, so a freed permit finds its next task waiting instead
//! of waiting for a round trip to the queue — and the queue is asked for a batch, not one task
//! per freed permit.
//!
//! The buffer is bounded (one lease batch, and never more than `tasks_in_flight`); the worker
//! still runs at most `tasks_in_flight` tasks at once. A task that waited in the buffer longer
//! than a third of the visibility timeout has its lease renewed before it runs (see
//! [`task::run`](super::task::run)).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backend::{Leased, Queue};

/// A leased task waiting for a permit, and when it was leased.
pub(super) struct Prefetched {
    pub(super) leased: Leased,
    pub(super) at: Instant,
}

/// Leases whenever at least half the buffer (of `capacity`) is free, as many tasks as there is
/// room for, until `shutdown`; then returns (the worker gives what the buffer holds back to the
/// queue). Queue errors are logged and retried with a
/// backoff; they never end the loop.
pub(super) async fn lease_ahead<Q: Queue>(
    queue: Arc<Q>,
    capacity: usize,
    buffer: mpsc::Sender<Prefetched>,
    progress: Arc<super::status::Progress>,
    shutdown: CancellationToken,
    deadline_passed: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let room = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            room = buffer.reserve_many(capacity.div_ceil(2)) => match room {
                Ok(room) => room,
                Err(_) => return, // the worker stopped taking tasks
            },
        };
        // Raced against the drain deadline only, not against shutdown itself: a lease call
        // returns within the queue's short block time, and what it leased then runs within
        // the deadline. A call still running when the deadline passes is dropped (what it
        // may have leased comes back when its lease expires).
        // More room may have freed up meanwhile: ask for all of it.
        let mut room: Vec<_> = room.collect();
        while let Ok(more) = buffer.try_reserve() {
            room.push(more);
        }
        let asked = room.len();
        let leasing = tokio::select! {
            leased = queue.lease(asked) => leased,
            _ = deadline_passed.cancelled() => {
                tracing::warn!("drain deadline passed during a lease call; stopping");
                return;
            }
        };
        // Returned, with tasks, empty or failed: the loop is alive.
        progress.tick();
        let leased = match leasing {
            Ok(leased) => {
                failures = 0;
                leased
            }
            Err(e) => {
                failures += 1;
                let pause = backoff(failures);
                tracing::error!(error = %e, ?pause, "leasing failed; retrying");
                metrics::counter!(crate::metrics::QUEUE_ERRORS_TOTAL).increment(1);
                drop(room);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        if leased.len() > asked {
            // A queue that returns more than asked breaks the contract; what has no room is
            // left to expire and come back rather than run over the bound.
            tracing::error!(
                asked,
                got = leased.len(),
                "queue leased more tasks than asked; the extra ones run after their leases expire"
            );
        }
        let at = Instant::now();
        for (leased, slot) in leased.into_iter().zip(room) {
            slot.send(Prefetched { leased, at });
        }
        // Room not filled is given back here.
    }
}

/// 100 ms doubling to 5 s.
pub(super) fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(50), Duration::from_secs(5));
    }
}
