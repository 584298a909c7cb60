//! `fastapihooks_inbox`: received webhooks ([`Inbox`](crate::inbox::Inbox)), one row per
//! (source, external id) — the unique index on the pair is what makes `receive` atomic across
//! processes: of concurrent copies of one webhook, one insert wins, the others read it back.

use sea_orm::{DbBackend, Statement};
use sea_orm_migration::prelude::*;

use super::columns::{exact_string, id, index, long_bytes, long_text, micros};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum FastapihooksInbox {
    Table,
    Id,
    Source,
    ExternalId,
    Headers,
    Body,
    OrderingObject,
    OrderingPosition,
    Status,
    Attempts,
    LastError,
    ReceivedAtUs,
    UpdatedAtUs,
    ProcessedAtUs,
}

/// The longest source, external id and ordering object kept (characters).
const KEY_LEN: u32 = 255;

const SOURCE_EXTERNAL_ID: &str = "fastapihooks_inbox_source_external_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use FastapihooksInbox as I;
        let backend = manager.get_database_backend();
        let collation = key_collation(manager).await?;
        // Compared exactly: case-sensitive everywhere, and on MySQL/MariaDB without PAD SPACE
        // where the server has such a collation, so `a` and `a ` are two keys, as in Rust.
        let key = |name: I| {
            let mut column = exact_string(backend, name, KEY_LEN);
            if let Some(collation) = collation {
                column.extra(format!("COLLATE {collation}"));
            }
            column
        };
        manager
            .create_table(
                Table::create()
                    .table(I::Table)
                    .if_not_exists()
                    .col(id(I::Id).primary_key())
                    .col(key(I::Source).not_null())
                    .col(key(I::ExternalId).not_null())
                    // `[[name, value], …]` as JSON.
                    .col(long_text(backend, I::Headers))
                    // `longblob` on MySQL/MariaDB: bodies of several MiB.
                    .col(long_bytes(backend, I::Body))
                    .col(key(I::OrderingObject).null())
                    .col(ColumnDef::new(I::OrderingPosition).big_integer().null())
                    .col(ColumnDef::new(I::Status).string_len(16).not_null())
                    .col(ColumnDef::new(I::Attempts).big_integer().not_null())
                    .col(long_text(backend, I::LastError).null())
                    .col(micros(I::ReceivedAtUs))
                    .col(micros(I::UpdatedAtUs))
                    .col(ColumnDef::new(I::ProcessedAtUs).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(SOURCE_EXTERNAL_ID, I::Table, [I::Source, I::ExternalId])
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Listing newest first by status and by source (ids sort by time: the keyset); entries
        // stranded in `received`, oldest first; an object's processed events by position.
        for (name, columns) in [
            ("fastapihooks_inbox_status_id", vec![I::Status, I::Id]),
            ("fastapihooks_inbox_source_id", vec![I::Source, I::Id]),
            (
                "fastapihooks_inbox_status_received",
                vec![I::Status, I::ReceivedAtUs],
            ),
            (
                "fastapihooks_inbox_ordering",
                vec![I::Source, I::OrderingObject, I::OrderingPosition],
            ),
        ] {
            manager.create_index(index(name, I::Table, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FastapihooksInbox::Table).to_owned())
            .await
    }
}

/// MySQL/MariaDB: a binary utf8mb4 collation without PAD SPACE (MariaDB 10.2+, MySQL 8.0.17+),
/// if the server has one; `None` elsewhere (PostgreSQL and SQLite compare exactly already) and
/// on older servers, which keep `utf8mb4_bin` (trailing spaces then do not tell keys apart).
async fn key_collation(manager: &SchemaManager<'_>) -> Result<Option<&'static str>, DbErr> {
    const NO_PAD: [&str; 2] = ["utf8mb4_nopad_bin", "utf8mb4_0900_bin"];
    if manager.get_database_backend() != DbBackend::MySql {
        return Ok(None);
    }
    let rows = manager
        .get_connection()
        .query_all_raw(Statement::from_string(
            DbBackend::MySql,
            format!(
                "SELECT COLLATION_NAME FROM information_schema.COLLATIONS \
                 WHERE COLLATION_NAME IN ('{}', '{}')",
                NO_PAD[0], NO_PAD[1]
            ),
        ))
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        found.push(row.try_get_by_index::<String>(0)?);
    }
    Ok(NO_PAD.into_iter().find(|c| found.iter().any(|f| f == c)))
}
