//! `--database URL` (or `FASTAPIHOOKS_DATABASE_URL`), shared by every command, and opening the
//! store it names; [`SqlConnect`], how every command connects to a SQL database (the store, the
//! outbox).

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use fastapihooks_core::{SqlStore, SqlStoreOptions};

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The store's database: sqlite://fastapihooks.db?mode=rwc, postgres://user@host/db,
    /// mysql://user@host/db.
    #[arg(
        id = "database",
        long = "database",
        value_name = "URL",
        env = "FASTAPIHOOKS_DATABASE_URL"
    )]
    pub url: String,
    /// Seconds to wait for the database to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// PostgreSQL only: the schema the tables live in (its `search_path`), for the store and
    /// any outbox in the same database — as `fastapihooks start --postgres-schema`.
    #[arg(long, value_name = "SCHEMA", env = "FASTAPIHOOKS_POSTGRES_SCHEMA")]
    pub postgres_schema: Option<String>,
}

impl DatabaseArgs {
    /// Connects without migrating.
    pub async fn connect(&self) -> anyhow::Result<SqlStore> {
        self.options(1)
            .migrations(Migrations::Ignore)
            .connect("--database", &self.url)
            .await
    }

    /// Connects, and fails unless every migration is applied (the tables exist and are
    /// current).
    pub async fn connect_migrated(&self) -> anyhow::Result<SqlStore> {
        self.options(1).connect("--database", &self.url).await
    }

    /// How to connect to this database (or another one, such as an outbox elsewhere) with a
    /// pool of `max_connections` and `--connect-timeout`, refusing pending migrations.
    pub fn options(&self, max_connections: u32) -> SqlConnect {
        SqlConnect {
            connect_timeout: Some(Duration::from_secs(self.connect_timeout)),
            postgres_schema: self.postgres_schema.clone(),
            ..SqlConnect::new(max_connections)
        }
    }
}

/// What connecting does about migrations not applied yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrations {
    /// Fails, saying to run `fastapihooks migrate` first.
    Refuse,
    /// Fails, saying to run `fastapihooks migrate` or pass `--migrate` (`start`).
    RefuseOrFlag,
    /// Applies them (`start --migrate`).
    Apply,
    /// Leaves them (`migrate` itself).
    Ignore,
}

/// How a command connects to a SQL database: the pool, the timeout, the PostgreSQL schema, and
/// what to do about pending migrations.
#[derive(Clone, Debug)]
pub struct SqlConnect {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for the database to answer; `None`: the store's default.
    pub connect_timeout: Option<Duration>,
    /// PostgreSQL only: the schema the tables live in (`--postgres-schema`).
    pub postgres_schema: Option<String>,
    /// What to do about pending migrations.
    pub migrations: Migrations,
}

impl SqlConnect {
    /// A pool of `max_connections`, the default timeout, no schema, refusing pending
    /// migrations.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections,
            connect_timeout: None,
            postgres_schema: None,
            migrations: Migrations::Refuse,
        }
    }

    /// With the tables in this PostgreSQL schema, if any.
    pub fn postgres_schema(mut self, schema: Option<String>) -> Self {
        self.postgres_schema = schema;
        self
    }

    /// Doing `migrations` about pending migrations.
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = migrations;
        self
    }

    /// Connects to the database at `url`; `flag` names it in messages (with its password
    /// hidden).
    pub async fn connect(&self, flag: &str, url: &str) -> anyhow::Result<SqlStore> {
        let mut options = SqlStoreOptions::new(url)
            .max_connections(self.max_connections)
            .run_migrations(false);
        if let Some(timeout) = self.connect_timeout {
            options = options.connect_timeout(timeout);
        }
        if let Some(schema) = &self.postgres_schema {
            options = options.postgres_schema(schema);
        }
        let store = options
            .connect()
            .await
            .with_context(|| format!("{flag} {}: cannot connect", redacted(url)))?;
        let how = match self.migrations {
            Migrations::Ignore => return Ok(store),
            Migrations::Apply => {
                store.migrate().await?;
                "run `fastapihooks migrate` or pass --migrate"
            }
            Migrations::RefuseOrFlag => "run `fastapihooks migrate` or pass --migrate",
            Migrations::Refuse => "run `fastapihooks migrate` first",
        };
        let pending = store.pending_migrations().await?;
        if !pending.is_empty() {
            anyhow::bail!(
                "{flag} {}: {} migration(s) not applied yet; {how}",
                redacted(url),
                pending.len()
            );
        }
        Ok(store)
    }
}

/// The URL with its password, if any, replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_not_printed() {
        assert_eq!(
            redacted("postgres://app:hunter2@db.example/app"),
            "postgres://app:***@db.example/app"
        );
        assert_eq!(
            redacted("sqlite://fastapihooks.db?mode=rwc"),
            "sqlite://fastapihooks.db?mode=rwc"
        );
    }
}
