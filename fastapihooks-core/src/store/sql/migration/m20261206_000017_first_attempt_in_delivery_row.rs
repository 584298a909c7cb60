//! `fastapihooks_deliveries.first_attempt_*`: a delivery's first attempt, kept in the
//! delivery's own row when the two are written together.
//!
//! Most deliveries succeed at their first attempt, and the sidecar writes each one with it
//! (`Store::record_first_attempts`). As two rows that is a heap tuple and two index entries
//! more per delivery — the attempt's row, its key and its `(delivery_id, number)` entry — for
//! an attempt that is only ever read with its delivery. On PostgreSQL the sidecar's batches put
//! it in the delivery's row instead ([`entity::first_attempt`]); every later attempt, and a
//! first one written apart from its delivery, stays a row of `fastapihooks_attempts`. Rows
//! written before keep their attempts there: all eight columns are NULL. Undone, the first
//! attempts kept here are copied back into `fastapihooks_attempts` before the columns go.
//!
//! [`entity::first_attempt`]: super::super::entity::first_attempt

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum FastapihooksDeliveries {
    Table,
    FirstAttemptId,
    FirstAttemptNumber,
    FirstAttemptStartedAtUs,
    FirstAttemptDurationUs,
    FirstAttemptOutcome,
    FirstAttemptStatusCode,
    FirstAttemptErrorKind,
    FirstAttemptDetail,
}

/// The columns, each NULL unless the row holds its delivery's first attempt; the shapes of
/// `fastapihooks_attempts`' columns, nullable.
fn columns(backend: DbBackend) -> [ColumnDef; 8] {
    use FastapihooksDeliveries as D;
    let mut detail = ColumnDef::new(D::FirstAttemptDetail);
    if backend == DbBackend::MySql {
        // `text` stops at 64 KiB there, as in `fastapihooks_attempts.detail`.
        detail.custom("longtext");
    } else {
        detail.text();
    }
    [
        ColumnDef::new(D::FirstAttemptId)
            .string_len(super::columns::ID_LEN)
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptNumber)
            .big_integer()
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptStartedAtUs)
            .big_integer()
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptDurationUs)
            .big_integer()
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptOutcome)
            .string_len(16)
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptStatusCode)
            .integer()
            .null()
            .take(),
        ColumnDef::new(D::FirstAttemptErrorKind)
            .string_len(16)
            .null()
            .take(),
        detail.null().take(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time. Nullable without a
        // default: no existing row is rewritten.
        for mut column in columns(manager.get_database_backend()) {
            manager
                .alter_table(
                    Table::alter()
                        .table(FastapihooksDeliveries::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO fastapihooks_attempts (id, delivery_id, number, started_at_us, \
                 duration_us, outcome, status_code, error_kind, detail) \
                 SELECT first_attempt_id, id, first_attempt_number, first_attempt_started_at_us, \
                 first_attempt_duration_us, first_attempt_outcome, first_attempt_status_code, \
                 first_attempt_error_kind, first_attempt_detail \
                 FROM fastapihooks_deliveries WHERE first_attempt_id IS NOT NULL",
            )
            .await?;
        for column in columns(manager.get_database_backend()) {
            manager
                .alter_table(
                    Table::alter()
                        .table(FastapihooksDeliveries::Table)
                        .drop_column(Alias::new(column.get_column_name()))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
