//! The store's schema, as sea-orm-migration migrations: one file per migration, applied in
//! order, each recorded in `fastapihooks_migrations` so running them again is a no-op.
//!
//! New tables (the durable queue's outbox, ...) come as new migration files appended to
//! [`Migrator::migrations`]; applied migrations are never edited.

mod columns;
mod m20261123_000001_create_subscriptions;
mod m20261123_000002_create_delivery_history;
mod m20261123_000003_create_outbox;
mod m20261202_000004_add_subscription_retry;
mod m20261202_000005_history_indexes;
mod m20261202_000006_add_delivery_replays;
mod m20261202_000007_add_subscription_health;
mod m20261202_000008_prune_index;
mod m20261202_000009_outbox_notify;
mod m20261202_000010_create_inbox_queue;
mod m20261202_000011_create_inbox;
mod m20261203_000012_drop_due_index;
mod m20261203_000013_partial_owner_index;
mod m20261204_000014_gated_notify;
mod m20261205_000015_leasing_index_by_id;
mod m20261205_000016_history_without_foreign_keys;
mod m20261206_000017_first_attempt_in_delivery_row;
mod outbox_shape;
pub use outbox_shape::WAKE_LOCK_CLASS;

use sea_orm_migration::prelude::*;

/// The migrations of the SQL store, for [`MigratorTrait`] (`Migrator::up(&db, None)`).
///
/// [`SqlStore::connect`](super::SqlStore::connect) runs the pending ones itself; run them
/// yourself when the store is made with [`SqlStore::new`](super::SqlStore::new) or connected with
/// migrations turned off. Their bookkeeping table is `fastapihooks_migrations`, apart from an
/// application's own sea-orm migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_subscriptions::Migration),
            Box::new(m20261123_000002_create_delivery_history::Migration),
            Box::new(m20261123_000003_create_outbox::Migration),
            Box::new(m20261202_000004_add_subscription_retry::Migration),
            Box::new(m20261202_000005_history_indexes::Migration),
            Box::new(m20261202_000006_add_delivery_replays::Migration),
            Box::new(m20261202_000007_add_subscription_health::Migration),
            Box::new(m20261202_000008_prune_index::Migration),
            Box::new(m20261202_000009_outbox_notify::Migration),
            Box::new(m20261202_000010_create_inbox_queue::Migration),
            Box::new(m20261202_000011_create_inbox::Migration),
            Box::new(m20261203_000012_drop_due_index::Migration),
            Box::new(m20261203_000013_partial_owner_index::Migration),
            Box::new(m20261204_000014_gated_notify::Migration),
            Box::new(m20261205_000015_leasing_index_by_id::Migration),
            Box::new(m20261205_000016_history_without_foreign_keys::Migration),
            Box::new(m20261206_000017_first_attempt_in_delivery_row::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "fastapihooks_migrations".into_iden()
    }
}
