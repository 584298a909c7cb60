//! What [`SqlStore`](super::SqlStore)'s delivery-history queries share: a fan-out's events
//! stored once per batch of deliveries, and delivery rows joined with their events.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryTrait, TransactionTrait,
};

use super::entity::{delivery, event};
use super::rows::{delivery_from_row, delivery_row, event_from_row};
use super::{BATCH, db};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::event::Event;

/// Inserts each event once and each delivery if absent, in one transaction: a delivery already
/// recorded (fan-out run again) keeps its state. With `tell_new`, says which deliveries this
/// call inserted (`INSERT … RETURNING id`, PostgreSQL and SQLite); MySQL/MariaDB cannot tell
/// (`None`).
pub(super) async fn record_deliveries(
    db_conn: &DatabaseConnection,
    deliveries: &[Delivery],
    tell_new: bool,
) -> Result<Option<Vec<bool>>> {
    let returning = tell_new && db_conn.get_database_backend() != DbBackend::MySql;
    if deliveries.is_empty() {
        return Ok(returning.then(Vec::new));
    }
    let what = "store.record_deliveries";
    let deliveries: Vec<&Delivery> = deliveries.iter().collect();
    let txn = db_conn.begin().await.map_err(db(what))?;
    let mut inserted = insert_deliveries(&txn, &deliveries, tell_new, what).await?;
    txn.commit().await.map_err(db(what))?;
    Ok(inserted.as_mut().map(|inserted| {
        deliveries
            .iter()
            .map(|d| inserted.remove(d.id.as_str()))
            .collect()
    }))
}

/// Within `txn`: inserts each event of `deliveries` once (holding those stored before: see
/// [`parents`](super::parents)) and each delivery if absent. With
/// `tell_new`, the ids of the deliveries it inserted (a delivery given twice was inserted
/// once: the first of the two is the new one), except on MySQL/MariaDB, which cannot tell
/// (`None`).
pub(super) async fn insert_deliveries(
    txn: &impl ConnectionTrait,
    deliveries: &[&Delivery],
    tell_new: bool,
    what: &'static str,
) -> Result<Option<HashSet<String>>> {
    let returning = tell_new && txn.get_database_backend() != DbBackend::MySql;
    super::parents::keep_events(txn, &distinct_events(deliveries), what).await?;
    let inserted = insert_absent::<delivery::Entity, _>(
        txn,
        deliveries,
        |d| delivery_row(d),
        delivery::Column::Id,
        returning,
        what,
    )
    .await?;
    Ok(returning.then_some(inserted))
}

/// Inserts the rows of `items` whose key is absent (`ON CONFLICT DO NOTHING`, in chunks) within
/// `txn`; with `returning`, the ids it inserted (`RETURNING id`, which MySQL/MariaDB lack),
/// else none.
pub(super) async fn insert_absent<E: EntityTrait, T>(
    txn: &impl ConnectionTrait,
    items: &[T],
    row: impl Fn(&T) -> E::ActiveModel,
    id: E::Column,
    returning: bool,
    what: &'static str,
) -> Result<HashSet<String>> {
    let mut inserted = HashSet::new();
    for chunk in items.chunks(BATCH) {
        let insert = E::insert_many(chunk.iter().map(&row)).on_conflict_do_nothing();
        if !returning {
            insert.exec_without_returning(txn).await.map_err(db(what))?;
            continue;
        }
        let mut query = insert.into_query();
        query.returning_col(id);
        for found in txn.query_all(&query).await.map_err(db(what))? {
            inserted.insert(found.try_get::<String>("", "id").map_err(db(what))?);
        }
    }
    Ok(inserted)
}

/// The events of `deliveries`, each once, by id: the order their rows are inserted and locked
/// in, the same in every batch, so two batches sharing events never wait for each other in a
/// cycle.
pub(super) fn distinct_events<'a>(deliveries: &[&'a Delivery]) -> Vec<&'a Event> {
    let mut events: Vec<&Event> = deliveries.iter().map(|d| &d.event).collect();
    events.sort_unstable_by(|a, b| a.id().cmp(b.id()));
    events.dedup_by(|a, b| a.id() == b.id());
    events
}

/// Joins delivery rows with their events (one query per batch of distinct events).
pub(super) async fn with_events(
    db_conn: &DatabaseConnection,
    rows: Vec<delivery::Model>,
    what: &'static str,
) -> Result<Vec<Delivery>> {
    let mut event_ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    event_ids.sort_unstable();
    event_ids.dedup();
    let mut events = HashMap::with_capacity(event_ids.len());
    for row in super::batch::by_ids::<event::Entity>(db_conn, &event_ids, what).await? {
        events.insert(row.id.clone(), event_from_row(row)?);
    }
    // A row whose event is gone was pruned with it between the two reads (retention runs
    // beside readers): it is left out. Only a row that is still there without its event is
    // corrupt.
    let orphans: Vec<&str> = rows
        .iter()
        .filter(|r| !events.contains_key(&r.event_id))
        .map(|r| r.id.as_str())
        .collect();
    let still_there: HashSet<String> =
        super::batch::by_ids::<delivery::Entity>(db_conn, &orphans, what)
            .await?
            .into_iter()
            .map(|row| row.id)
            .collect();
    rows.into_iter()
        .filter(|row| events.contains_key(&row.event_id) || still_there.contains(&row.id))
        .map(|row| {
            let event = events
                .get(&row.event_id)
                .cloned()
                .ok_or_else(|| Error::CorruptRecord {
                    table: "delivery",
                    id: row.id.clone(),
                    column: "event_id",
                    reason: format!("event {} is not stored", row.event_id),
                })?;
            delivery_from_row(row, event)
        })
        .collect()
}
