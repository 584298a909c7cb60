//! The outbox's group-committed settling ([`Queue::settle_many`](crate::Queue::settle_many)):
//! the acks and replacements of a batch in one fenced `DELETE … RETURNING` (and, when some
//! replace their task — a fan-out's delivery tasks, an event's retries — one transaction that
//! also inserts what replaces them); the rarer retries and dead letters through their own
//! statements, concurrently.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait, Value};

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
        let (sql, values) = if outbox.backend == DbBackend::Postgres {
            delete_leased_arrays(outbox.table.name(), chunk)
        } else {
            delete_leased_statement(outbox.table.name(), chunk)
        };
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

/// PostgreSQL: `WITH k AS (SELECT * FROM unnest(ids, leases)) DELETE … WHERE id =
/// ANY(ARRAY(SELECT id FROM k)) AND (id, lease) IN (SELECT id, lease FROM k)`, the leases as two
/// arrays — one text for any batch, prepared once per connection. The ids reach the planner as
/// the result of a subquery, not as values, so it probes the primary key for each whatever it
/// believes of the table: with the ids as an `IN` list it scanned a young outbox whole (10,000
/// rows queued before the sidecar started, not yet analysed), as it did the deliveries
/// (BENCHMARKS.md, sessions 24 and 25). The pairs are then matched in full: a row leased again
/// under another token is not settled.
fn delete_leased_arrays(table: &str, leases: &[&(String, String)]) -> (String, Vec<Value>) {
    let (ids, tokens): (Vec<String>, Vec<String>) = leases.iter().map(|&l| l.clone()).unzip();
    let sql = format!(
        "WITH k AS MATERIALIZED (SELECT * FROM unnest(?::text[], ?::text[]) AS k(id, lease)) \
         DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM k)) \
         AND (id, lease) IN (SELECT id, lease FROM k) \
         RETURNING id, created_at_us"
    );
    (sql, vec![ids.into(), tokens.into()])
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

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};

    use super::delete_leased_arrays;
    use crate::backend::sql_outbox::statements::statement;
    use crate::store::sql::plans::{explain, young_store};

    /// The plan of a settle of 128 leases in a young outbox of 10,000 leased rows (never
    /// analysed, as when a backlog was queued before the sidecar started), in its custom and
    /// its generic plan: the rows found by their key, never by a scan of the table — which
    /// the same ids in an `IN` list get.
    #[tokio::test]
    async fn a_settle_probes_the_key_of_a_big_young_outbox_in_every_plan() {
        let Some((_schema, store)) = young_store("a settle on a young outbox").await else {
            return;
        };
        let db = store.connection();
        db.execute_unprepared(
            "INSERT INTO fastapihooks_outbox (id, task, dead, available_at_us, lease, leases, \
             reason, created_at_us) SELECT 'tsk_' || g, '{}', FALSE, 1000, 'lease', 1, NULL, \
             1000 FROM generate_series(1, 10000) g",
        )
        .await
        .unwrap();
        let leases: Vec<(String, String)> = (1..=128)
            .map(|i| (format!("tsk_{}", i * 37), "lease".to_owned()))
            .collect();
        let ids: Vec<&str> = leases.iter().map(|(id, _)| id.as_str()).collect();
        let leases: Vec<&(String, String)> = leases.iter().collect();
        let (sql, _) = delete_leased_arrays("fastapihooks_outbox", &leases);
        let settle = statement(DbBackend::Postgres, &sql, Vec::new());
        let (ids_array, tokens_array) = (
            format!("'{{{}}}'", ids.join(",")),
            format!("'{{{}}}'", vec!["lease"; ids.len()].join(",")),
        );
        let in_list = format!(
            "EXPLAIN DELETE FROM fastapihooks_outbox WHERE lease = 'lease' AND id IN ('{}')",
            ids.join("', '")
        );
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared(&format!("PREPARE settle(text[], text[]) AS {}", settle.sql))
            .await
            .unwrap();
        let mut plans = Vec::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            txn.execute_unprepared(&format!("SET LOCAL plan_cache_mode = {mode}"))
                .await
                .unwrap();
            let execute = format!("EXPLAIN EXECUTE settle({ids_array}, {tokens_array})");
            plans.push(explain(&txn, &execute).await);
        }
        let in_list = explain(&txn, &in_list).await;
        txn.rollback().await.unwrap();

        for plan in plans {
            assert!(plan.contains("fastapihooks_outbox_pkey"), "{plan}");
            assert!(!plan.contains("Seq Scan on fastapihooks_outbox"), "{plan}");
        }
        assert!(
            in_list.contains("Seq Scan on fastapihooks_outbox"),
            "{in_list}"
        );
    }
}
