//! Wake on commit (PostgreSQL only; a no-op elsewhere): a statement trigger on the outbox that
//! sends `NOTIFY fastapihooks_outbox` when rows are inserted. PostgreSQL delivers it when the
//! inserting transaction commits, so a sidecar listening on the channel leases at once instead
//! of at its next poll (see `backend::sql_outbox`). The trigger SQL is every outbox table's
//! ([`notify_trigger`]).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::outbox_shape::{drop_notify_trigger, notify_trigger};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const TABLE: &str = "fastapihooks_outbox";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&notify_trigger(TABLE))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&drop_notify_trigger(TABLE))
            .await?;
        Ok(())
    }
}
