//! The [`SqlStore`](super::SqlStore)'s batched statements on PostgreSQL: one statement text
//! whatever the batch's size, each column passed as one array and turned back into rows by
//! `unnest` — the inserts of a batch of attempts, and the reads of rows by their ids.
//!
//! The portable statements of [`batch`](super::batch) carry a placeholder per value, so their
//! text changes with the batch's size: sqlx's per-connection cache of prepared statements
//! misses on nearly every flush, and PostgreSQL parses, analyses and plans each one anew — a
//! third of what it spends on these inserts (BENCHMARKS.md, session 23). A text that never
//! changes is prepared once per connection. Its plan is an insert fed by a function scan,
//! whatever the tables' statistics, so the generic plan PostgreSQL may switch a prepared
//! statement to after five executions is the one it would make anyway.
//!
//! A read by ids ([`by_ids`]) looks each id up on its own (`LATERAL (… LIMIT 1)`): a probe of
//! the primary key, which PostgreSQL plans so for a table of any size beyond a page or two, in
//! a custom plan and in a generic one alike. The portable `WHERE id IN (…)` left the choice to
//! the statistics: with a hundred ids, PostgreSQL's default costs price one sequential scan of
//! a table of a few thousand rows below a hundred probes of its key, and most of a sidecar's
//! reads scanned the whole table — ~1 ms each, where the probes take ~0.1 (BENCHMARKS.md,
//! session 24); and a generic plan of `id = ANY($1)` made while a table was young scanned it
//! whole for the rest of the connection's life (session 10).
//!
//! An event, its deliveries and their attempts go in one statement (three inserts chained by
//! `WITH`): one round trip, not three. The history keeps no foreign keys on PostgreSQL
//! (migration 16): checking them locked the event's or the delivery's row for every row
//! written, and wrote a WAL record for each lock. A delivery this statement inserts keeps its
//! first attempt in its own row (migration 17): the attempt's row and its two index entries are
//! not written — three WAL records fewer per delivery, and up to a fifth less of PostgreSQL's
//! CPU per delivery on the sidecar's rows (BENCHMARKS.md, session 28).
//!
//! A batch of first attempts of new deliveries — the sidecar's every batch, nearly — is bound
//! through sqlx itself ([`insert_new_first_attempts`]): each column a vector of borrowed
//! values, where sea-orm's values copy every string and payload into a value of their own, and
//! again as the statement is run. Anything else (a delivery stored before, a parent gone) takes
//! the general way, through sea-orm.
//!
//! sea-query binds arrays without NULL elements, so a nullable column travels as a value it
//! never takes, turned back into NULL by the statement: a next attempt at `i64::MIN` µs
//! (before any time `chrono` represents), a status code of -1 (an HTTP status is positive),
//! an empty error kind (every kind has a name); an event's owner, any string, travels with a
//! flag saying whether it has one.

use std::collections::HashSet;
use std::sync::LazyLock;

use sea_orm::sqlx::{self, PgPool};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, EntityTrait,
    IdenStatic, Iterable, Statement, Value,
};

use super::rows::{duration_us, micros, outcome_columns};
use super::{db, parents};
use crate::delivery::{Attempt, Delivery};
use crate::error::{Error, Result};
use crate::event::Event;

/// Stands for a NULL `next_attempt_at_us`.
const NO_TIME: i64 = i64::MIN;
/// Stands for a NULL `status_code`.
const NO_STATUS: i32 = -1;
/// Stands for a NULL `error_kind`.
const NO_ERROR_KIND: &str = "";

/// Inserts the events (each once, if absent), the deliveries (each if absent, in their state
/// after the attempt) and the attempts, in one statement within `txn`. Returns the ids of the
/// deliveries it found recorded before (the others it inserted): the statement answers with a
/// row per delivery found, so a batch of new deliveries — the rule — is answered by none.
pub(super) async fn insert_first_attempts(
    txn: &impl ConnectionTrait,
    events: &[&Event],
    attempts: &[(Delivery, Attempt)],
    what: &'static str,
) -> Result<HashSet<String>> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        FIRST_ATTEMPTS.as_str(),
        first_attempt_columns(events, attempts)
            .iter()
            .map(Column::value),
    );
    let mut found = HashSet::new();
    let (mut events_gone, mut deliveries_gone) = (HashSet::new(), Vec::new());
    for row in txn.query_all_raw(statement).await.map_err(db(what))? {
        let id = row.try_get::<String>("", "id").map_err(db(what))?;
        match row
            .try_get::<String>("", "kind")
            .map_err(db(what))?
            .as_str()
        {
            "event_gone" => {
                events_gone.insert(id);
            }
            "delivery_gone" => deliveries_gone.push(id),
            _ => {
                found.insert(id);
            }
        }
    }
    if !events_gone.is_empty() {
        let again: Vec<&Event> = events
            .iter()
            .copied()
            .filter(|e| events_gone.contains(e.id().as_str()))
            .collect();
        parents::keep_events(txn, &again, what).await?;
    }
    if !deliveries_gone.is_empty() {
        drop_attempts_of_gone(txn, &deliveries_gone, attempts, what).await?;
    }
    Ok(found)
}

