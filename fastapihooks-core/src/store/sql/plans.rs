//! Test support: PostgreSQL's plans for the store's and the outbox's statements, read on a
//! young table (filled, never analysed) as a sidecar meets it in its first minutes.

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{SqlStore, SqlStoreOptions};

/// A migrated store of one connection in a schema of its own, or `None` (the test then
/// passes) when PostgreSQL is not running here. The schema goes when its [`TempSchema`]
/// does: bind it first, so the store is dropped before it.
///
/// [`TempSchema`]: fastapihooks_testkit::TempSchema
pub(crate) async fn young_store(
    what: &str,
) -> Option<(fastapihooks_testkit::TempSchema, SqlStore)> {
    let schema = fastapihooks_testkit::TempSchema::create(what).await?;
    let store = SqlStoreOptions::new(schema.url())
        .postgres_schema(schema.name())
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    Some((schema, store))
}

/// The text of what `explain` (an `EXPLAIN …` statement, no parameters) answers on `conn`.
pub(crate) async fn explain(conn: &impl ConnectionTrait, explain: &str) -> String {
    let rows = conn
        .query_all_raw(Statement::from_string(DbBackend::Postgres, explain))
        .await
        .unwrap();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
    lines.join("\n")
}
