//! [`EventLine`]: the events the in-process backend has accepted, waiting for a worker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, TryAcquireError};

use crate::event::Event;

/// A channel of events that many workers take from, bounded by `capacity` slots of room handed
/// out in the order they were asked for. A channel's own `send` lets a publish that just came
/// take a freed slot before one that has been waiting, which under backpressure turns into a
/// long tail of waits; a tokio semaphore queues the waiters.
#[derive(Clone, Debug)]
pub(super) struct EventLine {
    /// Unbounded itself: `room` is its bound.
    tx: async_channel::Sender<Event>,
    rx: async_channel::Receiver<Event>,
    room: Arc<Semaphore>,
}

/// Why an event was not queued.
pub(super) enum Refused {
    /// No room within the wait: the event is given back.
    Full(Event),
    /// The line is closed.
    ShutDown,
}

impl EventLine {
    /// An empty line with room for `capacity` events (at most [`Semaphore::MAX_PERMITS`]).
    pub(super) fn new(capacity: usize) -> Self {
        let (tx, rx) = async_channel::unbounded();
        Self {
            tx,
            rx,
            room: Arc::new(Semaphore::new(capacity)),
        }
    }

    /// Queues `event`, waiting up to `wait` for room, in turn (not at all for zero).
    pub(super) async fn push(&self, event: Event, wait: Duration) -> Result<(), Refused> {
        let slot = match self.room.try_acquire() {
            Ok(slot) => slot,
            Err(TryAcquireError::Closed) => return Err(Refused::ShutDown),
            Err(TryAcquireError::NoPermits) if wait.is_zero() => {
                return Err(Refused::Full(event));
            }
            Err(TryAcquireError::NoPermits) => {
                match tokio::time::timeout(wait, self.room.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => return Err(Refused::ShutDown),
                    Err(_) => return Err(Refused::Full(event)),
                }
            }
        };
        // The worker that takes the event gives the slot back.
        slot.forget();
        self.tx.try_send(event).map_err(|_| Refused::ShutDown)
    }

    /// The next event, waiting for one; `None` once the line is closed and empty.
    pub(super) async fn take(&self) -> Option<Event> {
        let event = self.rx.recv().await.ok()?;
        self.room.add_permits(1);
        Some(event)
    }

    /// Whether no event is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Refuses every push from now on; what is queued can still be taken.
    pub(super) fn close(&self) {
        self.tx.close();
        self.room.close();
    }

    /// Empties the line; says how many events it held.
    pub(super) fn drain(&self) -> usize {
        std::iter::from_fn(|| self.rx.try_recv().ok()).count()
    }
}
