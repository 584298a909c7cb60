//! # fastapihooks-core
//!
//! Everything of fastapihooks that is not a web framework: the model ([`Event`],
//! [`Subscription`], [`Delivery`], [`Attempt`]), [signing], the [`RetryPolicy`], the
//! [`Store`] and [`Backend`] traits with their in-process implementations, and the delivery
//! engine.
//!
//! ```text
//! Emitter::emit ─▶ Backend::publish ─▶ fan-out (Store::matching + static subscribers;
//!                                       in process recorded before any attempt, by the
//!                                       sidecar each with its first attempt)
//!                                    ─▶ one Delivery per subscription ─▶ Dispatcher: sign, POST,
//!                                       classify ─▶ Attempt recorded ─▶ delivered / retry / dead letter
//! ```
//!
//! With a durable [`Queue`] (`RedisBackend`, feature `redis`; `SqlBackend`, the transactional
//! outbox, feature `sql`) the application only publishes, and
//! one or more sidecars run a [`Worker`] that leases, fans out, delivers and settles.
//!
//! Most applications use it through the `fastapihooks` facade and its axum layer.
#![warn(missing_docs)]

pub mod backend;
pub mod delivery;
pub mod delivery_counts;
pub mod dispatch;
pub mod emitter;
pub mod engine;
pub mod error;
pub mod event;
pub mod fanout;
mod group_commit;
pub mod health;
pub mod id;
pub mod inbox;
pub mod metrics;
pub mod ops_events;
pub mod publisher;
pub mod query;
pub mod replay;
pub mod retry;
pub mod rotation;
pub mod secret;
pub mod signing;
pub mod store;
pub mod subscription;
pub mod trace;
mod webhook_url;
pub mod worker;

#[cfg(feature = "redis")]
pub use backend::redis::RedisPersistence;
pub use backend::{
    Backend, BackgroundConfig, BackgroundTaskBackend, DeliverTask, Leased, ProcessTask, Queue,
    Receipt, ShutdownReport, Task,
};
#[cfg(feature = "sql")]
pub use backend::{OutboxTable, SqlBackend, SqlOutboxConfig};
#[cfg(feature = "redis")]
pub use backend::{RedisBackend, RedisConfig};
pub use delivery::{Attempt, AttemptErrorKind, AttemptOutcome, Delivery, DeliveryStatus};
pub use delivery_counts::{CountBy, CountGroup, DeliveryCount, EventNameCount};
pub use dispatch::{AllowHint, HttpConfig};
pub use emitter::{Emitter, EmitterBuilder};
pub use error::{Error, Result};
pub use event::{Event, EventName};
pub use id::{AttemptId, DeliveryId, EventId, InboxId, SubscriptionId};
pub use publisher::PublisherBuilder;
pub use replay::{Replay, ReplayOutcome, ReplaySummary};
pub use retry::{RetryPolicy, Verdict};
pub use rotation::PreviousSecret;
pub use secret::Secret;
pub use store::{
    DeliveryQuery, EventQuery, MemoryStore, Pruned, Store, SubscriptionQuery, prune_history,
};
#[cfg(feature = "sql")]
pub use store::{SqlStore, SqlStoreOptions};
pub use subscription::{Auth, EventFilter, Subscription};
pub use worker::{Worker, WorkerConfig, WorkerReport, WorkerStatus};
