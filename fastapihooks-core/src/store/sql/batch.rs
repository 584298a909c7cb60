//! The [`SqlStore`](super::SqlStore)'s batched calls: a statement per batch, not per row, for
//! the sidecar's group commits (`Store::get_deliveries`, `get_subscriptions`,
//! `record_attempts`, `record_first_attempts`).
//!
//! Every statement here is plain SQL that SQLite, PostgreSQL and MariaDB all run: `IN` lists and
//! `CASE` expressions, in chunks small enough for each database's parameter limit — except the
//! reads by ids and the inserts of attempts (and of first attempts' events and deliveries) on
//! PostgreSQL, which take arrays in a statement whose text never changes
//! ([`batch_postgres`](super::batch_postgres)).

use std::collections::HashSet;

use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};

#[cfg(feature = "postgres")]
use super::batch_postgres;
use super::entity::subscription as sub_entity;
use super::entity::{attempt, delivery};
use super::rows::{attempt_row, micros, subscription_from_row};
use super::{db, history, parents};
use crate::delivery::{Attempt, Delivery, DeliveryStatus};
use crate::error::Result;
use crate::id::{DeliveryId, SubscriptionId};
use crate::subscription::Subscription;

/// An attempt and the state of its delivery after it.
type Recorded = (Delivery, Attempt);

/// Rows per statement: 11 parameters a row in the attempts' `UPDATE`, well under SQLite's
/// 32,766 and PostgreSQL's 65,535.
const CHUNK: usize = 200;

pub(super) async fn get_deliveries(
    db_conn: &DatabaseConnection,
    ids: &[DeliveryId],
) -> Result<Vec<Delivery>> {
    let what = "store.get_deliveries";
    let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
    let rows = by_ids::<delivery::Entity>(db_conn, &ids, what).await?;
    history::with_events(db_conn, rows, what).await
}

/// The rows of `E` whose `id` (the primary key of every table of the history) is one of
/// `ids`, each once, in no particular order: on PostgreSQL one statement of a fixed text
/// ([`batch_postgres::by_ids`]), elsewhere `IN` lists.
pub(super) async fn by_ids<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    ids: &[&str],
    what: &'static str,
) -> Result<Vec<E::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    #[cfg(feature = "postgres")]
    if conn.get_database_backend() == DbBackend::Postgres {
        return batch_postgres::by_ids::<E>(conn, ids, what).await;
    }
    let id = sea_orm::sea_query::Alias::new("id");
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        rows.extend(
            E::find()
                .filter(Expr::col(id.clone()).is_in(chunk.iter().copied()))
                .all(conn)
                .await
                .map_err(db(what))?,
        );
    }
    Ok(rows)
}

pub(super) async fn get_subscriptions(
    db_conn: &DatabaseConnection,
    ids: &[SubscriptionId],
) -> Result<Vec<Subscription>> {
    let what = "store.get_subscriptions";
    let ids: Vec<&str> = ids.iter().map(SubscriptionId::as_str).collect();
    by_ids::<sub_entity::Entity>(db_conn, &ids, what)
        .await?
        .into_iter()
        .map(subscription_from_row)
        .collect()
}

/// One transaction for the whole batch: per chunk, one `UPDATE … SET col = CASE id …` of the
/// deliveries (each guarded, like `record_attempt`, by `status = 'pending'` and its own run),
/// then one read of which deliveries exist and one multi-row `INSERT` of their attempts.
pub(super) async fn record_attempts(
    db_conn: &DatabaseConnection,
    attempts: &[(Delivery, Attempt)],
) -> Result<()> {
    let what = "store.record_attempts";
    if attempts.is_empty() {
        return Ok(());
    }
    let txn = db_conn.begin().await.map_err(db(what))?;
    let mut updated = 0;
    for round in rounds(attempts) {
        for chunk in round.chunks(CHUNK) {
            updated += update_states(&txn, chunk).await?;
        }
    }
    // An attempt of a delivery that is gone (pruned while it ran) is dropped with it. Every
    // delivery updated exists: only when some were not (final already, replayed since, or
    // gone) is there a question to ask.
    let all_known = updated == attempts.len() as u64;
    let known = if all_known {
        HashSet::new()
    } else {
        // Held until the commit, so a prune cannot delete one under its attempt.
        let ids: Vec<&str> = attempts.iter().map(|(d, _)| d.id.as_str()).collect();
        parents::held_deliveries(&txn, &ids, what).await?
    };
    let kept = attempts
        .iter()
        .filter(|(d, _)| all_known || known.contains(d.id.as_str()));
    insert_attempts(&txn, kept, what).await?;
    txn.commit().await.map_err(db(what))
}