/// The sqlx pool behind `db_conn` when it is one of PostgreSQL's (not a mock's or a proxy's),
/// for [`insert_new_first_attempts`].
pub(super) fn pool(db_conn: &DatabaseConnection) -> Option<&PgPool> {
    match &db_conn.inner {
        DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
            Some(db_conn.get_postgres_connection_pool())
        }
        _ => None,
    }
}

/// [`insert_first_attempts`] for a batch of new deliveries, each given once, bound through sqlx
/// in a transaction of its own on `pool`: commits when the statement answers nothing — every
/// delivery, its first attempt and its event inserted (or the event found) — and returns
/// `true`. Otherwise it rolls back, having written nothing, and returns `false`: a delivery
/// stored before needs its state updated and a parent gone needs putting back, which the
/// general way ([`insert_first_attempts`], with the follow-ups of its caller) does.
pub(super) async fn insert_new_first_attempts(
    pool: &PgPool,
    events: &[&Event],
    attempts: &[(Delivery, Attempt)],
    what: &'static str,
) -> Result<bool> {
    let query = first_attempt_columns(events, attempts)
        .into_iter()
        .fold(sqlx::query(FIRST_ATTEMPTS.as_str()), |query, column| {
            column.bind(query)
        });
    let failed = |e| Error::storage(what, e);
    let mut txn = pool.begin().await.map_err(failed)?;
    let answered = query.fetch_optional(&mut *txn).await.map_err(failed)?;
    if answered.is_some() {
        txn.rollback().await.map_err(failed)?;
        return Ok(false);
    }
    txn.commit().await.map_err(failed)?;
    Ok(true)
}

/// Of the deliveries in `ids` (found by the insert, not by its lock), holds those there now and
/// deletes the attempts just inserted for the others: deleted by a prune meanwhile, their
/// attempts go with them.
async fn drop_attempts_of_gone(
    txn: &impl ConnectionTrait,
    ids: &[String],
    attempts: &[(Delivery, Attempt)],
    what: &'static str,
) -> Result<()> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let held = parents::held_deliveries(txn, &ids, what).await?;
    let orphans: Vec<String> = attempts
        .iter()
        .filter(|(d, _)| ids.contains(&d.id.as_str()) && !held.contains(d.id.as_str()))
        .map(|(_, a)| a.id.to_string())
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM fastapihooks_attempts WHERE id = ANY($1::text[])",
        [orphans.into()],
    );
    txn.execute_raw(statement).await.map_err(db(what))?;
    Ok(())
}

/// Inserts `attempts` in one statement within `txn`.
pub(super) async fn insert_attempts<'a>(
    txn: &impl ConnectionTrait,
    attempts: impl Iterator<Item = &'a Attempt>,
    what: &'static str,
) -> Result<()> {
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        ATTEMPTS.as_str(),
        attempt_columns(attempts).iter().map(Column::value),
    );
    txn.execute_raw(statement).await.map_err(db(what))?;
    Ok(())
}

/// The rows of `E` whose `id` (the primary key of every table of the history) is one of
/// `ids`, each once, in no particular order: one statement of a fixed text, the ids as one
/// array, each looked up by a probe of the key (see the [module docs](self)).
pub(super) async fn by_ids<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    ids: &[&str],
    what: &'static str,
) -> Result<Vec<E::Model>> {
    let mut ids: Vec<&str> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    let sql = by_ids_sql::<E>();
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, [ids.into()]);
    E::find()
        .from_raw_sql(statement)
        .all(conn)
        .await
        .map_err(db(what))
}

/// The read of [`by_ids`] from `E`'s table: its rows whose `id` is in the array `$1`, with
/// `E`'s columns only (a delivery's row also keeps its first attempt, read apart).
fn by_ids_sql<E: EntityTrait>() -> String {
    let table = E::default().table_name();
    let columns: Vec<String> = E::Column::iter()
        .map(|c| format!("t.\"{}\"", c.as_str()))
        .collect();
    format!(
        "SELECT x.* FROM unnest($1::text[]) AS k(id) CROSS JOIN LATERAL \
         (SELECT {} FROM {table} AS t WHERE t.id = k.id LIMIT 1) AS x",
        columns.join(", ")
    )
}

