//! `fastapihooks_outbox`: the queue of [`SqlBackend`](crate::backend::SqlBackend) — published
//! events and delivery tasks waiting, leased, waiting for a retry, or dead.

use sea_orm_migration::prelude::*;

use super::columns::{id, index, long_text, micros};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksOutbox {
    Table,
    Id,
    Task,
    Dead,
    AvailableAtUs,
    Lease,
    Leases,
    Reason,
    CreatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksOutbox as O;
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(O::Table)
                    .if_not_exists()
                    // A ULID: rows of equal due time are taken oldest first.
                    .col(id(O::Id).primary_key())
                    .col(long_text(backend, O::Task))
                    .col(ColumnDef::new(O::Dead).boolean().not_null())
                    // When the row may be leased: at once, when a retry is due, or when the
                    // current lease expires (database clock, µs since the epoch).
                    .col(micros(O::AvailableAtUs))
                    .col(ColumnDef::new(O::Lease).string_len(32).null())
                    .col(ColumnDef::new(O::Leases).big_integer().not_null())
                    .col(ColumnDef::new(O::Reason).text().null())
                    .col(micros(O::CreatedAtUs))
                    .to_owned(),
            )
            .await?;
        // Leasing: live rows that are due, soonest first. Dead letters by time.
        manager
            .create_index(index(
                "fastapihooks_outbox_dead_available",
                O::Table,
                [O::Dead, O::AvailableAtUs],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FastapihooksOutbox::Table).to_owned())
            .await
    }
}
