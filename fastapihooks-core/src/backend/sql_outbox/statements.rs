//! The outbox's SQL, per database: the database clock, placeholders, and leasing with
//! `FOR UPDATE SKIP LOCKED` where the database has it. Every statement names the
//! [`OutboxTable`] it works on: a fixed name, never one of the application's strings.

use sea_orm::{DbBackend, Statement, Value};

use super::OutboxTable;

/// Now, on the database's clock, in microseconds since the unix epoch: every sidecar and the
/// application agree on it whatever their own clocks say.
///
/// On PostgreSQL the statement's start (`statement_timestamp()`, stable within a statement),
/// not `clock_timestamp()`: a volatile clock cannot bound an index scan, and each lease then
/// read every live row of the outbox (leased and waiting retries included) to find the due
/// ones.
pub(super) fn now(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000)::bigint",
        DbBackend::MySql => "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
        // `julianday` keeps sub-millisecond precision; SQLite has no finer clock before 3.42.
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

/// A statement from SQL written with `?` placeholders (numbered `$n` for PostgreSQL).
pub(super) fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut numbered = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                numbered.push('$');
                numbered.push_str(&n.to_string());
            } else {
                numbered.push(c);
            }
        }
        numbered
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `(?, ?, …)` with `n` placeholders.
pub(super) fn placeholders(n: usize) -> String {
    let mut list = "?, ".repeat(n);
    list.truncate(list.len().saturating_sub(2));
    format!("({list})")
}

/// Inserts `rows` new tasks, due at once: values are (id, task JSON) pairs.
pub(super) fn insert(backend: DbBackend, table: OutboxTable, rows: usize) -> String {
    let now = now(backend);
    insert_rows(
        table,
        rows,
        &format!("(?, ?, FALSE, {now}, NULL, 0, NULL, {now})"),
    )
}

/// Inserts `rows` new tasks due at a given time (µs; a time in the past puts them ahead of
/// what was queued after it): values are (id, task JSON, due time) triples.
pub(super) fn insert_due_at(backend: DbBackend, table: OutboxTable, rows: usize) -> String {
    let now = now(backend);
    insert_rows(
        table,
        rows,
        &format!("(?, ?, FALSE, ?, NULL, 0, NULL, {now})"),
    )
}

/// Inserts `rows` new tasks due after a delay, on the database clock: values are (id, task
/// JSON, delay in µs) triples.
pub(super) fn insert_due_in(backend: DbBackend, table: OutboxTable, rows: usize) -> String {
    let now = now(backend);
    insert_rows(
        table,
        rows,
        &format!("(?, ?, FALSE, {now} + ?, NULL, 0, NULL, {now})"),
    )
}

/// Inserts `rows` dead letters (dead from now, as [`dead`] keeps them): values are (id, task
/// JSON, reason) triples.
pub(super) fn insert_dead(backend: DbBackend, table: OutboxTable, rows: usize) -> String {
    let now = now(backend);
    insert_rows(
        table,
        rows,
        &format!("(?, ?, TRUE, {now}, NULL, 0, ?, {now})"),
    )
}

fn insert_rows(table: OutboxTable, rows: usize, row: &str) -> String {
    let values = vec![row; rows].join(", ");
    format!(
        "INSERT INTO {table} (id, task, dead, available_at_us, lease, leases, reason, created_at_us) VALUES {values}"
    )
}

/// Leases in one statement (PostgreSQL, SQLite): values are the lease token, the visibility
/// timeout in µs, the batch size. Returns `id, task` of the leased rows.
///
/// On PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so concurrent sidecars take
/// disjoint rows without waiting for each other; SQLite runs one writer at a time.
pub(super) fn lease_returning(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    let skip_locked = if backend == DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    // PostgreSQL: the rows picked become an array (an `InitPlan`), which the planner cannot
    // see into, so it probes the primary key for each; picked by `IN (…)`, it joined them to a
    // scan of the whole outbox when the table was young (BENCHMARKS.md, session 25). SQLite
    // has no arrays, and probes the key for an `IN (…)` subquery.
    let (open, close) = if backend == DbBackend::Postgres {
        ("= ANY(ARRAY(", "))")
    } else {
        ("IN (", ")")
    };
    format!(
        "UPDATE {table} SET lease = ?, leases = leases + 1, available_at_us = {now} + ? \
         WHERE id {open}SELECT id FROM {table} WHERE dead = FALSE AND available_at_us <= {now} \
         ORDER BY available_at_us, id LIMIT ?{skip_locked}{close} \
         RETURNING id, task, leases"
    )
}

