//! The durable path: events queued in Redis Streams or in the PostgreSQL transactional outbox,
//! drained by a sidecar running the core's `Worker`, the delivery history in a `SqlStore` on
//! PostgreSQL.
//!
//! Every run gets a PostgreSQL schema and a Redis key prefix of its own ([`env::DurableEnv`]),
//! removed when it ends: nothing is flushed, nothing another run or test uses is touched.

pub mod env;
pub mod history;
pub mod place;
pub mod wake_gate;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// The queue the sidecar drains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    /// Redis Streams (`RedisBackend`), the history in PostgreSQL.
    Redis,
    /// The PostgreSQL transactional outbox (`SqlBackend`), the history in the same database.
    Outbox,
}

impl QueueKind {
    /// Every queue, in table order.
    pub const ALL: &'static [QueueKind] = &[QueueKind::Redis, QueueKind::Outbox];

    /// The name in tables, JSON and the sidecar part's `--queue`.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Redis => "redis",
            QueueKind::Outbox => "outbox",
        }
    }

    /// The row label: the queue and where the history goes.
    pub fn label(self) -> &'static str {
        match self {
            QueueKind::Redis => "sidecar · Redis Streams → PostgreSQL store",
            QueueKind::Outbox => "sidecar · PostgreSQL outbox → same database",
        }
    }
}

/// Where the services of the durable path are (the conductor's `--postgres` and `--redis`).
#[derive(Clone, Debug, Args)]
pub struct Services {
    /// PostgreSQL: each sidecar run makes a schema of its own there, dropped at its end.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// Redis (persistence not required): each sidecar run uses a key prefix of its own, whose
    /// keys are deleted at its end.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
}
