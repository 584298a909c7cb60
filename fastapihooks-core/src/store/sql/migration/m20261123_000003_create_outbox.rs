//! `fastapihooks_outbox`: the queue of [`SqlBackend`](crate::backend::SqlBackend) — published
//! events and delivery tasks waiting, leased, waiting for a retry, or dead. Its shape is the
//! one every outbox table has ([`outbox_shape`]).

use sea_orm_migration::prelude::*;

use super::outbox_shape;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

const TABLE: &str = "fastapihooks_outbox";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        outbox_shape::create(manager, TABLE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        outbox_shape::drop(manager, TABLE).await
    }
}