/// The events' insert, reading arrays `$first`…`$first + 5`.
fn events_insert(first: usize) -> String {
    let [id, name, has_owner, owner, payload, created] = params::<6>(first);
    format!(
        "INSERT INTO fastapihooks_events (id, name, owner, payload, created_at_us) \
         SELECT id, name, CASE WHEN has_owner THEN owner END, payload, created_at_us \
         FROM unnest({id}::text[], {name}::text[], {has_owner}::bool[], {owner}::text[], \
         {payload}::bytea[], {created}::int8[]) \
         AS u(id, name, has_owner, owner, payload, created_at_us) \
         ON CONFLICT DO NOTHING"
    )
}

/// The deliveries' insert, reading arrays `$first`…`$first + 9`, and each delivery's first
/// attempt kept in its row from the attempts' arrays `$attempt`…`$attempt + 8` (but the
/// attempt's `delivery_id`, the delivery's own id): see [`entity::first_attempt`].
///
/// [`entity::first_attempt`]: super::entity::first_attempt
fn deliveries_insert(first: usize, attempt: usize) -> String {
    let [
        id,
        event,
        sub,
        status,
        attempts,
        next,
        created,
        updated,
        replays,
        before,
    ] = params::<10>(first);
    let [
        a_id,
        _,
        number,
        started,
        duration,
        outcome,
        code,
        kind,
        detail,
    ] = params::<9>(attempt);
    format!(
        "INSERT INTO fastapihooks_deliveries (id, event_id, subscription_id, status, attempts, \
         next_attempt_at_us, created_at_us, updated_at_us, replays, attempts_before_replay, \
         first_attempt_id, first_attempt_number, first_attempt_started_at_us, \
         first_attempt_duration_us, first_attempt_outcome, first_attempt_status_code, \
         first_attempt_error_kind, first_attempt_detail) \
         SELECT id, event_id, subscription_id, status, attempts, NULLIF(next, {NO_TIME}), \
         created_at_us, updated_at_us, replays, attempts_before_replay, \
         a_id, number, started_at_us, duration_us, outcome, \
         NULLIF(status_code, {NO_STATUS}), NULLIF(error_kind, '{NO_ERROR_KIND}'), detail \
         FROM unnest({id}::text[], {event}::text[], {sub}::text[], {status}::text[], \
         {attempts}::int8[], {next}::int8[], {created}::int8[], {updated}::int8[], \
         {replays}::int8[], {before}::int8[], {a_id}::text[], {number}::int8[], \
         {started}::int8[], {duration}::int8[], {outcome}::text[], {code}::int4[], \
         {kind}::text[], {detail}::text[]) \
         AS u(id, event_id, subscription_id, status, attempts, next, created_at_us, \
         updated_at_us, replays, attempts_before_replay, a_id, number, started_at_us, \
         duration_us, outcome, status_code, error_kind, detail) \
         ON CONFLICT DO NOTHING"
    )
}

/// The attempts' insert, reading arrays `$first`…`$first + 8`; with `except`, a query of
/// attempt ids, those it lists are left out.
fn attempts_insert(first: usize, except: Option<&str>) -> String {
    let [
        id,
        delivery,
        number,
        started,
        duration,
        outcome,
        status,
        kind,
        detail,
    ] = params::<9>(first);
    format!(
        "INSERT INTO fastapihooks_attempts (id, delivery_id, number, started_at_us, \
         duration_us, outcome, status_code, error_kind, detail) \
         SELECT id, delivery_id, number, started_at_us, duration_us, outcome, \
         NULLIF(status_code, {NO_STATUS}), NULLIF(error_kind, '{NO_ERROR_KIND}'), detail \
         FROM unnest({id}::text[], {delivery}::text[], {number}::int8[], {started}::int8[], \
         {duration}::int8[], {outcome}::text[], {status}::int4[], {kind}::text[], \
         {detail}::text[]) \
         AS u(id, delivery_id, number, started_at_us, duration_us, outcome, status_code, \
         error_kind, detail){}",
        except.map_or(String::new(), |ids| format!(" WHERE u.id NOT IN ({ids})"))
    )
}

