//! [`SqlStore`]: a [`Store`] on sea-orm — SQLite (the embedded default), PostgreSQL,
//! MySQL/MariaDB — with its schema as [`migration`]s.
//!
//! Tables (all prefixed `fastapihooks_`, to share an application's database):
//!
//! | table | one row per | notes |
//! |---|---|---|
//! | `subscriptions` | subscription | `event_filter` holds `order.created` / `order.*` / `*`: `matching` is an index lookup of the event name, its dotted prefixes and `*` |
//! | `events` | event | the payload, stored once however many subscriptions receive it; indexed by name, owner and time for [`EventQuery`] |
//! | `deliveries` | (event, subscription) | inserted if absent by fan-out, updated after each attempt; filtered by their event's name and owner through a subquery on `events` |
//! | `attempts` | HTTP try | outcome, status code or error kind, body excerpt |
//!
//! A subscription's owner is at most 255 characters (the indexed column's width); a longer one
//! is refused with [`Error::TooLong`]. Event owners are not limited.
//!
//! Times are microseconds since the unix epoch: a time read back is the time written, truncated
//! to the microsecond. Subscription secrets and credentials are stored as given, since
//! deliveries are signed and authenticated with them: protect the database accordingly.

// sea-orm's entity derives expect `pub` items (and generate more); the module itself is
// private to this store, so none of them is reachable from outside.
mod batch;
#[cfg(feature = "postgres")]
mod batch_postgres;
mod counts;
#[allow(unreachable_pub)]
mod entity;
mod history;
mod inbox;
mod loopback_tls;
pub mod migration;
mod options;
mod parents;
#[cfg(all(test, feature = "postgres"))]
pub(crate) mod plans;
mod query;
mod rows;
mod subscriptions;

