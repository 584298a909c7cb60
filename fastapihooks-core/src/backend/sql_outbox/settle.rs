//! The outbox's group-committed settling ([`Queue::settle_many`](crate::Queue::settle_many)):
//! the acks and replacements of a batch in one fenced `DELETE … RETURNING` (and, when some
//! replace their task — a fan-out's delivery tasks, an event's retries — one transaction that
//! also inserts what replaces them); the rarer retries and dead letters through their own
//! statements, concurrently.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, TransactionTrait};

use super::insert::{Due, insert_tasks};
use super::statements::statement;
use super::transient::retry_conflicts;
use super::{Next, SqlBackend, db, split};
use crate::backend::queue::Task;
use crate::backend::settlement::{self, Settlement};
use crate::error::Result;

/// Leases per `DELETE`: two parameters each.
const CHUNK: usize = 500;

const WHAT: &str = "outbox.settle";

pub(super) async fn settle_many(
    outbox: &SqlBackend,
    settlements: &[Settlement],
) -> Vec<Result<bool>> {
    let (replaces, others): (Vec<usize>, Vec<usize>) = (0..settlements.len()).partition(|&i| {
        matches!(
            settlements[i],
            Settlement::Replace { .. } | Settlement::ReplaceEach { .. }
        )
    });
    let mut results: Vec<Option<Result<bool>>> = (0..settlements.len()).map(|_| None).collect();
    let rest: Vec<Settlement> = others.iter().map(|&i| settlements[i].clone()).collect();
    let (replaced, settled) = tokio::join!(
        replace_all(outbox, replaces.iter().map(|&i| &settlements[i]).collect()),
        settlement::each(outbox, &rest)
    );
    for (i, result) in replaces.into_iter().zip(replaced) {
        results[i] = Some(result);
    }
    for (i, result) in others.into_iter().zip(settled) {
        results[i] = Some(result);
    }
    // Every index was filled above.
    results
        .into_iter()
        .map(|r| r.unwrap_or(Ok(false)))
        .collect()
}

/// Deletes the rows still leased by these receipts and inserts what replaces each deleted one
/// (in its place in line), all in one transaction; each result says whether its lease was
/// still held.
async fn replace_all(outbox: &SqlBackend, replaces: Vec<&Settlement>) -> Vec<Result<bool>> {
    let leases: Vec<Result<(String, String)>> =
        replaces.iter().map(|s| split(s.receipt())).collect();
    let with_next = replaces.iter().any(|s| !s.is_ack());
    let done = retry_conflicts(|| async {
        if with_next {
            let txn = outbox.db.begin().await.map_err(db(WHAT))?;
            let places = delete_leased(&txn, outbox, &leases).await?;
            let mut rows: Vec<(&Task, Due)> = Vec::new();
            for (settlement, lease) in replaces.iter().zip(&leases) {
                let next = match settlement {
                    Settlement::Replace { next, .. } => Next::Tasks(next),
                    Settlement::ReplaceEach { next, .. } => Next::Each(next),
                    _ => continue,
                };
                let held = lease.as_ref().ok().and_then(|(id, _)| places.get(id));
                if let Some(&place) = held {
                    rows.extend(next.rows(place));
                }
            }
            insert_tasks(&txn, outbox.table, rows, WHAT).await?;
            txn.commit().await.map_err(db(WHAT))?;
            Ok(places)
        } else {
            delete_leased(&outbox.db, outbox, &leases).await
        }
    })
    .await;
    match done {
        Ok(places) => leases
            .into_iter()
            .map(|lease| lease.map(|(id, _)| places.contains_key(&id)))
            .collect(),
        Err(e) => crate::group_commit::fail_all(WHAT, leases.len(), &e),
    }
}

/// Deletes the rows these leases still hold; returns each deleted row's place in line (when
/// its task was first queued), by row id.
async fn delete_leased(
    conn: &impl ConnectionTrait,
    outbox: &SqlBackend,
    leases: &[Result<(String, String)>],
) -> Result<HashMap<String, i64>> {
    let valid: Vec<&(String, String)> = leases.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut places = HashMap::with_capacity(valid.len());
    for chunk in valid.chunks(CHUNK) {
        let condition = vec!["(id = ? AND lease = ?)"; chunk.len()].join(" OR ");
        let table = outbox.table.name();
        let sql = format!("DELETE FROM {table} WHERE {condition} RETURNING id, created_at_us");
        let values = chunk
            .iter()
            .flat_map(|(id, token)| [id.clone().into(), token.clone().into()])
            .collect();
        for row in conn
            .query_all_raw(statement(outbox.backend, &sql, values))
            .await
            .map_err(db(WHAT))?
        {
            let id: String = row.try_get("", "id").map_err(db(WHAT))?;
            let place: i64 = row.try_get("", "created_at_us").map_err(db(WHAT))?;
            places.insert(id, place);
        }
    }
    Ok(places)
}
