//! The delivery history's two foreign keys (a delivery's event, an attempt's delivery) are
//! dropped on PostgreSQL and MariaDB.
//!
//! Each row a batch wrote was checked at the statement's end: PostgreSQL ran one query per row
//! that locked the parent row (`FOR KEY SHARE`), which also writes a WAL record — for rows the
//! same statement had mostly just inserted. The history is written by the store's own
//! statements only, which insert an event before its deliveries and a delivery before its
//! attempts in one transaction, and deleted by [`Store::prune`](crate::store::Store::prune)
//! only, children first. What the keys did besides — order a writer and a prune on the same
//! parent row — [`parents`](super::super::parents) does, locking only the parents a writer
//! found stored before it. Without the keys the sidecar's rows deliver 5–14 % more per second,
//! PostgreSQL spending up to 23 % less CPU and 1–2 WAL records fewer per delivery
//! (BENCHMARKS.md, session 26). SQLite keeps them: it cannot drop a constraint without
//! rebuilding the table, its checks cost little, and it runs one writer at a time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

/// Each key: its name, the table holding it, its column, and the table and column it refers to.
const KEYS: [(&str, &str, &str, &str); 2] = [
    (
        "fastapihooks_deliveries_event",
        "fastapihooks_deliveries",
        "event_id",
        "fastapihooks_events",
    ),
    (
        "fastapihooks_attempts_delivery",
        "fastapihooks_attempts",
        "delivery_id",
        "fastapihooks_deliveries",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        for (name, table, _, _) in KEYS {
            manager
                .drop_foreign_key(
                    ForeignKey::drop()
                        .name(name)
                        .table(Alias::new(table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        for (name, table, column, parent) in KEYS {
            manager
                .create_foreign_key(
                    ForeignKey::create()
                        .name(name)
                        .from(Alias::new(table), Alias::new(column))
                        .to(Alias::new(parent), Alias::new("id"))
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
