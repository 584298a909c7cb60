//! [`Workers`]: how many event workers the in-process backend runs, started as events need them.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the event workers running and those waiting for an event. A worker is started when an
/// event is queued, or taken with more queued behind it, and none is waiting — up to `max` —
/// and stops after waiting a minute for an event, unless it is the last. An idle service holds
/// one worker, not `max` parked tasks (each the size of a whole HTTP attempt's future:
/// ~3.4 KiB).
///
/// No event waits in the line while a worker could be started for it: the pusher checks for a
/// waiting worker *after* its push, and a worker that wakes checks the line *after* it stopped
/// counting as waiting, so one of the two sees the other.
#[derive(Debug)]
pub(super) struct Workers {
    started: AtomicUsize,
    waiting: AtomicUsize,
    max: usize,
}

impl Workers {
    /// None started yet; at most `max`.
    pub(super) fn new(max: usize) -> Self {
        Self {
            started: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            max,
        }
    }

    /// Whether to start a worker now: none is waiting and fewer than `max` were started. A
    /// `true` counts the worker as started, and as waiting from now on (so a burst of pushes
    /// before it first runs starts no more): the caller starts it, and the worker takes its
    /// first event under [`Workers::first_wait`].
    pub(super) fn claim_start(&self) -> bool {
        let claimed = self.waiting.load(Ordering::SeqCst) == 0
            && self
                .started
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < self.max).then_some(n + 1)
                })
                .is_ok();
        if claimed {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        claimed
    }

    /// A worker just started waits for its first event: [`Workers::claim_start`] counted it.
    pub(super) fn first_wait(&self) -> Waiting<'_> {
        Waiting(self)
    }

    /// Counts a worker as waiting for an event until the guard is dropped.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(self)
    }

    /// Whether the worker waiting under `waiting` may stop: it is not the last one. A `true`
    /// counts it as stopped.
    pub(super) fn stop(&self, waiting: Waiting<'_>) -> bool {
        let stopped = self
            .started
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 1).then_some(n - 1)
            })
            .is_ok();
        drop(waiting);
        stopped
    }

    /// Workers running (started and not stopped).
    #[cfg(test)]
    pub(super) fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

/// A worker waiting for an event; dropped when it has one (or stops).
pub(super) struct Waiting<'a>(&'a Workers);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_started_only_while_none_waits_and_up_to_the_max() {
        let workers = Workers::new(2);
        assert!(workers.claim_start(), "none started, none waiting");
        assert!(
            !workers.claim_start(),
            "the one started waits for its first event"
        );
        drop(workers.first_wait());
        let waiting = workers.waiting();
        assert!(!workers.claim_start(), "it waits again");
        drop(waiting);
        assert!(workers.claim_start(), "it took an event");
        assert!(!workers.claim_start(), "two started: the max");
        assert_eq!(workers.started(), 2);
    }

    #[test]
    fn a_waiting_worker_stops_unless_it_is_the_last() {
        let workers = Workers::new(2);
        assert!(workers.claim_start());
        drop(workers.first_wait());
        assert!(workers.claim_start());
        drop(workers.first_wait());
        assert!(workers.stop(workers.waiting()), "one of two");
        assert!(!workers.stop(workers.waiting()), "the last one");
        assert_eq!(workers.started(), 1);
        assert!(workers.claim_start(), "none waiting: one may start again");
    }
}