/// The three inserts chained; each event and delivery that was stored before held `FOR KEY
/// SHARE` until the transaction ends ([`parents`](super::parents)). A delivery inserted keeps
/// its first attempt in its row; the attempts of deliveries stored before (and of one given
/// twice, after its first) are rows of their own. Returns a row per delivery found stored
/// before (`found`: none in a batch of new deliveries), per event and per delivery found by its
/// insert but gone by the time of its lock (`event_gone`, `delivery_gone`: deleted by a prune
/// meanwhile, or inserted by another transaction after this statement's snapshot — the caller
/// asks again).
static FIRST_ATTEMPTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH e AS ({} RETURNING id), \
         ef AS ({}), ek AS ({}), \
         d AS ({} RETURNING id, first_attempt_id), \
         df AS ({}), dk AS ({}), \
         a AS ({}) \
         SELECT 'found' AS kind, id FROM df \
         UNION ALL SELECT 'event_gone', id FROM ef WHERE id NOT IN (SELECT id FROM ek) \
         UNION ALL SELECT 'delivery_gone', id FROM df WHERE id NOT IN (SELECT id FROM dk)",
        events_insert(1),
        found("$1", "e"),
        hold("fastapihooks_events", "ef"),
        deliveries_insert(7, 17),
        found("$7", "d"),
        hold("fastapihooks_deliveries", "df"),
        attempts_insert(17, Some("SELECT first_attempt_id FROM d")),
    )
});

/// The ids of the array `ids` that the insert `inserted` did not insert: stored before it.
fn found(ids: &str, inserted: &str) -> String {
    format!(
        "SELECT DISTINCT u.id FROM unnest({ids}::text[]) AS u(id) \
         WHERE u.id NOT IN (SELECT id FROM {inserted})"
    )
}

/// The rows of `table` whose ids `found` lists, locked `FOR KEY SHARE`: each probed by its key.
fn hold(table: &str, found: &str) -> String {
    format!(
        "SELECT x.id FROM {found} CROSS JOIN LATERAL \
         (SELECT t.id FROM {table} AS t WHERE t.id = {found}.id FOR KEY SHARE) AS x"
    )
}

static ATTEMPTS: LazyLock<String> = LazyLock::new(|| attempts_insert(1, None));

/// `N` placeholders numbered from `$first`.
fn params<const N: usize>(first: usize) -> [String; N] {
    std::array::from_fn(|i| format!("${}", first + i))
}

/// One column of a batch as an array, borrowed from the batch: bound by sqlx as it is, or
/// copied into sea-orm's value.
enum Column<'a> {
    Text(Vec<&'a str>),
    Bytes(Vec<&'a [u8]>),
    Bool(Vec<bool>),
    Int4(Vec<i32>),
    Int8(Vec<i64>),
}

impl<'a> Column<'a> {
    /// The array as sea-orm binds it (each element copied into a value of its own).
    fn value(&self) -> Value {
        match self {
            Column::Text(v) => v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>().into(),
            Column::Bytes(v) => v.iter().map(|b| b.to_vec()).collect::<Vec<_>>().into(),
            Column::Bool(v) => v.clone().into(),
            Column::Int4(v) => v.clone().into(),
            Column::Int8(v) => v.clone().into(),
        }
    }

    /// `query` with the array bound as its next parameter.
    fn bind(self, query: PgQuery<'a>) -> PgQuery<'a> {
        match self {
            Column::Text(v) => query.bind(v),
            Column::Bytes(v) => query.bind(v),
            Column::Bool(v) => query.bind(v),
            Column::Int4(v) => query.bind(v),
            Column::Int8(v) => query.bind(v),
        }
    }
}

type PgQuery<'a> = sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// One column of `rows`.
fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}

/// The arrays of [`FIRST_ATTEMPTS`], `$1` to `$25`, in order.
fn first_attempt_columns<'a>(
    events: &[&'a Event],
    attempts: &'a [(Delivery, Attempt)],
) -> Vec<Column<'a>> {
    let mut columns = event_columns(events);
    columns.extend(delivery_columns(attempts.iter().map(|(d, _)| d)));
    columns.extend(attempt_columns(attempts.iter().map(|(_, a)| a)));
    columns
}

fn event_columns<'a>(events: &[&'a Event]) -> Vec<Column<'a>> {
    vec![
        Column::Text(column(events, |e| e.id().as_str())),
        Column::Text(column(events, |e| e.name().as_str())),
        Column::Bool(column(events, |e| e.owner().is_some())),
        Column::Text(column(events, |e| e.owner().unwrap_or_default())),
        Column::Bytes(column(events, |e| e.payload().as_ref())),
        Column::Int8(column(events, |e| micros(e.created_at()))),
    ]
}

