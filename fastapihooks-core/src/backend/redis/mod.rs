//! [`RedisBackend`]: a durable [`Queue`] on Redis Streams, shared by any number of sidecars.
//!
//! - `publish` is one `XADD` of a [`Task::Fanout`]; concurrent publishes are group-committed
//!   (one pipeline, one round trip, per batch, open for a few turns of the scheduler — no timer;
//!   each publish still awaits its own acknowledgement), and [`RedisBackend::publish_many`]
//!   sends a batch in one round trip.
//! - Sidecars lease through one consumer group (`XREADGROUP`); a lease is the entry's place in
//!   the group's pending list.
//! - Every settling step is one Lua script, so it is atomic and fenced: it acts only if this
//!   consumer still holds the lease. The settles the worker group-commits go in one script
//!   call.
//! - Retries wait in a sorted set and are moved back into the stream when due.
//! - Leases of a crashed sidecar are taken over with `XAUTOCLAIM` once they are older than the
//!   visibility timeout.
//! - If Redis loses the group (restart without persistence, keys deleted), the next step that
//!   meets `NOGROUP` recreates it and carries on.
//!
//! The key layout is on [`RedisConfig`].

mod config;
mod durability;
mod lease;
mod read_reply;
mod scripts;
mod settle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use config::RedisConfig;
pub use durability::RedisPersistence;

use super::open::OpenFlag;
use super::queue::{DeliverTask, Queue, Receipt, Task};
use super::settlement::{Replacement, Settlement};
use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::group_commit::{Flush, GroupCommit, fail_all};

/// How long a replayed run is remembered as queued: far longer than any retry schedule keeps a
/// run pending, so queuing it again (a resumed bulk replay) is a no-op.
const REPLAY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A durable queue on Redis Streams. See the [module docs](self) for how it works and
/// [`RedisConfig`] for its keys.
///
/// ```no_run
/// # async fn run() -> Result<(), fastapihooks_core::Error> {
/// use fastapihooks_core::{Backend, Event};
/// use fastapihooks_core::backend::{RedisBackend, RedisConfig};
///
/// let queue = RedisBackend::connect(RedisConfig::new("redis://127.0.0.1:6379").key_prefix("shop")).await?;
/// queue.publish(Event::new("order.created", &serde_json::json!({"id": 1}))?).await?;
/// # Ok(()) }
/// ```
pub struct RedisBackend {
    config: RedisConfig,
    keys: Keys,
    /// Commands that return at once; shared and pipelined.
    conn: ConnectionManager,
    /// The blocking `XREADGROUP` gets a connection of its own, so it never holds up the others.
    reader: tokio::sync::Mutex<Option<ConnectionManager>>,
    client: redis::Client,
    group_ready: AtomicBool,
    reclaim: tokio::sync::Mutex<lease::ReclaimCursor>,
    open: OpenFlag,
    /// Concurrent publishes, group-committed: one pipeline of `XADD`s per batch.
    publishes: GroupCommit<String, ()>,
}

#[derive(Debug)]
struct Keys {
    tasks: String,
    deliveries: String,
    retries: String,
    dead: String,
    replays: String,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Validates `config` and connects. The consumer group is created when this backend first
    /// leases (an application that only publishes never needs it).
    ///
    /// It also reads the server's persistence settings and logs a warning when the append-only
    /// file is off: such a Redis loses every queued event on a restart (see
    /// [`persistence`](Self::persistence); the sidecar refuses it unless told otherwise).
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        config.validate()?;
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| Error::InvalidServiceUrl {
                service: "Redis",
                url: config.redacted_url(),
                reason: e.to_string(),
            })?;
        let conn = connection(&client, config.response_timeout).await?;
        durability::warn_if_volatile(&conn, &config).await;
        let keys = Keys {
            tasks: config.tasks_key(),
            deliveries: config.deliveries_key(),
            retries: config.retries_key(),
            dead: config.dead_key(),
            replays: config.replays_key(),
        };
        let publishes = GroupCommit::start_open_for(
            "redis.publish",
            PUBLISH_BATCH,
            PUBLISH_PARALLEL,
            PUBLISH_TURNS,
            publish_pipeline(conn.clone(), keys.tasks.clone()),
        );
        Ok(Self {
            publishes,
            keys,
            conn,
            reader: tokio::sync::Mutex::new(None),
            client,
            group_ready: AtomicBool::new(false),
            reclaim: tokio::sync::Mutex::new(lease::ReclaimCursor::new()),
            open: OpenFlag::default(),
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Publishes several events in one round trip (one pipeline of `XADD`s). Either error means
    /// some may have been accepted; each event has its own id, so publishing again is safe only
    /// if receivers deduplicate — prefer it for bulk loads.
    pub async fn publish_many(&self, events: &[Event]) -> Result<()> {
        self.open.check()?;
        let tasks = events
            .iter()
            .map(|event| Ok((Stream::Tasks, Task::fanout(event.clone()).encode()?)))
            .collect::<Result<Vec<_>>>()?;
        self.add_tasks(tasks, "redis.publish").await
    }

    /// `XADD`s encoded tasks, each to its stream, in one `MULTI`/`EXEC`: all or none.
    async fn add_tasks(&self, tasks: Vec<(Stream, String)>, what: &'static str) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (stream, json) in tasks {
            pipe.cmd("XADD")
                .arg(self.key(stream))
                .arg("*")
                .arg("task")
                .arg(json)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::storage(what, e))
    }

    /// The key of one of the two streams.
    fn key(&self, stream: Stream) -> &str {
        match stream {
            Stream::Tasks => &self.keys.tasks,
            Stream::Deliveries => &self.keys.deliveries,
        }
    }

    /// The stream a key names (a reply names its stream by key).
    fn stream_named(&self, key: &str) -> Stream {
        if key == self.keys.deliveries {
            Stream::Deliveries
        } else {
            Stream::Tasks
        }
    }

    fn group_lost(&self) {
        if self.group_ready.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                stream = %self.keys.tasks,
                group = %self.config.group,
                "consumer group is gone (Redis restarted without persistence or keys deleted); recreating it"
            );
            metrics::counter!(crate::metrics::QUEUE_GROUP_RECREATED_TOTAL).increment(1);
        }
    }
}