/// MySQL/MariaDB step one of leasing, in a transaction: the due rows, locked, skipping rows
/// another sidecar holds. Value: the batch size.
pub(super) fn select_due_skip_locked(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    format!(
        "SELECT id, task, leases + 1 AS leases FROM {table} WHERE dead = FALSE AND available_at_us <= {now} \
         ORDER BY available_at_us, id LIMIT ? FOR UPDATE SKIP LOCKED"
    )
}

/// MySQL/MariaDB step two: take the selected rows. Values: the lease token, the visibility
/// timeout in µs, then the `rows` ids.
pub(super) fn take(backend: DbBackend, table: OutboxTable, rows: usize) -> String {
    let now = now(backend);
    format!(
        "UPDATE {table} SET lease = ?, leases = leases + 1, available_at_us = {now} + ? WHERE id IN {}",
        placeholders(rows)
    )
}

/// Renews a lease: pushes the row's due time a visibility timeout past now, if the lease is
/// still held. Values: the visibility timeout in µs, id, lease token.
pub(super) fn extend(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    format!("UPDATE {table} SET available_at_us = {now} + ? WHERE id = ? AND lease = ?")
}

/// Settles a lease by deleting its row, returning when the task was first queued
/// (`created_at_us`). Values: id, lease token.
pub(super) fn delete_leased_returning_place(table: OutboxTable) -> String {
    format!("DELETE FROM {table} WHERE id = ? AND lease = ? RETURNING created_at_us")
}

/// Settles a lease by bringing the task back after a delay. Values: task JSON, delay in µs,
/// id, lease token.
pub(super) fn retry(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    format!(
        "UPDATE {table} SET task = ?, lease = NULL, leases = 0, available_at_us = {now} + ? WHERE id = ? AND lease = ?"
    )
}

/// Settles a lease by keeping the task as a dead letter. Values: task JSON, reason, id, lease
/// token.
pub(super) fn dead(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    format!(
        "UPDATE {table} SET task = ?, reason = ?, dead = TRUE, lease = NULL, available_at_us = {now} WHERE id = ? AND lease = ?"
    )
}

/// Deletes at most a batch of dead letters that died (their `available_at_us`, set by [`dead`])
/// before a time, oldest first. Values: the time in µs, the batch size.
///
/// MySQL/MariaDB delete with `ORDER BY … LIMIT` (they refuse a `LIMIT` in an `IN` subquery);
/// PostgreSQL and SQLite delete the rows a subquery picks. Either way through the
/// `(dead, available_at_us)` index.
pub(super) fn prune_dead(backend: DbBackend, table: OutboxTable) -> String {
    let oldest_dead = "dead = TRUE AND available_at_us < ? ORDER BY available_at_us LIMIT ?";
    if backend == DbBackend::MySql {
        format!("DELETE FROM {table} WHERE {oldest_dead}")
    } else {
        format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {oldest_dead})")
    }
}

/// How long the oldest live row that is due and not leased has waited, in µs on the database
/// clock (`age_us`, NULL when none is): a due row's `available_at_us` is when it became ready —
/// queued, due for its retry, or its lease expired — and a leased row's lies in the future.
/// `MIN` over `dead = FALSE AND available_at_us <= now` reads the first entry of the
/// `(dead, available_at_us)` index.
pub(super) fn oldest_pending_age(backend: DbBackend, table: OutboxTable) -> String {
    let now = now(backend);
    format!(
        "SELECT {now} - MIN(available_at_us) AS age_us FROM {table} \
         WHERE dead = FALSE AND available_at_us <= {now}"
    )
}