fn delivery_columns<'a>(deliveries: impl Iterator<Item = &'a Delivery>) -> Vec<Column<'a>> {
    let deliveries: Vec<&Delivery> = deliveries.collect();
    vec![
        Column::Text(column(&deliveries, |d| d.id.as_str())),
        Column::Text(column(&deliveries, |d| d.event.id().as_str())),
        Column::Text(column(&deliveries, |d| d.subscription_id.as_str())),
        Column::Text(column(&deliveries, |d| d.status.as_str())),
        Column::Int8(column(&deliveries, |d| i64::from(d.attempts))),
        Column::Int8(column(&deliveries, |d| {
            d.next_attempt_at.map_or(NO_TIME, micros)
        })),
        Column::Int8(column(&deliveries, |d| micros(d.created_at))),
        Column::Int8(column(&deliveries, |d| micros(d.updated_at))),
        Column::Int8(column(&deliveries, |d| i64::from(d.replays))),
        Column::Int8(column(&deliveries, |d| i64::from(d.attempts_before_replay))),
    ]
}

fn attempt_columns<'a>(attempts: impl Iterator<Item = &'a Attempt>) -> Vec<Column<'a>> {
    let rows: Vec<_> = attempts.map(|a| (a, outcome_columns(&a.outcome))).collect();
    vec![
        Column::Text(column(&rows, |(a, _)| a.id.as_str())),
        Column::Text(column(&rows, |(a, _)| a.delivery_id.as_str())),
        Column::Int8(column(&rows, |(a, _)| i64::from(a.number))),
        Column::Int8(column(&rows, |(a, _)| micros(a.started_at))),
        Column::Int8(column(&rows, |(a, _)| duration_us(a))),
        Column::Text(column(&rows, |(_, o)| o.0)),
        Column::Int4(column(&rows, |(_, o)| o.1.unwrap_or(NO_STATUS))),
        Column::Text(column(&rows, |(_, o)| o.2.unwrap_or(NO_ERROR_KIND))),
        Column::Text(column(&rows, |(_, o)| o.3)),
    ]
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    use super::by_ids_sql;
    use crate::store::sql::plans::{explain, young_store};

    /// The plan PostgreSQL makes for a read of 128 ids from a young table of 10,000 deliveries
    /// (never analysed, as in a sidecar's first minutes), with the ids' values and generically
    /// (what a prepared statement may switch to after five executions): a probe of the key for
    /// each id in both, never a scan of the table — which an `IN` list with these values gets.
    #[tokio::test]
    async fn a_read_by_ids_probes_the_key_of_a_big_young_table_in_every_plan() {
        let Some((_schema, store)) = young_store("a read by ids on PostgreSQL").await else {
            return;
        };
        let db = store.connection();
        db.execute_unprepared(
            "INSERT INTO fastapihooks_events (id, name, payload, created_at_us) \
             SELECT 'evt_' || g, 'order.created', '\\x7b7d', g FROM generate_series(1, 10000) g; \
             INSERT INTO fastapihooks_deliveries (id, event_id, subscription_id, status, \
             attempts, created_at_us, updated_at_us) \
             SELECT 'dlv_' || g, 'evt_' || g, 'sub_1', 'delivered', 1, g, g \
             FROM generate_series(1, 10000) g",
        )
        .await
        .unwrap();
        let ids: Vec<String> = (20_000..20_128).map(|i| format!("dlv_{i}")).collect();
        let ids = format!("'{{{}}}'", ids.join(","));
        let txn = db.begin().await.unwrap();
        let in_list = explain(
            &txn,
            &format!("EXPLAIN SELECT * FROM fastapihooks_deliveries WHERE id = ANY({ids}::text[])"),
        )
        .await;
        let sql = by_ids_sql::<crate::store::sql::entity::delivery::Entity>();
        txn.execute_unprepared(&format!("PREPARE by_ids(text[]) AS {sql}"))
            .await
            .unwrap();
        let mut plans = Vec::new();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            txn.execute_unprepared(&format!("SET LOCAL plan_cache_mode = {mode}"))
                .await
                .unwrap();
            plans.push(explain(&txn, &format!("EXPLAIN EXECUTE by_ids({ids})")).await);
        }
        txn.execute_unprepared("DEALLOCATE by_ids").await.unwrap();
        txn.rollback().await.unwrap();
        store.connection().clone().close().await.unwrap();

        assert!(
            in_list.contains("Seq Scan on fastapihooks_deliveries"),
            "the table is big enough for the ids' scan to be the planner's choice: {in_list}"
        );
        for plan in plans {
            assert!(
                plan.contains("Index Scan using fastapihooks_deliveries_pkey")
                    && !plan.contains("Seq Scan on fastapihooks_deliveries"),
                "{plan}"
            );
        }
    }
}
