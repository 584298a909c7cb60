//! [`Place`]: where a part (the sidecar, the app) finds one run's store, queue and order table —
//! the arguments the conductor's [`DurableEnv`](super::env::DurableEnv) hands it.

use anyhow::Context;
use clap::Args;
use fastapihooks_core::{RedisBackend, RedisConfig, SqlStore, SqlStoreOptions};

/// `fastapihooks start`'s `--store-connections` default, and the app's pool.
pub const CONNECTIONS: u32 = 10;

/// One run's PostgreSQL schema and Redis key prefix.
#[derive(Clone, Debug, Default, Args)]
pub struct Place {
    /// The PostgreSQL server of the run.
    #[arg(long)]
    pub postgres: Option<String>,
    /// The run's schema (migrated by the conductor).
    #[arg(long)]
    pub schema: Option<String>,
    /// Redis.
    #[arg(long)]
    pub redis: Option<String>,
    /// The run's Redis key prefix.
    #[arg(long)]
    pub key_prefix: Option<String>,
}

impl Place {
    /// The arguments that describe this place to a part.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (flag, value) in [
            ("--postgres", &self.postgres),
            ("--schema", &self.schema),
            ("--redis", &self.redis),
            ("--key-prefix", &self.key_prefix),
        ] {
            if let Some(value) = value {
                args.extend([flag.to_owned(), value.clone()]);
            }
        }
        args
    }

    /// The store in the run's schema, with `CONNECTIONS` pooled connections, refusing a schema
    /// whose migrations are not applied (as `fastapihooks start` does); `None` without
    /// `--postgres`.
    pub async fn store(&self) -> anyhow::Result<Option<SqlStore>> {
        let Some(url) = &self.postgres else {
            return Ok(None);
        };
        let schema = self
            .schema
            .as_deref()
            .context("--postgres needs --schema")?;
        let store = SqlStoreOptions::new(url)
            .postgres_schema(schema)
            .max_connections(CONNECTIONS)
            .run_migrations(false)
            .connect()
            .await
            .with_context(|| format!("the store in schema {schema}"))?;
        let pending = store.pending_migrations().await?;
        anyhow::ensure!(
            pending.is_empty(),
            "schema {schema}: migrations not applied: {pending:?}"
        );
        Ok(Some(store))
    }

    /// The run's Redis queue, with the defaults of `fastapihooks start`.
    pub async fn redis_queue(&self) -> anyhow::Result<RedisBackend> {
        let (Some(url), Some(prefix)) = (&self.redis, &self.key_prefix) else {
            anyhow::bail!("a Redis queue needs --redis and --key-prefix");
        };
        RedisBackend::connect(RedisConfig::new(url).key_prefix(prefix))
            .await
            .with_context(|| format!("Redis at {url}"))
    }
}