pub use migration::Migrator;
pub use options::SqlStoreOptions;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use super::{DeliveryQuery, EventQuery, Store, SubscriptionQuery};
use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::event::{Event, EventName};
use crate::health::{Disabled, EndpointHealth};
use crate::id::{DeliveryId, EventId, SubscriptionId};
use crate::replay::Reopen;
use crate::subscription::Subscription;
use entity::subscription::{self as sub_entity, Column as SubColumn};
use entity::{attempt, delivery, event, first_attempt};
use rows::{
    attempt_from_row, attempt_row, delivery_row, event_from_row, subscription_from_row,
    subscription_row,
};

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
    /// Who this store is, shared by its clones: an outbox made with `SqlBackend::for_store`
    /// carries it, so the store knows its own outbox (and writes to it in its transactions).
    identity: std::sync::Arc<()>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// This store's identity (see the field).
    pub(crate) fn identity(&self) -> &std::sync::Arc<()> {
        &self.identity
    }

    /// Connects to `url` with the default [`SqlStoreOptions`] and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        SqlStoreOptions::new(url).connect().await
    }

    /// A store on an existing connection (an application's own pool). Migrations are not run:
    /// call [`SqlStore::migrate`], or run [`Migrator`] with the application's own.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            identity: std::sync::Arc::new(()),
        }
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
        let row = subscription_row(&subscription)?;
        match sub_entity::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(Error::SubscriptionExists {
                    id: subscription.id.to_string(),
                })
            }
            Err(e) => Err(Error::storage("store.add_subscription", e)),
        }
    }

    async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>> {
        sub_entity::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db("store.get_subscription"))?
            .map(subscription_from_row)
            .transpose()
    }

    async fn update_subscription(&self, subscription: Subscription) -> Result<()> {
        let mut row = subscription_row(&subscription)?;
        // The failure streak is the engine's to write (`record_health`, `set_enabled`): an
        // update read before a failure was counted must not undo it.
        row.failing_since_us = ActiveValue::NotSet;
        row.failures = ActiveValue::NotSet;
        let done = sub_entity::Entity::update_many()
            .set(row)
            .filter(SubColumn::Id.eq(subscription.id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db("store.update_subscription"))?;
        subscriptions::found(done.rows_affected, &subscription.id)
    }

    async fn remove_subscription(&self, id: &SubscriptionId) -> Result<()> {
        let done = sub_entity::Entity::delete_by_id(id.as_str())
            .exec(&self.db)
            .await
            .map_err(db("store.remove_subscription"))?;
        subscriptions::found(done.rows_affected, id)
    }

    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>> {
        let mut select = sub_entity::Entity::find();
        if let Some(owner) = &query.owner {
            select = select.filter(SubColumn::Owner.eq(owner.as_str()));
        }
        if let Some(after) = &query.after {
            select = select.filter(SubColumn::Id.gt(after.as_str()));
        }
        select
            .order_by_asc(SubColumn::Id)
            .limit(page_size(query.limit))
            .all(&self.db)
            .await
            .map_err(db("store.list_subscriptions"))?
            .into_iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn matching(&self, event: &EventName, owner: Option<&str>) -> Result<Vec<Subscription>> {
        let owners = match owner {
            Some(owner) => Condition::any()
                .add(SubColumn::Owner.is_null())
                .add(SubColumn::Owner.eq(owner)),
            None => Condition::all().add(SubColumn::Owner.is_null()),
        };
        let rows = sub_entity::Entity::find()
            .filter(SubColumn::EventFilter.is_in(subscriptions::filters_passing(event)))
            .filter(SubColumn::Enabled.eq(true))
            .filter(owners)
            .order_by_asc(SubColumn::Id)
            .all(&self.db)
            .await
            .map_err(db("store.matching"))?;
        let mut subs = Vec::with_capacity(rows.len());
        for row in rows {
            let sub = subscription_from_row(row)?;
            // The query already selects exactly these; the check keeps `receives` the one
            // definition even where a database compares strings loosely (trailing spaces).
            if sub.receives(event, owner) {
                subs.push(sub);
            }
        }
        Ok(subs)
    }

    /// One `UPDATE` of the flag, not a read and a write.
    async fn set_enabled(&self, id: &SubscriptionId, enabled: bool) -> Result<()> {
        let mut update = sub_entity::Entity::update_many()
            .col_expr(SubColumn::Enabled, Expr::value(enabled))
            .filter(SubColumn::Id.eq(id.as_str()));
        if enabled {
            update = update
                .col_expr(
                    SubColumn::DisabledReason,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(SubColumn::DisabledAtUs, Expr::value(Option::<i64>::None))
                .col_expr(SubColumn::FailingSinceUs, Expr::value(Option::<i64>::None))
                .col_expr(SubColumn::Failures, Expr::value(0i64));
        }
        let done = update
            .exec(&self.db)
            .await
            .map_err(db("store.set_enabled"))?;
        subscriptions::found(done.rows_affected, id)
    }

    /// One `UPDATE … WHERE enabled`: of racing callers, one disables.
    async fn disable_subscription(&self, id: &SubscriptionId, disabled: Disabled) -> Result<bool> {
        let done = sub_entity::Entity::update_many()
            .col_expr(SubColumn::Enabled, Expr::value(false))
            .col_expr(SubColumn::DisabledReason, Expr::value(disabled.reason))
            .col_expr(
                SubColumn::DisabledAtUs,
                Expr::value(rows::micros(disabled.at)),
            )
            .filter(SubColumn::Id.eq(id.as_str()))
            .filter(SubColumn::Enabled.eq(true))
            .exec(&self.db)
            .await
            .map_err(db("store.disable_subscription"))?;
        Ok(done.rows_affected == 1)
    }

    /// A success is one `UPDATE` that touches only a failing subscription; a failure counts up
    /// in place (concurrent failures all count), then the streak is read back.
    async fn record_health(
        &self,
        id: &SubscriptionId,
        delivered: bool,
        at: DateTime<Utc>,
    ) -> Result<EndpointHealth> {
        use sea_orm::sea_query::ExprTrait as _;
        let what = "store.record_health";
        if delivered {
            sub_entity::Entity::update_many()
                .col_expr(SubColumn::FailingSinceUs, Expr::value(Option::<i64>::None))
                .col_expr(SubColumn::Failures, Expr::value(0i64))
                .filter(SubColumn::Id.eq(id.as_str()))
                .filter(SubColumn::Failures.gt(0))
                .exec(&self.db)
                .await
                .map_err(db(what))?;
            return Ok(EndpointHealth::default());
        }
        sub_entity::Entity::update_many()
            .col_expr(SubColumn::Failures, Expr::col(SubColumn::Failures).add(1))
            .col_expr(
                SubColumn::FailingSinceUs,
                Expr::col(SubColumn::FailingSinceUs).if_null(rows::micros(at)),
            )
            .filter(SubColumn::Id.eq(id.as_str()))
            .exec(&self.db)
            .await
            .map_err(db(what))?;
        Ok(self
            .get_subscription(id)
            .await?
            .map(|s| s.health)
            .unwrap_or_default())
    }

    /// Inserts each event once and each delivery if absent, in one transaction: a delivery
    /// already recorded (fan-out run again) keeps its state.
    async fn record_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        history::record_deliveries(&self.db, deliveries, false)
            .await
            .map(drop)
    }

    /// As `record_deliveries`, with `INSERT … RETURNING id` on PostgreSQL and SQLite; `None` on
    /// MySQL/MariaDB.
    async fn record_new_deliveries(&self, deliveries: &[Delivery]) -> Result<Option<Vec<bool>>> {
        history::record_deliveries(&self.db, deliveries, true).await
    }

    /// Updates the delivery and appends the attempt, together. A delivery that is not recorded
    /// is left unrecorded (as [`MemoryStore`](crate::MemoryStore) does past its bound).
    async fn record_attempt(&self, d: &Delivery, attempt: &Attempt) -> Result<()> {
        let what = "store.record_attempt";
        let txn = self.db.begin().await.map_err(db(what))?;
        let mut row = delivery_row(d);
        // Fan-out fixed these; an attempt changes only the state below.
        row.event_id = ActiveValue::NotSet;
        row.subscription_id = ActiveValue::NotSet;
        row.created_at_us = ActiveValue::NotSet;
        // A replay sets these; an attempt never does.
        row.replays = ActiveValue::NotSet;
        row.attempts_before_replay = ActiveValue::NotSet;
        // Status is monotonic: only a pending delivery in the attempt's run takes its outcome;
        // one that reached a final status, or was replayed since (an overtaken run), keeps its
        // state, and the attempt is still history.
        let updated = delivery::Entity::update_many()
            .set(row)
            .filter(delivery::Column::Id.eq(d.id.as_str()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(delivery::Column::Replays.eq(i64::from(d.replays)))
            .exec(&txn)
            .await
            .map_err(db(what))?;
        let known = updated.rows_affected > 0
            || delivery::Entity::find_by_id(d.id.as_str())
                .one(&txn)
                .await
                .map_err(db(what))?
                .is_some();
        if known {
            attempt::Entity::insert(attempt_row(attempt))
                .exec_without_returning(&txn)
                .await
                .map_err(db(what))?;
        }
        txn.commit().await.map_err(db(what))
    }

    /// A read, then an `UPDATE` guarded by the status and run read: a replay racing this one
    /// makes it read again (and find the delivery pending).
    async fn replay_delivery(
        &self,
        id: &DeliveryId,
        resend_delivered: bool,
    ) -> Result<Option<Reopen>> {
        let what = "store.replay_delivery";
        // Each lost race means another writer changed the delivery (usually: replayed it, so
        // the next read finds it pending); a few are plenty.
        for _ in 0..8 {
            let Some(mut current) = self.get_delivery(id).await? else {
                return Ok(None);
            };
            let (status, replays) = (current.status, current.replays);
            let reopened = match Reopen::apply(&mut current, resend_delivered) {
                Reopen::Reopened(d) => d,
                kept => return Ok(Some(kept)),
            };
            let row = delivery::ActiveModel {
                status: ActiveValue::Set(reopened.status.as_str().to_owned()),
                replays: ActiveValue::Set(i64::from(reopened.replays)),
                attempts_before_replay: ActiveValue::Set(i64::from(
                    reopened.attempts_before_replay,
                )),
                next_attempt_at_us: ActiveValue::Set(reopened.next_attempt_at.map(rows::micros)),
                updated_at_us: ActiveValue::Set(rows::micros(reopened.updated_at)),
                ..Default::default()
            };
            let updated = delivery::Entity::update_many()
                .set(row)
                .filter(delivery::Column::Id.eq(id.as_str()))
                .filter(delivery::Column::Status.eq(status.as_str()))
                .filter(delivery::Column::Replays.eq(i64::from(replays)))
                .exec(&self.db)
                .await
                .map_err(db(what))?;
            if updated.rows_affected == 1 {
                return Ok(Some(Reopen::Reopened(reopened)));
            }
        }
        Err(Error::storage(
            what,
            std::io::Error::other(format!("delivery {id} kept changing under the replay")),
        ))
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        let what = "store.get_delivery";
        let row = delivery::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db(what))?;
        match row {
            Some(row) => Ok(history::with_events(&self.db, vec![row], what).await?.pop()),
            None => Ok(None),
        }
    }

    /// Yes: an event stays while any delivery refers to it, and retention removes delivered
    /// deliveries only.
    fn keeps_events(&self) -> bool {
        true
    }

    /// One `IN` query per 200 ids (and one for their events).
    async fn get_deliveries(&self, ids: &[DeliveryId]) -> Result<Vec<Delivery>> {
        batch::get_deliveries(&self.db, ids).await
    }

    /// One `IN` query per 200 ids.
    async fn get_subscriptions(&self, ids: &[SubscriptionId]) -> Result<Vec<Subscription>> {
        batch::get_subscriptions(&self.db, ids).await
    }

    /// One transaction: an `UPDATE` with `CASE` per 200 deliveries, one read of which exist,
    /// one multi-row `INSERT` of the attempts.
    async fn record_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        batch::record_attempts(&self.db, attempts).await
    }

    /// One transaction per batch: the deliveries inserted in their state after the attempt,
    /// the ones recorded already updated as `record_attempts` does, and the attempts.
    async fn record_first_attempts(&self, attempts: &[(Delivery, Attempt)]) -> Result<()> {
        batch::record_first_attempts(&self.db, attempts).await
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let what = "store.list_deliveries";
        let rows = delivery::Entity::find()
            .filter(query::deliveries(self.db.get_database_backend(), q))
            .order_by_desc(delivery::Column::Id)
            .limit(page_size(q.limit))
            .all(&self.db)
            .await
            .map_err(db(what))?;
        history::with_events(&self.db, rows, what).await
    }

    /// One `GROUP BY name` over the stored events.
    async fn count_events(
        &self,
        q: &EventQuery,
    ) -> Result<Vec<crate::delivery_counts::EventNameCount>> {
        counts::count_events(self, q).await
    }

    /// One `GROUP BY` over the stored deliveries, on the column `by` names.
    async fn count_deliveries(
        &self,
        q: &DeliveryQuery,
        by: crate::delivery_counts::CountBy,
    ) -> Result<Vec<crate::delivery_counts::DeliveryCount>> {
        counts::count_deliveries(self, q, by).await
    }

    /// The first attempt kept in the delivery's row, if it keeps one (its `first_attempt_*`
    /// columns, migration 17), and the rows of `fastapihooks_attempts`, by number.
    async fn list_attempts(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>> {
        let what = "store.list_attempts";
        let kept = first_attempt::Entity::find_by_id(delivery.as_str())
            .one(&self.db)
            .await
            .map_err(db(what))?
            .and_then(first_attempt::Model::into_attempt);
        let mut rows = attempt::Entity::find()
            .filter(attempt::Column::DeliveryId.eq(delivery.as_str()))
            .order_by_asc(attempt::Column::Number)
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await
            .map_err(db(what))?;
        if let Some(kept) = kept {
            let at = rows.partition_point(|r| (r.number, &r.id) < (kept.number, &kept.id));
            rows.insert(at, kept);
        }
        rows.into_iter().map(attempt_from_row).collect()
    }

    async fn get_event(&self, id: &EventId) -> Result<Option<Event>> {
        event::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db("store.get_event"))?
            .map(event_from_row)
            .transpose()
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        event::Entity::find()
            .filter(query::events(self.db.get_database_backend(), q))
            .order_by_desc(event::Column::Id)
            .limit(page_size(q.limit))
            .all(&self.db)
            .await
            .map_err(db("store.list_events"))?
            .into_iter()
            .map(event_from_row)
            .collect()
    }

    /// One short transaction: the least recently updated delivered deliveries before the
    /// cut-off, locked (`FOR UPDATE`; SQLite takes its one write lock at `BEGIN IMMEDIATE`) so a
    /// replay racing the prune either reopens a delivery before it is chosen or finds it gone;
    /// then their attempts, the deliveries, and those of their events no delivery refers to any
    /// more. Found through the `(status, updated_at_us)` index: no scan of the history.
    async fn prune(&self, older_than: DateTime<Utc>, limit: usize) -> Result<super::Pruned> {
        use sea_orm::sea_query::{ExprTrait as _, Query};
        use sea_orm::{DbBackend, IsolationLevel, SqliteTransactionMode, TransactionOptions};

        let what = "store.prune";
        let mut pruned = super::Pruned::default();
        if limit == 0 {
            return Ok(pruned);
        }
        let backend = self.db.get_database_backend();
        let options = TransactionOptions {
            // MySQL/MariaDB: lock the rows chosen, not the index gaps around them.
            isolation_level: (backend == DbBackend::MySql).then_some(IsolationLevel::ReadCommitted),
            access_mode: None,
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        };
        let txn = self
            .db
            .begin_with_options(options)
            .await
            .map_err(db(what))?;
        let chosen: Vec<(String, String, Option<String>)> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .column(delivery::Column::EventId)
            // The first attempt the row keeps, if any, goes with it.
            .column(first_attempt::Column::FirstAttemptId)
            .filter(delivery::Column::Status.eq(DeliveryStatus::Delivered.as_str()))
            .filter(delivery::Column::UpdatedAtUs.lt(rows::micros(older_than)))
            .order_by_asc(delivery::Column::UpdatedAtUs)
            .limit(page_size(limit))
            .lock_exclusive()
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db(what))?;
        pruned.attempts += chosen.iter().filter(|(_, _, kept)| kept.is_some()).count() as u64;
        let ids: Vec<&str> = chosen.iter().map(|(id, _, _)| id.as_str()).collect();
        for chunk in ids.chunks(BATCH) {
            pruned.attempts += attempt::Entity::delete_many()
                .filter(attempt::Column::DeliveryId.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await
                .map_err(db(what))?
                .rows_affected;
            pruned.deliveries += delivery::Entity::delete_many()
                .filter(delivery::Column::Id.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await
                .map_err(db(what))?
                .rows_affected;
        }
        let mut event_ids: Vec<&str> = chosen.iter().map(|(_, event, _)| event.as_str()).collect();
        event_ids.sort_unstable();
        event_ids.dedup();
        // Writers of deliveries hold the events they found: this waits for them, and the
        // check below, a statement of its own, sees what they wrote.
        parents::lock_events_for_prune(&txn, &event_ids, what).await?;
        for chunk in event_ids.chunks(BATCH) {
            let a_delivery_of_it = Query::select()
                .expr(Expr::val(1))
                .from(delivery::Entity)
                .and_where(
                    Expr::col((delivery::Entity, delivery::Column::EventId))
                        .equals((event::Entity, event::Column::Id)),
                )
                .to_owned();
            pruned.events += event::Entity::delete_many()
                .filter(event::Column::Id.is_in(chunk.iter().copied()))
                .filter(Expr::exists(a_delivery_of_it).not())
                .exec(&txn)
                .await
                .map_err(db(what))?
                .rows_affected;
        }
        txn.commit().await.map_err(db(what))?;
        Ok(pruned)
    }
}
