//! [`Inbox`] for [`SqlStore`]: received webhooks in `fastapihooks_inbox` (migration 11),
//! behaving exactly as the in-memory inbox.
//!
//! `receive` is one `INSERT`: the unique index on (source, external id) decides, across every
//! process, which copy of a webhook is new; a copy that loses reads the winner's row back. Each
//! state change is one `UPDATE` guarded by the current status, so of racing workers only those
//! the transition allows move the entry; the entry is then read back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    TransactionTrait as _,
};

use super::entity::inbox::{self, Column as C};
use super::rows::micros;
use super::{SqlStore, db, page_size};
use crate::ProcessTask;
use crate::backend::Task;
use crate::backend::sql_outbox::{Due, insert_tasks};
use crate::error::{Error, Result};
use crate::id::InboxId;
use crate::inbox::{
    Inbox, InboxEntry, InboxOutcome, InboxQuery, InboxStatus, Intake, NewInboxEntry, OrderingKey,
    Received, receive_then_queue,
};

/// The width of the source, external id and ordering object columns, in characters.
const MAX_KEY_CHARS: usize = 255;

#[async_trait]
impl Inbox for SqlStore {
    /// An `INSERT`; on a unique violation of (source, external id), the stored entry is read
    /// back — the copy that won may have been inserted by another process an instant before.
    async fn receive(&self, new: NewInboxEntry) -> Result<Received> {
        let what = "inbox.receive";
        keys_fit(&new)?;
        let entry = InboxEntry::received(new, now());
        let row = entry_row(&entry)?;
        // A conflict whose row cannot be read back is one deleted in between: insert again.
        for _ in 0..3 {
            match inbox::Entity::insert(row.clone())
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => return Ok(Received::New(entry)),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    if let Some(stored) = self.stored(&entry, what).await? {
                        return Ok(Received::Duplicate(stored));
                    }
                }
                Err(e) => return Err(Error::storage(what, e)),
            }
        }
        Err(Error::storage(
            what,
            std::io::Error::other(format!(
                "({:?}, {:?}) conflicts with a stored entry that cannot be read back (on \
                 MySQL/MariaDB without a NO PAD collation: one equal to it but for trailing \
                 spaces)",
                entry.source, entry.external_id
            )),
        ))
    }

    /// With its own outbox (`SqlBackend::for_store(self)`): the entry and its processing task
    /// in one transaction. A duplicate (the insert's unique violation) rolls back and is read
    /// as [`receive`](Inbox::receive) reads it. With any other queue: two steps.
    async fn receive_and_queue(
        &self,
        new: NewInboxEntry,
        queue: &dyn crate::Queue,
    ) -> Result<Intake> {
        let own = queue
            .store_outbox()
            .filter(|outbox| std::sync::Arc::ptr_eq(outbox.store, self.identity()));
        let Some(outbox) = own else {
            return receive_then_queue(self, new, queue).await;
        };
        let what = "inbox.receive_and_queue";
        keys_fit(&new)?;
        let entry = InboxEntry::received(new.clone(), now());
        let row = entry_row(&entry)?;
        let task = Task::from(ProcessTask::new(entry.id.clone()));
        let txn = self.db.begin().await.map_err(db(what))?;
        match inbox::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
        {
            Ok(_) => {
                insert_tasks(&txn, outbox.table, [(&task, Due::Now)], what).await?;
                txn.commit().await.map_err(db(what))?;
                Ok(Intake {
                    received: Received::New(entry),
                    not_queued: None,
                })
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await.map_err(db(what))?;
                // A copy stored before: the stored entry, read back.
                match self.stored(&entry, what).await? {
                    Some(stored) => Ok(Intake {
                        received: Received::Duplicate(stored),
                        not_queued: None,
                    }),
                    // Deleted in between: received (and queued) as new after all.
                    None => receive_then_queue(self, new, queue).await,
                }
            }
            Err(e) => Err(Error::storage(what, e)),
        }
    }

    async fn get_inbox_entry(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        inbox::Entity::find_by_id(id.as_str())
            .one(&self.db)
            .await
            .map_err(db("inbox.get_inbox_entry"))?
            .map(entry_from_row)
            .transpose()
    }

    /// Newest first by id, keyset on the id: `id < before ORDER BY id DESC LIMIT n`.
    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>> {
        let mut cond = Condition::all();
        if let Some(source) = &query.source {
            cond = cond.add(self.exact(C::Source, source));
        }
        if let Some(status) = query.status {
            cond = cond.add(C::Status.eq(status.as_str()));
        }
        if let Some(external_id) = &query.external_id {
            cond = cond.add(self.exact(C::ExternalId, external_id));
        }
        if let Some(since) = query.since {
            cond = cond.add(C::ReceivedAtUs.gte(micros_ceil(since)));
        }
        if let Some(until) = query.until {
            cond = cond.add(C::ReceivedAtUs.lt(micros_ceil(until)));
        }
        if let Some(before) = &query.before {
            cond = cond.add(C::Id.lt(before.as_str()));
        }
        inbox::Entity::find()
            .filter(cond)
            .order_by_desc(C::Id)
            .limit(page_size(query.limit))
            .all(&self.db)
            .await
            .map_err(db("inbox.list_inbox"))?
            .into_iter()
            .map(entry_from_row)
            .collect()
    }

    /// `UPDATE … SET status = 'processing', attempts = attempts + 1 WHERE id = ? AND status IN
    /// ('received', 'failed', 'processing')`, then the entry read back.
    async fn start_processing(&self, id: &InboxId) -> Result<Option<InboxEntry>> {
        let takes_up = [
            InboxStatus::Received,
            InboxStatus::Failed,
            InboxStatus::Processing,
        ];
        inbox::Entity::update_many()
            .col_expr(C::Status, Expr::value(InboxStatus::Processing.as_str()))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(1))
            .col_expr(C::UpdatedAtUs, Expr::value(micros(now())))
            .filter(C::Id.eq(id.as_str()))
            .filter(C::Status.is_in(takes_up.map(InboxStatus::as_str)))
            .exec(&self.db)
            .await
            .map_err(db("inbox.start_processing"))?;
        self.get_inbox_entry(id).await
    }

    /// One `UPDATE … WHERE id = ? AND status = 'processing'`.
    async fn finish_processing(&self, id: &InboxId, outcome: &InboxOutcome) -> Result<bool> {
        let what = "inbox.finish_processing";
        let at = micros(now());
        let mut update = inbox::Entity::update_many().col_expr(C::UpdatedAtUs, Expr::value(at));
        update = match outcome {
            InboxOutcome::Processed => update
                .col_expr(C::Status, Expr::value(InboxStatus::Processed.as_str()))
                .col_expr(C::ProcessedAtUs, Expr::value(at))
                .col_expr(C::LastError, Expr::value(Option::<String>::None)),
            InboxOutcome::Failed { error } => update
                .col_expr(C::Status, Expr::value(InboxStatus::Failed.as_str()))
                .col_expr(C::LastError, Expr::value(error.as_str())),
            InboxOutcome::Dead { error } => update
                .col_expr(C::Status, Expr::value(InboxStatus::Dead.as_str()))
                .col_expr(C::LastError, Expr::value(error.as_str())),
        };
        let done = update
            .filter(C::Id.eq(id.as_str()))
            .filter(C::Status.eq(InboxStatus::Processing.as_str()))
            .exec(&self.db)
            .await
            .map_err(db(what))?;
        if done.rows_affected > 0 {
            return Ok(true);
        }
        self.found(id, what).await?;
        Ok(false)
    }

    /// One `UPDATE … SET status = 'received' WHERE id = ? AND status IN ('dead'[,
    /// 'processed'])`, then the entry read back.
    async fn reopen(&self, id: &InboxId, processed_too: bool) -> Result<Option<InboxEntry>> {
        let what = "inbox.reopen";
        let mut reopens = vec![InboxStatus::Dead.as_str()];
        if processed_too {
            reopens.push(InboxStatus::Processed.as_str());
        }
        let done = inbox::Entity::update_many()
            .col_expr(C::Status, Expr::value(InboxStatus::Received.as_str()))
            .col_expr(C::UpdatedAtUs, Expr::value(micros(now())))
            .filter(C::Id.eq(id.as_str()))
            .filter(C::Status.is_in(reopens))
            .exec(&self.db)
            .await
            .map_err(db(what))?;
        if done.rows_affected == 0 {
            self.found(id, what).await?;
            return Ok(None);
        }
        match self.get_inbox_entry(id).await? {
            Some(entry) => Ok(Some(entry)),
            None => Err(Error::InboxEntryNotFound { id: id.to_string() }),
        }
    }

    /// Whether one row exists (`LIMIT 1`) on the (source, ordering object, position) index.
    async fn newer_processed(&self, source: &str, ordering: &OrderingKey) -> Result<bool> {
        let newer: Option<String> = inbox::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(self.exact(C::Source, source))
            .filter(self.exact(C::OrderingObject, &ordering.object))
            .filter(C::OrderingPosition.gt(ordering.position))
            .filter(C::Status.eq(InboxStatus::Processed.as_str()))
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db("inbox.newer_processed"))?;
        Ok(newer.is_some())
    }

    /// `status = 'received' AND received_at_us < ? ORDER BY received_at_us LIMIT ?`, on the
    /// (status, received_at_us) index.
    async fn stranded(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<InboxEntry>> {
        inbox::Entity::find()
            .filter(C::Status.eq(InboxStatus::Received.as_str()))
            .filter(C::ReceivedAtUs.lt(micros_ceil(before)))
            .order_by_asc(C::ReceivedAtUs)
            .order_by_asc(C::Id)
            .limit(page_size(limit))
            .all(&self.db)
            .await
            .map_err(db("inbox.stranded"))?
            .into_iter()
            .map(entry_from_row)
            .collect()
    }
}

