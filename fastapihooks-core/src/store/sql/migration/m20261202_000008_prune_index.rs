//! An index for retention ([`Store::prune`](crate::Store::prune)): deliveries by status and
//! last update, so finding the oldest delivered ones before a cut-off reads only those, not
//! every delivered delivery.

use sea_orm_migration::prelude::*;

use super::columns::index;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksDeliveries {
    Table,
    Status,
    UpdatedAtUs,
}

const DELIVERIES_STATUS_UPDATED: &str = "fastapihooks_deliveries_status_updated";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksDeliveries as D;
        manager
            .create_index(index(
                DELIVERIES_STATUS_UPDATED,
                D::Table,
                [D::Status, D::UpdatedAtUs],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(DELIVERIES_STATUS_UPDATED)
                    .table(FastapihooksDeliveries::Table)
                    .to_owned(),
            )
            .await
    }
}