/// One transaction for the whole batch: each event and each delivery inserted as
/// `record_deliveries` does, but in its state after the attempt; the deliveries that were
/// recorded already (a fan-out run again) take their attempt's state only as `record_attempts`
/// gives it (the same guarded `UPDATE`); then one multi-row `INSERT` of the attempts. A
/// delivery delivered at its first attempt is one row written once: no pending row inserted,
/// then updated — an update that writes a new entry in every index of the deliveries, since
/// its status is indexed. On PostgreSQL the events', the deliveries' and the attempts' inserts
/// are one statement. On MySQL/MariaDB, which cannot say which rows an `INSERT` added, the
/// deliveries that exist are read first (a plain read: a guarded `UPDATE` of every delivery
/// took gap locks that deadlocked two sidecars inserting side by side); one another fan-out
/// inserts between that read and this `INSERT` keeps its own state, and the attempt is still
/// history.
pub(super) async fn record_first_attempts(
    db_conn: &DatabaseConnection,
    attempts: &[(Delivery, Attempt)],
) -> Result<()> {
    let what = "store.record_first_attempts";
    if attempts.is_empty() {
        return Ok(());
    }
    let deliveries: Vec<&Delivery> = attempts.iter().map(|(d, _)| d).collect();
    #[cfg(feature = "postgres")]
    if let Some(pool) = batch_postgres::pool(db_conn)
        && each_once(&deliveries)
    {
        let events = history::distinct_events(&deliveries);
        if batch_postgres::insert_new_first_attempts(pool, &events, attempts, what).await? {
            return Ok(());
        }
    }
    let txn = db_conn.begin().await.map_err(db(what))?;
    let (stored_before, attempts_inserted) =
        insert_first_deliveries(&txn, &deliveries, attempts, what).await?;
    // A delivery given twice: its first is the new one.
    let mut seen = HashSet::with_capacity(attempts.len());
    let recorded_before: Vec<&Recorded> = attempts
        .iter()
        .filter(|(d, _)| {
            let id = d.id.as_str();
            stored_before.contains(id) || !seen.insert(id)
        })
        .collect();
    for round in rounds(recorded_before.iter().copied()) {
        for chunk in round.chunks(CHUNK) {
            update_states(&txn, chunk).await?;
        }
    }
    if attempts_inserted {
        // With their deliveries, holding those found (`batch_postgres`).
        return txn.commit().await.map_err(db(what));
    }
    // Every delivery is recorded now: inserted here, or found — and held until the commit, so
    // a prune cannot delete it under its attempt; an attempt of one deleted meanwhile is
    // dropped with it.
    let found: Vec<&str> = recorded_before.iter().map(|(d, _)| d.id.as_str()).collect();
    let held = parents::held_deliveries(&txn, &found, what).await?;
    let found: HashSet<&str> = found.into_iter().collect();
    let kept = attempts.iter().filter(|(d, _)| {
        let id = d.id.as_str();
        !found.contains(id) || held.contains(id)
    });
    insert_attempts(&txn, kept, what).await?;
    txn.commit().await.map_err(db(what))
}

/// Whether no delivery appears twice in `deliveries`.
#[cfg(feature = "postgres")]
fn each_once(deliveries: &[&Delivery]) -> bool {
    let mut seen = HashSet::with_capacity(deliveries.len());
    deliveries.iter().all(|d| seen.insert(d.id.as_str()))
}

/// The events and deliveries of a batch of first attempts, inserted: returns the ids of the
/// deliveries stored before (not inserted), and whether the attempts were inserted with them
/// (on PostgreSQL, all three go in one statement).
async fn insert_first_deliveries(
    txn: &DatabaseTransaction,
    deliveries: &[&Delivery],
    attempts: &[Recorded],
    what: &'static str,
) -> Result<(HashSet<String>, bool)> {
    #[cfg(feature = "postgres")]
    if txn.get_database_backend() == DbBackend::Postgres {
        let events = history::distinct_events(deliveries);
        let found = batch_postgres::insert_first_attempts(txn, &events, attempts, what).await?;
        return Ok((found, true));
    }
    #[cfg(not(feature = "postgres"))]
    let _ = attempts;
    // MariaDB/MySQL cannot say which rows an `INSERT` added: which existed is read first.
    let existing = if txn.get_database_backend() == DbBackend::MySql {
        Some(existing_ids(txn, deliveries, what).await?)
    } else {
        None
    };
    let inserted = history::insert_deliveries(txn, deliveries, true, what).await?;
    let found = match (inserted, existing) {
        (Some(inserted), _) => deliveries
            .iter()
            .map(|d| d.id.as_str())
            .filter(|id| !inserted.contains(*id))
            .map(str::to_owned)
            .collect(),
        (None, existing) => existing.unwrap_or_default(),
    };
    Ok((found, false))
}

