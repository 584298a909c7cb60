//! PostgreSQL only (a no-op elsewhere): both outbox tables' insert triggers notify only while a
//! lessee waits for work, each on a channel of its own table (`{table}_{oid}`, so sidecars of
//! different schemas no longer wake each other). See [`gated_notify_function`].
//!
//! Before, every inserting transaction notified, and PostgreSQL commits notifying transactions
//! one at a time: a route publishing into the outbox served 0.40–0.43× the unhooked route,
//! 0.66–0.76× with the trigger off (BENCHMARKS.md, session 13).
//!
//! A sidecar older than this migration listens on the former channel (the table's name) and is
//! no longer woken: it finds new rows at its next poll.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::outbox_shape::{drop_notify_trigger, gated_notify_function, notify_trigger};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const TABLES: [&str; 2] = ["fastapihooks_outbox", "fastapihooks_inbox_queue"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in TABLES {
            manager
                .get_connection()
                .execute_unprepared(&gated_notify_function(table))
                .await?;
        }
        Ok(())
    }

    /// Back to the trigger of migrations 9 and 10: dropped and created again as they did.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        for table in TABLES {
            let sql = drop_notify_trigger(table) + &notify_trigger(table);
            manager.get_connection().execute_unprepared(&sql).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::OutboxTable;

    #[test]
    fn the_tables_are_the_two_a_backend_queues_into() {
        assert_eq!(
            super::TABLES,
            [OutboxTable::Events.name(), OutboxTable::Inbox.name()]
        );
    }
}
