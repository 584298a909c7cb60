//! The outbox's group-committed settling ([`Queue::settle_many`](crate::Queue::settle_many)):
//! the acks and replacements of a batch in one fenced `DELETE … RETURNING` (and, when some
//! replace their task — a fan-out's delivery tasks, an event's retries — one transaction that
//! also inserts what replaces them); the rarer retries and dead letters through their own
//! statements, concurrently.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, TransactionTrait, Value};

use super::insert::{Due, insert_tasks};
use super::statements::{placeholders, statement};
use super::transient::retry_conflicts;
use super::{Next, SqlBackend, db, split};
use crate::backend::queue::Task;
use crate::backend::settlement::{self, Settlement};
use crate::error::Result;

/// Leases per `DELETE`: a parameter each, and one per distinct lease token.
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
        let (sql, values) = delete_leased_statement(outbox.table.name(), chunk);
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

/// `DELETE … WHERE (lease = ? AND id IN (…)) OR …`: the leases grouped by token, one term per
/// token — a lease call gives one token to every row it takes, so a batch of settles holds a
/// few. Each term is one probe of the primary key with a list of ids, and the statement has
/// half the parameters. One `(id = ? AND lease = ?)` term per lease made PostgreSQL plan a
/// bitmap scan per row: a 64-row batch planned as long as it ran, and took 2–2.5× the grouped
/// statement's time when planned afresh (`pgbench`); the sidecar, whose statements are
/// prepared and reused, showed no difference (BENCHMARKS.md, session 21).
fn delete_leased_statement(table: &str, leases: &[&(String, String)]) -> (String, Vec<Value>) {
    let mut by_token: Vec<(&str, Vec<&str>)> = Vec::new();
    for (id, token) in leases {
        match by_token.iter_mut().find(|(t, _)| t == token) {
            Some((_, ids)) => ids.push(id),
            None => by_token.push((token, vec![id])),
        }
    }
    let condition = by_token
        .iter()
        .map(|(_, ids)| format!("(lease = ? AND id IN {})", placeholders(ids.len())))
        .collect::<Vec<_>>()
        .join(" OR ");
    let values = by_token
        .into_iter()
        .flat_map(|(token, ids)| std::iter::once(token).chain(ids))
        .map(|v| Value::from(v.to_owned()))
        .collect();
    let sql = format!("DELETE FROM {table} WHERE {condition} RETURNING id, created_at_us");
    (sql, values)
}
