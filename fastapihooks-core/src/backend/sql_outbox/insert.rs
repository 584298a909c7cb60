//! Writing new tasks into the outbox: multi-row `INSERT`s, bounded in rows and bytes.

use sea_orm::{ConnectionTrait, DbBackend, Value};

use super::statements::{self, statement};
use super::{OutboxTable, db};
use crate::backend::queue::Task;
use crate::backend::settlement::Replacement;
use crate::error::Result;

/// When a new row becomes due, or that it is kept as a dead letter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Due<'a> {
    /// At once, after everything queued so far.
    Now,
    /// At once, in line at a place: µs since the epoch, when the task it replaces was first
    /// queued.
    InLine(i64),
    /// After this many µs, on the database clock.
    In(i64),
    /// Never: kept as a dead letter, with the reason.
    Dead(&'a str),
}

impl Due<'_> {
    /// Whether rows due this way and `other`'s go into one statement.
    fn same_kind(&self, other: &Due<'_>) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// The multi-row `INSERT` of `rows` rows due this way.
    fn statement(&self, backend: DbBackend, table: OutboxTable, rows: usize) -> String {
        match self {
            Due::Now => statements::insert(backend, table, rows),
            Due::InLine(_) => statements::insert_due_at(backend, table, rows),
            Due::In(_) => statements::insert_due_in(backend, table, rows),
            Due::Dead(_) => statements::insert_dead(backend, table, rows),
        }
    }
}

/// The rows of `next` in a settled task's place (`place`: when that task was first queued).
pub(super) fn replacement_rows(next: &[Replacement], place: i64) -> Vec<(&Task, Due<'_>)> {
    next.iter()
        .map(|replacement| match replacement {
            Replacement::Due(task) => (task, Due::InLine(place)),
            Replacement::DueIn(task, delay) => (task, Due::In(super::micros(*delay))),
            Replacement::Dead { task, reason } => (task, Due::Dead(reason)),
        })
        .collect()
}

/// Rows per multi-row insert: far below every database's bound on bound parameters.
const INSERT_BATCH: usize = 500;

/// Task bytes per multi-row insert: far below MariaDB's default `max_allowed_packet` (16 MiB),
/// so a big event fanned out to many subscriptions goes in several statements (one
/// transaction) rather than one the server refuses every time.
const INSERT_BATCH_BYTES: usize = 4 << 20;

/// Inserts tasks into `table` through `conn` (a transaction or a connection), each as its
/// [`Due`] says.
pub(crate) async fn insert_tasks<'a, C: ConnectionTrait>(
    conn: &C,
    table: OutboxTable,
    tasks: impl IntoIterator<Item = (&'a Task, Due<'a>)>,
    what: &'static str,
) -> Result<()> {
    let mut rows = Rows::default();
    for (task, due) in tasks {
        let json = task.encode()?;
        // A statement holds rows of one kind, and is bounded.
        if let Some(kind) = rows.due
            && (!kind.same_kind(&due)
                || rows.count >= INSERT_BATCH
                || rows.bytes + json.len() > INSERT_BATCH_BYTES)
        {
            std::mem::take(&mut rows).insert(conn, table, what).await?;
        }
        rows.due = Some(due);
        rows.count += 1;
        rows.bytes += json.len();
        rows.values.push(ulid::Ulid::new().to_string().into());
        rows.values.push(json.into());
        match due {
            Due::Now => {}
            Due::InLine(at) | Due::In(at) => rows.values.push(at.into()),
            Due::Dead(reason) => rows.values.push(reason.into()),
        }
    }
    rows.insert(conn, table, what).await
}

/// The rows of one multi-row `INSERT`, all due the same way (`due`: the last one's, `None`
/// while there are none): (id, task JSON) pairs, or triples with the place, the delay or the
/// reason.
#[derive(Default)]
struct Rows<'a> {
    values: Vec<Value>,
    count: usize,
    bytes: usize,
    due: Option<Due<'a>>,
}

impl Rows<'_> {
    /// Inserts the rows, if there are any.
    async fn insert<C: ConnectionTrait>(
        self,
        conn: &C,
        table: OutboxTable,
        what: &'static str,
    ) -> Result<()> {
        let Some(due) = self.due else {
            return Ok(());
        };
        let backend = conn.get_database_backend();
        let sql = due.statement(backend, table, self.count);
        conn.execute_raw(statement(backend, &sql, self.values))
            .await
            .map_err(db(what))?;
        Ok(())
    }
}
