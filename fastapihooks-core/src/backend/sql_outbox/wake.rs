//! Wake on commit: on PostgreSQL, a trigger on each outbox table (the store's migrations)
//! sends a `NOTIFY` when rows are inserted, delivered when the inserting transaction commits —
//! but only while a lessee waits for work, so that busy publishers do not pay for it.
//!
//! PostgreSQL commits the transactions that notify one at a time (it queues notifications
//! under one lock for the whole database, held until the commit is flushed), so a `NOTIFY` in
//! every publishing transaction would cap every publishing route at the rate of one commit
//! after another. The gate, an advisory lock `(WAKE_LOCK_CLASS, the table's OID)`:
//!
//! - A lessee that found the table empty asks to wait ([`Wake::waiting`]): its listening
//!   connection, already `LISTEN`ing on the table's channel (`{table}_{oid}`), takes the lock,
//!   waiting for the publishing transactions that hold it shared to end, then wakes the lessee
//!   once so that it looks again: their rows are visible now.
//! - The trigger tries the lock shared for its transaction: when that fails a lessee waits (or
//!   is starting to) and the commit notifies it; when it succeeds nobody is told — and a lessee
//!   starting to wait meanwhile waits for this commit, as above.
//! - A lessee that leased rows is busy ([`Wake::busy`]): it leases again before it waits, so
//!   its connection releases the lock and publishers stop notifying.
//!
//! Polling stays: it is the fallback (the listening connection lost, a notification missed
//! while reconnecting) and the only way on MariaDB and SQLite. A notification that wakes a
//! lessee for nothing (another sidecar took the rows) costs one empty lease query.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, watch};
#[cfg(feature = "postgres")]
use tokio_util::sync::CancellationToken;
use tokio_util::sync::DropGuard;

use super::OutboxTable;

/// Wakes a waiting lease call when the database says rows were committed.
pub(super) struct Wake {
    notify: Arc<Notify>,
    /// Whether the lessee waits for work (the gate should be held).
    waiting: watch::Sender<bool>,
    listening: std::sync::OnceLock<DropGuard>,
}

impl Wake {
    pub(super) fn new() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            waiting: watch::Sender::new(false),
            listening: std::sync::OnceLock::new(),
        }
    }

    /// Starts listening, once, on PostgreSQL (a no-op elsewhere) on `table`'s channel: a
    /// connection of its own (not one of `db`'s pool: it holds a session lock), held by a task
    /// that ends when this `Wake` is dropped.
    pub(super) fn listen(&self, db: &DatabaseConnection, table: OutboxTable) {
        #[cfg(feature = "postgres")]
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.listening.get_or_init(|| {
                let stop = CancellationToken::new();
                tokio::spawn(listen(
                    db.get_postgres_connection_pool().clone(),
                    table.name(),
                    self.notify.clone(),
                    self.waiting.subscribe(),
                    stop.clone(),
                ));
                stop.drop_guard()
            });
        }
        #[cfg(not(feature = "postgres"))]
        let _ = (db, table, &self.listening);
    }

    /// The lessee found nothing and waits: commits should notify it from now on. It is woken
    /// once ([`notified`](Self::notified)) when they do, to look again.
    pub(super) fn waiting(&self) {
        self.waiting
            .send_if_modified(|waiting| !std::mem::replace(waiting, true));
    }

    /// The lessee leased rows and leases again before it waits: commits need not notify it.
    pub(super) fn busy(&self) {
        self.waiting
            .send_if_modified(|waiting| std::mem::replace(waiting, false));
    }

    /// Completes when a commit is notified after this was called, or when the lessee should
    /// look again (the future must be `enable`d — polled or pinned and enabled — before the
    /// check it guards).
    pub(super) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(feature = "postgres")]
async fn listen(
    pool: sea_orm::sqlx::PgPool,
    table: &'static str,
    notify: Arc<Notify>,
    mut waiting: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let listened = tokio::select! {
            _ = stop.cancelled() => return,
            listened = relay(&pool, table, &notify, &mut waiting) => listened,
        };
        failures += 1;
        let pause = std::time::Duration::from_millis(200) * failures.min(25);
        tracing::warn!(error = %listened.unwrap_err(), table, ?pause, "outbox: listening for commits failed; polling meanwhile, listening again later");
        // Whatever was committed meanwhile is found by the next poll; wake it now.
        notify.notify_waiters();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Holds the gate while the lessee waits and relays notifications to it, until the connection
/// fails.
#[cfg(feature = "postgres")]
async fn relay(
    pool: &sea_orm::sqlx::PgPool,
    table: &str,
    notify: &Notify,
    waiting: &mut watch::Receiver<bool>,
) -> Result<std::convert::Infallible, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::{self, postgres::PgListener, postgres::PgPoolOptions};

    // The table as the application's connections see it (their search path picks the schema).
    let (key, channel): (i32, String) = sqlx::query_as(
        "SELECT c.oid::int4, c.relname || '_' || c.oid FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(table)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
        sqlx::Error::Configuration(format!("no table {table}: run the store's migrations").into())
    })?;
    // A pool of one of its own: the session lock must never go back to the application's
    // pool with the connection. Dropped with the listener, it closes the connection.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with(pool.connect_options().as_ref().clone())
        .await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(&channel).await?;
    tracing::debug!(table, channel, "outbox: listening for commits");
    let class = crate::store::sql::migration::WAKE_LOCK_CLASS;
    let mut held = false;
    loop {
        let wanted = *waiting.borrow_and_update();
        if wanted != held {
            let gate = if wanted {
                "SELECT pg_advisory_lock($1, $2)"
            } else {
                "SELECT pg_advisory_unlock($1, $2)"
            };
            sqlx::query(gate)
                .bind(class)
                .bind(key)
                .execute(&mut listener)
                .await?;
            held = wanted;
            if held {
                // Publishers that took the gate before it was held have committed: look again.
                notify.notify_waiters();
            }
            continue;
        }
        tokio::select! {
            changed = waiting.changed() => {
                if changed.is_err() {
                    // The `Wake` is gone; its drop guard ends this task.
                    std::future::pending::<()>().await;
                }
            }
            received = listener.try_recv() => match received? {
                Some(_) => notify.notify_waiters(),
                None => {
                    return Err(sqlx::Error::Io(std::io::Error::other(
                        "the listening connection was lost (and with it the gate)",
                    )));
                }
            },
        }
    }
}
