//! The outbox's group-committed settling ([`Queue::settle_many`](crate::Queue::settle_many)):
//! the acks of a batch in one fenced `DELETE … RETURNING id`; the rarer retries, dead letters
//! and fan-outs through their own transactions, concurrently.

use std::collections::HashSet;

use sea_orm::ConnectionTrait;

use super::statements::{TABLE, statement};
use super::transient::retry_conflicts;
use super::{SqlBackend, db, split};
use crate::backend::settlement::{self, Settlement};
use crate::error::Result;

/// Acks per statement: two parameters each.
const CHUNK: usize = 500;

pub(super) async fn settle_many(
    outbox: &SqlBackend,
    settlements: &[Settlement],
) -> Vec<Result<bool>> {
    let (acks, others): (Vec<usize>, Vec<usize>) =
        (0..settlements.len()).partition(|&i| settlements[i].is_ack());
    let mut results: Vec<Option<Result<bool>>> = (0..settlements.len()).map(|_| None).collect();
    let rest: Vec<Settlement> = others.iter().map(|&i| settlements[i].clone()).collect();
    let (acked, settled) = tokio::join!(
        ack_all(outbox, acks.iter().map(|&i| &settlements[i])),
        settlement::each(outbox, &rest)
    );
    for (i, result) in acks.into_iter().zip(acked) {
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

/// Deletes the rows still leased by these receipts; each result says whether its lease was
/// still held (its row deleted).
async fn ack_all<'a>(
    outbox: &SqlBackend,
    acks: impl Iterator<Item = &'a Settlement>,
) -> Vec<Result<bool>> {
    let receipts: Vec<Result<(String, String)>> = acks.map(|s| split(s.receipt())).collect();
    let valid: Vec<&(String, String)> = receipts.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut deleted: HashSet<String> = HashSet::new();
    for chunk in valid.chunks(CHUNK) {
        match delete_leased(outbox, chunk).await {
            Ok(ids) => deleted.extend(ids),
            Err(e) => {
                let failed = crate::group_commit::fail_all("outbox.settle", receipts.len(), &e);
                return failed;
            }
        }
    }
    receipts
        .into_iter()
        .map(|r| r.map(|(id, _)| deleted.contains(&id)))
        .collect()
}

async fn delete_leased(outbox: &SqlBackend, rows: &[&(String, String)]) -> Result<Vec<String>> {
    let condition = vec!["(id = ? AND lease = ?)"; rows.len()].join(" OR ");
    let sql = format!("DELETE FROM {TABLE} WHERE {condition} RETURNING id");
    let values = rows
        .iter()
        .flat_map(|(id, token)| [id.clone().into(), token.clone().into()])
        .collect();
    let delete = statement(outbox.backend, &sql, values);
    retry_conflicts(|| async {
        let rows = outbox
            .db
            .query_all_raw(delete.clone())
            .await
            .map_err(db("outbox.settle"))?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "id").map_err(db("outbox.settle")))
            .collect()
    })
    .await
}
