//! The shape of an outbox table, shared by the store's two queues of that shape:
//! `fastapihooks_outbox` (migrations 3 and 9) and `fastapihooks_inbox_queue` (migration 10).
//! The table, its leasing index, and on PostgreSQL the insert trigger that wakes lessees (since
//! migration 14 only while one waits, on a channel of the table's own: [`gated_notify_function`]).
//!
//! Applied migrations are never edited: for `fastapihooks_outbox` these build, byte for byte,
//! the statements migrations 3 and 9 always ran (the tests below hold them to it).

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

use super::columns::{id, index, long_text, micros};

/// The columns of an outbox table.
#[derive(DeriveIden)]
enum Outbox {
    Id,
    Task,
    Dead,
    AvailableAtUs,
    Lease,
    Leases,
    Reason,
    CreatedAtUs,
}

/// Creates the outbox table `table` and its leasing index.
pub(super) async fn create(manager: &SchemaManager<'_>, table: &'static str) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager.create_table(create_table(backend, table)).await?;
    manager.create_index(leasing_index(table)).await?;
    Ok(())
}

/// Drops the outbox table `table` (its index with it).
pub(super) async fn drop(manager: &SchemaManager<'_>, table: &'static str) -> Result<(), DbErr> {
    manager.drop_table(drop_table(table)).await
}

/// `DROP TABLE table`.
fn drop_table(table: &'static str) -> TableDropStatement {
    Table::drop().table(table).to_owned()
}

/// `CREATE TABLE IF NOT EXISTS table …`: tasks waiting, leased, waiting for a retry, or dead.
fn create_table(backend: DbBackend, table: &'static str) -> TableCreateStatement {
    use Outbox as O;
    Table::create()
        .table(table)
        .if_not_exists()
        // A ULID: rows of equal due time are taken oldest first.
        .col(id(O::Id).primary_key())
        .col(long_text(backend, O::Task))
        .col(ColumnDef::new(O::Dead).boolean().not_null())
        // When the row may be leased: at once, when a retry is due, or when the current lease
        // expires (database clock, µs since the epoch).
        .col(micros(O::AvailableAtUs))
        .col(ColumnDef::new(O::Lease).string_len(32).null())
        .col(ColumnDef::new(O::Leases).big_integer().not_null())
        .col(ColumnDef::new(O::Reason).text().null())
        .col(micros(O::CreatedAtUs))
        .to_owned()
}

/// Leasing: live rows that are due, soonest first. Dead letters by time. (Replaced by
/// [`leasing_index_by_id`] in migration 15.)
pub(super) fn leasing_index(table: &'static str) -> IndexCreateStatement {
    index(
        &leasing_index_name(table),
        table,
        [Outbox::Dead, Outbox::AvailableAtUs],
    )
}

/// Leasing since migration 15: as [`leasing_index`], with the id last, so rows of equal due time
/// come out of the index in the lease's order (`ORDER BY available_at_us, id`) and a lease reads
/// the rows it takes, not every row sharing the first due time — which PostgreSQL read and
/// sorted whole before taking a batch (a batch published at once, retries settled together).
pub(super) fn leasing_index_by_id(table: &'static str) -> IndexCreateStatement {
    index(
        &leasing_index_by_id_name(table),
        table,
        [Outbox::Dead, Outbox::AvailableAtUs, Outbox::Id],
    )
}

/// `DROP INDEX name` of `table`.
pub(super) fn drop_index(table: &'static str, name: &str) -> IndexDropStatement {
    Index::drop().name(name).table(table).to_owned()
}

/// The name of `table`'s leasing index since migration 15.
pub(super) fn leasing_index_by_id_name(table: &str) -> String {
    format!("{table}_dead_available_id")
}

/// The name of `table`'s leasing index before migration 15.
pub(super) fn leasing_index_name(table: &str) -> String {
    format!("{table}_dead_available")
}

/// PostgreSQL: the function and statement trigger that send `NOTIFY table` (the channel is
/// the table's name) when rows are inserted into `table`; delivered when the inserting
/// transaction commits.
pub(super) fn notify_trigger(table: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{table}', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER {table}_notify AFTER INSERT ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify();
"#
    )
}

/// The first key of the advisory lock that gates an outbox's `NOTIFY` (`'faph'`); the second
/// is the table's OID. The two-key form keeps it apart from an application's one-key locks.
///
/// A sidecar waiting for work on a PostgreSQL outbox holds `(WAKE_LOCK_CLASS, the table's
/// OID)`: in `pg_locks`, an advisory `ExclusiveLock` with `classid` 1717661800, `objid` the
/// table's OID and `objsubid` 2; commits into that table notify while it is held.
///
/// ```
/// use fastapihooks_core::store::sql::migration::WAKE_LOCK_CLASS;
///
/// assert_eq!(WAKE_LOCK_CLASS, 1_717_661_800);
/// ```
pub const WAKE_LOCK_CLASS: i32 = 0x6661_7068;

/// PostgreSQL: replaces `table`'s trigger function (migration 14) with one that notifies only
/// while a lessee waits for work, on the channel `{table}_{oid}` (its own per schema).
///
/// A lessee waiting on the table holds the advisory lock `(WAKE_LOCK_CLASS, oid)`. An inserting
/// transaction tries the lock shared until it ends: when that fails, a lessee waits (or is
/// starting to) and is notified at commit; when it succeeds, no notification is sent — and a
/// lessee that starts waiting meanwhile takes the lock only after this transaction has ended,
/// then looks for rows once more, so it sees these.
///
/// `NOTIFY` is what the gate saves: PostgreSQL queues a transaction's notifications at commit
/// under one lock for the whole database, held until the commit has been flushed, so
/// transactions that notify commit one at a time.
pub(super) fn gated_notify_function(table: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT pg_try_advisory_xact_lock_shared({WAKE_LOCK_CLASS}, TG_RELID::int4) THEN
    PERFORM pg_notify(TG_TABLE_NAME || '_' || TG_RELID, '');
  END IF;
  RETURN NULL;
END
$$;
"#
    )
}

