//! [`Backend`]: how pending work travels from the code that emits to the code that delivers.
//!
//! [`BackgroundTaskBackend`] delivers in-process. Durable backends, drained by the
//! `fastapihooks start` sidecar (its engine is [`Worker`](crate::worker::Worker)), also
//! implement [`Queue`]: `RedisBackend` (feature `redis`) and `SqlBackend`, the transactional
//! outbox in the application's own database (feature `sql`).

mod background;
mod delivery_pool;
mod event_line;
mod event_workers;
#[cfg(any(feature = "redis", feature = "sql"))]
mod open;
mod process_task;
mod queue;
#[cfg(feature = "redis")]
pub mod redis;
mod settlement;
#[cfg(feature = "sql")]
pub mod sql_outbox;

use std::time::Duration;

use async_trait::async_trait;

pub use background::{BackgroundConfig, BackgroundTaskBackend};
pub use process_task::ProcessTask;
pub use queue::{DeliverTask, Leased, Queue, Receipt, Task};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisConfig};
pub use settlement::{Replacement, Settlement};
#[cfg(feature = "sql")]
pub use sql_outbox::{OutboxTable, SqlBackend, SqlOutboxConfig};

use crate::delivery::Delivery;
use crate::error::Result;
use crate::event::Event;

/// What a shutdown achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Deliveries not finished when the deadline passed: mid-attempt, waiting for a retry, or
    /// planned by fan-out and not started. They stay `pending` in the store.
    pub abandoned: usize,
    /// Events accepted but not yet fanned out when the deadline passed (still queued, or
    /// waiting for an unreachable store): their deliveries were never planned.
    pub abandoned_events: usize,
}

/// Takes events and sees that they get delivered.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Accepts an event for delivery. It may wait for room, within a bound, but never for the
    /// delivery itself. An error means the event was **not** accepted.
    async fn publish(&self, event: Event) -> Result<()>;

    /// Queues the current run of `delivery` (a [`Replay`](crate::replay::Replay) started it in
    /// the store), keyed on (delivery id, run): returns `false`, changing nothing, when that run
    /// was queued already. The default refuses with [`Error::ReplayUnsupported`](crate::Error::ReplayUnsupported):
    /// a backend of one's own that forwards to another forwards this too.
    async fn redeliver(&self, delivery: &Delivery) -> Result<bool> {
        let _ = delivery;
        Err(crate::Error::ReplayUnsupported {
            backend: std::any::type_name::<Self>(),
        })
    }

    /// Stops accepting events and finishes in-flight work within `deadline`.
    async fn shutdown(&self, deadline: Duration) -> Result<ShutdownReport> {
        let _ = deadline;
        Ok(ShutdownReport::default())
    }
}
