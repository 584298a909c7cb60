//! Wake on commit (PostgreSQL only; a no-op elsewhere): a statement trigger on the outbox that
//! sends `NOTIFY fastapihooks_outbox` when rows are inserted. PostgreSQL delivers it when the
//! inserting transaction commits, so a sidecar listening on the channel leases at once instead
//! of at its next poll (see `backend::sql_outbox`).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const UP: &str = r#"
CREATE OR REPLACE FUNCTION fastapihooks_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fastapihooks_outbox', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER fastapihooks_outbox_notify AFTER INSERT ON fastapihooks_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION fastapihooks_outbox_notify();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS fastapihooks_outbox_notify ON fastapihooks_outbox;
DROP FUNCTION IF EXISTS fastapihooks_outbox_notify();
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
