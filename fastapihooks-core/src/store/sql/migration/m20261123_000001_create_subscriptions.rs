//! `fastapihooks_subscriptions`, indexed for `matching(event_name, owner)` and owner listings.

use sea_orm_migration::prelude::*;

use super::columns::{OWNER_LEN, exact_string, id, index, long_text, micros};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksSubscriptions {
    Table,
    Id,
    EventFilter,
    Url,
    Auth,
    Secret,
    PreviousSecrets,
    SignatureScheme,
    Owner,
    Metadata,
    Enabled,
    CreatedAtUs,
}

/// Room for `prefix.*` around the longest event name.
const FILTER_LEN: u32 = 130;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksSubscriptions as S;
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .if_not_exists()
                    .col(id(S::Id).primary_key())
                    .col(exact_string(backend, S::EventFilter, FILTER_LEN).not_null())
                    .col(ColumnDef::new(S::Url).text().not_null())
                    .col(long_text(backend, S::Auth))
                    .col(ColumnDef::new(S::Secret).text().null())
                    .col(long_text(backend, S::PreviousSecrets))
                    .col(exact_string(backend, S::SignatureScheme, 32).null())
                    .col(exact_string(backend, S::Owner, OWNER_LEN).null())
                    .col(long_text(backend, S::Metadata))
                    .col(ColumnDef::new(S::Enabled).boolean().not_null())
                    .col(micros(S::CreatedAtUs))
                    .to_owned(),
            )
            .await?;
        // `matching` asks for `event_filter IN (name, its prefixes + '*', '*')`: index lookups.
        manager
            .create_index(index(
                "fastapihooks_subscriptions_filter_owner",
                S::Table,
                [S::EventFilter, S::Owner],
            ))
            .await?;
        // Listing one owner's subscriptions, oldest first, by keyset on the id.
        manager
            .create_index(index(
                "fastapihooks_subscriptions_owner_id",
                S::Table,
                [S::Owner, S::Id],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(FastapihooksSubscriptions::Table)
                    .to_owned(),
            )
            .await
    }
}