/// The attempts of `recorded`, in multi-row `INSERT`s.
async fn insert_attempts<'a>(
    txn: &impl ConnectionTrait,
    recorded: impl Iterator<Item = &'a Recorded>,
    what: &'static str,
) -> Result<()> {
    #[cfg(feature = "postgres")]
    if txn.get_database_backend() == DbBackend::Postgres {
        return batch_postgres::insert_attempts(txn, recorded.map(|(_, a)| a), what).await;
    }
    let rows: Vec<_> = recorded.map(|(_, a)| attempt_row(a)).collect();
    for chunk in rows.chunks(CHUNK) {
        attempt::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(db(what))?;
    }
    Ok(())
}

/// The ids of `deliveries` that exist, by a plain (non-locking) read.
async fn existing_ids(
    txn: &impl ConnectionTrait,
    deliveries: &[&Delivery],
    what: &'static str,
) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    for chunk in deliveries.chunks(CHUNK) {
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::Id.is_in(chunk.iter().map(|d| d.id.as_str())))
            .into_tuple()
            .all(txn)
            .await
            .map_err(db(what))?;
        found.extend(ids);
    }
    Ok(found)
}

/// The batch split so no delivery appears twice in one `UPDATE` (a `CASE` takes only its first
/// match): later attempts of the same delivery go in later rounds, in order.
fn rounds<'a>(attempts: impl IntoIterator<Item = &'a Recorded>) -> Vec<Vec<&'a Recorded>> {
    let mut rounds: Vec<(HashSet<&str>, Vec<&Recorded>)> = Vec::new();
    for pair in attempts {
        let id = pair.0.id.as_str();
        let at = rounds.iter().rposition(|(ids, _)| ids.contains(id));
        let next = at.map_or(0, |i| i + 1);
        if next == rounds.len() {
            rounds.push((HashSet::new(), Vec::new()));
        }
        rounds[next].0.insert(id);
        rounds[next].1.push(pair);
    }
    rounds.into_iter().map(|(_, round)| round).collect()
}

/// Returns how many deliveries it updated.
async fn update_states(txn: &impl ConnectionTrait, chunk: &[&Recorded]) -> Result<u64> {
    use delivery::Column as C;
    let case = |column: C, value: &dyn Fn(&Delivery) -> sea_orm::Value| {
        chunk
            .iter()
            .fold(CaseStatement::new(), |case, (d, _)| {
                case.case(C::Id.eq(d.id.as_str()), Expr::val(value(d)))
            })
            .finally(Expr::col(column))
    };
    let status = case(C::Status, &|d| d.status.as_str().into());
    let attempts = case(C::Attempts, &|d| i64::from(d.attempts).into());
    let next = case(C::NextAttemptAtUs, &|d| {
        d.next_attempt_at.map(micros).into()
    });
    let updated = case(C::UpdatedAtUs, &|d| micros(d.updated_at).into());
    let run = case(C::Replays, &|d| i64::from(d.replays).into());
    let pending = DeliveryStatus::Pending.as_str();
    let updated = delivery::Entity::update_many()
        .col_expr(C::Status, status.into())
        .col_expr(C::Attempts, attempts.into())
        .col_expr(C::NextAttemptAtUs, next.into())
        .col_expr(C::UpdatedAtUs, updated.into())
        .filter(C::Id.is_in(chunk.iter().map(|(d, _)| d.id.as_str())))
        // The ids find the rows (primary key); the status is checked on each, through an
        // expression no index covers. As a plain `status = 'pending'`, PostgreSQL took the
        // status index whenever its statistics said few deliveries were pending (a table
        // created or grown since its last `ANALYZE`) and read every pending delivery for each
        // batch (BENCHMARKS.md, session 15).
        .filter(Expr::expr(Func::lower(Expr::col(C::Status))).eq(pending))
        .filter(ExprTrait::eq(Expr::col(C::Replays), run))
        .exec(txn)
        .await
        .map_err(db("store.record_attempts"))?;
    Ok(updated.rows_affected)
}
