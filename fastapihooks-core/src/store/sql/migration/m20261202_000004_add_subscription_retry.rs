//! `fastapihooks_subscriptions.retry_policy`: a subscription's own retry policy (JSON), or NULL
//! for the default one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksSubscriptions {
    Table,
    RetryPolicy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksSubscriptions as S;
        manager
            .alter_table(
                Table::alter()
                    .table(S::Table)
                    .add_column(ColumnDef::new(S::RetryPolicy).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksSubscriptions as S;
        manager
            .alter_table(
                Table::alter()
                    .table(S::Table)
                    .drop_column(S::RetryPolicy)
                    .to_owned(),
            )
            .await
    }
}
