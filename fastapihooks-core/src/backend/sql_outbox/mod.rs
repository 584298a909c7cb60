//! [`SqlBackend`]: a durable [`Queue`] in the application's own SQL database — the
//! transactional outbox.
//!
//! - [`SqlBackend::publish_in`] writes the event **in the caller's transaction**: it exists if and
//!   only if the business write commits. No event is lost between a commit and an enqueue, and
//!   none is sent for a write that was rolled back.
//! - Sidecars lease rows of `fastapihooks_outbox` (created by the store's
//!   [`Migrator`](crate::store::sql::Migrator)): a lease is a token written on the row and a due
//!   time pushed past the visibility timeout. A crashed sidecar's rows become due again when it
//!   passes, and the next lease overwrites the token, so the crashed one can no longer settle them.
//! - PostgreSQL and MySQL/MariaDB pick rows `FOR UPDATE SKIP LOCKED` (MySQL 8.0+, MariaDB
//!   10.6+): any number of sidecars share the work without waiting for each other or taking the
//!   same row. A deadlock or serialization failure between them is retried.
//! - SQLite runs one writer at a time: leasing stays correct, but run **one sidecar** — several
//!   would queue on the database lock rather than add throughput.
//! - Every settling step is one transaction, fenced by the lease token. Fan-out deletes the
//!   event's row and inserts its delivery tasks together.
//! - Times come from the database clock, so sidecars with skewed clocks agree on when a retry is
//!   due and when a lease expires.
//!
//! A busy outbox is leased back to back. An empty one is polled (every
//! [`SqlOutboxConfig::poll_interval`]) — and on PostgreSQL a lease call waiting for work is woken
//! as soon as a transaction that inserted rows commits (`LISTEN`/`NOTIFY`, through a trigger
//! the store's migrations create), so an idle sidecar starts a delivery within milliseconds of
//! the commit; polling stays as the fallback. Only commits made while a lessee waits notify: a
//! busy outbox's publishers do not pay for it (`wake.rs` says how).
//!
//! Dead letters stay in the table (`dead = TRUE`, with their reason) beside the store's
//! history; delete old ones with [`SqlBackend::prune_dead_letters`]. `publish_in` does not
//! check the payload size: [`Emitter`](crate::Emitter) does, for events published through it.
//!
//! The store has two outbox tables of the same shape, two separate queues ([`OutboxTable`]):
//! `fastapihooks_outbox` ([`OutboxTable::Events`], the default) holds published events and
//! their deliveries and is drained by `fastapihooks start`; `fastapihooks_inbox_queue`
//! ([`OutboxTable::Inbox`]) holds the processing of received webhooks and is drained by the
//! application's own worker. A backend ([`SqlBackend::on_table`]) writes, leases, settles,
//! counts and prunes rows of its own table only, and on PostgreSQL is woken by commits into
//! it only.

mod config;
mod insert;
pub(crate) use insert::{Due, insert_tasks};
mod settle;
mod statements;
mod table;
mod transient;
mod wake;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, IsolationLevel, QueryResult, SqlErr,
    TransactionTrait, Value,
};

pub use config::SqlOutboxConfig;
pub use table::OutboxTable;

use super::open::OpenFlag;
use super::queue::{DeliverTask, Leased, Queue, Receipt, Task};
use super::settlement::{Replacement, Settlement};
use super::{Backend, ShutdownReport};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::DeliveryId;
use crate::store::{SqlStore, SqlStoreOptions};
use statements::statement;
use transient::{is_conflict, retry_conflicts};

/// A durable queue in the application's SQL database. See the [module docs](self).
///
/// ```no_run
/// # async fn demo() -> fastapihooks_core::Result<()> {
/// use fastapihooks_core::{Event, SqlStore};
/// use fastapihooks_core::backend::SqlBackend;
/// use sea_orm::{ConnectionTrait, TransactionTrait};
///
/// let store = SqlStore::connect("postgres://app@127.0.0.1/app").await?; // migrates
/// let outbox = SqlBackend::for_store(&store);
/// let txn = store.connection().begin().await.map_err(|e| fastapihooks_core::Error::storage("begin", e))?;
/// // txn.execute(…insert the order…)
/// outbox.publish_in(&txn, &Event::new("order.created", &serde_json::json!({"id": 1}))?).await?;
/// txn.commit().await.map_err(|e| fastapihooks_core::Error::storage("commit", e))?;
/// # Ok(()) }
/// ```
pub struct SqlBackend {
    db: DatabaseConnection,
    backend: DbBackend,
    config: SqlOutboxConfig,
    table: OutboxTable,
    open: OpenFlag,
    wake: wake::Wake,
    /// The store it was made for (`for_store`), whose transactions may write to it.
    store: Option<std::sync::Arc<()>>,
}

