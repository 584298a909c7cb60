//! Wake on commit: on PostgreSQL, a trigger on each outbox table (a migration of the store)
//! sends a `NOTIFY` on the channel named after the table (`fastapihooks_outbox`,
//! `fastapihooks_inbox_queue`) when rows are inserted, and PostgreSQL delivers it when the
//! inserting transaction commits. A lessee waiting for work listens on its table's channel and
//! leases at once, instead of at its next poll; inserts into the other table do not wake it.
//!
//! Polling stays: it is the fallback (the listening connection lost, a notification missed
//! while reconnecting) and the only way on MariaDB and SQLite. A notification that wakes a
//! sidecar for nothing (another sidecar took the rows, another schema's outbox) costs one
//! empty lease query.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
#[cfg(feature = "postgres")]
use tokio_util::sync::CancellationToken;
use tokio_util::sync::DropGuard;

use super::OutboxTable;

/// Wakes a waiting lease call when the database says rows were committed.
pub(super) struct Wake {
    notify: Arc<Notify>,
    listening: std::sync::OnceLock<DropGuard>,
}

impl Wake {
    pub(super) fn new() -> Self {
        Self {
            notify: Arc::new(Notify::new()),
            listening: std::sync::OnceLock::new(),
        }
    }

    /// Starts listening, once, on PostgreSQL (a no-op elsewhere) on `table`'s channel: one
    /// connection of the pool, held by a task that ends when this `Wake` is dropped.
    pub(super) fn listen(&self, db: &DatabaseConnection, table: OutboxTable) {
        #[cfg(feature = "postgres")]
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.listening.get_or_init(|| {
                let stop = CancellationToken::new();
                tokio::spawn(listen(
                    db.get_postgres_connection_pool().clone(),
                    table.name(),
                    self.notify.clone(),
                    stop.clone(),
                ));
                stop.drop_guard()
            });
        }
        #[cfg(not(feature = "postgres"))]
        let _ = (db, table, &self.listening);
    }

    /// Completes when a commit is notified after this was called (the future must be
    /// `enable`d — polled or pinned and enabled — before the check it guards).
    pub(super) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(feature = "postgres")]
async fn listen(
    pool: sea_orm::sqlx::PgPool,
    channel: &'static str,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let listened = tokio::select! {
            _ = stop.cancelled() => return,
            listened = relay(&pool, channel, &notify) => listened,
        };
        failures += 1;
        let pause = std::time::Duration::from_millis(200) * failures.min(25);
        tracing::warn!(error = %listened.unwrap_err(), channel, ?pause, "outbox: listening for commits failed; polling meanwhile, listening again later");
        // Whatever was committed meanwhile is found by the next poll; wake it now.
        notify.notify_waiters();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Relays notifications to the waiting lease call until the connection fails.
#[cfg(feature = "postgres")]
async fn relay(
    pool: &sea_orm::sqlx::PgPool,
    channel: &str,
    notify: &Notify,
) -> Result<std::convert::Infallible, sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    tracing::debug!(channel, "outbox: listening for commits");
    loop {
        listener.recv().await?;
        notify.notify_waiters();
    }
}
