//! What the delivery history's foreign keys guaranteed, kept by the statements that write and
//! prune it: no delivery is left without its event, no attempt without its delivery.
//!
//! Migration 16 dropped the keys on PostgreSQL and MariaDB: PostgreSQL checked them with a query
//! and a row lock (a WAL record) for every delivery and attempt written, on rows the same
//! statement had mostly just inserted (BENCHMARKS.md, session 26). The one thing the keys did
//! that the history's statements did not do already was to order a writer and
//! [`prune`](crate::Store::prune) on the same parent row. That is done here, by two rules:
//!
//! - **A writer holds the parents it found.** A transaction writing deliveries of an event that
//!   was stored before it holds the event's row with a shared lock until it ends (`FOR KEY
//!   SHARE` on PostgreSQL; on MariaDB the insert that met the event's key holds it already);
//!   one writing an attempt of a delivery it did not insert holds the delivery's row likewise
//!   (`FOR KEY SHARE`, `LOCK IN SHARE MODE`). A parent the writer inserted itself needs no
//!   lock: no other transaction sees it before the writer commits.
//! - **`prune` locks the events it is about to delete** (`FOR UPDATE`) before it checks, in a
//!   statement of its own, that no delivery names them: it waits for every writer holding one,
//!   and its check then sees what they wrote. (The deliveries it deletes it has locked
//!   `FOR UPDATE` from the start.)
//!
//! A parent deleted after a writer's insert found it and before the writer's lock: an event is
//! inserted again; a delivery's attempt is dropped with it, as
//! [`record_attempts`](crate::Store::record_attempts) drops the attempt of a delivery pruned
//! while it ran. SQLite runs one writing transaction at a time: there, nothing is locked.

use std::collections::HashSet;

use sea_orm::sea_query::LockType;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};

use super::entity::{delivery, event};
use super::history::insert_absent;
use super::rows::event_row;
use super::{BATCH, db};
use crate::error::{Error, Result};
use crate::event::Event;

/// How often an event deleted under a writer is inserted again before the writer gives up
/// (with a store error: its batch is retried as after any other).
const ROUNDS: usize = 3;

/// The shared lock a writer holds a delivery with; `None` on SQLite.
fn shared_lock(backend: DbBackend) -> Option<LockType> {
    match backend {
        DbBackend::Postgres => Some(LockType::KeyShare),
        DbBackend::MySql => Some(LockType::Share),
        _ => None,
    }
}

/// Within `txn`: stores each of `events` if absent (a stored one keeps its row) and holds each
/// until `txn` ends (see the [module docs](self)).
pub(super) async fn keep_events(
    txn: &impl ConnectionTrait,
    events: &[&Event],
    what: &'static str,
) -> Result<()> {
    let mut missing: Vec<&Event> = events.to_vec();
    for _ in 0..ROUNDS {
        // On PostgreSQL, which rows it inserted: the others were found, and are held below.
        let returning = txn.get_database_backend() == DbBackend::Postgres;
        let inserted = insert_absent::<event::Entity, _>(
            txn,
            &missing,
            |e| event_row(e),
            event::Column::Id,
            returning,
            what,
        )
        .await?;
        if !returning {
            // MariaDB's insert holds the rows it found (InnoDB locks a duplicate key it meets
            // until the transaction ends); SQLite has one writer at a time.
            return Ok(());
        }
        let found: Vec<&str> = missing
            .iter()
            .map(|e| e.id().as_str())
            .filter(|id| !inserted.contains(*id))
            .collect();
        let held = hold::<event::Entity>(txn, &found, Some(LockType::KeyShare), what).await?;
        missing.retain(|e| {
            let id = e.id().as_str();
            !inserted.contains(id) && !held.contains(id)
        });
        if missing.is_empty() {
            return Ok(());
        }
    }
    let ids: Vec<String> = missing.iter().map(|e| e.id().to_string()).collect();
    Err(Error::storage(
        what,
        format!(
            "events {ids:?} were deleted by a concurrent prune {ROUNDS} times while deliveries \
             of them were being recorded"
        ),
    ))
}

/// Within `txn`: the deliveries of `ids` that exist, each held until `txn` ends (read plainly
/// on SQLite). An attempt is recorded only for a delivery held so.
pub(super) async fn held_deliveries(
    txn: &impl ConnectionTrait,
    ids: &[&str],
    what: &'static str,
) -> Result<HashSet<String>> {
    let lock = shared_lock(txn.get_database_backend());
    hold::<delivery::Entity>(txn, ids, lock, what).await
}

/// Within `prune`'s transaction: locks the events of `ids` for their deletion, waiting for
/// every writer holding one (see the [module docs](self)).
pub(super) async fn lock_events_for_prune(
    txn: &impl ConnectionTrait,
    ids: &[&str],
    what: &'static str,
) -> Result<()> {
    hold::<event::Entity>(txn, ids, Some(LockType::Update), what).await?;
    Ok(())
}

/// The rows of `ids` that exist, each locked with `lock` (`None`: read plainly).
async fn hold<E: IdEntity>(
    txn: &impl ConnectionTrait,
    ids: &[&str],
    lock: Option<LockType>,
    what: &'static str,
) -> Result<HashSet<String>> {
    let mut held = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH) {
        let mut select = E::find()
            .select_only()
            .column(E::id_column())
            .filter(E::id_column().is_in(chunk.iter().copied()));
        if let Some(lock) = lock {
            select = select.lock(lock);
        }
        let rows: Vec<String> = select.into_tuple().all(txn).await.map_err(db(what))?;
        held.extend(rows);
    }
    Ok(held)
}

/// A table of the history, keyed by its `id` column.
trait IdEntity: EntityTrait {
    fn id_column() -> Self::Column;
}

impl IdEntity for event::Entity {
    fn id_column() -> Self::Column {
        event::Column::Id
    }
}

impl IdEntity for delivery::Entity {
    fn id_column() -> Self::Column {
        delivery::Column::Id
    }
}