#[async_trait]
impl Backend for RedisBackend {
    /// Joins the next pipeline of `XADD`s (concurrent publishes share one round trip) and
    /// returns once Redis has acknowledged this event's.
    async fn publish(&self, event: Event) -> Result<()> {
        self.open.check()?;
        let json = Task::fanout(event).encode()?;
        self.publishes.call(json).await
    }

    /// One script: the run is remembered in the replays set (30 days) and its task added to
    /// the stream only if it was not there.
    async fn redeliver(&self, delivery: &Delivery) -> Result<bool> {
        self.open.check()?;
        let task = Task::from(DeliverTask::of(delivery.clone())).encode()?;
        let mut conn = self.conn.clone();
        let queued: i64 = scripts::QUEUE_ONCE
            .key(&self.keys.deliveries)
            .key(&self.keys.replays)
            .arg(format!("{}:{}", delivery.id, delivery.replays))
            .arg(task)
            .arg(REPLAY_RETENTION.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::storage("redis.redeliver", e))?;
        Ok(queued == 1)
    }

    /// Stops accepting events. Nothing is in flight inside the backend itself: what was
    /// published is in Redis.
    async fn shutdown(&self, _deadline: Duration) -> Result<ShutdownReport> {
        Ok(self.open.close())
    }
}

#[async_trait]
impl Queue for RedisBackend {
    async fn lease(&self, max: usize) -> Result<Vec<super::Leased>> {
        lease::lease(self, max).await
    }

    async fn replace(&self, receipt: &Receipt, next: &[Task]) -> Result<bool> {
        settle::one(self, settle::Step::replace(receipt, next)?).await
    }

    async fn retry_in(&self, receipt: &Receipt, task: &Task, delay: Duration) -> Result<bool> {
        settle::one(self, settle::Step::retry(receipt, task, delay)?).await
    }

    async fn dead_letter(&self, receipt: &Receipt, task: &Task, reason: &str) -> Result<bool> {
        let step = settle::Step::dead(self, receipt, task.encode()?.into_bytes(), reason);
        settle::one(self, step).await
    }

    async fn replace_each(&self, receipt: &Receipt, next: &[Replacement]) -> Result<bool> {
        settle::one(self, settle::Step::each(self, receipt, next)?).await
    }

    /// One script call for the whole batch (see `SETTLE`).
    async fn settle_many(&self, settlements: &[Settlement]) -> Vec<Result<bool>> {
        settle::many(self, settlements).await
    }

    async fn extend(&self, receipt: &Receipt) -> Result<bool> {
        let (stream, entry) = Stream::of(receipt);
        let mut conn = self.conn.clone();
        let renewed = scripts::EXTEND
            .key(self.key(stream))
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg(entry)
            .invoke_async::<i64>(&mut conn)
            .await;
        match renewed {
            Ok(renewed) => Ok(renewed == 1),
            Err(e) if is_nogroup(&e) => {
                self.group_lost();
                Ok(false)
            }
            Err(e) => Err(Error::storage("redis.extend", e)),
        }
    }

    fn visibility_timeout(&self) -> Duration {
        self.config.visibility_timeout
    }

