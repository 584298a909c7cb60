//! [`SqlStore`]: a [`Store`] on sea-orm — SQLite (the embedded default), PostgreSQL,
//! MySQL/MariaDB — with its schema as [`migration`]s.
//!
//! Tables (all prefixed `fastapihooks_`, to share an application's database):
//!
//! | table | one row per | notes |
//! |---|---|---|
//! | `subscriptions` | subscription | `event_filter` holds `order.created` / `order.*` / `*`: `matching` is an index lookup of the event name, its dotted prefixes and `*` |
//! | `events` | event | the payload, stored once however many subscriptions receive it |
//! | `deliveries` | (event, subscription) | inserted if absent by fan-out, updated after each attempt |
//! | `attempts` | HTTP try | outcome, status code or error kind, body excerpt |
//!
//! A subscription's owner is at most 255 characters (the indexed column's width); a longer one
//! is refused with [`Error::TooLong`]. Event owners are not limited.
//!
//! Times are microseconds since the unix epoch: a time read back is the time written, truncated
//! to the microsecond. Subscription secrets and credentials are stored as given, since
//! deliveries are signed and authenticated with them: protect the database accordingly.

mod entity;
mod history;
pub mod migration;
mod options;
mod rows;
mod subscriptions;

pub use migration::Migrator;
pub use options::SqlStoreOptions;

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

use super::{DeliveryQuery, Store, SubscriptionQuery};
use crate::delivery::{Attempt, Delivery};
use crate::error::{Error, Result};
use crate::event::EventName;
use crate::id::{DeliveryId, SubscriptionId};
use crate::subscription::Subscription;

/// A [`Store`] in a SQL database, through sea-orm.
///
/// ```no_run
/// # async fn demo() -> fastapihooks_core::Result<()> {
/// use fastapihooks_core::{SqlStore, Store, Subscription};
/// // Connects (WAL, busy timeout) and applies pending migrations.
/// let store = SqlStore::connect("sqlite://fastapihooks.db?mode=rwc").await?;
/// store.add_subscription(Subscription::new("order.*", "https://example.com/hooks")?).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `url` with the default [`SqlStoreOptions`] and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        SqlStoreOptions::new(url).connect().await
    }

    /// A store on an existing connection (an application's own pool). Migrations are not run:
    /// call [`SqlStore::migrate`], or run [`Migrator`] with the application's own.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Applies pending migrations; with none pending it changes nothing.
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.db, None)
            .await
            .map_err(db("store.migrate"))
    }

    /// The names of the migrations not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>> {
        Ok(Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(db("store.migrate"))?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    /// The underlying connection, to share it or run queries of one's own.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// Wraps a database error, naming the store operation.
fn db(what: &'static str) -> impl FnOnce(DbErr) -> Error {
    move |e| Error::storage(what, e)
}

/// A page size as a `LIMIT`: at most `i64::MAX`, the largest every database accepts.
fn page_size(limit: usize) -> u64 {
    u64::try_from(limit).map_or(i64::MAX as u64, |l| l.min(i64::MAX as u64))
}

/// Rows fetched per `IN (...)` list or multi-row insert: far below every database's bound on
/// bound parameters.
const BATCH: usize = 500;

#[async_trait]
impl Store for SqlStore {
    async fn add_subscription(&self, subscription: Subscription) -> Result<()> {
        self.insert_subscription(&subscription).await
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        self.find_subscription(id).await
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<()> {
        self.replace_subscription(&subscription).await
    }

    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        self.delete_subscription(id).await
    }

    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        self.subscription_page(query).await
    }

    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        self.subscriptions_matching(event, owner).await
    }

    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        self.update_enabled(id, enabled).await
    }

    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        self.insert_deliveries(deliveries).await
    }

    async fn record_attempt(&self, delivery: &Delivery, attempt: &Attempt) -> Result<()> {
        self.insert_attempt(delivery, attempt).await
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.find_delivery(id).await
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        self.delivery_page(query).await
    }

    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>> {
        self.attempts_of(delivery).await
    }
}
