//! The delivery history: `fastapihooks_events` (each payload once), `fastapihooks_deliveries`
//! (one per event and subscription) and `fastapihooks_attempts` (one per HTTP try).

use sea_orm_migration::prelude::*;

use super::columns::{id, index, long_bytes, long_text, micros};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksEvents {
    Table,
    Id,
    Name,
    Owner,
    Payload,
    CreatedAtUs,
}

#[derive(DeriveIden)]
enum FastapihooksDeliveries {
    Table,
    Id,
    EventId,
    SubscriptionId,
    Status,
    Attempts,
    NextAttemptAtUs,
    CreatedAtUs,
    UpdatedAtUs,
}

#[derive(DeriveIden)]
enum FastapihooksAttempts {
    Table,
    Id,
    DeliveryId,
    Number,
    StartedAtUs,
    DurationUs,
    Outcome,
    StatusCode,
    ErrorKind,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksAttempts as A;
        use FastapihooksDeliveries as D;
        use FastapihooksEvents as E;
        let backend = manager.get_database_backend();

        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .if_not_exists()
                    .col(id(E::Id).primary_key())
                    .col(ColumnDef::new(E::Name).string_len(128).not_null())
                    // Not looked up by: unbounded, so any event's owner is kept.
                    .col(ColumnDef::new(E::Owner).text().null())
                    .col(long_bytes(backend, E::Payload))
                    .col(micros(E::CreatedAtUs))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .if_not_exists()
                    .col(id(D::Id).primary_key())
                    .col(id(D::EventId))
                    .col(id(D::SubscriptionId))
                    .col(ColumnDef::new(D::Status).string_len(16).not_null())
                    .col(ColumnDef::new(D::Attempts).big_integer().not_null())
                    .col(ColumnDef::new(D::NextAttemptAtUs).big_integer().null())
                    .col(micros(D::CreatedAtUs))
                    .col(micros(D::UpdatedAtUs))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fastapihooks_deliveries_event")
                            .from(D::Table, D::EventId)
                            .to(E::Table, E::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Newest first by status (dead letters, pending), by subscription, and per event; the
        // ids sort by time, so they are the keyset. Due pending deliveries by next attempt.
        for (name, columns) in [
            ("fastapihooks_deliveries_status_id", [D::Status, D::Id]),
            (
                "fastapihooks_deliveries_subscription_id",
                [D::SubscriptionId, D::Id],
            ),
            ("fastapihooks_deliveries_event_id", [D::EventId, D::Id]),
            (
                "fastapihooks_deliveries_status_due",
                [D::Status, D::NextAttemptAtUs],
            ),
        ] {
            manager.create_index(index(name, D::Table, columns)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .if_not_exists()
                    .col(id(A::Id).primary_key())
                    .col(id(A::DeliveryId))
                    .col(ColumnDef::new(A::Number).big_integer().not_null())
                    .col(micros(A::StartedAtUs))
                    .col(ColumnDef::new(A::DurationUs).big_integer().not_null())
                    .col(ColumnDef::new(A::Outcome).string_len(16).not_null())
                    .col(ColumnDef::new(A::StatusCode).integer().null())
                    .col(ColumnDef::new(A::ErrorKind).string_len(16).null())
                    .col(long_text(backend, A::Detail))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fastapihooks_attempts_delivery")
                            .from(A::Table, A::DeliveryId)
                            .to(D::Table, D::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "fastapihooks_attempts_delivery_number",
                A::Table,
                [A::DeliveryId, A::Number],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FastapihooksAttempts::Table.into_iden(),
            FastapihooksDeliveries::Table.into_iden(),
            FastapihooksEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
