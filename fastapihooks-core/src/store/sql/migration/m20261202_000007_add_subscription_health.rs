//! `fastapihooks_subscriptions`: endpoint health — the failure streak (`failing_since_us`,
//! `failures`) and why and when the engine disabled a subscription (`disabled_reason`,
//! `disabled_at_us`). Existing subscriptions start healthy.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum FastapihooksSubscriptions {
    Table,
    DisabledReason,
    DisabledAtUs,
    FailingSinceUs,
    Failures,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksSubscriptions as S;
        let columns = [
            ColumnDef::new(S::DisabledReason).text().null().to_owned(),
            ColumnDef::new(S::DisabledAtUs)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(S::FailingSinceUs)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(S::Failures)
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ];
        // One column per statement: SQLite alters one thing at a time.
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(S::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksSubscriptions as S;
        for column in [
            S::DisabledReason,
            S::DisabledAtUs,
            S::FailingSinceUs,
            S::Failures,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(S::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
