//! What an idle sidecar does to a PostgreSQL outbox: it holds the wake gate, the advisory lock
//! `(WAKE_LOCK_CLASS, the outbox table's OID)`, and while it is held every commit that inserts
//! into the outbox sends a `NOTIFY` (which PostgreSQL commits one transaction at a time). The
//! route-cost row "a sidecar waiting" holds it through the load without running a sidecar,
//! whose leasing would share the machine's two cores with the route.

use std::time::Duration;

use anyhow::Context;
use fastapihooks_core::store::sql::migration::WAKE_LOCK_CLASS;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

/// The gate of one outbox, held on a connection of its own until [`release`](Self::release).
pub struct HeldWakeGate {
    db: DatabaseConnection,
}

impl HeldWakeGate {
    /// Takes the gate of `schema`'s outbox (waiting, as a sidecar does, for the publishing
    /// transactions that hold it shared).
    pub async fn take(postgres: &str, schema: &str) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(postgres);
        options
            .max_connections(1)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        let table = format!(r#""{schema}".fastapihooks_outbox"#);
        db.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_lock($1, to_regclass($2)::oid::int4)",
            [WAKE_LOCK_CLASS.into(), table.clone().into()],
        ))
        .await
        .with_context(|| format!("taking the wake gate of {table}"))?;
        Ok(Self { db })
    }

    /// Lets go of the gate: the session ends, and its lock with it.
    pub async fn release(self) {
        if let Err(e) = self.db.close().await {
            eprintln!("warning: closing the wake gate's connection: {e}");
        }
    }
}
