//! `fastapihooks_deliveries.replays` and `.attempts_before_replay`: how many times a delivery
//! was replayed (the run a queued task belongs to) and where its latest run's retry schedule
//! starts. Existing deliveries were never replayed: both are 0.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksDeliveries {
    Table,
    Replays,
    AttemptsBeforeReplay,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksDeliveries as D;
        // One column per statement: SQLite alters one thing at a time.
        for column in [D::Replays, D::AttemptsBeforeReplay] {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksDeliveries as D;
        for column in [D::Replays, D::AttemptsBeforeReplay] {
            manager
                .alter_table(
                    Table::alter()
                        .table(D::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
