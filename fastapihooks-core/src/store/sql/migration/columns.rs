//! Column shapes shared by the migrations, where databases differ.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

/// The length of a typed id (`sub_` + 26-character ULID) with room to spare.
pub(super) const ID_LEN: u32 = 32;

/// The longest owner (tenant) an indexed column holds.
pub(super) const OWNER_LEN: u32 = 255;

/// A non-null id column.
pub(super) fn id<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).string_len(ID_LEN).not_null().take()
}

/// A string column compared for exact equality in lookups: case-sensitive on MySQL/MariaDB
/// too (their default collations fold case), so an index lookup agrees with Rust's `==`.
pub(super) fn exact_string<T: IntoIden>(backend: DbBackend, name: T, len: u32) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    column.string_len(len);
    if backend == DbBackend::MySql {
        column.extra("COLLATE utf8mb4_bin");
    }
    column
}

/// Unbounded text (`longtext` on MySQL/MariaDB, where `text` stops at 64 KiB).
pub(super) fn long_text<T: IntoIden>(backend: DbBackend, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom("longtext");
    } else {
        column.text();
    }
    column.not_null().take()
}

/// Unbounded bytes (`longblob` on MySQL/MariaDB, where `blob` stops at 64 KiB).
pub(super) fn long_bytes<T: IntoIden>(backend: DbBackend, name: T) -> ColumnDef {
    let mut column = ColumnDef::new(name);
    if backend == DbBackend::MySql {
        column.custom("longblob");
    } else {
        column.blob();
    }
    column.not_null().take()
}

/// A time in microseconds since the unix epoch.
pub(super) fn micros<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

/// `CREATE INDEX IF NOT EXISTS name ON table (columns…)`.
pub(super) fn index<T, C>(
    name: &str,
    table: T,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIndexColumn,
{
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column);
    }
    index
}
