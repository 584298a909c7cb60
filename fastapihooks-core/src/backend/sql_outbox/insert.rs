//! Writing new tasks into the outbox: multi-row `INSERT`s, bounded in rows and bytes.

use sea_orm::{ConnectionTrait, Value};

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
    fn kind(&self) -> u8 {
        match self {
            Due::Now => 0,
            Due::InLine(_) => 1,
            Due::In(_) => 2,
            Due::Dead(_) => 3,
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
        if rows.count > 0
            && (rows.kind != due.kind()
                || rows.count >= INSERT_BATCH
                || rows.bytes + json.len() > INSERT_BATCH_BYTES)
        {
            std::mem::take(&mut rows).insert(conn, table, what).await?;
        }
        rows.kind = due.kind();
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
    if rows.count > 0 {
        rows.insert(conn, table, what).await?;
    }
    Ok(())
}

/// The rows of one multi-row `INSERT`, all of one [`Due::kind`]: (id, task JSON) pairs, or
/// triples with the place, the delay or the reason.
#[derive(Default)]
struct Rows {
    values: Vec<Value>,
    count: usize,
    bytes: usize,
    kind: u8,
}

impl Rows {
    async fn insert<C: ConnectionTrait>(
        self,
        conn: &C,
        table: OutboxTable,
        what: &'static str,
    ) -> Result<()> {
        let backend = conn.get_database_backend();
        let sql = match self.kind {
            0 => statements::insert(backend, table, self.count),
            1 => statements::insert_due_at(backend, table, self.count),
            2 => statements::insert_due_in(backend, table, self.count),
            _ => statements::insert_dead(backend, table, self.count),
        };
        conn.execute_raw(statement(backend, &sql, self.values))
            .await
            .map_err(db(what))?;
        Ok(())
    }
}
