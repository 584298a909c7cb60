//! Drops `fastapihooks_deliveries_status_due` (status, next attempt): no query reads by it —
//! the sidecar's retries wait in its queue and the background backend's in memory, never in a
//! scan of the deliveries by due time — yet every recorded delivery and every attempt wrote an
//! entry into it (an attempt changes the status, so each of its updates writes every index of
//! the row again). One index fewer on the hottest table of the history: two fewer index
//! insertions per delivery.

use sea_orm_migration::prelude::*;

use super::columns::index;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksDeliveries {
    Table,
    Status,
    NextAttemptAtUs,
}

const DELIVERIES_STATUS_DUE: &str = "fastapihooks_deliveries_status_due";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(DELIVERIES_STATUS_DUE)
                    .table(FastapihooksDeliveries::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksDeliveries as D;
        manager
            .create_index(index(
                DELIVERIES_STATUS_DUE,
                D::Table,
                [D::Status, D::NextAttemptAtUs],
            ))
            .await
    }
}
