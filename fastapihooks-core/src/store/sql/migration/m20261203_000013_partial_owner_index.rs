//! Keeps only the events that have an owner in `fastapihooks_events_owner_id` (owner, id), on
//! PostgreSQL and SQLite: the index serves one lookup, events of one owner (`owner = ?`, which
//! an event without an owner never matches), yet every event wrote an entry into it — with one
//! subscriber, one index insertion per delivery for an application that never sets an owner.
//! Both databases use a partial index for `owner = ?` (the comparison implies `owner IS NOT
//! NULL`). MariaDB/MySQL have no partial indexes: theirs stays as it is.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::columns::index;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksEvents {
    Table,
    Id,
    Owner,
}

const EVENTS_OWNER_ID: &str = "fastapihooks_events_owner_id";

/// The index, of the events with an owner (`partial`) or of every event.
async fn recreate(manager: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    use FastapihooksEvents as E;
    if manager.get_database_backend() == DbBackend::MySql {
        return Ok(());
    }
    manager
        .drop_index(
            Index::drop()
                .name(EVENTS_OWNER_ID)
                .table(E::Table)
                .to_owned(),
        )
        .await?;
    let mut owner_id = index(EVENTS_OWNER_ID, E::Table, [E::Owner, E::Id]);
    if partial {
        owner_id.and_where(Expr::col(E::Owner).is_not_null());
    }
    manager.create_index(owner_id).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, false).await
    }
}