/// PostgreSQL: drops what [`notify_trigger`] creates.
pub(super) fn drop_notify_trigger(table: &str) -> String {
    format!(
        r#"
DROP TRIGGER IF EXISTS {table}_notify ON {table};
DROP FUNCTION IF EXISTS {table}_notify();
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTBOX: &str = "fastapihooks_outbox";

    fn sql(backend: DbBackend, statement: &impl sea_orm::StatementBuilder) -> String {
        backend.build(statement).sql
    }

    /// What migration 3 ran before the shape was shared, on each database.
    #[test]
    fn the_outbox_table_is_created_and_dropped_as_migration_3_always_did() {
        for (backend, want) in [
            (DbBackend::Sqlite, SQLITE),
            (DbBackend::Postgres, POSTGRES),
            (DbBackend::MySql, MYSQL),
        ] {
            let got = [
                sql(backend, &create_table(backend, OUTBOX)),
                sql(backend, &leasing_index(OUTBOX)),
                sql(backend, &drop_table(OUTBOX)),
            ];
            assert_eq!(got, want, "{backend:?}");
        }
    }

    #[test]
    fn the_outbox_trigger_is_the_one_migration_9_always_created() {
        assert_eq!(notify_trigger(OUTBOX), MIGRATION_9_UP);
        assert_eq!(drop_notify_trigger(OUTBOX), MIGRATION_9_DOWN);
    }

    #[test]
    fn another_table_gets_its_own_index_trigger_and_channel() {
        let inbox = "fastapihooks_inbox_queue";
        let index = sql(DbBackend::Postgres, &leasing_index(inbox));
        assert!(
            index.contains(r#""fastapihooks_inbox_queue_dead_available""#),
            "{index}"
        );
        let trigger = notify_trigger(inbox);
        assert!(trigger.contains("pg_notify('fastapihooks_inbox_queue', '')"));
        assert!(!trigger.contains(OUTBOX), "{trigger}");
        assert!(!drop_notify_trigger(inbox).contains(OUTBOX));
    }

    #[test]
    fn the_gated_function_replaces_the_tables_own_and_names_its_channel_by_oid() {
        let gated = gated_notify_function("fastapihooks_inbox_queue");
        assert!(
            gated.contains("FUNCTION fastapihooks_inbox_queue_notify()"),
            "{gated}"
        );
        assert!(gated.contains("pg_try_advisory_xact_lock_shared(1717661800, TG_RELID::int4)"));
        assert!(gated.contains("pg_notify(TG_TABLE_NAME || '_' || TG_RELID, '')"));
        assert!(
            !gated.contains("CREATE TRIGGER"),
            "the trigger stays: {gated}"
        );
    }

    const SQLITE: [&str; 3] = [
        r#"CREATE TABLE IF NOT EXISTS "fastapihooks_outbox" ( "id" varchar(32) NOT NULL PRIMARY KEY, "task" text NOT NULL, "dead" boolean NOT NULL, "available_at_us" integer NOT NULL, "lease" varchar(32) NULL, "leases" integer NOT NULL, "reason" text NULL, "created_at_us" integer NOT NULL )"#,
        r#"CREATE INDEX IF NOT EXISTS "fastapihooks_outbox_dead_available" ON "fastapihooks_outbox" ("dead", "available_at_us")"#,
        r#"DROP TABLE "fastapihooks_outbox""#,
    ];

    const POSTGRES: [&str; 3] = [
        r#"CREATE TABLE IF NOT EXISTS "fastapihooks_outbox" ( "id" varchar(32) NOT NULL PRIMARY KEY, "task" text NOT NULL, "dead" bool NOT NULL, "available_at_us" bigint NOT NULL, "lease" varchar(32) NULL, "leases" bigint NOT NULL, "reason" text NULL, "created_at_us" bigint NOT NULL )"#,
        r#"CREATE INDEX IF NOT EXISTS "fastapihooks_outbox_dead_available" ON "fastapihooks_outbox" ("dead", "available_at_us")"#,
        r#"DROP TABLE "fastapihooks_outbox""#,
    ];

    const MYSQL: [&str; 3] = [
        "CREATE TABLE IF NOT EXISTS `fastapihooks_outbox` ( `id` varchar(32) NOT NULL PRIMARY KEY, `task` longtext NOT NULL, `dead` bool NOT NULL, `available_at_us` bigint NOT NULL, `lease` varchar(32) NULL, `leases` bigint NOT NULL, `reason` text NULL, `created_at_us` bigint NOT NULL )",
        "CREATE INDEX `fastapihooks_outbox_dead_available` ON `fastapihooks_outbox` (`dead`, `available_at_us`)",
        "DROP TABLE `fastapihooks_outbox`",
    ];

    const MIGRATION_9_UP: &str = r#"
CREATE OR REPLACE FUNCTION fastapihooks_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('fastapihooks_outbox', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER fastapihooks_outbox_notify AFTER INSERT ON fastapihooks_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION fastapihooks_outbox_notify();
"#;

    const MIGRATION_9_DOWN: &str = r#"
DROP TRIGGER IF EXISTS fastapihooks_outbox_notify ON fastapihooks_outbox;
DROP FUNCTION IF EXISTS fastapihooks_outbox_notify();
"#;
}