impl std::fmt::Debug for SqlBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlBackend")
            .field("backend", &self.backend)
            .field("table", &self.table)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SqlBackend {
    /// An outbox on `db` with the default [`SqlOutboxConfig`], queueing into
    /// [`OutboxTable::Events`]. The table must exist: run the store's migrations (e.g. through
    /// [`SqlStore::migrate`]) first.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            backend: db.get_database_backend(),
            db,
            config: SqlOutboxConfig::default(),
            table: OutboxTable::default(),
            open: OpenFlag::default(),
            wake: wake::Wake::new(),
            store: None,
        }
    }

    /// An outbox on `db` leasing as `config` says; fails if `config` does not validate.
    pub fn with_config(db: DatabaseConnection, config: SqlOutboxConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            ..Self::new(db)
        })
    }

    /// The outbox in the store's database, sharing its connection pool. The store knows it as
    /// its own: a received webhook and its processing task are then written in one transaction
    /// ([`Inbox::receive_and_queue`](crate::inbox::Inbox::receive_and_queue)).
    pub fn for_store(store: &SqlStore) -> Self {
        Self {
            store: Some(std::sync::Arc::clone(store.identity())),
            ..Self::new(store.connection().clone())
        }
    }

    /// [`for_store`](Self::for_store), leasing as `config` says; fails if `config` does not
    /// validate.
    pub fn for_store_with_config(store: &SqlStore, config: SqlOutboxConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            ..Self::for_store(store)
        })
    }

    /// Connects to `url` and applies the store's pending migrations (the outbox table is one
    /// of them).
    pub async fn connect(url: &str, config: SqlOutboxConfig) -> Result<Self> {
        config.validate()?;
        let store = SqlStoreOptions::new(url).connect().await?;
        Self::with_config(store.connection().clone(), config)
    }

    /// The configuration in use.
    pub fn config(&self) -> &SqlOutboxConfig {
        &self.config
    }

    /// This outbox, queueing into `table` instead: publishing, leasing, settling, counting
    /// and pruning then touch that table's rows only.
    ///
    /// ```no_run
    /// # async fn demo(store: fastapihooks_core::SqlStore) {
    /// use fastapihooks_core::backend::{OutboxTable, SqlBackend};
    /// let inbox = SqlBackend::for_store(&store).on_table(OutboxTable::Inbox);
    /// assert_eq!(inbox.table(), OutboxTable::Inbox);
    /// # }
    /// ```
    pub fn on_table(self, table: OutboxTable) -> Self {
        Self {
            table,
            // A fresh waker: one already listening listens on the former table's channel.
            wake: wake::Wake::new(),
            ..self
        }
    }

    /// The table this outbox queues into.
    pub fn table(&self) -> OutboxTable {
        self.table
    }

    /// The connection pool the outbox writes through (to begin a transaction that
    /// [`publish_in`](Self::publish_in) then joins).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Writes `event` into the outbox through `conn` — a transaction of the application's: the
    /// event is published if and only if that transaction commits. (With a plain connection it
    /// is published at once.)
    pub async fn publish_in<C: ConnectionTrait>(&self, conn: &C, event: &Event) -> Result<()> {
        self.open.check()?;
        let task = Task::fanout(event.clone());
        insert_tasks(conn, self.table, [(&task, Due::Now)], "outbox.publish").await
    }

    /// Publishes several events in one transaction: all of them or none.
    pub async fn publish_many(&self, events: &[Event]) -> Result<()> {
        self.open.check()?;
        let what = "outbox.publish";
        let tasks: Vec<Task> = events.iter().cloned().map(Task::fanout).collect();
        let txn = self.db.begin().await.map_err(db(what))?;
        let rows: Vec<(&Task, Due)> = tasks.iter().map(|t| (t, Due::Now)).collect();
        insert_tasks(&txn, self.table, rows, what).await?;
        txn.commit().await.map_err(db(what))
    }

    /// Retention of the outbox's dead letters: deletes at most `limit` dead rows that died
    /// before `older_than` (a row's time of death is on the database clock), oldest first, and
    /// returns how many. One short statement per call: call it again until it deletes none.
    /// Live rows — ready, leased, waiting for a retry — are never touched.
    pub async fn prune_dead_letters(
        &self,
        older_than: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let prune = statement(
            self.backend,
            &statements::prune_dead(self.backend, self.table),
            vec![older_than.timestamp_micros().into(), limit.into()],
        );
        let done = self
            .db
            .execute_raw(prune)
            .await
            .map_err(db("outbox.prune_dead_letters"))?;
        Ok(done.rows_affected())
    }

    /// Rows of the outbox that are dead letters (`dead`) or not.
    async fn count(&self, dead: bool) -> Result<u64> {
        let what = "outbox.count";
        let row = self
            .db
            .query_one_raw(statement(
                self.backend,
                &statements::count(self.table),
                vec![dead.into()],
            ))
            .await
            .map_err(db(what))?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n").map_err(db(what))?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One attempt at leasing up to `max` due rows.
    async fn lease_once(&self, max: usize) -> Result<Vec<Leased>> {
        let what = "outbox.lease";
        let token = ulid::Ulid::new().to_string();
        let visibility = micros(self.config.visibility_timeout);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = match self.backend {
            DbBackend::MySql => {
                // Read committed: no gap locks, so concurrent leases skip each other's rows
                // instead of deadlocking on the index range.
                let txn = self
                    .db
                    .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                    .await
                    .map_err(db(what))?;
                let due = txn
                    .query_all_raw(statement(
                        self.backend,
                        &statements::select_due_skip_locked(self.backend, self.table),
                        vec![limit.into()],
                    ))
                    .await
                    .map_err(db(what))?;
                if !due.is_empty() {
                    let mut values: Vec<Value> = vec![token.clone().into(), visibility.into()];
                    for row in &due {
                        values.push(row.try_get::<String>("", "id").map_err(db(what))?.into());
                    }
                    txn.execute_raw(statement(
                        self.backend,
                        &statements::take(self.backend, self.table, due.len()),
                        values,
                    ))
                    .await
                    .map_err(db(what))?;
                }
                txn.commit().await.map_err(db(what))?;
                due
            }
            _ => self
                .db
                .query_all_raw(statement(
                    self.backend,
                    &statements::lease_returning(self.backend, self.table),
                    vec![token.clone().into(), visibility.into(), limit.into()],
                ))
                .await
                .map_err(db(what))?,
        };
        let mut leased = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, raw, leases) = columns(&row).map_err(db(what))?;
            let receipt = Receipt::new(format!("{id}/{token}"));
            match serde_json::from_str::<Task>(&raw) {
                Ok(task) => leased.push(Leased {
                    receipt,
                    task,
                    leases,
                }),
                Err(e) => {
                    tracing::error!(row = %id, error = %e, "outbox row is not a task; keeping it as a dead letter");
                    metrics::counter!(crate::metrics::QUEUE_UNDECODABLE_TOTAL).increment(1);
                    let reason = format!("undecodable task: {e}");
                    self.settle_row(
                        &receipt,
                        &statements::dead(self.backend, self.table),
                        vec![raw.into(), reason.into()],
                    )
                    .await?;
                }
            }
        }
        Ok(leased)
    }

    /// Runs a settling `UPDATE` whose last two values are the receipt's id and token (`values`
    /// come first); says whether the lease was still held.
    async fn settle_row(
        &self,
        receipt: &Receipt,
        sql: &str,
        mut values: Vec<Value>,
    ) -> Result<bool> {
        let (id, token) = split(receipt)?;
        values.push(id.into());
        values.push(token.into());
        let settle = statement(self.backend, sql, values);
        let done = retry_conflicts(|| async {
            self.db
                .execute_raw(settle.clone())
                .await
                .map_err(db("outbox.settle"))
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl Backend for SqlBackend {
    async fn publish(&self, event: Event) -> Result<()> {
        self.publish_in(&self.db, &event).await
    }

    /// One row whose id is derived from (delivery id, run): the primary key makes a run queued
    /// once while its row lives (ready, leased, waiting for a retry, or dead).
    async fn redeliver(&self, delivery: &Delivery) -> Result<bool> {
        self.open.check()?;
        let what = "outbox.redeliver";
        let task = Task::from(DeliverTask::of(delivery.clone())).encode()?;
        let id = replay_row_id(&delivery.id, delivery.replays);
        let insert = statement(
            self.backend,
            &statements::insert(self.backend, self.table, 1),
            vec![id.into(), task.into()],
        );
        match self.db.execute_raw(insert).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(Error::storage(what, e)),
        }
    }

    /// Stops accepting events. Nothing is in flight inside the backend: what was published is
    /// in the database.
    async fn shutdown(&self, _deadline: Duration) -> Result<ShutdownReport> {
        Ok(self.open.close())
    }
}

#[async_trait]
impl Queue for SqlBackend {
    fn store_outbox(&self) -> Option<crate::backend::queue::StoreOutbox<'_>> {
        self.store
            .as_ref()
            .map(|store| crate::backend::queue::StoreOutbox {
                store,
                table: self.table,
            })
    }

    async fn lease(&self, max: usize) -> Result<Vec<Leased>> {
        let max = max.max(1);
        let started = Instant::now();
        self.wake.listen(&self.db, self.table);
        loop {
            // Listening before looking: a commit between the look and the wait still wakes it.
            let committed = self.wake.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let leased = match self.lease_once(max).await {
                Ok(leased) => leased,
                // Rolled back whole: nothing was leased; look again.
                Err(e) if is_conflict(&e) => {
                    tracing::debug!(error = %e, "lease conflicted with another sidecar's");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            if !leased.is_empty() {
                // It leases again before it waits: commits need not notify it meanwhile.
                self.wake.busy();
                return Ok(leased);
            }
            let left = self.config.block.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(leased);
            }
            // From now on a commit notifies it (wake.rs).
            self.wake.waiting();
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval.min(left)) => {}
                _ = committed => {}
            }
        }
    }

    async fn replace(&self, receipt: &Receipt, next: &[Task]) -> Result<bool> {
        retry_conflicts(|| self.replace_once(receipt, Next::Tasks(next))).await
    }

    async fn replace_each(&self, receipt: &Receipt, next: &[Replacement]) -> Result<bool> {
        retry_conflicts(|| self.replace_once(receipt, Next::Each(next))).await
    }

    async fn retry_in(&self, receipt: &Receipt, task: &Task, delay: Duration) -> Result<bool> {
        let values = vec![task.encode()?.into(), micros(delay).into()];
        self.settle_row(
            receipt,
            &statements::retry(self.backend, self.table),
            values,
        )
        .await
    }

    async fn dead_letter(&self, receipt: &Receipt, task: &Task, reason: &str) -> Result<bool> {
        let values = vec![task.encode()?.into(), reason.into()];
        self.settle_row(receipt, &statements::dead(self.backend, self.table), values)
            .await
    }

    /// The acks in one fenced `DELETE … RETURNING` per 500; the others one by one,
    /// concurrently.
    async fn settle_many(&self, settlements: &[Settlement]) -> Vec<Result<bool>> {
        settle::settle_many(self, settlements).await
    }

    async fn extend(&self, receipt: &Receipt) -> Result<bool> {
        let values = vec![micros(self.config.visibility_timeout).into()];
        self.settle_row(
            receipt,
            &statements::extend(self.backend, self.table),
            values,
        )
        .await
    }

    fn visibility_timeout(&self) -> Duration {
        self.config.visibility_timeout
    }

    /// Rows not dead: ready, leased, or waiting for a retry.
    async fn depth(&self) -> Result<u64> {
        self.count(false).await
    }

    /// Dead rows kept in the outbox (`dead = TRUE`).
    async fn dead_letters(&self) -> Result<u64> {
        self.count(true).await
    }

    /// One statement on the database clock: the earliest `available_at_us` of the live rows
    /// that are due (ready, due for a retry, or whose lease expired), through the
    /// `(dead, available_at_us)` index.
    async fn oldest_pending_age(&self) -> Result<Option<Duration>> {
        let what = "outbox.oldest_pending_age";
        let row = self
            .db
            .query_one_raw(statement(
                self.backend,
                &statements::oldest_pending_age(self.backend, self.table),
                vec![],
            ))
            .await
            .map_err(db(what))?;
        let age_us: Option<i64> = match row {
            Some(row) => row.try_get("", "age_us").map_err(db(what))?,
            None => None,
        };
        Ok(age_us.map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0))))
    }

    /// Inserts the tasks in one transaction, due at once: a delivery's task in line at its
    /// event's time (ahead of the events queued after it, as a fan-out's), any other after
    /// everything queued so far.
    async fn enqueue(&self, tasks: &[Task]) -> Result<()> {
        self.open.check()?;
        let what = "outbox.enqueue";
        let txn = self.db.begin().await.map_err(db(what))?;
        let rows: Vec<(&Task, Due)> = tasks
            .iter()
            .map(|task| match task {
                Task::Deliver(deliver) => {
                    let ms = deliver.event_id().timestamp_ms();
                    let at = i64::try_from(ms).unwrap_or(i64::MAX / 1000) * 1000;
                    (task, Due::InLine(at))
                }
                _ => (task, Due::Now),
            })
            .collect();
        insert_tasks(&txn, self.table, rows, what).await?;
        txn.commit().await.map_err(db(what))
    }
}

