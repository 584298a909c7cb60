//! `fastapihooks_inbox_queue`: the queue of the processing of received webhooks — the second
//! outbox table, of the same shape as `fastapihooks_outbox` ([`outbox_shape`]) and a separate
//! queue: the application's own worker drains it (processing re-enters the application's
//! router), `fastapihooks start` never leases it. On PostgreSQL, the same insert trigger as the
//! outbox's, on its own channel `fastapihooks_inbox_queue`.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::outbox_shape;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const TABLE: &str = "fastapihooks_inbox_queue";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        outbox_shape::create(manager, TABLE).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&outbox_shape::notify_trigger(TABLE))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&outbox_shape::drop_notify_trigger(TABLE))
                .await?;
        }
        outbox_shape::drop(manager, TABLE).await
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::OutboxTable;

    #[test]
    fn the_table_is_the_one_the_inbox_backend_queues_into() {
        assert_eq!(OutboxTable::Inbox.name(), super::TABLE);
    }
}
