//! Writing new tasks into the outbox: multi-row `INSERT`s, bounded in rows and bytes.

use sea_orm::{ConnectionTrait, Value};

use super::statements::{self, statement};
use super::{OutboxTable, db};
use crate::backend::queue::Task;
use crate::error::Result;

/// Rows per multi-row insert: far below every database's bound on bound parameters.
const INSERT_BATCH: usize = 500;

/// Task bytes per multi-row insert: far below MariaDB's default `max_allowed_packet` (16 MiB),
/// so a big event fanned out to many subscriptions goes in several statements (one
/// transaction) rather than one the server refuses every time.
const INSERT_BATCH_BYTES: usize = 4 << 20;

/// Inserts tasks into `table` through `conn` (a transaction or a connection), each due at
/// once: in line at its place (µs since the epoch, when the task it replaces was first queued) when it has one,
/// else after everything queued so far.
pub(crate) async fn insert_tasks<'a, C: ConnectionTrait>(
    conn: &C,
    table: OutboxTable,
    tasks: impl IntoIterator<Item = (&'a Task, Option<i64>)>,
    what: &'static str,
) -> Result<()> {
    let mut rows = Rows::default();
    for (task, place) in tasks {
        let json = task.encode()?;
        // A statement holds rows of one kind (placed or not), and is bounded.
        if rows.count > 0
            && (rows.placed != place.is_some()
                || rows.count >= INSERT_BATCH
                || rows.bytes + json.len() > INSERT_BATCH_BYTES)
        {
            std::mem::take(&mut rows).insert(conn, table, what).await?;
        }
        rows.placed = place.is_some();
        rows.count += 1;
        rows.bytes += json.len();
        rows.values.push(ulid::Ulid::new().to_string().into());
        rows.values.push(json.into());
        if let Some(place) = place {
            rows.values.push(place.into());
        }
    }
    if rows.count > 0 {
        rows.insert(conn, table, what).await?;
    }
    Ok(())
}

/// The rows of one multi-row `INSERT`: (id, task JSON) pairs, or (id, task JSON, due)
/// triples when placed.
#[derive(Default)]
struct Rows {
    values: Vec<Value>,
    count: usize,
    bytes: usize,
    placed: bool,
}

impl Rows {
    async fn insert<C: ConnectionTrait>(
        self,
        conn: &C,
        table: OutboxTable,
        what: &'static str,
    ) -> Result<()> {
        let backend = conn.get_database_backend();
        let sql = if self.placed {
            statements::insert_due_at(backend, table, self.count)
        } else {
            statements::insert(backend, table, self.count)
        };
        conn.execute_raw(statement(backend, &sql, self.values))
            .await
            .map_err(db(what))?;
        Ok(())
    }
}
