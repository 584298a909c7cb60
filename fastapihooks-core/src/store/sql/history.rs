//! What [`SqlStore`](super::SqlStore)'s delivery-history queries share: events stored once per
//! batch of deliveries, and delivery rows joined with their events.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::entity::{delivery, event};
use super::rows::{delivery_from_row, event_from_row};
use super::{BATCH, db};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::event::Event;

/// The events of `deliveries`, each once, in order of first appearance.
pub(super) fn distinct_events(deliveries: &[Delivery]) -> Vec<&Event> {
    let mut events: Vec<&Event> = Vec::new();
    for d in deliveries {
        if !events.iter().any(|e| e.id() == d.event.id()) {
            events.push(&d.event);
        }
    }
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
    for chunk in event_ids.chunks(BATCH) {
        for row in event::Entity::find()
            .filter(event::Column::Id.is_in(chunk.iter().copied()))
            .all(db_conn)
            .await
            .map_err(db(what))?
        {
            events.insert(row.id.clone(), event_from_row(row)?);
        }
    }
    // A row whose event is gone was pruned with it between the two reads (retention runs
    // beside readers): it is left out. Only a row that is still there without its event is
    // corrupt.
    let orphans: Vec<&str> = rows
        .iter()
        .filter(|r| !events.contains_key(&r.event_id))
        .map(|r| r.id.as_str())
        .collect();
    let mut still_there = std::collections::HashSet::new();
    for chunk in orphans.chunks(BATCH) {
        for row in delivery::Entity::find()
            .filter(delivery::Column::Id.is_in(chunk.iter().copied()))
            .all(db_conn)
            .await
            .map_err(db(what))?
        {
            still_there.insert(row.id);
        }
    }
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