/// Counts rows: live (`dead = FALSE`) or dead letters. Value: the flag.
pub(super) fn count(table: OutboxTable) -> String {
    format!("SELECT COUNT(*) AS n FROM {table} WHERE dead = ?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_placeholders_are_numbered_in_order() {
        let s = statement(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1i64.into(), 2i64.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
        let s = statement(DbBackend::MySql, "a = ? AND b = ?", vec![]);
        assert_eq!(s.sql, "a = ? AND b = ?");
    }

    #[test]
    fn placeholder_lists_have_one_mark_per_value() {
        assert_eq!(placeholders(3), "(?, ?, ?)");
        assert_eq!(placeholders(1), "(?)");
    }

    #[test]
    fn only_postgresql_leases_in_one_statement_with_skip_locked() {
        let events = OutboxTable::Events;
        assert!(lease_returning(DbBackend::Postgres, events).contains("SKIP LOCKED"));
        assert!(!lease_returning(DbBackend::Sqlite, events).contains("SKIP LOCKED"));
        assert!(select_due_skip_locked(DbBackend::MySql, events).contains("SKIP LOCKED"));
    }

    /// The plan of a lease behind 10,000 due rows that share their due time (inserted by one
    /// statement, as a batch published at once or the retries of one settle are), in a young
    /// table (never analysed, as when a backlog was queued before the sidecar started): the
    /// rows come out of the leasing index in the lease's order, it reads the 32 it takes, and
    /// finds them to update by their key — where the index without the id (before migration 15)
    /// made it read and sort all 10,000 first.
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn a_lease_behind_many_rows_of_one_due_time_reads_only_the_rows_it_takes() {
        use sea_orm::{ConnectionTrait, TransactionTrait};

        use crate::store::sql::plans::{explain, young_store};

        let Some((_schema, store)) = young_store("a lease behind rows of one due time").await
        else {
            return;
        };
        let db = store.connection();
        db.execute_unprepared(
            "INSERT INTO fastapihooks_outbox (id, task, dead, available_at_us, lease, leases, \
             reason, created_at_us) SELECT 'tsk_' || lpad(g::text, 26, '0'), '{}', FALSE, 1000, \
             NULL, 0, NULL, 1000 FROM generate_series(1, 10000) g",
        )
        .await
        .unwrap();
        let lease = statement(
            DbBackend::Postgres,
            &lease_returning(DbBackend::Postgres, OutboxTable::Events),
            Vec::new(),
        );
        db.execute_unprepared(&format!("PREPARE lease(text, int8, int8) AS {}", lease.sql))
            .await
            .unwrap();
        let explain_lease = async || -> String {
            // Rolled back: every explained lease sees the same 10,000 rows.
            let txn = db.begin().await.unwrap();
            let plan = explain(
                &txn,
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE lease('lease', 1000000, 32)",
            )
            .await;
            txn.rollback().await.unwrap();
            plan
        };
        let plan = explain_lease().await;
        db.execute_unprepared(
            "CREATE INDEX fastapihooks_outbox_dead_available ON fastapihooks_outbox \
             (dead, available_at_us); DROP INDEX fastapihooks_outbox_dead_available_id",
        )
        .await
        .unwrap();
        let before_migration_15 = explain_lease().await;

        assert!(
            plan.contains("fastapihooks_outbox_dead_available_id"),
            "{plan}"
        );
        assert!(!plan.contains("Sort"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(plan.contains("fastapihooks_outbox_pkey"), "{plan}");
        assert!(plan.contains("rows=32 "), "{plan}");
        assert!(!plan.contains("rows=10000 "), "{plan}");
        assert!(
            before_migration_15.contains("Sort") && before_migration_15.contains("rows=10000 "),
            "{before_migration_15}"
        );
    }

    #[test]
    fn every_statement_works_on_its_own_table_only() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres, DbBackend::MySql] {
            for (table, other) in [
                (OutboxTable::Events, OutboxTable::Inbox),
                (OutboxTable::Inbox, OutboxTable::Events),
            ] {
                let all = [
                    insert(backend, table, 2),
                    insert_due_at(backend, table, 2),
                    insert_due_in(backend, table, 2),
                    insert_dead(backend, table, 2),
                    lease_returning(backend, table),
                    select_due_skip_locked(backend, table),
                    take(backend, table, 2),
                    extend(backend, table),
                    delete_leased_returning_place(table),
                    retry(backend, table),
                    dead(backend, table),
                    prune_dead(backend, table),
                    oldest_pending_age(backend, table),
                    count(table),
                ];
                for sql in all {
                    assert!(sql.contains(&format!(" {} ", table.name())), "{sql}");
                    assert!(!sql.contains(other.name()), "{sql}");
                }
            }
        }
    }
}