    /// Tasks waiting in the streams (ready or leased) plus tasks waiting for a retry.
    async fn depth(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        let (tasks, deliveries, retries): (u64, u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.keys.tasks)
            .cmd("XLEN")
            .arg(&self.keys.deliveries)
            .cmd("ZCARD")
            .arg(&self.keys.retries)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::storage("redis.depth", e))?;
        Ok(tasks + deliveries + retries)
    }

    /// One script, on the server's clock: the oldest entry of either stream not yet delivered
    /// to the group (a stream entry's id is the millisecond it was added), or the oldest retry
    /// due but not yet moved back into its stream, whichever has waited longer.
    async fn oldest_pending_age(&self) -> Result<Option<Duration>> {
        let mut conn = self.conn.clone();
        let age_ms: i64 = scripts::OLDEST_PENDING
            .key(&self.keys.tasks)
            .key(&self.keys.deliveries)
            .key(&self.keys.retries)
            .arg(&self.config.group)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::storage("redis.oldest_pending_age", e))?;
        Ok(u64::try_from(age_ms).ok().map(Duration::from_millis))
    }

    /// One `MULTI`/`EXEC` of `XADD`s to the tasks stream.
    async fn enqueue(&self, tasks: &[Task]) -> Result<()> {
        self.open.check()?;
        // Delivery tasks go where a fan-out's go: into the stream leased first.
        let tasks = tasks
            .iter()
            .map(|task| {
                let stream = match task {
                    Task::Deliver(_) => Stream::Deliveries,
                    _ => Stream::Tasks,
                };
                Ok((stream, task.encode()?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.add_tasks(tasks, "redis.enqueue").await
    }

    /// Dead letters kept in the dead-letter stream (trimmed to about
    /// [`RedisConfig::dead_letter_max_len`]).
    async fn dead_letters(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        redis::cmd("XLEN")
            .arg(&self.keys.dead)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::storage("redis.dead_letters", e))
    }
}

/// Publishes per pipeline, and pipelines in flight at once.
const PUBLISH_BATCH: usize = 256;
const PUBLISH_PARALLEL: usize = 4;
/// Turns of the scheduler a pipeline stays open for publishes to join. Hooked routes publish
/// as their handlers finish, spread out by their own database round trips: a pipeline open for
/// one turn carried 1.6 publishes on the bench's route (0.62 Redis round trips per request),
/// one open for eight carries 2.9 (0.34) — and each round trip saved is a wake-up of Redis the
/// route does not pay for: 9 % less CPU per request (BENCHMARKS.md, session 22). Idle, eight
/// turns are eight non-blocking polls: a lone publish pays ~2.5 µs of CPU for them.
const PUBLISH_TURNS: usize = 8;

/// One pipeline of `XADD`s for a batch of publishes: every publish of the batch succeeds or
/// fails with it (a failed pipeline may have added some: at-least-once, as a retried publish).
fn publish_pipeline(conn: ConnectionManager, tasks: String) -> Flush<String, ()> {
    Arc::new(move |batch: Vec<String>| {
        let (mut conn, tasks) = (conn.clone(), tasks.clone());
        Box::pin(async move {
            let mut pipe = redis::pipe();
            for json in &batch {
                pipe.cmd("XADD")
                    .arg(&tasks)
                    .arg("*")
                    .arg("task")
                    .arg(json)
                    .ignore();
            }
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => batch.iter().map(|_| Ok(())).collect(),
                Err(e) => fail_all(
                    "redis.publish",
                    batch.len(),
                    &Error::storage("redis.publish", e),
                ),
            }
        })
    })
}

/// The two streams a sidecar leases from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    /// Published events, to fan out.
    Tasks,
    /// Delivery tasks: leased first.
    Deliveries,
}

impl Stream {
    /// In the order they are leased.
    const BOTH: [Stream; 2] = [Stream::Deliveries, Stream::Tasks];

    /// The receipt of an entry: its id, marked for the deliveries stream (`d:` before it).
    fn receipt(self, entry: &str) -> Receipt {
        match self {
            Stream::Tasks => Receipt::new(entry),
            Stream::Deliveries => Receipt::new(format!("{DELIVERIES_RECEIPT}{entry}")),
        }
    }

    /// The stream and entry id of a receipt.
    fn of(receipt: &Receipt) -> (Stream, &str) {
        match receipt.as_str().strip_prefix(DELIVERIES_RECEIPT) {
            Some(entry) => (Stream::Deliveries, entry),
            None => (Stream::Tasks, receipt.as_str()),
        }
    }
}

/// What marks a receipt of the deliveries stream.
const DELIVERIES_RECEIPT: &str = "d:";

async fn connection(
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|e| Error::storage("redis.connect", e))
}

/// Whether Redis says the group (or the stream) is gone: `NOGROUP`, or `UNBLOCKED` when the
/// stream was deleted under a blocked read. Either way the group is created again.
fn is_nogroup(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("NOGROUP" | "UNBLOCKED")) || e.to_string().contains("NOGROUP")
}