impl SqlStore {
    /// The stored entry with `entry`'s (source, external id): the copy a duplicate lost to.
    async fn stored(&self, entry: &InboxEntry, what: &'static str) -> Result<Option<InboxEntry>> {
        inbox::Entity::find()
            .filter(self.exact(C::Source, &entry.source))
            .filter(self.exact(C::ExternalId, &entry.external_id))
            .one(&self.db)
            .await
            .map_err(db(what))?
            .map(entry_from_row)
            .transpose()
    }

    /// `column = value`, exactly: on MySQL/MariaDB also of the same length, since a
    /// `PAD SPACE` collation (servers without a `NO PAD` binary one) ignores trailing spaces.
    fn exact(&self, column: C, value: &str) -> Condition {
        let cond = Condition::all().add(column.eq(value));
        if self.db.get_database_backend() != DbBackend::MySql {
            return cond;
        }
        let chars = i64::try_from(value.chars().count()).unwrap_or(i64::MAX);
        cond.add(
            Expr::expr(Func::cust("CHAR_LENGTH").arg(Expr::col((inbox::Entity, column)))).eq(chars),
        )
    }

    /// `Ok` when entry `id` exists, `InboxEntryNotFound` when not.
    async fn found(&self, id: &InboxId, what: &'static str) -> Result<()> {
        let row: Option<String> = inbox::Entity::find_by_id(id.as_str())
            .select_only()
            .column(C::Id)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(db(what))?;
        match row {
            Some(_) => Ok(()),
            None => Err(Error::InboxEntryNotFound { id: id.to_string() }),
        }
    }
}

