//! The delivery-history queries of [`SqlStore`]: events, deliveries and attempts.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use super::entity::{attempt, delivery, event};
use super::rows::{
    attempt_from_row, attempt_row, delivery_from_row, delivery_row, event_from_row, event_row,
};
use super::{BATCH, SqlStore, db, page_size};
use crate::delivery::{Attempt, Delivery};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::DeliveryId;
use crate::store::DeliveryQuery;

impl SqlStore {
    /// Inserts each event once and each delivery if absent, in one transaction: a delivery
    /// already recorded (fan-out run again) keeps its state.
    pub(super) async fn insert_deliveries(&self, deliveries: &[Delivery]) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let what = "store.record_deliveries";
        let mut events: Vec<&Event> = Vec::new();
        for d in deliveries {
            if !events.iter().any(|e| e.id() == d.event.id()) {
                events.push(&d.event);
            }
        }
        let txn = self.db.begin().await.map_err(db(what))?;
        for chunk in events.chunks(BATCH) {
            event::Entity::insert_many(chunk.iter().map(|e| event_row(e)))
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await
                .map_err(db(what))?;
        }
        for chunk in deliveries.chunks(BATCH) {
            delivery::Entity::insert_many(chunk.iter().map(delivery_row))
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await
                .map_err(db(what))?;
        }
        txn.commit().await.map_err(db(what))
    }

    /// Updates the delivery and appends the attempt, together. A delivery that is not recorded
    /// is left unrecorded (as [`MemoryStore`](crate::MemoryStore) does past its bound).
    pub(super) async fn insert_attempt(&self, d: &Delivery, attempt: &Attempt) -> Result<()> {
        let what = "store.record_attempt";
        let txn = self.db.begin().await.map_err(db(what))?;
        let mut row = delivery_row(d);
        // Fan-out fixed these; an attempt changes only the state below.
        row.event_id = sea_orm::ActiveValue::NotSet;
        row.subscription_id = sea_orm::ActiveValue::NotSet;
        row.created_at_us = sea_orm::ActiveValue::NotSet;
        let updated = delivery::Entity::update_many()
            .set(row)
            .filter(delivery::Column::Id.eq(d.id.as_str()))
            .exec(&txn)
            .await
            .map_err(db(what))?;
        if updated.rows_affected > 0 {
            attempt::Entity::insert(attempt_row(attempt))
                .exec_without_returning(&txn)
                .await
                .map_err(db(what))?;
        }
        txn.commit().await.map_err(db(what))
    }

    pub(super) async fn find_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        let row = delivery::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db("store.get_delivery"))?;
        match row {
            Some(row) => Ok(self
                .with_events(vec![row], "store.get_delivery")
                .await?
                .pop()),
            None => Ok(None),
        }
    }

    pub(super) async fn delivery_page(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let what = "store.list_deliveries";
        let mut select = delivery::Entity::find();
        if let Some(status) = query.status {
            select = select.filter(delivery::Column::Status.eq(status.as_str()));
        }
        if let Some(sub) = &query.subscription_id {
            select = select.filter(delivery::Column::SubscriptionId.eq(sub.as_str()));
        }
        if let Some(before) = &query.before {
            select = select.filter(delivery::Column::Id.lt(before.as_str()));
        }
        let rows = select
            .order_by_desc(delivery::Column::Id)
            .limit(page_size(query.limit))
            .all(&self.db)
            .await
            .map_err(db(what))?;
        self.with_events(rows, what).await
    }

    /// Joins delivery rows with their events (one query per batch of distinct events).
    async fn with_events(
        &self,
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
                .all(&self.db)
                .await
                .map_err(db(what))?
            {
                events.insert(row.id.clone(), event_from_row(row)?);
            }
        }
        rows.into_iter()
            .map(|row| {
                let event =
                    events
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

    pub(super) async fn attempts_of(&self, delivery: &DeliveryId) -> Result<Vec<Attempt>> {
        attempt::Entity::find()
            .filter(attempt::Column::DeliveryId.eq(delivery.as_str()))
            .order_by_asc(attempt::Column::Number)
            .order_by_asc(attempt::Column::Id)
            .all(&self.db)
            .await
            .map_err(db("store.list_attempts"))?
            .into_iter()
            .map(attempt_from_row)
            .collect()
    }
}