impl SqlBackend {
    /// Deletes the leased row and inserts `next`, in one transaction, if the lease is held.
    ///
    /// `next` takes the deleted task's place in line: its rows are due from when that task was
    /// first queued, so the deliveries of an event fanned out now go before the events queued
    /// after it — they do not wait behind the fan-out of the whole backlog.
    async fn replace_once(&self, receipt: &Receipt, next: Next<'_>) -> Result<bool> {
        let what = "outbox.settle";
        let (id, token) = split(receipt)?;
        let txn = self.db.begin().await.map_err(db(what))?;
        let deleted = txn
            .query_all_raw(statement(
                self.backend,
                &statements::delete_leased_returning_place(self.table),
                vec![id.into(), token.into()],
            ))
            .await
            .map_err(db(what))?;
        let Some(row) = deleted.first() else {
            txn.rollback().await.map_err(db(what))?;
            return Ok(false);
        };
        let place: i64 = row.try_get("", "created_at_us").map_err(db(what))?;
        insert_tasks(&txn, self.table, next.rows(place), what).await?;
        txn.commit().await.map_err(db(what))?;
        Ok(true)
    }
}

/// What takes a settled task's place ([`SqlBackend::replace_once`]).
#[derive(Clone, Copy)]
pub(super) enum Next<'a> {
    /// Tasks due at once, in line where the task was.
    Tasks(&'a [Task]),
    /// Each as it says.
    Each(&'a [Replacement]),
}

impl<'a> Next<'a> {
    /// The rows to insert; `place`: when the settled task was first queued.
    pub(super) fn rows(self, place: i64) -> Vec<(&'a Task, Due<'a>)> {
        match self {
            Next::Tasks(tasks) => tasks.iter().map(|t| (t, Due::InLine(place))).collect(),
            Next::Each(next) => insert::replacement_rows(next, place),
        }
    }
}

fn replay_row_id(delivery: &DeliveryId, run: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(delivery.as_str())
        .chain_update(b"/replay/")
        .chain_update(run.to_be_bytes())
        .finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    ulid::Ulid::from_parts(delivery.timestamp_ms(), u128::from_be_bytes(random)).to_string()
}

fn columns(row: &QueryResult) -> Result<(String, String, u32), DbErr> {
    let leases: i64 = row.try_get("", "leases")?;
    Ok((
        row.try_get("", "id")?,
        row.try_get("", "task")?,
        u32::try_from(leases).unwrap_or(u32::MAX),
    ))
}

/// The row id and lease token of a receipt (`id/token`).
fn split(receipt: &Receipt) -> Result<(String, String)> {
    receipt
        .as_str()
        .split_once('/')
        .map(|(id, token)| (id.to_owned(), token.to_owned()))
        .ok_or_else(|| Error::ForeignReceipt {
            receipt: receipt.to_string(),
            queue: "SqlBackend",
        })
}

/// A duration in microseconds, as the outbox stores times; capped at a century, so adding it to
/// the clock cannot overflow.
fn micros(d: Duration) -> i64 {
    const CENTURY_US: i64 = 100 * 366 * 24 * 3600 * 1_000_000;
    i64::try_from(d.as_micros()).map_or(CENTURY_US, |us| us.min(CENTURY_US))
}

fn db(what: &'static str) -> impl FnOnce(DbErr) -> Error {
    move |e| Error::storage(what, e)
}