/// Now, at the microsecond (what is stored), so the entry returned is the entry read back.
fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// The first whole microsecond at or after `time`: with times stored at the microsecond,
/// `stored >= time` is `stored_us >= micros_ceil(time)` and `stored < time` is
/// `stored_us < micros_ceil(time)`, exactly as the in-memory inbox compares.
fn micros_ceil(time: DateTime<Utc>) -> i64 {
    let sub_micro = !time.timestamp_subsec_nanos().is_multiple_of(1_000);
    micros(time).saturating_add(i64::from(sub_micro))
}

/// Refuses an entry whose source, external id or ordering object is longer than its column.
fn keys_fit(new: &NewInboxEntry) -> Result<()> {
    fits("inbox.source", &new.source)?;
    fits("inbox.external_id", &new.external_id)?;
    if let Some(ordering) = &new.ordering {
        fits("inbox.ordering.object", &ordering.object)?;
    }
    Ok(())
}

/// Refuses a key longer than its column.
fn fits(field: &'static str, value: &str) -> Result<()> {
    let len = value.chars().count();
    if len > MAX_KEY_CHARS {
        return Err(Error::TooLong {
            field,
            len,
            limit: MAX_KEY_CHARS,
        });
    }
    Ok(())
}

fn entry_row(entry: &InboxEntry) -> Result<inbox::ActiveModel> {
    let headers = serde_json::to_string(&entry.headers).map_err(|source| Error::Encode {
        what: "inbox.headers",
        source,
    })?;
    Ok(inbox::ActiveModel {
        id: Set(entry.id.to_string()),
        source: Set(entry.source.clone()),
        external_id: Set(entry.external_id.clone()),
        headers: Set(headers),
        body: Set(entry.body.to_vec()),
        ordering_object: Set(entry.ordering.as_ref().map(|o| o.object.clone())),
        ordering_position: Set(entry.ordering.as_ref().map(|o| o.position)),
        status: Set(entry.status.as_str().to_owned()),
        attempts: Set(i64::from(entry.attempts)),
        last_error: Set(entry.last_error.clone()),
        received_at_us: Set(micros(entry.received_at)),
        updated_at_us: Set(micros(entry.updated_at)),
        processed_at_us: Set(entry.processed_at.map(micros)),
    })
}

fn entry_from_row(row: inbox::Model) -> Result<InboxEntry> {
    let corrupt = |column: &'static str, reason: String| Error::CorruptRecord {
        table: "inbox",
        id: row.id.clone(),
        column,
        reason,
    };
    let time = |column: &'static str, us: i64| {
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| corrupt(column, format!("{us} is not a representable time")))
    };
    // The closures above borrow only `row.id`: the other columns move out.
    let ordering = match (row.ordering_object, row.ordering_position) {
        (Some(object), Some(position)) => Some(OrderingKey::new(object, position)),
        (None, None) => None,
        _ => {
            return Err(corrupt(
                "ordering_position",
                "an ordering object and position go together".into(),
            ));
        }
    };
    Ok(InboxEntry {
        id: row
            .id
            .parse()
            .map_err(|e: Error| corrupt("id", e.to_string()))?,
        headers: serde_json::from_str(&row.headers)
            .map_err(|e| corrupt("headers", e.to_string()))?,
        ordering,
        status: row
            .status
            .parse()
            .map_err(|e: Error| corrupt("status", e.to_string()))?,
        attempts: u32::try_from(row.attempts)
            .map_err(|_| corrupt("attempts", format!("{} is out of range", row.attempts)))?,
        received_at: time("received_at_us", row.received_at_us)?,
        updated_at: time("updated_at_us", row.updated_at_us)?,
        processed_at: row
            .processed_at_us
            .map(|us| time("processed_at_us", us))
            .transpose()?,
        last_error: row.last_error,
        source: row.source,
        external_id: row.external_id,
        body: row.body.into(),
    })
}
