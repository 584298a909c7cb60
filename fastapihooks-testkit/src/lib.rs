//! # fastapihooks-testkit
//!
//! The test support of the fastapihooks workspace, in one place (not published):
//!
//! - [`Receiver`]: a scripted webhook receiver on 127.0.0.1 that records every request
//!   ([`Received`]: headers, body, arrival time), counts requests by delivery id, tracks how many
//!   are in flight, and answers per a script ([`Reply`]: status, headers, delay; per path and per
//!   call). [`serve`], [`client`] and [`post`] for the app under test.
//! - [`eventually`] / [`eventually_async`]: wait for a condition (a `bool`, or an `Option` whose
//!   value is handed back) without sleeping a fixed time.
//! - [`Service`]: the machine's PostgreSQL, MariaDB and Redis (URL from an env var, else the
//!   default), or a skip with a note — a failure under `CI=true`. `redis_url`,
//!   `postgres_url`, `mysql_url` (features `redis`, `postgres`, `mysql`).
//! - [`TempSqlite`] (feature `sqlite`): a SQLite store of the test's own, and [`outbox`], the
//!   SQL outbox in a store's database with test timings.
//! - Guards that give one test its own part of a shared service and drop it with the guard:
//!   `TempSchema` (PostgreSQL, feature `postgres`), `TempDatabase` (MariaDB or PostgreSQL,
//!   features `mysql`, `postgres`), `TestKeys` (a Redis key prefix, feature `redis`). A `Drop`
//!   cannot await: a database guard drops what it made from a thread of its own with a small
//!   runtime of its own, so it works in a `#[tokio::test]` current-thread runtime too.
//! - [`RecordedMetrics`]: what a `metrics_util` debugging recorder got, read back by name and
//!   labels.
//! - [`FaultyStore`]: a `MemoryStore` whose faults a test switches (an outage, failing or slow
//!   records, records held until released).
//! - Delivery accounting: [`engine`], [`quick_retries`], [`store_with_subscribers`], [`events`],
//!   [`expected_pairs`], [`duplicates`], [`tally`].
//! - The [`Store`](fastapihooks_core::Store) [`contract`]: every behaviour a store must have,
//!   runnable against your own store with [`store_contract!`], and its [`fixtures`].
//!
//! Features are all off by default and turn on the matching feature of `fastapihooks-core`, so a
//! crate enables the kit's feature from its own feature of the same name and a default build
//! gets nothing it did not ask for.

mod delivery;
mod eventually;
mod faulty_store;
mod http;
mod receiver;
mod recorded_metrics;
#[cfg(feature = "redis")]
mod redis_keys;
mod services;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod temp;
mod tls;

pub mod contract;
pub mod fixtures;

pub use delivery::{
    Tally, duplicates, engine, engine_with_timeout, events, expected_pairs, quick_retries,
    store_with_subscribers, tally,
};
pub use eventually::{Outcome, eventually, eventually_async};
pub use faulty_store::FaultyStore;
pub use http::{client, post, serve};
pub use receiver::{Fix, NO_ID, Received, Receiver, Reply, url_of};
pub use recorded_metrics::{RecordedMetric, RecordedMetrics};
#[cfg(feature = "redis")]
pub use redis_keys::TestKeys;
#[cfg(feature = "mysql")]
pub use services::mysql_url;
#[cfg(feature = "postgres")]
pub use services::postgres_url;
#[cfg(feature = "redis")]
pub use services::redis_url;
pub use services::{Service, in_ci, init_tracing};
#[cfg(feature = "sqlite")]
pub use sqlite::{TempSqlite, outbox};
#[cfg(feature = "postgres")]
pub use temp::TempSchema;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use temp::{TempDatabase, unique_name};

/// The signing secret tests sign with ([`Received::verified`] checks against it; the sidecar
/// tests pass it as `--signing-secret`).
pub const SECRET: &str = "test-secret";
